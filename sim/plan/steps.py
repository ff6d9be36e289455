"""Steps of a schedule plan: the step grid, per-step verdicts of a run, the instances-over-time
envelope of per-step counts, and the ``scheduled`` variant that runs them.

Times are run seconds. A schedule's change points lie on a whole-minute grid of the scenario's
clock (a cron trigger has minute resolution) that is also on the control loop's grid, so that
the ``scheduled`` variant and a KEDA cron trigger switch at the very same control step.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from sim.engine import RunResult
from sim.errors import PeaksimError
from sim.model import AutoscalingSection, Scenario
from sim.units import clock_label, format_duration

Curve = tuple[tuple[float, ...], tuple[int, ...]]
"""(times_s ascending from 0, count from each time on)."""

_PERCENTILE_COLUMNS = (("p50_ms", 0.50), ("p95_ms", 0.95), ("p99_ms", 0.99))


class StepError(PeaksimError):
    """The step length does not fit the scenario's grids."""


@dataclass(frozen=True)
class StepGrid:
    """Steps ``[k x step_s, (k + 1) x step_s)`` over ``[0, duration_s)`` (the last one may be
    shorter); change points of a schedule are multiples of ``quantum_s`` after ``offset_s``."""

    step_s: float
    duration_s: float
    tick_s: float
    quantum_s: float
    offset_s: float
    start_clock_s: float | None

    @classmethod
    def of(cls, scenario: Scenario, step_s: float, interval_s: float) -> StepGrid:
        tick_s = scenario.tick_s
        clock = scenario.start_clock_s
        quantum = 60.0 if clock is not None else interval_s
        offset = (-clock) % 60.0 if clock is not None else 0.0
        for what, unit in (("tick_s", tick_s), ("autoscaling.interval_s", interval_s),
                           ("a minute", quantum)):
            if step_s <= 0 or not _multiple(step_s, unit):
                raise StepError(f"--step {format_duration(step_s)}: expected a multiple of "
                                f"{what} ({format_duration(unit)})")
        if not _multiple(quantum, interval_s) or not _multiple(offset, interval_s):
            raise StepError(f"{scenario.source}: start_clock must fall on the control grid "
                            f"(autoscaling.interval_s {interval_s:g} s) for a cron schedule")
        return cls(step_s, scenario.duration_s, tick_s, quantum, offset, clock)

    @property
    def n_steps(self) -> int:
        return int(math.ceil(self.duration_s / self.step_s - 1e-9))

    def bounds(self, k: int) -> tuple[float, float]:
        return k * self.step_s, min((k + 1) * self.step_s, self.duration_s)

    def label(self, k: int) -> str:
        return clock_label(self.bounds(k)[0], self.start_clock_s)

    def shifted(self, start_s: float, end_s: float) -> StepGrid:
        """The grid of the window ``[start_s, end_s)`` (``start_s`` on a step boundary)."""
        clock = None if self.start_clock_s is None else self.start_clock_s + start_s
        return StepGrid(self.step_s, end_s - start_s, self.tick_s, self.quantum_s,
                        (self.offset_s - start_s) % self.quantum_s, clock)

    def floor(self, t_s: float) -> float:
        return self.offset_s + math.floor((t_s - self.offset_s) / self.quantum_s + 1e-9) \
            * self.quantum_s

    def ceil(self, t_s: float) -> float:
        return self.offset_s + math.ceil((t_s - self.offset_s) / self.quantum_s - 1e-9) \
            * self.quantum_s


def _multiple(value: float, unit: float) -> bool:
    ratio = value / unit
    return abs(ratio - round(ratio)) < 1e-9


def envelope(grid: StepGrid, counts: Sequence[int], lead_s: float, delay_s: float) -> Curve:
    """Instances over time so that step k's count is ready from the step's start (started
    ``lead_s`` earlier, rounded down to the change grid) until ``delay_s`` after its end
    (rounded up); where coverages overlap the larger count wins; a segment shorter than a
    step is raised to the nearer higher neighbour (no churn below the minimum step length)."""
    spans = []
    for k, count in enumerate(counts):
        t0, t1 = grid.bounds(k)
        a = 0.0 if k == 0 else max(0.0, grid.floor(t0 - lead_s))
        b = grid.duration_s if k == len(counts) - 1 else min(grid.duration_s,
                                                             grid.ceil(t1 + delay_s))
        spans.append((a, b, count))
    points = sorted({0.0, *(a for a, _, _ in spans), *(b for _, b, _ in spans)})
    points = [p for p in points if p < grid.duration_s]
    values = [max((c for a, b, c in spans if a <= p < b), default=0) for p in points]
    times, levels = _merge(points, values)
    changed = True
    while changed and len(times) > 2:
        changed = False
        ends = [*times[1:], grid.duration_s]
        for i in range(1, len(times) - 1):
            if ends[i] - times[i] >= grid.step_s - 1e-9:
                continue
            higher = [v for v in (levels[i - 1], levels[i + 1]) if v > levels[i]]
            if higher:
                levels[i] = min(higher)
                changed = True
        times, levels = _merge(times, levels)
    return tuple(times), tuple(levels)


def _merge(times: Sequence[float], values: Sequence[int]) -> tuple[list[float], list[int]]:
    out_t: list[float] = []
    out_v: list[int] = []
    for t, v in zip(times, values, strict=True):
        if out_v and out_v[-1] == v:
            continue
        out_t.append(t)
        out_v.append(v)
    return out_t, out_v


def count_at(curve: Curve, t_s: float) -> int:
    times, counts = curve
    i = int(np.searchsorted(np.asarray(times), t_s + 1e-9, side="right")) - 1
    return counts[max(i, 0)]


def schedule_entries(curves: Mapping[str, Curve], shift_s: float = 0.0
                     ) -> list[dict[str, object]]:
    """``schedule:`` entries (``at`` in run seconds of a run starting ``shift_s`` into the
    original) that run every curve: one entry at 0 with every service, then one per change."""
    by_time: dict[float, dict[str, int]] = {0.0: {n: count_at(c, shift_s)
                                                  for n, c in curves.items()}}
    for name, (times, counts) in curves.items():
        for t, n in zip(times, counts, strict=True):
            if t > shift_s + 1e-9:
                by_time.setdefault(round(t - shift_s, 6), {})[name] = n
    return [{"at": t, "instances": dict(sorted(by_time[t].items()))} for t in sorted(by_time)]


def with_schedule(scenario: Scenario, name: str, entries: list[dict[str, object]],
                  timing: AutoscalingSection | None = None) -> Scenario:
    """A copy of ``scenario`` whose autoscaling section has (only) the ``scheduled`` variant
    ``name`` running ``entries``, with the control-loop timing of ``timing`` (default: the
    scenario's own section)."""
    section = timing or scenario.autoscaling or AutoscalingSection()
    data = {"interval_s": section.interval_s, "scrape_s": section.scrape_s,
            "window_s": section.window_s, "default": name,
            "variants": {name: {"policy": "scheduled", "schedule": entries}}}
    built = AutoscalingSection.model_validate(
        data, context={"start_clock_s": scenario.start_clock_s})
    return scenario.model_copy(update={"autoscaling": built})


def step_verdicts(result: RunResult, scenario: Scenario, grid: StepGrid,
                  names: Sequence[str]) -> dict[str, list[bool]]:
    """Per service and step: does the step hold every objective? (conservative bounds from
    per-tick figures; see ``sim.plan.schedule``)."""
    out = {}
    for name in names:
        columns = result.services[name].columns
        timeout_ms = scenario.services[name].timeout_ms
        objectives = scenario.slo[name].items()
        verdicts = []
        for k in range(grid.n_steps):
            t0, t1 = grid.bounds(k)
            lo, hi = int(round(t0 / result.tick_s)), int(round(t1 / result.tick_s))
            part = {c: columns[c][lo:hi] for c in (
                "arrivals", "completed", "timed_out", "shed", "failed", "p50_ms", "p95_ms",
                "p99_ms")}
            verdicts.append(all(_holds(o, target, part, timeout_ms) for o, target in objectives))
        out[name] = verdicts
    return out


def _holds(objective: str, target: float, part: Mapping[str, np.ndarray],
           timeout_ms: float) -> bool:
    completed = part["completed"]
    if objective == "error_rate":
        arrivals = float(part["arrivals"].sum())
        failed = float((part["timed_out"] + part["shed"] + part["failed"]).sum())
        return failed <= target * arrivals + 1e-9 if arrivals > 0 else True
    total = float(completed.sum())
    if total <= 0:
        return True
    if objective == "mean_ms":
        p99 = np.nan_to_num(part["p99_ms"], nan=0.0)
        bound = (completed * (0.99 * p99 + 0.01 * timeout_ms)).sum() / total
        return bool(bound <= target)
    q = float(objective[1:-3]) / 100.0
    above = np.ones_like(completed, dtype=float)  # share above target: at most 1 ...
    for column, level in reversed(_PERCENTILE_COLUMNS):
        values = part[column]
        ok = ~np.isnan(values) & (values <= target)
        above = np.where(ok, np.minimum(above, 1.0 - level), above)  # ... or 1 - level
    return bool((completed * above).sum() / total <= 1.0 - q + 1e-9)
