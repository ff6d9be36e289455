"""The staircase: open-model steps from light load up to saturation, bounded, with progress.

Rates grow geometrically from ``start_rps`` by ``growth`` per step (or follow explicit
``rates``). Steps are replayed ``steps_per_run`` at a time through ``measure_profile`` (one
load-generator start per run); after each run the steps are analysed and the staircase stops
at the first saturated step (throughput no longer follows the offered rate, or errors appear)
plus ``overload_steps`` more, or when a bound is reached: ``max_steps`` steps,
``max_requests`` requests in total. The first step lasts ``light_s`` (more samples for the
distribution fit), the others ``step_s``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from loadtests.calibrate.measure import (
    MeasureFn,
    StatusFn,
    Step,
    Target,
    measure_profile,
    step_bounds,
)
from loadtests.calibrate.steps import StepStats, step_stats
from sim.errors import CalibrationError

StepFn = Callable[[str, StepStats], None]
MAX_STEPS = 30
MAX_GROWTH = 4.0


@dataclass(frozen=True)
class StaircasePlan:
    """How to climb (rates in requests/s, durations in seconds)."""

    start_rps: float = 5.0
    growth: float = 1.5
    step_s: float = 5.0
    light_s: float = 10.0
    max_steps: int = 10
    steps_per_run: int = 3
    overload_steps: int = 1
    settle_s: float = 1.0
    window_s: float = 1.0
    max_requests: int = 100_000
    request_timeout_s: float = 5.0
    rates: tuple[float, ...] = field(default=())
    """Explicit step rates (then ``start_rps``/``growth``/``max_steps`` are not used)."""

    def check(self) -> None:
        """Raise ``CalibrationError`` for a plan outside its bounds."""
        if not 1 <= self.max_steps <= MAX_STEPS:
            raise CalibrationError(f"--max-steps must be 1..{MAX_STEPS}, got {self.max_steps}")
        if not 1.0 < self.growth <= MAX_GROWTH:
            raise CalibrationError(f"--growth must be in (1, {MAX_GROWTH:g}], got "
                                   f"{self.growth:g}")
        if self.settle_s >= min(self.step_s, self.light_s):
            raise CalibrationError(f"the settling time ({self.settle_s:g} s) must be shorter "
                                   f"than a step ({self.step_s:g} s)")
        if len(self.rates) > MAX_STEPS:
            raise CalibrationError(f"at most {MAX_STEPS} explicit rates, got {len(self.rates)}")

    def all_steps(self) -> list[Step]:
        """Every step the plan may run, in order."""
        rates = list(self.rates) or [self.start_rps * self.growth**i
                                     for i in range(self.max_steps)]
        return [Step(rate, self.light_s if i == 0 else self.step_s)
                for i, rate in enumerate(rates)]


@dataclass(frozen=True)
class ServiceStaircase:
    """The steps measured for one service and where the runs went."""

    service: str
    steps: tuple[StepStats, ...]
    run_dirs: tuple[Path, ...]
    stopped_because: str


def climb(
    scenario_path: Path, target: Target, service: str, plan: StaircasePlan, out_dir: Path,
    seed: int | None = None, status: StatusFn | None = None, on_step: StepFn | None = None,
    measure: MeasureFn = measure_profile,
) -> ServiceStaircase:
    """Run the staircase of ``plan`` against ``service`` of ``target``; see the module
    docstring.

    ``measure`` replays one run of steps (``measure_profile``: the load tester; tests pass a
    simulated target)."""
    plan.check()
    say = status or (lambda _text: None)
    todo = plan.all_steps()
    expected = sum(s.rate_rps * s.duration_s for s in todo)
    if expected > plan.max_requests and not plan.rates:
        # Fewer steps rather than a refusal: the bound trims the top of the geometric ladder.
        while todo and sum(s.rate_rps * s.duration_s for s in todo) > plan.max_requests:
            todo.pop()
    elif expected > plan.max_requests:
        raise CalibrationError(f"the staircase would send about {expected:,.0f} requests, more "
                               f"than --max-requests {plan.max_requests:,}")
    if not todo:
        raise CalibrationError("--max-requests leaves no step to run")
    measured: list[StepStats] = []
    run_dirs: list[Path] = []
    saturated_at: int | None = None
    reason = f"all {len(todo)} planned steps ran without saturating"
    while todo:
        chunk, todo = todo[:plan.steps_per_run], todo[plan.steps_per_run:]
        first = len(measured)
        run_dir = out_dir / f"{service}-run{len(run_dirs) + 1}"
        started = time.monotonic()

        def progress(text: str, chunk: list[Step] = chunk, first: int = first,
                     started: float = started) -> None:
            say(_progress_line(service, chunk, first, time.monotonic() - started, text))

        result = measure(scenario_path, target, service, chunk, run_dir, plan.window_s,
                         plan.request_timeout_s, seed, progress)
        run_dirs.append(result.run_dir)
        for step in step_stats(result.results, result.window_s, step_bounds(chunk),
                               plan.settle_s):
            step = _shifted(step, first)
            measured.append(step)
            if on_step is not None:
                on_step(service, step)
            if step.saturated and step.generator_ok and saturated_at is None:
                saturated_at = step.index
        if saturated_at is not None and len(measured) > saturated_at + plan.overload_steps - 1:
            reason = (f"saturated at step {saturated_at + 1} "
                      f"({measured[saturated_at].offered_rps:.1f} rps offered, "
                      f"{measured[saturated_at].served_rps:.1f} served)")
            break
    return ServiceStaircase(service, tuple(measured), tuple(run_dirs), reason)


def _shifted(step: StepStats, first: int) -> StepStats:
    return replace(step, index=step.index + first)


def _progress_line(service: str, chunk: list[Step], first: int, elapsed_s: float,
                   text: str) -> str:
    """``browse: step 3 at 90.0 rps (4 s of 5 s)``, or the runner's own text before t=0."""
    run_s = elapsed_s - 1.0  # the replay's start lead (``loadtests.replay.START_LEAD_S``)
    for i, ((start, end), step) in enumerate(zip(step_bounds(chunk), chunk, strict=True)):
        if start <= run_s < end:
            return (f"{service}: step {first + i + 1} at {step.rate_rps:,.1f} rps "
                    f"({math.floor(run_s - start):.0f} s of {step.duration_s:g} s)")
    return f"{service}: {text}"
