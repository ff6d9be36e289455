"""``autoscaling/v2`` HorizontalPodAutoscaler manifests -> ``TargetScaler``.

The manifest is validated by the ``kubernetes`` Python client's model
(``V2HorizontalPodAutoscaler``: required fields, types, no unknown fields), then each metric is
mapped to a peaksim metric:

| manifest | peaksim |
|---|---|
| Resource / ContainerResource ``cpu``, ``Utilization`` | ``utilization`` (per instance) |
| Pods metric (``AverageValue``) | the per-instance metric its name maps to |
| Object / External metric, Value or AverageValue | ``arrival_rps``, ``p95_ms``, ``p99_ms`` |

``behavior`` (policies, windows, ``selectPolicy``, per-direction ``tolerance``) becomes the
scenario's own ``behavior`` and is checked by it (e.g. ``periodSeconds`` 1..1800). Memory, a
CPU ``AverageValue`` (it needs the pod's CPU request) and unknown metric names are errors that
name the field; nothing is dropped silently. ``status`` (observed state) is ignored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from sim.policies.autoscaling.hpa_config import Behavior
from sim.policies.autoscaling.k8s_common import (
    MetricRule,
    Reader,
    TargetScaler,
    map_metric,
    quantity,
)

_OURS_TO_K8S = {"scale_up": "scaleUp", "scale_down": "scaleDown",
                "stabilization_window_s": "stabilizationWindowSeconds",
                "select_policy": "selectPolicy", "period_s": "periodSeconds"}


def hpa_scaler(doc: dict[str, Any], reader: Reader,
               mapping: Mapping[str, tuple[str, float]]) -> TargetScaler | None:
    """The scaler of one HPA manifest, or None (problems recorded in ``reader``)."""
    from kubernetes.client import V2HorizontalPodAutoscaler

    if doc.get("apiVersion") != "autoscaling/v2":
        reader.add(["apiVersion"], f"expected autoscaling/v2, got {doc.get('apiVersion')!r} "
                   "(convert older versions with kubectl convert)")
        return None
    doc = quantities_as_strings(doc)
    try:
        hpa = V2HorizontalPodAutoscaler.model_validate(doc)
    except ValidationError as exc:
        reader.validation(exc)
        return None
    spec = hpa.spec
    if spec is None:
        reader.add(["spec"], "required field is missing")
        return None
    raw_metrics = doc["spec"].get("metrics") or [
        {"type": "Resource", "resource": {"name": "cpu", "target": {
            "type": "Utilization", "averageUtilization": 80}}}]  # the API's default
    rules = [metric_rule(m, ["spec", "metrics", i], reader, mapping)
             for i, m in enumerate(raw_metrics)]
    behavior = to_behavior(doc["spec"].get("behavior"), ["spec", "behavior"], reader)
    if any(r is None for r in rules) or behavior is False:
        return None
    name = hpa.metadata.name if hpa.metadata and hpa.metadata.name else "(unnamed)"
    return TargetScaler(
        file=reader.file, kind="HorizontalPodAutoscaler", name=name,
        target=spec.scale_target_ref.name,
        min_replicas=spec.min_replicas if spec.min_replicas is not None else 1,
        max_replicas=spec.max_replicas, metrics=tuple(r for r in rules if r is not None),
        behavior=behavior or None)


def quantities_as_strings(value: Any, key: str = "", in_target: bool = False) -> Any:
    """A copy with numeric quantities (``target.value``/``averageValue``, ``tolerance``) as
    strings: the API server takes ``averageValue: 1`` (an int-or-string), the client model
    only a string."""
    if isinstance(value, dict):
        return {k: quantities_as_strings(v, k, key == "target") for k, v in value.items()}
    if isinstance(value, list):
        return [quantities_as_strings(v) for v in value]
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if numeric and ((in_target and key in ("value", "averageValue")) or key == "tolerance"):
        return str(value)
    return value


def metric_rule(metric: dict[str, Any], path: list[str | int], reader: Reader,
                mapping: Mapping[str, tuple[str, float]]) -> MetricRule | None:
    """One ``spec.metrics[i]`` entry in peaksim's terms (validated by the client model)."""
    kind = metric.get("type")
    source_key = {"Resource": "resource", "ContainerResource": "containerResource",
                  "Pods": "pods", "Object": "object", "External": "external"}.get(str(kind))
    if source_key is None or not isinstance(metric.get(source_key), dict):
        reader.add([*path, "type"], f"type {kind!r} needs its '{source_key or 'source'}' "
                   "block (Resource, ContainerResource, Pods, Object or External)")
        return None
    source = metric[source_key]
    at = [*path, source_key]
    target = source.get("target") or {}
    ttype = target.get("type")
    where = reader.where(at)
    if source_key in ("resource", "containerResource"):
        if source.get("name") != "cpu":
            reader.add([*at, "name"], f"resource {source.get('name')!r}: peaksim models CPU "
                       "(workers) only, not memory or other resources")
            return None
        if ttype != "Utilization" or target.get("averageUtilization") is None:
            reader.add([*at, "target", "type"], "a cpu target must be Utilization with "
                       "averageUtilization (an AverageValue needs the pod's CPU request, "
                       "which peaksim does not model)")
            return None
        return MetricRule("utilization", "pods", target["averageUtilization"] / 100.0, where)
    name = (source.get("metric") or {}).get("name", "")
    mapped = map_metric(name, source_key == "pods", mapping)
    if isinstance(mapped, str):
        reader.add([*at, "metric", "name"], mapped)
        return None
    peaksim_metric, scale = mapped
    if source_key == "pods":
        if ttype != "AverageValue":
            reader.add([*at, "target", "type"], "a Pods metric needs an AverageValue target")
            return None
        value = _target_value(target, "averageValue", [*at, "target"], reader)
        return None if value is None else MetricRule(peaksim_metric, "pods", value * scale,
                                                     where)
    if ttype not in ("Value", "AverageValue"):
        reader.add([*at, "target", "type"], f"expected Value or AverageValue, got {ttype!r}")
        return None
    key = "value" if ttype == "Value" else "averageValue"
    value = _target_value(target, key, [*at, "target"], reader)
    if value is None:
        return None
    return MetricRule(peaksim_metric, "value" if ttype == "Value" else "average_value",
                      value * scale, where)


def _target_value(target: dict[str, Any], key: str, path: list[str | int],
                  reader: Reader) -> float | None:
    if target.get(key) is None:
        reader.add([*path, key], f"required for a target of type {target.get('type')}")
        return None
    try:
        value = quantity(target[key])
    except ValueError as exc:
        reader.add([*path, key], str(exc))
        return None
    if value <= 0:
        reader.add([*path, key], f"expected a target > 0, got {target[key]!r}")
        return None
    return value


def to_behavior(raw: Any, path: Sequence[str | int], reader: Reader) -> Behavior | None | bool:
    """The scenario's ``Behavior`` for a manifest ``behavior`` block (None when absent; False
    when invalid, problems recorded)."""
    if raw is None:
        return None
    from kubernetes.client import V2HorizontalPodAutoscalerBehavior

    raw = quantities_as_strings(raw)
    try:
        V2HorizontalPodAutoscalerBehavior.model_validate(raw)
    except ValidationError as exc:
        reader.validation(exc, path)
        return False
    ours: dict[str, Any] = {}
    for direction, key in (("scale_up", "scaleUp"), ("scale_down", "scaleDown")):
        rules = raw.get(key)
        if rules is None:
            continue
        entry: dict[str, Any] = {}
        if rules.get("stabilizationWindowSeconds") is not None:
            entry["stabilization_window_s"] = rules["stabilizationWindowSeconds"]
        if rules.get("selectPolicy") is not None:
            entry["select_policy"] = rules["selectPolicy"]
        if rules.get("policies") is not None:
            entry["policies"] = [{"type": p.get("type"), "value": p.get("value"),
                                  "period_s": p.get("periodSeconds")} for p in rules["policies"]]
        if rules.get("tolerance") is not None:
            try:
                entry["tolerance"] = quantity(rules["tolerance"])
            except ValueError as exc:
                reader.add([*path, key, "tolerance"], str(exc))
                return False
        ours[direction] = entry
    try:
        return Behavior.model_validate(ours)
    except ValidationError as exc:
        for error in exc.errors():
            loc = [_OURS_TO_K8S.get(str(p), p) if isinstance(p, str) else p
                   for p in error["loc"]]
            reader.add([*path, *loc], error["msg"])
        return False
