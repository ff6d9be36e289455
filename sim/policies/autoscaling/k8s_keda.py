"""KEDA ``ScaledObject`` manifests (``keda.sh/v1alpha1``) -> ``TargetScaler``.

KEDA publishes no Python model, so ``ScaledObject`` below is a strict pydantic model of the
fields KEDA's CRD documents (unknown fields are errors). KEDA runs a ScaledObject as an HPA
with one External metric per trigger, which is how peaksim runs it too:

- ``cron`` (``timezone``, ``start``, ``end``, ``desiredReplicas``): between a start and the
  next end the trigger's value is ``desiredReplicas``, otherwise 1, against an AverageValue
  target of 1 (so it proposes that many instances);
- ``prometheus``: the ``query`` is mapped to the nearest peaksim metric (a request rate ->
  ``arrival_rps``; ``histogram_quantile(0.99, ...)`` -> ``p99_ms``, seconds converted; in-flight
  or queued requests -> ``concurrency`` / ``queue``), or by the trigger's ``name`` under the
  variant's ``metrics``; ``threshold`` is the target, ``metricType`` AverageValue (default) or
  Value, ``activationThreshold`` the activation level;
- ``cpu`` (``metricType: Utilization``, ``value``) -> ``utilization``.

``minReplicaCount`` (default 0) / ``maxReplicaCount`` (100) bound the HPA; with 0 (or an
``idleReplicaCount``) the workload idles at that count once no trigger has been active for
``cooldownPeriod`` (300 s). ``advanced.horizontalPodAutoscalerConfig.behavior`` is an
autoscaling/v2 behavior (validated by the ``kubernetes`` client model). Other trigger types,
``scalingModifiers`` and memory are errors naming the field. Connection settings
(``serverAddress``, ``authenticationRef``, ...) and ``fallback`` (which acts on scaler errors,
and a simulation has none) are validated and have no effect.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from sim.policies.autoscaling.k8s_common import (
    CronWindow,
    MetricRule,
    Reader,
    TargetScaler,
    decimal_int,
    map_metric,
    quantity,
)
from sim.policies.autoscaling.k8s_hpa import to_behavior

Scalar = str | int | float | bool


class _Keda(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=False,
                              frozen=True)


class ScaleTargetRef(_Keda):
    name: str = Field(min_length=1)
    api_version: str | None = None
    kind: str | None = None
    env_source_container_name: str | None = None


class AuthenticationRef(_Keda):
    name: str
    kind: Literal["TriggerAuthentication", "ClusterTriggerAuthentication"] | None = None


class Trigger(_Keda):
    type: str
    metadata: dict[str, Scalar]
    name: str | None = None
    use_cached_metrics: bool | None = None
    metric_type: Literal["AverageValue", "Value", "Utilization"] | None = None
    authentication_ref: AuthenticationRef | None = None


class HorizontalPodAutoscalerConfig(_Keda):
    name: str | None = None
    behavior: dict[str, Any] | None = None


class ScalingModifiers(_Keda):
    formula: str | None = None
    target: str | None = None
    activation_target: str | None = None
    metric_type: Literal["AverageValue", "Value"] | None = None


class Advanced(_Keda):
    restore_to_original_replica_count: bool | None = None
    horizontal_pod_autoscaler_config: HorizontalPodAutoscalerConfig | None = None
    scaling_modifiers: ScalingModifiers | None = None


class Fallback(_Keda):
    failure_threshold: int = Field(ge=0)
    replicas: int = Field(ge=0)
    behavior: Literal["static", "currentReplicas", "currentReplicasIfHigher",
                      "currentReplicasIfLower"] | None = None


class ScaledObjectSpec(_Keda):
    scale_target_ref: ScaleTargetRef
    polling_interval: int = Field(default=30, ge=1)
    cooldown_period: int = Field(default=300, ge=0)
    initial_cooldown_period: int = Field(default=0, ge=0)
    idle_replica_count: int | None = Field(default=None, ge=0)
    min_replica_count: int = Field(default=0, ge=0)
    max_replica_count: int = Field(default=100, ge=1)
    fallback: Fallback | None = None
    advanced: Advanced | None = None
    triggers: list[Trigger] = Field(min_length=1)


class ScaledObject(_Keda):
    """A KEDA ScaledObject (keda.sh/v1alpha1), as documented by KEDA's CRD."""

    api_version: Literal["keda.sh/v1alpha1"]
    kind: Literal["ScaledObject"]
    metadata: dict[str, Any]
    spec: ScaledObjectSpec
    status: dict[str, Any] | None = None


_CRON_KEYS = {"timezone", "start", "end", "desiredReplicas"}
_PROMETHEUS_KEYS = {"serverAddress", "query", "threshold", "activationThreshold", "namespace",
                    "customHeaders", "ignoreNullValues", "unsafeSsl", "queryParameters",
                    "metricName", "authModes", "timeout"}


def keda_scaler(doc: dict[str, Any], reader: Reader,
                mapping: Mapping[str, tuple[str, float]]) -> TargetScaler | None:
    """The scaler of one ScaledObject, or None (problems recorded in ``reader``)."""
    from kubernetes.client import V1ObjectMeta

    try:
        so = ScaledObject.model_validate(doc)
    except ValidationError as exc:
        reader.validation(exc)
        return None
    try:
        meta = V1ObjectMeta.model_validate(so.metadata)
    except ValidationError as exc:
        reader.validation(exc, ["metadata"])
        return None
    spec = so.spec
    ok = True
    if spec.min_replica_count > spec.max_replica_count:
        reader.add(["spec", "minReplicaCount"], f"minReplicaCount ({spec.min_replica_count}) "
                   f"exceeds maxReplicaCount ({spec.max_replica_count})")
        ok = False
    if spec.idle_replica_count is not None and spec.idle_replica_count >= max(
            spec.min_replica_count, 1):
        reader.add(["spec", "idleReplicaCount"], "must be below minReplicaCount")
        ok = False
    advanced = spec.advanced or Advanced()
    if advanced.scaling_modifiers is not None:
        reader.add(["spec", "advanced", "scalingModifiers"], "composing triggers with a "
                   "formula is not modelled by peaksim; give the triggers directly")
        ok = False
    hpa_config = advanced.horizontal_pod_autoscaler_config
    raw_behavior = hpa_config.behavior if hpa_config is not None else None
    behavior = to_behavior(raw_behavior, ["spec", "advanced", "horizontalPodAutoscalerConfig",
                                          "behavior"], reader)
    rules: list[MetricRule] = []
    crons: list[CronWindow] = []
    for i, trigger in enumerate(spec.triggers):
        made = _trigger(trigger, ["spec", "triggers", i], reader, mapping)
        if made is None:
            ok = False
        elif isinstance(made, CronWindow):
            crons.append(made)
        else:
            rules.append(made)
    if not ok or behavior is False:
        return None
    idle = spec.idle_replica_count
    if idle is None and spec.min_replica_count == 0:
        idle = 0
    return TargetScaler(
        file=reader.file, kind="ScaledObject", name=meta.name or "(unnamed)",
        target=spec.scale_target_ref.name, min_replicas=max(1, spec.min_replica_count),
        max_replicas=spec.max_replica_count, metrics=tuple(rules),
        behavior=behavior or None, crons=tuple(crons), idle_replicas=idle,
        cooldown_s=float(spec.cooldown_period))


def _trigger(trigger: Trigger, path: list[str | int], reader: Reader,
             mapping: Mapping[str, tuple[str, float]]) -> MetricRule | CronWindow | None:
    meta = trigger.metadata
    at = [*path, "metadata"]
    if trigger.type == "cron":
        return _cron(meta, at, reader)
    if trigger.type == "cpu":
        if set(meta) - {"value", "type", "containerName"} or "value" not in meta:
            reader.add(at, "a cpu trigger takes 'value' (and 'containerName')")
            return None
        if (trigger.metric_type or meta.get("type")) != "Utilization":
            reader.add([*path, "metricType"], "a cpu trigger must use Utilization (an "
                       "AverageValue needs the pod's CPU request, which peaksim does not model)")
            return None
        try:
            value = quantity(meta["value"])
        except ValueError as exc:
            reader.add([*at, "value"], str(exc))
            return None
        return MetricRule("utilization", "pods", value / 100.0, reader.where(path))
    if trigger.type == "prometheus":
        return _prometheus(trigger, path, reader, mapping)
    reader.add([*path, "type"], f"trigger type {trigger.type!r} has no peaksim counterpart; "
               "supported: cron, prometheus, cpu")
    return None


def _cron(meta: Mapping[str, Scalar], at: list[str | int], reader: Reader) -> CronWindow | None:
    from croniter import croniter

    unknown = sorted(set(meta) - _CRON_KEYS)
    missing = sorted(_CRON_KEYS - set(meta))
    for key in unknown:
        reader.add([*at, key], "unknown field of a cron trigger (timezone, start, end, "
                   "desiredReplicas)")
    for key in missing:
        reader.add([*at, key], "required field is missing")
    if unknown or missing:
        return None
    ok = True
    try:
        ZoneInfo(str(meta["timezone"]))
    except (ZoneInfoNotFoundError, ValueError):
        reader.add([*at, "timezone"], f"expected an IANA time zone such as Asia/Shanghai, got "
                   f"{meta['timezone']!r}")
        ok = False
    for key in ("start", "end"):
        if not croniter.is_valid(str(meta[key])) or len(str(meta[key]).split()) != 5:
            reader.add([*at, key], f"expected a 5-field cron expression (minute hour day "
                       f"month weekday), got {meta[key]!r}")
            ok = False
    if str(meta["start"]).split() == str(meta["end"]).split():
        reader.add([*at, "end"], "start and end must differ")
        ok = False
    try:
        replicas = decimal_int(meta["desiredReplicas"])
    except ValueError as exc:
        reader.add([*at, "desiredReplicas"], str(exc))
        ok = False
    if not ok:
        return None
    return CronWindow(str(meta["start"]), str(meta["end"]), str(meta["timezone"]), replicas,
                      reader.where(at), tuple(at))


def _prometheus(trigger: Trigger, path: list[str | int], reader: Reader,
                mapping: Mapping[str, tuple[str, float]]) -> MetricRule | None:
    meta = trigger.metadata
    at = [*path, "metadata"]
    bad = False
    for key in sorted(set(meta) - _PROMETHEUS_KEYS):
        reader.add([*at, key], "unknown field of a prometheus trigger")
        bad = True
    for key in ("serverAddress", "query", "threshold"):
        if key not in meta:
            reader.add([*at, key], "required field is missing")
            bad = True
    if bad:
        return None
    value_type = trigger.metric_type or "AverageValue"
    if value_type == "Utilization":
        reader.add([*path, "metricType"], "a prometheus trigger takes AverageValue or Value")
        return None
    if trigger.name is not None and trigger.name in mapping:
        metric, scale = mapping[trigger.name]
    else:
        found = query_metric(str(meta["query"]))
        if isinstance(found, str):
            reader.add([*at, "query"], f"{found}; name the trigger and map the name under the "
                       "variant's 'metrics'")
            return None
        metric, scale = found
    mapped = map_metric(metric, metric in ("concurrency", "queue", "rps", "utilization"), {})
    if isinstance(mapped, str):
        reader.add([*at, "query"], mapped)
        return None
    try:
        threshold = quantity(meta["threshold"]) * scale
        activation = quantity(meta.get("activationThreshold", 0)) * scale
    except ValueError as exc:
        reader.add([*at, "threshold"], str(exc))
        return None
    if threshold <= 0:
        reader.add([*at, "threshold"], "expected a threshold > 0")
        return None
    per_instance = metric in ("concurrency", "queue", "rps", "utilization")
    if per_instance and value_type == "Value":
        reader.add([*path, "metricType"], f"{metric} is a per-pod quantity: use AverageValue")
        return None
    kind = "value" if value_type == "Value" else "average_value"
    return MetricRule(metric, kind, threshold, reader.where(path), activation)


_QUANTILE = re.compile(r"histogram_quantile\s*\(\s*([0-9.]+)")


def query_metric(query: str) -> tuple[str, float] | str:
    """(peaksim metric, scale to its unit) nearest to a PromQL ``query``, or why none is."""
    q = query.lower()
    match = _QUANTILE.search(q)
    if match:
        level = float(match.group(1))
        metric = {0.99: "p99_ms", 0.95: "p95_ms"}.get(level)
        if metric is None:
            return f"quantile {level:g}: peaksim observes the 0.95 and 0.99 quantiles"
        return metric, (1000.0 if "_seconds" in q else 1.0)
    if any(word in q for word in ("in_flight", "inflight", "concurrency", "active_requests")):
        return "concurrency", 1.0
    if "queue" in q:
        return "queue", 1.0
    if "request" in q and ("rate(" in q or "increase(" in q):
        return "arrival_rps", 1.0
    return "the query matches no peaksim metric (a request rate, a latency quantile, " \
           "in-flight or queued requests)"
