"""Scenario parameters of the Kubernetes-HPA policy (``target_tracking``) and their defaults.

Field names follow the ``autoscaling/v2`` API in snake_case with units (``periodSeconds`` ->
``period_s``); defaults are the API's and the controller's (REFERENCE.md, Kubernetes
``pkg/apis/autoscaling/v2/defaults.go`` and the kube-controller-manager flags):

- metric ``utilization`` with target 0.8 when no metric is given (the API's default: CPU 80%);
- tolerance 0.1 (``--horizontal-pod-autoscaler-tolerance``), overridable per direction with
  ``behavior.scale_up.tolerance`` / ``behavior.scale_down.tolerance`` (Kubernetes >= 1.33);
- ``min_replicas`` 1; ``max_replicas`` the service's ``instances.max``;
- scale-down stabilization 300 s (``--horizontal-pod-autoscaler-downscale-stabilization``);
- CPU initialization period 300 s (``--horizontal-pod-autoscaler-cpu-initialization-period``);
- without ``behavior``: the legacy limit (scale up to at most ``max(2 x current, 4)``);
- with ``behavior``, unset fields take the API defaults: scale-up window 0 s, policies
  4 Pods / 15 s and 100 Percent / 15 s, selectPolicy Max; scale-down window = the controller's
  300 s, policy 100 Percent / 15 s, selectPolicy Max.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from sim.policies.autoscaling.base import METRICS
from sim.schema import Duration, Loc, Strict, field_errors

MetricName = Literal[
    "utilization", "concurrency", "queue", "rps", "arrival_rps", "p95_ms", "p99_ms"
]
assert set(MetricName.__args__) == set(METRICS)  # type: ignore[attr-defined]

Problem = tuple[Loc, str]


def _non_empty(value: Any) -> Any:
    if len(value) == 0:
        raise ValueError("expected at least 1 entry, got none")
    return value


NonEmpty = AfterValidator(_non_empty)
"""A list that must not be empty (checked after its items, so a bad item is reported once)."""

DEFAULT_UTILIZATION_TARGET = 0.8
"""The autoscaling/v2 default metric: CPU average utilization 80%."""


def _k8s_spelling(*names: str) -> Any:
    by_lower = {n.lower(): n for n in names}

    def convert(value: Any) -> Any:
        return by_lower.get(value.lower(), value) if isinstance(value, str) else value

    return BeforeValidator(convert)


MIN_TARGET = 0.001
"""Smallest metric target: the HPA compares whole percents of utilization (0.1% still is one);
a smaller target only divides by (nearly) zero."""
MAX_TARGET = 1e9


class ScalingPolicy(Strict):
    """One HPA scaling policy: change by at most ``value`` pods (or percent) per ``period_s``."""

    type: Annotated[Literal["Pods", "Percent"], _k8s_spelling("Pods", "Percent")]
    value: int = Field(gt=0)
    period_s: Annotated[Duration, Field(gt=0, le=1800)]


class ScalingRules(Strict):
    """``behavior.scale_up`` or ``behavior.scale_down``; unset fields take the API defaults."""

    stabilization_window_s: Annotated[Duration, Field(le=3600)] | None = None
    select_policy: (
        Annotated[Literal["Max", "Min", "Disabled"], _k8s_spelling("Max", "Min", "Disabled")]
        | None
    ) = None
    policies: Annotated[tuple[ScalingPolicy, ...], NonEmpty] | None = None
    tolerance: float | None = Field(default=None, ge=0, lt=1)


class Behavior(Strict):
    """The HPA ``behavior`` block; giving it (even empty) replaces the legacy scale-up limit."""

    scale_up: ScalingRules | None = None
    scale_down: ScalingRules | None = None


class HpaOverride(Strict):
    """Per-service settings; unset fields inherit the variant's. ``enabled: false`` leaves the
    service alone (its instance count stays as it is)."""

    enabled: bool = True
    metric: MetricName | None = None
    target: float | None = Field(default=None, ge=MIN_TARGET, le=MAX_TARGET)
    tolerance: float | None = Field(default=None, ge=0, lt=1)
    min_replicas: int | None = Field(default=None, ge=0)
    max_replicas: int | None = Field(default=None, ge=1)
    behavior: Behavior | None = None

    @model_validator(mode="after")
    def _check(self) -> HpaOverride:
        problems = _target_problems(self.metric, self.target, ())
        problems += _bounds_problems(self.min_replicas, self.max_replicas, ())
        if problems:
            raise field_errors(problems)
        return self


@dataclass(frozen=True)
class Rules:
    """Scaling rules with every default filled in (the controller's view)."""

    window_s: float
    select: Literal["Max", "Min", "Disabled"]
    policies: tuple[tuple[Literal["Pods", "Percent"], int, float], ...]

    @property
    def longest_period_s(self) -> float:
        return max(period for _, _, period in self.policies)


@dataclass(frozen=True)
class HpaConfig:
    """The resolved HPA settings of one service."""

    metric: str
    target: float
    tolerance_up: float
    tolerance_down: float
    min_replicas: int
    max_replicas: int | None
    downscale_stabilization_s: float
    cpu_initialization_s: float
    scale_up: Rules | None  # None: no behavior block -> legacy normalization
    scale_down: Rules | None


class HpaSettings(Strict):
    """HPA settings of a variant (``target_tracking``, or the reactive part of ``scheduled``
    and ``predictive``). ``services`` overrides them per service."""

    metric: MetricName = "utilization"
    target: float | None = Field(default=None, ge=MIN_TARGET, le=MAX_TARGET)
    tolerance: float = Field(default=0.1, ge=0, lt=1)
    min_replicas: int = Field(default=1, ge=0)
    max_replicas: int | None = Field(default=None, ge=1)
    behavior: Behavior | None = None
    downscale_stabilization_s: Annotated[Duration, Field(le=3600)] = 300.0
    cpu_initialization_s: Duration = 300.0
    services: dict[str, HpaOverride] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> HpaSettings:
        problems = _target_problems(self.metric, self.target, ())
        problems += _bounds_problems(self.min_replicas, self.max_replicas, ())
        for name, override in self.services.items():
            config = self.resolve(name)
            where: Loc = ("services", name)
            if override.metric is None and override.target is not None:
                problems += _target_problems(config.metric, config.target, where)
            if override.min_replicas is None or override.max_replicas is None:
                # (both given: the override checked them itself)
                problems += _bounds_problems(config.min_replicas, config.max_replicas, where)
        if problems:
            raise field_errors(problems)
        return self

    def enabled(self, service: str) -> bool:
        override = self.services.get(service)
        return override is None or override.enabled

    def resolve(self, service: str) -> HpaConfig:
        """The settings that apply to ``service`` (its override on top of the variant's)."""
        o = self.services.get(service) or HpaOverride()
        metric = o.metric or self.metric
        if o.target is not None:
            target = o.target
        elif o.metric is None or o.metric == self.metric:
            target = self.target if self.target is not None else DEFAULT_UTILIZATION_TARGET
        else:
            target = DEFAULT_UTILIZATION_TARGET  # only reachable for utilization (validated)
        tolerance = o.tolerance if o.tolerance is not None else self.tolerance
        behavior = o.behavior if o.behavior is not None else self.behavior
        up = down = None
        tol_up = tol_down = tolerance
        if behavior is not None:
            up = _fill(behavior.scale_up, 0.0, (("Pods", 4, 15.0), ("Percent", 100, 15.0)))
            down = _fill(
                behavior.scale_down, self.downscale_stabilization_s, (("Percent", 100, 15.0),)
            )
            if behavior.scale_up is not None and behavior.scale_up.tolerance is not None:
                tol_up = behavior.scale_up.tolerance
            if behavior.scale_down is not None and behavior.scale_down.tolerance is not None:
                tol_down = behavior.scale_down.tolerance
        return HpaConfig(
            metric=metric,
            target=target,
            tolerance_up=tol_up,
            tolerance_down=tol_down,
            min_replicas=o.min_replicas if o.min_replicas is not None else self.min_replicas,
            max_replicas=o.max_replicas if o.max_replicas is not None else self.max_replicas,
            downscale_stabilization_s=self.downscale_stabilization_s,
            cpu_initialization_s=self.cpu_initialization_s,
            scale_up=up,
            scale_down=down,
        )


class TargetTrackingParams(HpaSettings):
    """``policy: target_tracking``: the Kubernetes HPA algorithm on every service."""

    policy: Literal["target_tracking"]


def _fill(
    rules: ScalingRules | None,
    default_window_s: float,
    default_policies: tuple[tuple[Literal["Pods", "Percent"], int, float], ...],
) -> Rules:
    rules = rules or ScalingRules()
    policies = (
        tuple((p.type, p.value, p.period_s) for p in rules.policies)
        if rules.policies is not None
        else default_policies
    )
    window = rules.stabilization_window_s
    return Rules(
        window_s=default_window_s if window is None else window,
        select=rules.select_policy or "Max",
        policies=policies,
    )


def _target_problems(metric: str | None, target: float | None, where: Loc) -> list[Problem]:
    if metric not in (None, "utilization") and target is None:
        return [((*where, "target"), f"metric {metric!r} needs a target (there is no default)")]
    if metric == "utilization" and target is not None and target > 1:
        return [((*where, "target"), (
            "a utilization target must lie within (0, 1]: utilization is busy / ready workers "
            f"and never exceeds 1, got {target:g}"
        ))]
    return []


def _bounds_problems(low: int | None, high: int | None, where: Loc) -> list[Problem]:
    if low is not None and high is not None and low > high:
        return [((*where, "min_replicas"), f"min_replicas ({low}) must not exceed max_replicas "
                 f"({high})")]
    return []
