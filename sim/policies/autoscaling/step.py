"""``step``: AWS-style step scaling on alarm thresholds, with warm-up and cooldown.

Each service has up to two alarms on one metric. Every ``decide`` call is one evaluation
period: the alarm fires when at least ``datapoints`` of the last ``evaluation_periods`` values
breach its threshold (a missing value does not breach). A firing alarm runs its policy at
every evaluation while it stays in alarm; the step whose bounds contain the breach size
(``metric - threshold``) gives the adjustment. Bounds follow AWS: above the threshold the lower
bound is inclusive and the upper exclusive; below it the lower is exclusive, the upper
inclusive. Adjustments are ``change`` (instances), ``percent`` of the current capacity (AWS
rounding: above 1 rounded down, between 0 and 1 -> 1, between -1 and 0 -> -1, below -1 rounded
toward zero; at least ``min_adjustment_magnitude``) or ``exact`` (the new capacity).

Warm-up (EC2 semantics): an instance younger than ``warmup_s`` (booting included) does not
contribute to a per-instance metric; on scale-out it is not counted in the base capacity, so
repeated breaches within the same step give one scaling activity, and a larger step adds only
the difference; scale-in waits until no instance is warming up. Cooldown: no scale-in within
``cooldown_s`` of the previous scaling activity; scale-out is never blocked by it. Defaults:
``cooldown_s`` 300 (the EC2 default cooldown) and ``warmup_s`` = ``cooldown_s`` (AWS falls back
to the cooldown when no warm-up is set); one evaluation period.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_validator

from sim.policies.autoscaling.base import (
    INSTANCE_METRICS,
    AutoscalingPolicy,
    Observation,
    PolicyContext,
    ServiceView,
    only_changes,
)
from sim.policies.autoscaling.hpa_config import MetricName, NonEmpty
from sim.schema import Duration, Loc, Strict, field_errors

Problem = tuple[Loc, str]


class StepAdjustment(Strict):
    """Adjust by ``change`` when ``lower <= metric - threshold < upper`` (None: unbounded)."""

    lower: float | None = None
    upper: float | None = None
    change: float

    @model_validator(mode="after")
    def _check(self) -> StepAdjustment:
        if self.lower is not None and self.upper is not None and self.lower >= self.upper:
            raise field_errors([(("upper",), f"upper ({self.upper:g}) must be above lower "
                                 f"({self.lower:g})")])
        return self


class Alarm(Strict):
    """A threshold alarm and the step adjustments it runs while in alarm."""

    threshold: float
    comparison: Literal[">=", ">", "<=", "<"] | None = None
    evaluation_periods: int = Field(default=1, ge=1, le=1000)
    datapoints: int | None = Field(default=None, ge=1)
    adjustment: Literal["change", "percent", "exact"] = "change"
    min_adjustment_magnitude: int | None = Field(default=None, ge=1)
    steps: Annotated[tuple[StepAdjustment, ...], NonEmpty] | None = None

    @model_validator(mode="after")
    def _check(self) -> Alarm:
        problems: list[Problem] = []
        if self.datapoints is not None and self.datapoints > self.evaluation_periods:
            problems.append((("datapoints",), f"datapoints ({self.datapoints}) must not exceed "
                             f"evaluation_periods ({self.evaluation_periods})"))
        if self.min_adjustment_magnitude is not None and self.adjustment != "percent":
            problems.append((("min_adjustment_magnitude",), "only applies to adjustment: percent"))
        steps = self.steps or ()
        for i, (a, b) in enumerate(zip(steps, steps[1:], strict=False)):
            if a.upper is None or b.lower is None or a.upper != b.lower:
                problems.append((("steps", i + 1), "steps must be sorted by bounds without gaps "
                                 "or overlaps: each step's lower equals the previous one's upper"))
        if self.adjustment != "percent":
            problems += [
                (("steps", i, "change"), f"adjustment {self.adjustment!r} needs a whole number")
                for i, step in enumerate(steps)
                if step.change != int(step.change)
            ]
        if problems:
            raise field_errors(problems)
        return self

    def direction_problems(self, out: bool, where: Loc) -> list[Problem]:
        """What does not fit a scale-out (``out``) or scale-in alarm, located under ``where``."""
        word = "scale_out" if out else "scale_in"
        problems: list[Problem] = []
        if self.comparison is not None and (self.comparison in (">=", ">")) != out:
            problems.append(((*where, "comparison"),
                             f"{word} needs comparison {'>= or >' if out else '<= or <'}"))
        for i, step in enumerate(self.steps or ()):
            at = (*where, "steps", i)
            if out and step.lower is not None and step.lower < 0:
                problems.append(((*at, "lower"), "scale_out bounds are breach sizes >= 0 "
                                 "(metric - threshold)"))
            if not out and step.upper is not None and step.upper > 0:
                problems.append(((*at, "upper"), "scale_in bounds are breach sizes <= 0 "
                                 "(metric - threshold)"))
            wrong = step.change < 0 if out else step.change > 0
            if self.adjustment != "exact" and wrong:
                problems.append(((*at, "change"), f"{word} changes must be "
                                 f"{'> 0' if out else '< 0'}"))
            if self.adjustment == "exact" and step.change < 0:
                problems.append(((*at, "change"), "an exact capacity must be >= 0"))
        return problems


class StepOverride(Strict):
    """Per-service settings; unset fields inherit the variant's."""

    enabled: bool = True
    metric: MetricName | None = None
    scale_out: Alarm | None = None
    scale_in: Alarm | None = None
    warmup_s: Duration | None = None
    cooldown_s: Duration | None = None

    @model_validator(mode="after")
    def _check(self) -> StepOverride:
        problems = _alarm_problems(self.scale_out, self.scale_in)
        if self.metric is not None and self.scale_out is None and self.scale_in is None:
            problems.append((("metric",), "a service with its own metric needs its own "
                             "scale_out and/or scale_in thresholds"))
        if problems:
            raise field_errors(problems)
        return self


class StepParams(Strict):
    """``policy: step``: step scaling of every service on alarm thresholds."""

    policy: Literal["step"]
    metric: MetricName = "utilization"
    scale_out: Alarm | None = None
    scale_in: Alarm | None = None
    warmup_s: Duration | None = None
    cooldown_s: Duration = 300.0
    services: dict[str, StepOverride] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> StepParams:
        if self.scale_out is None and self.scale_in is None:
            raise ValueError("give scale_out, scale_in or both (alarm thresholds and steps)")
        problems = _alarm_problems(self.scale_out, self.scale_in)
        if problems:
            raise field_errors(problems)
        return self


def _alarm_problems(out: Alarm | None, in_: Alarm | None) -> list[Problem]:
    problems: list[Problem] = []
    if out is not None:
        problems += out.direction_problems(True, ("scale_out",))
    if in_ is not None:
        problems += in_.direction_problems(False, ("scale_in",))
    if out is not None and in_ is not None and in_.threshold >= out.threshold:
        problems.append((("scale_in", "threshold"), f"scale_in threshold ({in_.threshold:g}) "
                         f"must be below the scale_out threshold ({out.threshold:g})"))
    return problems


@dataclass
class _Config:
    metric: str
    scale_out: Alarm | None
    scale_in: Alarm | None
    warmup_s: float
    cooldown_s: float


class _StepState:
    def __init__(self, config: _Config) -> None:
        self.config = config
        self.out_hist: deque[bool] = deque(maxlen=_periods(config.scale_out))
        self.in_hist: deque[bool] = deque(maxlen=_periods(config.scale_in))
        self.last_activity_s = -math.inf


def _periods(alarm: Alarm | None) -> int:
    return alarm.evaluation_periods if alarm else 1


class StepPolicy(AutoscalingPolicy):
    """Step scaling per service (see the module docstring for the exact semantics)."""

    name: ClassVar[str] = "step"
    Params: ClassVar[type[StepParams]] = StepParams

    def __init__(self, params: StepParams, context: PolicyContext) -> None:
        super().__init__(params, context)
        self.states: dict[str, _StepState] = {}
        for name in context.services:
            o = params.services.get(name) or StepOverride()
            if not o.enabled:
                continue
            cooldown = o.cooldown_s if o.cooldown_s is not None else params.cooldown_s
            warmup = o.warmup_s if o.warmup_s is not None else params.warmup_s
            own = o.metric is not None
            self.states[name] = _StepState(_Config(
                metric=o.metric or params.metric,
                scale_out=o.scale_out or (None if own else params.scale_out),
                scale_in=o.scale_in or (None if own else params.scale_in),
                warmup_s=cooldown if warmup is None else warmup,
                cooldown_s=cooldown,
            ))

    def instance_metric(self, service: str) -> str | None:
        state = self.states.get(service)
        if state is None or state.config.metric not in INSTANCE_METRICS:
            return None
        return state.config.metric

    def decide(self, obs: Observation) -> dict[str, int]:
        desired = {
            name: self._evaluate(obs.t_s, obs.services[name], state)
            for name, state in self.states.items()
            if name in obs.services
        }
        return only_changes(desired, obs)

    def _evaluate(self, t_s: float, sv: ServiceView, state: _StepState) -> int:
        cfg = state.config
        value = _metric_value(sv, cfg.metric, cfg.warmup_s)
        warming = sum(1 for inst in sv.instances if inst.age_s < cfg.warmup_s)
        state.out_hist.append(_breaches(value, cfg.scale_out, out=True))
        state.in_hist.append(_breaches(value, cfg.scale_in, out=False))
        shown = "missing" if value is None else f"{value:.4g}"
        reason = f"step: {cfg.metric} {shown}"
        current = sv.current
        if cfg.scale_out and _firing(state.out_hist, cfg.scale_out):
            assert value is not None
            change = _step_change(cfg.scale_out, value - cfg.scale_out.threshold, out=True)
            base = current - warming
            if change is not None:
                target = _apply(cfg.scale_out, base, change)
                reason += f" >= {cfg.scale_out.threshold:g}: base {base} ({warming} warming)"
                if target > current:
                    state.last_activity_s = t_s
                    self._reasons[sv.name] = f"{reason} -> {target}"
                    return target
        elif cfg.scale_in and _firing(state.in_hist, cfg.scale_in):
            assert value is not None
            change = _step_change(cfg.scale_in, value - cfg.scale_in.threshold, out=False)
            cooling = t_s - state.last_activity_s < cfg.cooldown_s
            if change is not None and warming == 0 and not cooling:
                target = _apply(cfg.scale_in, current, change)
                if target < current:
                    state.last_activity_s = t_s
                    self._reasons[sv.name] = f"{reason} <= {cfg.scale_in.threshold:g} -> {target}"
                    return target
        self._reasons[sv.name] = reason
        return current


def _metric_value(sv: ServiceView, metric: str, warmup_s: float) -> float | None:
    if metric not in INSTANCE_METRICS:
        return sv.metrics.get(metric)
    values = [
        inst.metric
        for inst in sv.instances
        if inst.ready and inst.age_s >= warmup_s and inst.metric is not None
    ]
    return sum(values) / len(values) if values else None


def _breaches(value: float | None, alarm: Alarm | None, out: bool) -> bool:
    if value is None or alarm is None:
        return False
    op = alarm.comparison or (">=" if out else "<=")
    return {
        ">=": value >= alarm.threshold,
        ">": value > alarm.threshold,
        "<=": value <= alarm.threshold,
        "<": value < alarm.threshold,
    }[op]


def _firing(history: deque[bool], alarm: Alarm) -> bool:
    needed = alarm.datapoints or alarm.evaluation_periods
    return sum(history) >= needed


def _step_change(alarm: Alarm, breach: float, out: bool) -> float | None:
    steps = alarm.steps or (StepAdjustment(lower=0.0, change=1.0) if out
                            else StepAdjustment(upper=0.0, change=-1.0),)
    for step in steps:
        low = -math.inf if step.lower is None else step.lower
        high = math.inf if step.upper is None else step.upper
        inside = low <= breach < high if out else low < breach <= high
        if inside:
            return step.change
    return None


def _apply(alarm: Alarm, base: int, change: float) -> int:
    """New capacity from ``base`` (AWS adjustment types and percent rounding)."""
    if alarm.adjustment == "exact":
        return int(change)
    if alarm.adjustment == "change":
        return max(0, base + int(change))
    raw = base * change / 100.0
    if raw > 1:
        delta = math.floor(raw)
    elif raw > 0:
        delta = 1
    elif raw > -1:
        delta = -1 if raw < 0 else 0
    else:
        delta = math.ceil(raw)
    magnitude = alarm.min_adjustment_magnitude
    if magnitude is not None and abs(delta) < magnitude:
        delta = magnitude if change > 0 else -magnitude
    return max(0, base + delta)
