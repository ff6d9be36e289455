"""What peaksim takes from Kubernetes autoscaling manifests, and how it reads them.

A manifest (an ``autoscaling/v2`` HorizontalPodAutoscaler or a KEDA ``ScaledObject``) becomes a
``TargetScaler``: bounds, metric rules in peaksim's metrics, the HPA ``behavior`` in the
scenario's own form (``sim.policies.hpa_config.Behavior``) and cron windows. Problems are
collected as ``sim.errors.Problem`` (manifest file, field path such as
``spec.metrics[1].pods.metric.name``, line) and raised together as one ``ScenarioError``.

Metric names: peaksim's own names are accepted as they are; a few common names are known
(``ALIASES``); anything else must be mapped in the variant (``metrics: {name: p99_ms}`` or
``{name: {metric: p99_ms, scale: 1000}}``). Pods and Resource metrics map to per-instance
metrics (``utilization``, ``concurrency``, ``queue``, ``rps``), Object and External metrics to
service-level ones (``arrival_rps``, ``p95_ms``, ``p99_ms``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import ValidationError

from sim.errors import Problem
from sim.policies.autoscaling.base import INSTANCE_METRICS
from sim.policies.autoscaling.hpa_config import Behavior

Kind = Literal["pods", "value", "average_value"]
"""How a metric is turned into a proposal: ``pods`` per-instance average against an average
target (Resource, Pods); ``value`` a service-level value against a value target; and
``average_value`` a service-level total against a per-instance target (Object, External)."""

SERVICE_LEVEL = ("arrival_rps", "p95_ms", "p99_ms")

ALIASES: Mapping[str, tuple[str, str, float]] = {
    # name: (per-instance metric, service-level metric, scale to peaksim's unit)
    "http_requests_per_second": ("rps", "arrival_rps", 1.0),
    "requests_per_second": ("rps", "arrival_rps", 1.0),
    "http_requests": ("rps", "arrival_rps", 1.0),
    "requests_in_flight": ("concurrency", "", 1.0),
    "http_requests_in_flight": ("concurrency", "", 1.0),
    "inflight_requests": ("concurrency", "", 1.0),
    "queue_length": ("queue", "", 1.0),
    "queue_depth": ("queue", "", 1.0),
    "latency_p99_seconds": ("", "p99_ms", 1000.0),
    "latency_p95_seconds": ("", "p95_ms", 1000.0),
    "latency_p99_ms": ("", "p99_ms", 1.0),
    "latency_p95_ms": ("", "p95_ms", 1.0),
}
"""Common metric names and the peaksim metric each stands for."""


@dataclass(frozen=True)
class MetricRule:
    """One metric of an autoscaler in peaksim's terms; ``target`` in the metric's unit."""

    metric: str
    kind: Kind
    target: float
    where: str
    """``file: field path`` of the manifest entry (for reasons and errors)."""
    activation: float = 0.0
    """KEDA: the scaler is active above this value (scale from/to zero)."""


@dataclass(frozen=True)
class CronWindow:
    """A KEDA cron trigger: ``replicas`` from each ``start`` until the next ``end``."""

    start: str
    end: str
    timezone: str
    replicas: int
    where: str
    path: tuple[str | int, ...] = ()
    """Field path of the trigger's metadata in its manifest."""


@dataclass(frozen=True)
class TargetScaler:
    """One autoscaler of one workload (an HPA, or the HPA a ScaledObject makes)."""

    file: str
    kind: str
    name: str
    target: str
    """``scaleTargetRef.name``."""
    min_replicas: int
    max_replicas: int
    metrics: tuple[MetricRule, ...]
    behavior: Behavior | None
    crons: tuple[CronWindow, ...] = ()
    idle_replicas: int | None = None
    """KEDA: the count while no trigger is active (0 with ``minReplicaCount: 0``)."""
    cooldown_s: float = 300.0
    notes: tuple[str, ...] = field(default=())


@dataclass
class Reader:
    """Collects problems of one manifest file while it is converted."""

    file: str
    lines: dict[tuple[str | int, ...], int]
    problems: list[Problem] = field(default_factory=list)

    def add(self, path: Sequence[str | int], message: str) -> None:
        self.problems.append(Problem(self.file, dotted(path), message, self.line(path)))

    def line(self, path: Sequence[str | int]) -> int | None:
        key = tuple(path)
        while key and key not in self.lines:
            key = key[:-1]
        return self.lines.get(key)

    def where(self, path: Sequence[str | int]) -> str:
        return f"{Path(self.file).name}: {dotted(path)}"

    def validation(self, exc: ValidationError, prefix: Sequence[str | int] = ()) -> None:
        """One problem per pydantic error (locations are the manifest's camelCase keys)."""
        for error in exc.errors():
            loc = [*prefix, *(part for part in error["loc"] if not _is_tag(part))]
            message = error["msg"]
            if error["type"] == "extra_forbidden":
                message = "unknown field (not in the schema)"
            elif error["type"] == "missing":
                message = "required field is missing"
            self.add(loc, message)


def _is_tag(part: str | int) -> bool:
    return isinstance(part, str) and (part.startswith("function-") or part[:1].isupper())


def dotted(path: Sequence[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def read_documents(path: Path) -> list[tuple[Any, dict[tuple[str | int, ...], int]]]:
    """Every YAML document of ``path`` with the line of each key (``---`` separates them).

    Raises ``OSError`` / ``yaml.YAMLError`` for the caller to report.
    """
    text = path.read_text(encoding="utf-8")
    out = []
    for node in yaml.compose_all(text, Loader=yaml.SafeLoader):
        if node is None:
            continue
        lines: dict[tuple[str | int, ...], int] = {(): node.start_mark.line + 1}
        _walk(node, (), lines)
        out.append((yaml.SafeLoader(yaml.serialize(node)).get_single_data(), lines))
    return out


def _walk(node: yaml.Node, path: tuple[str | int, ...],
          lines: dict[tuple[str | int, ...], int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*path, str(key.value))
            lines[child] = key.start_mark.line + 1
            _walk(value, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[(*path, i)] = item.start_mark.line + 1
            _walk(item, (*path, i), lines)


def quantity(value: Any) -> float:
    """A Kubernetes quantity (``"100m"``, ``"1k"``, ``"2Gi"``, 5) as a float.

    Raises ``ValueError`` for anything else."""
    from kubernetes.utils import parse_quantity

    try:
        number = float(parse_quantity(value))
    except (ValueError, TypeError, InvalidOperation) as exc:
        raise ValueError(f"expected a Kubernetes quantity such as 500m or 2, got {value!r}") \
            from exc
    if not math.isfinite(number):
        raise ValueError(f"expected a finite quantity, got {value!r}")
    return number


def map_metric(name: str, per_instance: bool, mapping: Mapping[str, tuple[str, float]]
               ) -> tuple[str, float] | str:
    """(peaksim metric, scale) for a manifest metric ``name``, or the reason it cannot map."""
    if name in mapping:
        metric, scale = mapping[name]
    elif name in INSTANCE_METRICS or name in SERVICE_LEVEL:
        metric, scale = name, 1.0
    elif name in ALIASES:
        pods, service, scale = ALIASES[name]
        metric = pods if per_instance else service
        if not metric:
            return (f"'{name}' is a {'service-level' if per_instance else 'per-pod'} metric; "
                    f"map it under the variant's 'metrics'")
    else:
        return (f"no peaksim metric is known as '{name}': map it under the variant's "
                f"'metrics' (peaksim metrics: {', '.join((*INSTANCE_METRICS, *SERVICE_LEVEL))})")
    wanted = INSTANCE_METRICS if per_instance else SERVICE_LEVEL
    if metric not in wanted:
        kind = "a per-pod (Pods/Resource)" if per_instance else "an Object/External"
        return f"'{name}' maps to {metric}, which is not {kind} metric; expected one of " \
               f"{', '.join(wanted)}"
    return metric, scale


def decimal_int(value: Any) -> int:
    """A whole number given as an int or a string (KEDA metadata values are strings)."""
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"expected a whole number, got {value!r}") from None
    if number != number.to_integral_value() or number < 0:
        raise ValueError(f"expected a whole number >= 0, got {value!r}")
    return int(number)
