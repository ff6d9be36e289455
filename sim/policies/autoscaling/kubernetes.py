"""``kubernetes``: real autoscaling manifests (HPA autoscaling/v2, KEDA ScaledObject) run by
the HPA port of ``sim.policies.hpa``.

```yaml
autoscaling:
  variants:
    k8s:
      policy: kubernetes
      manifests: [k8s/hpa.yaml, k8s/keda.yaml]   # relative to the scenario file
      services: {browse: shop-browse}            # service -> scaleTargetRef.name (default: same)
      metrics: {http_requests_per_second: rps}   # manifest metric name -> peaksim metric
```

Each manifest becomes a ``TargetScaler`` (``k8s_read``); its service gets one HPA
controller with the manifest's bounds and ``behavior``. Upstream computes one proposal per
metric and takes the largest (a metric without a value is skipped, and then no scale-down
happens); so does ``ManifestHpa``. A KEDA cron trigger is one more External metric: its
value is ``desiredReplicas`` between a start and the next end, else 1, against an AverageValue
target of 1. A ScaledObject with ``minReplicaCount: 0`` (or an ``idleReplicaCount``) idles at
that count when no trigger has been active for ``cooldownPeriod`` and returns to its minimum
when one is (the engine still clamps to the service's ``instances``).
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Annotated, ClassVar, Literal
from zoneinfo import ZoneInfo

from pydantic import Field

from sim.policies.autoscaling.base import (
    INSTANCE_METRICS,
    AutoscalingPolicy,
    Observation,
    PolicyContext,
    ServiceView,
    only_changes,
)
from sim.policies.autoscaling.hpa import HpaController, ceil_replicas
from sim.policies.autoscaling.hpa_config import HpaConfig, HpaSettings, MetricName, NonEmpty
from sim.policies.autoscaling.k8s_common import CronWindow, MetricRule, TargetScaler
from sim.schema import Duration, Strict


class MetricScale(Strict):
    """A manifest metric in a peaksim metric's unit times ``scale`` (seconds -> ms: 1000)."""

    metric: MetricName
    scale: float = Field(default=1.0, gt=0)


class KubernetesParams(Strict):
    """``policy: kubernetes``: autoscaling manifests (see the module docstring)."""

    policy: Literal["kubernetes"]
    manifests: Annotated[tuple[str, ...], NonEmpty]
    services: dict[str, str] = Field(default_factory=dict)
    metrics: dict[str, MetricName | MetricScale] = Field(default_factory=dict)
    tolerance: float = Field(default=0.1, ge=0, lt=1)
    """The controller flag --horizontal-pod-autoscaler-tolerance."""
    downscale_stabilization_s: Annotated[Duration, Field(le=3600)] = 300.0
    cpu_initialization_s: Duration = 300.0

    def metric_map(self) -> dict[str, tuple[str, float]]:
        return {name: (m, 1.0) if isinstance(m, str) else (m.metric, m.scale)
                for name, m in self.metrics.items()}


class CronTimeline:
    """When a cron window is active, in run seconds from ``t0`` (computed a horizon ahead)."""

    def __init__(self, cron: CronWindow, t0: datetime) -> None:
        self.cron = cron
        self.t0 = t0.astimezone(ZoneInfo(cron.timezone))
        self.horizon_s = 0.0
        self.spans: list[tuple[float, float]] = []

    def active(self, t_s: float) -> bool:
        if t_s >= self.horizon_s:
            self._extend(max(2.0 * t_s, 3 * 86400.0))
        return any(a <= t_s + 1e-6 < b for a, b in self.spans)

    def _run_s(self, when: datetime) -> float:
        # elapsed seconds (timestamps): wall-clock differences would be off across a DST change
        return when.timestamp() - self.t0.timestamp()

    def _extend(self, horizon_s: float) -> None:
        from croniter import croniter

        end = datetime.fromtimestamp(self.t0.timestamp() + horizon_s, self.t0.tzinfo)
        spans = []
        # A window opened long before t=0 and still open (KEDA: the last start is later than
        # the last end) ...
        last_start = croniter(self.cron.start, self.t0).get_prev(datetime)
        if last_start > croniter(self.cron.end, self.t0).get_prev(datetime):
            stop = croniter(self.cron.end, last_start).get_next(datetime)
            spans.append((self._run_s(last_start), self._run_s(stop)))
        # ... and every window that opens from a day before t=0 to the horizon.
        starts = croniter(self.cron.start, self.t0 - timedelta(days=1))
        while True:
            start = starts.get_next(datetime)
            if start >= end:
                break
            stop = croniter(self.cron.end, start).get_next(datetime)
            spans.append((self._run_s(start), self._run_s(stop)))
        self.spans, self.horizon_s = spans, horizon_s


class ManifestHpa(HpaController):
    """The HPA of one manifest: one proposal per metric (and cron trigger), the largest wins."""

    def __init__(self, scaler: TargetScaler, config: HpaConfig, window_s: float,
                 t0: datetime | None) -> None:
        super().__init__(config, window_s)
        self.scaler = scaler
        self.calculators = {
            i: HpaController(replace(config, metric=r.metric, target=r.target), window_s)
            for i, r in enumerate(scaler.metrics) if r.kind == "pods"}
        self.timelines = [CronTimeline(c, t0) for c in scaler.crons] if t0 else []
        self.now_s = 0.0

    def sync(self, t_s: float, sv: ServiceView, floor: int = 0) -> int:
        self.now_s = t_s
        return super().sync(t_s, sv, floor)

    def active(self, t_s: float, sv: ServiceView) -> bool:
        """KEDA's activity: a cron window is open, or a metric is above its activation."""
        if any(tl.active(t_s) for tl in self.timelines):
            return True
        return any((self._value(r, sv) or 0.0) > r.activation for r in self.scaler.metrics)

    def _value(self, rule: MetricRule, sv: ServiceView) -> float | None:
        value = sv.metrics.get(rule.metric)
        if value is not None and rule.kind != "pods" and rule.metric in INSTANCE_METRICS:
            value *= sv.ready  # a per-instance average as the total a query would sum
        return value

    def _propose(self, sv: ServiceView) -> int | None:
        proposals: list[int] = []
        reasons: list[str] = []
        invalid = 0
        for i, rule in enumerate(self.scaler.metrics):
            proposal = self._rule(i, rule, sv)
            reasons.append(self.reason)
            if proposal is None:
                invalid += 1
            else:
                proposals.append(proposal)
        for timeline in self.timelines:
            cron = timeline.cron
            value = cron.replicas if timeline.active(self.now_s) else 1
            proposals.append(self._average_value(value, 1.0, sv))
            reasons.append(f"cron {cron.start} .. {cron.end}: {value}")
        self.reason = "; ".join(reasons)
        if not proposals:
            return None
        best = max(proposals)
        if invalid and best < sv.current:
            return sv.current  # upstream: no scale-down while a metric is missing
        return best

    def _rule(self, i: int, rule: MetricRule, sv: ServiceView) -> int | None:
        if rule.kind == "pods":
            calc = self.calculators[i]
            value = sv.metrics.get(rule.metric)
            view = replace(sv, instances=tuple(
                replace(inst, metric=value if inst.metric is not None else None)
                for inst in sv.instances))
            proposal = calc.propose(view)
            self.reason = calc.reason
            return proposal
        value = self._value(rule, sv)
        if value is None:
            self.reason = f"{rule.metric} missing"
            return None
        if rule.kind == "average_value":
            return self._average_value(value, rule.target, sv)
        ratio = value / rule.target
        self.reason = f"{rule.metric} {value:.4g} / target {rule.target:g}"
        if sv.current == 0:
            return ceil_replicas(ratio)
        if self._within(ratio):
            return sv.current
        return ceil_replicas(ratio * sv.ready)

    def _average_value(self, total: float, target: float, sv: ServiceView) -> int:
        ratio = total / (target * sv.current) if sv.current else math.inf
        self.reason = f"{total:.4g} / ({target:g} x {sv.current})"
        if self._within(ratio):
            return sv.current
        return ceil_replicas(total / target)


class KubernetesPolicy(AutoscalingPolicy):
    """``kubernetes``: the scenario's services scaled by their manifests."""

    name: ClassVar[str] = "kubernetes"
    Params: ClassVar[type[KubernetesParams]] = KubernetesParams

    def __init__(self, params: KubernetesParams, context: PolicyContext) -> None:
        from sim.policies.autoscaling.k8s_read import read_scalers

        super().__init__(params, context)
        scalers = read_scalers(params.manifests, context.base_dir, context.services,
                               params.services, params.metric_map(), context.start_time,
                               dated=True)
        self.controllers: dict[str, ManifestHpa] = {}
        for service, scaler in scalers.items():
            settings = HpaSettings.model_validate({
                "tolerance": params.tolerance, "min_replicas": scaler.min_replicas,
                "max_replicas": scaler.max_replicas,
                "downscale_stabilization_s": params.downscale_stabilization_s,
                "cpu_initialization_s": params.cpu_initialization_s})
            settings = settings.model_copy(update={"behavior": scaler.behavior})
            self.controllers[service] = ManifestHpa(
                scaler, settings.resolve(service), context.window_s, context.start_time)
        self.last_active_s: dict[str, float] = {}

    def instance_metric(self, service: str) -> str | None:
        # Any per-instance metric tells which instances have been scraped; ManifestHpa puts
        # each rule's own value in.
        return "utilization" if service in self.controllers else None

    def initial_counts(self) -> dict[str, int]:
        """A cron window open at t=0 has held its count before the run (within the bounds)."""
        counts = {}
        for name, controller in self.controllers.items():
            open_ = [tl.cron.replicas for tl in controller.timelines if tl.active(0.0)]
            if open_:
                scaler = controller.scaler
                counts[name] = max(scaler.min_replicas, min(max(open_), scaler.max_replicas))
        return counts

    def decide(self, obs: Observation) -> dict[str, int]:
        desired: dict[str, int] = {}
        for name, controller in self.controllers.items():
            sv = obs.services.get(name)
            if sv is None:
                continue
            scaler = controller.scaler
            if scaler.idle_replicas is not None:
                if controller.active(obs.t_s, sv):
                    self.last_active_s[name] = obs.t_s
                elif obs.t_s - self.last_active_s.get(name, 0.0) >= scaler.cooldown_s:
                    desired[name] = scaler.idle_replicas
                    self._reasons[name] = f"{scaler.kind} {scaler.name}: idle (no trigger active)"
                    continue
                if sv.current == 0:
                    desired[name] = scaler.min_replicas
                    self._reasons[name] = f"{scaler.kind} {scaler.name}: activated"
                    continue
            desired[name] = controller.sync(obs.t_s, sv)
            self._reasons[name] = f"{scaler.kind} {scaler.name}: {controller.reason}"
        return only_changes(desired, obs)
