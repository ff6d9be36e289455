"""``target_tracking``: the Kubernetes Horizontal Pod Autoscaler, one sync per ``decide`` call.

A faithful port of the upstream controller (``pkg/controller/podautoscaler``:
``replica_calculator.go`` and ``horizontal.go``), with instances in place of pods:

1. ``currentReplicas`` = ready + booting instances. If it is 0 (and min > 0) scaling is off; if
   it is above ``max_replicas`` or below ``min_replicas`` the desired count is that bound.
2. The replica calculator proposes a count from the metric (see ``_propose``): booting
   instances are *unready* (for utilization, so are instances younger than the CPU
   initialization period that have been ready for less than one metric window); ready
   instances without a sample are *missing*. ``ratio = mean(metric) / target`` over the
   others; within the tolerance nothing changes, else ``ceil(ratio x counted)``. With missing
   or (on a scale-up) unready instances the ratio is recomputed counting missing ones at
   100% of target (max(100%, target) for utilization) on a scale-down and 0 on a scale-up,
   and unready ones at 0 on a scale-up; if the new ratio falls in the tolerance or flips the
   direction, nothing changes. Utilization is truncated to whole percent as upstream does.
3. Normalization. Without ``behavior``: the highest recommendation of the last
   ``downscale_stabilization_s`` wins, then the result is clamped to
   ``[min, min(max, max(2 x current, 4))]``. With ``behavior``: the recommendation is
   clamped between the lowest one of the scale-up window and the highest one of the
   scale-down window, then limited by the scaling policies over the replicas changed in each
   policy's period (``selectPolicy`` Max: the largest allowed change, Min: the smallest,
   Disabled: none), then by ``[min, max]``.

Effective bounds are the HPA's ``[min_replicas, max_replicas]`` intersected with the service's
``instances.min/max`` (so that the scale events the HPA records are the ones the engine makes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

from sim.policies.autoscaling.base import (
    INSTANCE_METRICS,
    AutoscalingPolicy,
    Observation,
    PolicyContext,
    ServiceView,
    only_changes,
)
from sim.policies.autoscaling.hpa_config import HpaConfig, HpaSettings, Rules, TargetTrackingParams

_INT32_MAX = 2**31 - 1


@dataclass
class _State:
    """What the upstream controller remembers per HPA: recommendations and scale events."""

    recommendations: list[tuple[float, int]] = field(default_factory=list)
    up_events: list[tuple[float, int]] = field(default_factory=list)
    down_events: list[tuple[float, int]] = field(default_factory=list)


class HpaController:
    """The HPA of one service. ``sync`` is one reconcile; it is pure apart from its state."""

    def __init__(self, config: HpaConfig, window_s: float) -> None:
        self.config = config
        self.window_s = window_s
        self.state: _State | None = None
        self.reason = ""
        self._clipped = ""
        """Why the last sync's desired count differs from its proposal (the limit that won)."""

    def sync(self, t_s: float, sv: ServiceView, floor: int = 0) -> int:
        """Desired instances of ``sv`` at ``t_s``.

        ``floor`` is an extra recommendation (a schedule or a forecast) combined with the
        metric's proposal by max, as the HPA combines several metrics (KEDA's cron and
        predictive scalers work this way): it goes through the same stabilization and rate
        limits, so a raised floor is reached at the HPA's scale-up rate and, once lowered,
        released only after the scale-down window.
        """
        cfg = self.config
        current = sv.current
        high = min(sv.max, cfg.max_replicas if cfg.max_replicas is not None else sv.max)
        low = min(max(cfg.min_replicas, sv.min), high)
        if self.state is None:
            # recordInitialRecommendation: stamped a moment before this sync's own proposal,
            # as on a real clock (so a 0 s window never holds it).
            self.state = _State(recommendations=[(t_s - 1e-6, current)])
        if current == 0 and low != 0 and floor == 0:
            self.reason = "scaling is disabled since the instance count is zero"
            return current
        if current > high:
            desired, self.reason = high, f"current {current} above max {high}"
        elif current < low:
            desired, self.reason = low, f"current {current} below min {low}"
        else:
            metric_proposal = self._propose(sv)
            if metric_proposal is None and floor <= current:
                return current  # no usable metric: the controller skips this sync
            proposal = max(0, min(max(metric_proposal or 0, floor), _INT32_MAX))
            if floor and floor >= (metric_proposal or 0):
                self.reason += f"; floor {floor}"
            self._clipped = ""
            if cfg.scale_up is None or cfg.scale_down is None:
                desired = self._normalize_legacy(t_s, current, proposal, low, high)
            else:
                desired = self._normalize_behavior(t_s, current, proposal, low, high)
            self.reason = f"{self.reason}; proposal {proposal} -> {desired}"
            if desired != proposal and self._clipped:
                self.reason += f" ({self._clipped})"
        if desired != current and cfg.scale_up is not None:
            self._store_event(t_s, current, desired)
        return desired

    # ------------------------------------------------------------------ replica calculator
    def propose(self, sv: ServiceView) -> int | None:
        """The replica calculator's proposal for ``sv`` from the metric alone (None: no usable
        sample); no stabilization, no rate limit, no state. ``reason`` says how."""
        return self._propose(sv)

    def _propose(self, sv: ServiceView) -> int | None:
        cfg = self.config
        if cfg.metric in INSTANCE_METRICS:
            return self._pods_metric(sv)
        value = sv.metrics.get(cfg.metric)
        if value is None:
            self.reason = f"{cfg.metric} missing"
            return None
        if cfg.metric == "arrival_rps":  # External metric with an AverageValue target
            ratio = value / (cfg.target * sv.current) if sv.current else math.inf
            self.reason = f"arrival_rps {value:.4g} / ({cfg.target:g} x {sv.current})"
            if self._within(ratio):
                return sv.current
            return ceil_replicas(value / cfg.target)
        # Object metric (a latency percentile) with a Value target
        ratio = value / cfg.target
        self.reason = f"{cfg.metric} {value:.4g} / target {cfg.target:g} = {ratio:.3f}"
        if sv.current == 0:
            return ceil_replicas(ratio)
        if self._within(ratio):
            return sv.current
        return ceil_replicas(ratio * sv.ready)

    def _pods_metric(self, sv: ServiceView) -> int | None:
        cfg = self.config
        is_cpu = cfg.metric == "utilization"
        metrics: list[float] = []
        unready = missing = 0
        for inst in sv.instances:
            if not inst.ready:
                unready += 1
            elif inst.metric is None:
                missing += 1
            elif (
                is_cpu
                and inst.age_s < cfg.cpu_initialization_s
                and inst.age_s - sv.boot_s < self.window_s
            ):
                unready += 1  # its metric window still covers the boot
            else:
                metrics.append(inst.metric)
        if not metrics:
            self.reason = f"no {cfg.metric} sample from a ready instance"
            return None
        ready_count = len(metrics)
        ratio = self._ratio(metrics)
        mean = sum(metrics) / ready_count
        if is_cpu:  # the ratio uses whole percent, as upstream: show the value it used
            used = math.floor(round(mean * 100.0, 9))
            self.reason = (f"utilization {used}% (mean {100 * mean:.1f}%, truncated to whole "
                           f"percent) / target {round(cfg.target * 100.0, 9):g}% = {ratio:.3f}"
                           f" over {ready_count} ready")
        else:
            self.reason = (f"{cfg.metric} {mean:.4g} / target {cfg.target:g} = {ratio:.3f}"
                           f" over {ready_count} ready")
        scale_up_with_unready = unready > 0 and ratio > 1.0
        if not scale_up_with_unready and missing == 0:
            if self._within(ratio):
                return sv.current
            return ceil_replicas(ratio * ready_count)
        if missing:
            if ratio < 1.0:
                fill = max(1.0, cfg.target) if is_cpu else cfg.target
                metrics += [fill] * missing
            elif ratio > 1.0:
                metrics += [0.0] * missing
        if scale_up_with_unready:
            metrics += [0.0] * unready
        new_ratio = self._ratio(metrics)
        self.reason += f"; {missing} missing, {unready} unready -> {new_ratio:.3f}"
        if (
            self._within(new_ratio)
            or (ratio < 1.0 < new_ratio)
            or (ratio > 1.0 > new_ratio)
        ):
            return sv.current
        proposal = ceil_replicas(new_ratio * len(metrics))
        if (new_ratio < 1.0 and proposal > sv.current) or (
            new_ratio > 1.0 and proposal < sv.current
        ):
            return sv.current
        return proposal

    def _ratio(self, metrics: list[float]) -> float:
        mean = sum(metrics) / len(metrics)
        if self.config.metric == "utilization":
            # Upstream: currentUtilization = int32(usage * 100 / request), whole percent.
            target_pct = round(self.config.target * 100.0, 9)
            return math.floor(round(mean * 100.0, 9)) / target_pct
        return mean / self.config.target

    def _within(self, ratio: float) -> bool:
        cfg = self.config
        return 1.0 - cfg.tolerance_down <= ratio <= 1.0 + cfg.tolerance_up

    # ------------------------------------------------------------------ normalization
    def _normalize_legacy(
        self, t_s: float, current: int, proposal: int, low: int, high: int
    ) -> int:
        assert self.state is not None
        cutoff = t_s - self.config.downscale_stabilization_s
        recs = [r for r in self.state.recommendations if r[0] >= cutoff]  # "not Before(cutoff)"
        stabilized = max([proposal] + [n for _, n in recs])
        self.state.recommendations = recs + [(t_s, proposal)]
        if stabilized > proposal:
            self._clipped = (f"the highest recommendation of the last "
                             f"{self.config.downscale_stabilization_s:g} s, downscale "
                             f"stabilization")
        limit = max(2 * current, 4)
        top = min(high, limit)
        if stabilized < low:
            self._clipped = f"min {low}"
            return low
        if stabilized > top:
            self._clipped = (f"max {high}" if top == high else
                             f"scale-up limit max(2 x {current}, 4) = {limit} per sync")
        return min(stabilized, top)

    def _normalize_behavior(
        self, t_s: float, current: int, proposal: int, low: int, high: int
    ) -> int:
        assert self.state is not None and self.config.scale_up and self.config.scale_down
        up, down = self.config.scale_up, self.config.scale_down
        up_rec = down_rec = proposal
        for ts, n in self.state.recommendations:
            if ts > t_s - up.window_s:
                up_rec = min(up_rec, n)
            if ts > t_s - down.window_s:
                down_rec = max(down_rec, n)
        stabilized = min(max(current, up_rec), down_rec)
        oldest = t_s - max(up.window_s, down.window_s)
        self.state.recommendations = [
            r for r in self.state.recommendations if r[0] >= oldest
        ] + [(t_s, proposal)]
        if stabilized > proposal:
            self._clipped = f"scale-down stabilization window {down.window_s:g} s"
        elif stabilized < proposal:
            self._clipped = f"scale-up stabilization window {up.window_s:g} s"
        if stabilized > current:
            limit = max(self._up_limit(t_s, current, up), current)
            desired = min(stabilized, high, limit)
            if desired < stabilized:
                self._clipped = (f"scale-up policies ({_rules_text(up)}) allow {limit}"
                                 if desired == limit else f"max {high}")
            return desired
        if stabilized < current:
            limit = min(self._down_limit(t_s, current, down), current)
            desired = max(stabilized, low, limit)
            if desired > stabilized:
                self._clipped = (f"scale-down policies ({_rules_text(down)}) allow {limit}"
                                 if desired == limit else f"min {low}")
            return desired
        return stabilized

    def _changed(self, t_s: float, period_s: float) -> tuple[int, int]:
        assert self.state is not None
        added = sum(n for ts, n in self.state.up_events if ts > t_s - period_s)
        deleted = sum(n for ts, n in self.state.down_events if ts > t_s - period_s)
        return added, deleted

    def _up_limit(self, t_s: float, current: int, rules: Rules) -> int:
        if rules.select == "Disabled":
            return current
        proposals = []
        for kind, value, period_s in rules.policies:
            added, deleted = self._changed(t_s, period_s)
            start = current - added + deleted
            if kind == "Pods":
                proposals.append(start + value)
            else:  # rounded up, or a small percentage could never add an instance
                proposals.append(math.ceil(start * (1 + value / 100)))
        return min(proposals) if rules.select == "Min" else max(proposals)

    def _down_limit(self, t_s: float, current: int, rules: Rules) -> int:
        if rules.select == "Disabled":
            return current
        proposals = []
        for kind, value, period_s in rules.policies:
            added, deleted = self._changed(t_s, period_s)
            start = current - added + deleted
            if kind == "Pods":
                proposals.append(start - value)
            else:  # truncated toward zero, like Go's int32(float64)
                proposals.append(int(start * (1 - value / 100)))
        # Max (the largest change) keeps the fewest instances; Min keeps the most.
        return max(proposals) if rules.select == "Min" else min(proposals)

    def _store_event(self, t_s: float, current: int, desired: int) -> None:
        assert self.state is not None and self.config.scale_up and self.config.scale_down
        if desired > current:
            keep = t_s - self.config.scale_up.longest_period_s
            self.state.up_events = [e for e in self.state.up_events if e[0] > keep]
            self.state.up_events.append((t_s, desired - current))
        else:
            keep = t_s - self.config.scale_down.longest_period_s
            self.state.down_events = [e for e in self.state.down_events if e[0] > keep]
            self.state.down_events.append((t_s, current - desired))


def ceil_replicas(x: float) -> int:
    """ceil, capped at int32 like upstream's replica counts."""
    if math.isinf(x) or x > _INT32_MAX:
        return _INT32_MAX
    return math.ceil(x)


class HpaGroup:
    """One ``HpaController`` per service of an ``HpaSettings`` block (services it enables)."""

    def __init__(self, settings: HpaSettings, context: PolicyContext) -> None:
        self.controllers = {
            name: HpaController(settings.resolve(name), context.window_s)
            for name in context.services
            if settings.enabled(name)
        }

    def instance_metric(self, service: str) -> str | None:
        controller = self.controllers.get(service)
        if controller is None or controller.config.metric not in INSTANCE_METRICS:
            return None
        return controller.config.metric

    def sync(self, obs: Observation, floors: dict[str, int] | None = None) -> dict[str, int]:
        """Desired counts of the services whose count changes (one sync of every HPA)."""
        floors = floors or {}
        desired = {
            name: controller.sync(obs.t_s, obs.services[name], floors.get(name, 0))
            for name, controller in self.controllers.items()
            if name in obs.services
        }
        return only_changes(desired, obs)


class TargetTrackingPolicy(AutoscalingPolicy):
    """``target_tracking``: the Kubernetes HPA with its defaults, on every service."""

    name: ClassVar[str] = "target_tracking"
    Params: ClassVar[type[TargetTrackingParams]] = TargetTrackingParams

    def __init__(self, params: TargetTrackingParams, context: PolicyContext) -> None:
        super().__init__(params, context)
        self.hpa = HpaGroup(params, context)

    def instance_metric(self, service: str) -> str | None:
        return self.hpa.instance_metric(service)

    def decide(self, obs: Observation) -> dict[str, int]:
        desired = self.hpa.sync(obs)
        for name, controller in self.hpa.controllers.items():
            self._reasons[name] = f"hpa: {controller.reason}"
        return desired


def _rules_text(rules: Rules) -> str:
    """``"Pods 4 per 15 s or Percent 100 per 15 s, select Max"``."""
    listed = " or ".join(f"{kind} {value:g} per {period_s:g} s"
                         for kind, value, period_s in rules.policies)
    return f"{listed}, select {rules.select}"
