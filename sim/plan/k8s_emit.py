"""Kubernetes manifests of a schedule plan (``peaksim plan --schedule --emit k8s DIR``).

Per planned service, two files:

- ``<service>-scaledobject.yaml``: a KEDA ScaledObject whose cron triggers carry the planned
  schedule, one window per segment of the instances-over-time curve, in the scenario's time
  zone (dated with its ``start_date``, else daily). Its HPA ``behavior`` lets the count follow
  the triggers at once (the plan already starts instances a boot time early and keeps them
  for the scale-down delay): scale-up by up to ``instances.max`` pods per 15 s, scale-down by
  100% per 15 s, no stabilization window and a tolerance of 0 (Kubernetes >= 1.33; an older
  cluster keeps its default 10%, so a count within 10% of the trigger's waits). This is the
  plan: read back as a ``kubernetes`` variant it reproduces the plan's counts.
- ``<service>-hpa.yaml``: the scenario's reactive HPA for the same workload (the first
  ``target_tracking`` variant: metric, target, bounds and ``behavior`` copied; the API's
  defaults without one), for a cluster without KEDA. KEDA refuses to scale a workload that an
  HPA already owns: apply one of the two per workload.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from sim.model import Scenario
from sim.plan.planner import PlanError
from sim.plan.schedule import SchedulePlan
from sim.plan.schedule_out import at_run_s, hpa_variant
from sim.policies.autoscaling import Behavior, HpaSettings
from sim.runio import atomic_write_text

MANAGED_BY = {"app.kubernetes.io/managed-by": "peaksim"}


def emit_k8s(plan: SchedulePlan, out_dir: Path) -> list[Path]:
    """Write the manifests of ``plan`` into ``out_dir``; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in plan.services:
        for suffix, doc in (("scaledobject", scaled_object(plan, name)),
                            ("hpa", reactive_hpa(plan.scenario, name))):
            path = out_dir / f"{name}-{suffix}.yaml"
            atomic_write_text(path, _header(plan, name, suffix)
                              + yaml.safe_dump(doc, sort_keys=False, width=100))
            written.append(path)
    return written


def _header(plan: SchedulePlan, name: str, suffix: str) -> str:
    if suffix == "hpa":
        return (f"# The reactive HPA of {plan.scenario.name} for {name} (written by peaksim "
                "plan --schedule).\n# Apply this OR the ScaledObject: KEDA refuses a workload "
                "an HPA already scales.\n")
    return (f"# The planned schedule of {name} for {plan.scenario.name} (peaksim plan "
            f"--schedule, step {plan.grid.step_s:g} s, headroom {plan.options.headroom:.0%}).\n"
            "# tolerance needs Kubernetes >= 1.33 (HPAConfigurableTolerance); without it a "
            "count within 10% of the trigger's waits.\n")


def scaled_object(plan: SchedulePlan, name: str) -> dict[str, Any]:
    """The KEDA ScaledObject of ``name`` with one cron trigger per planned segment."""
    scenario = plan.scenario
    spec = scenario.services[name]
    start = scenario.start_time
    if start is None:
        raise PlanError("--emit k8s needs the scenario's start_clock (and timezone, start_date) "
                        "to write cron triggers")
    tz = scenario.timezone or "UTC"
    dated = scenario.start_date is not None
    schedule = plan.services[name]
    ends = [*schedule.times_s[1:], plan.grid.duration_s]
    triggers = []
    for t0, t1, count in zip(schedule.times_s, ends, schedule.counts, strict=True):
        triggers.append({"type": "cron", "metadata": {
            "timezone": tz, "start": _cron(start, t0, dated), "end": _cron(start, t1, dated),
            "desiredReplicas": str(count)}})
    rules = {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "tolerance": "0"}
    return {
        "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
        "metadata": {"name": f"{name}-schedule", "labels": dict(MANAGED_BY)},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicaCount": max(1, spec.instances.min),
            "maxReplicaCount": spec.instances.max,
            "advanced": {"horizontalPodAutoscalerConfig": {"name": f"{name}-schedule",
                                                           "behavior": {
                "scaleUp": {**rules, "policies": [
                    {"type": "Pods", "value": spec.instances.max, "periodSeconds": 15}]},
                "scaleDown": {**rules, "policies": [
                    {"type": "Percent", "value": 100, "periodSeconds": 15}]}}}},
            "triggers": triggers,
        },
    }


def _cron(start: Any, t_s: float, dated: bool) -> str:
    """``minute hour day month *`` (or daily ``minute hour * * *``) of run time ``t_s``."""
    when = at_run_s(start, t_s)
    if dated:
        return f"{when.minute} {when.hour} {when.day} {when.month} *"
    return f"{when.minute} {when.hour} * * *"


def reactive_hpa(scenario: Scenario, name: str) -> dict[str, Any]:
    """An autoscaling/v2 HPA of ``name`` from the scenario's first target_tracking variant."""
    variant = hpa_variant(scenario)
    settings = (scenario.autoscaling.variants[variant]  # type: ignore[union-attr]
                if variant is not None else HpaSettings())
    assert isinstance(settings, HpaSettings)
    config = settings.resolve(name)
    spec = scenario.services[name]
    override = settings.services.get(name)
    behavior = (override.behavior if override is not None and override.behavior is not None
                else settings.behavior)
    body: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
        "minReplicas": max(1, config.min_replicas, spec.instances.min),
        "maxReplicas": min(config.max_replicas or spec.instances.max, spec.instances.max),
        "metrics": [_metric(config.metric, config.target, name)],
    }
    if behavior is not None:
        body["behavior"] = _behavior(behavior)
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": name, "labels": dict(MANAGED_BY)}, "spec": body}


def _metric(metric: str, target: float, service: str) -> dict[str, Any]:
    if metric == "utilization":
        return {"type": "Resource", "resource": {"name": "cpu", "target": {
            "type": "Utilization", "averageUtilization": round(target * 100)}}}
    if metric in ("concurrency", "queue", "rps"):
        return {"type": "Pods", "pods": {"metric": {"name": metric}, "target": {
            "type": "AverageValue", "averageValue": f"{target:g}"}}}
    if metric == "arrival_rps":
        return {"type": "External", "external": {"metric": {"name": metric}, "target": {
            "type": "AverageValue", "averageValue": f"{target:g}"}}}
    return {"type": "Object", "object": {
        "describedObject": {"apiVersion": "v1", "kind": "Service", "name": service},
        "metric": {"name": metric}, "target": {"type": "Value", "value": f"{target:g}"}}}


def _behavior(behavior: Behavior) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for ours, key in ((behavior.scale_up, "scaleUp"), (behavior.scale_down, "scaleDown")):
        if ours is None:
            continue
        rules: dict[str, Any] = {}
        if ours.stabilization_window_s is not None:
            rules["stabilizationWindowSeconds"] = round(ours.stabilization_window_s)
        if ours.select_policy is not None:
            rules["selectPolicy"] = ours.select_policy
        if ours.policies is not None:
            rules["policies"] = [{"type": p.type, "value": p.value,
                                  "periodSeconds": round(p.period_s)} for p in ours.policies]
        if ours.tolerance is not None:
            rules["tolerance"] = f"{ours.tolerance:g}"
        out[key] = rules
    return out
