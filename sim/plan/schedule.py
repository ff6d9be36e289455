"""``peaksim plan --schedule``: the cheapest instances-over-time schedule that holds the SLO.

Time-varying staffing in the spirit of the iterative staffing algorithm (ISA; Feldman,
Mandelbaum, Massey & Whitt 2008, "Staffing of time-varying queues to achieve time-stable
performance"): the run is cut into steps of ``step_s``; per service and step,

1. a first guess from the stationary queueing model at the step's highest rate (SIPP-max:
   Erlang C with the Allen-Cunneen correction, ``sim.plan.estimate``);
2. simulate the schedule and judge **each step** against the service's objectives
   (``sim.plan.steps``); per (service, step) gallop and bisect between the largest count seen
   to miss and the smallest seen to hold, all steps and services in the same simulation;
3. iterate to convergence: the smallest counts found together are simulated jointly (a step's
   backlog spills into the next); any step that misses is raised by one until every step holds;
4. headroom: ``ceil(minimum x (1 + headroom))``;
5. each step's count is *ready* from the step's start (started ``boot_s`` + ``margin_s``
   earlier, on the whole-minute grid so that a cron trigger can carry it), kept until
   ``scale_down_delay_s`` after the step's end; segments shorter than ``step_s`` are filled
   (a dip shorter than the minimum step length is not worth the churn);
6. the result is confirmed by simulating the whole run under the ``scheduled`` variant.

A step holds when every objective holds over the step's requests. Per-step percentiles are
bounded from the per-tick p50/p95/p99 (a tick whose p99 is within the target has at most 1%
above it, ...), error rates from the attempts that failed: both conservative, so steps that
hold imply a whole run that holds (a fraction above the target in every step bounds the
whole run's). Services do not interact, so every simulation runs only the services not yet
settled, and only the span of steps still searched (plus one step of warm-up).

Every simulation goes through ``simulate_schedule`` (one entry point, like the rest of plan).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from sim.engine import RunResult, simulate
from sim.model import AutoscalingSection, Scenario, TrafficModel, sampler_for
from sim.plan.estimate import ServiceModel, estimate_instances
from sim.plan.planner import PlanError
from sim.plan.steps import (
    StepGrid,
    envelope,
    schedule_entries,
    step_verdicts,
    with_schedule,
)
from sim.plan.window import shifted_scenario

DEFAULT_STEP_S = 300.0
MAX_JOINT_ROUNDS = 8
"""Joint re-simulations (step 3) before the planner gives up on a service."""
MAX_CONFIRM_ROUNDS = 3
"""Whole-run confirmations (a step that misses there is raised by one and the run repeated)."""
VARIANT = "planned-schedule"
"""Name of the variant the planner simulates (the user names the written one)."""


@dataclass(frozen=True)
class ScheduleOptions:
    """How the schedule is planned. Durations in run seconds."""

    step_s: float = DEFAULT_STEP_S
    headroom: float = 0.2
    margin_s: float = 0.0
    """Extra lead before a step on top of the boot time."""
    scale_down_delay_s: float = 0.0
    """How long a count is kept after the step that needed it."""
    seed: int | None = None


@dataclass(frozen=True)
class ServiceSchedule:
    """The planned counts of one service: per step the minimum that held, the count with the
    headroom, and the resulting instances-over-time (``times_s`` ascending from 0,
    ``counts`` the count from each time on)."""

    service: str
    minimum: tuple[int, ...]
    planned: tuple[int, ...]
    times_s: tuple[float, ...]
    counts: tuple[int, ...]
    held: bool
    note: str = ""


@dataclass(frozen=True)
class SchedulePlan:
    """A whole schedule plan, its confirming run and what it cost to find."""

    scenario: Scenario
    grid: StepGrid
    options: ScheduleOptions
    services: dict[str, ServiceSchedule]
    entries: list[dict[str, object]]
    """The ``schedule:`` of the ``scheduled`` variant (``at`` in run seconds)."""
    confirm: RunResult
    simulations: int
    wall_s: float
    skipped: dict[str, str] = field(default_factory=dict)
    """Services not planned (no SLO, no traffic) and why."""
    infeasible: dict[str, str] = field(default_factory=dict)
    """Services whose SLO no count can hold (an objective the service time alone breaks)."""

    @property
    def held(self) -> bool:
        return not self.infeasible and bool(self.confirm.summary()["slo_met"]) and all(
            s.held for s in self.services.values())


def simulate_schedule(
    scenario: Scenario, entries: list[dict[str, object]], seed: int | None,
    timing: AutoscalingSection | None = None,
) -> RunResult:
    """Simulate ``scenario`` under a ``scheduled`` variant with ``entries``, on the control
    loop of ``timing`` (default: the scenario's own) -- the one entry point of the schedule
    planner into the engine."""
    return simulate(with_schedule(scenario, VARIANT, entries, timing), variant=VARIANT,
                    seed=seed)


@dataclass
class _Search:
    """Bracket of one (service, step): ``lo`` missed (or below the floor), ``hi`` held."""

    lo: int
    hi: int | None
    candidate: int
    cap: int
    stride: int = 1
    done: bool = False
    before: int | None = None
    """The previous step's count in the trial that set ``hi`` (its backlog came from it)."""

    def advance(self, count: int, held: bool, before: int | None) -> None:
        if held:
            if self.hi is None or count <= self.hi:
                self.hi, self.before = count, before
        else:
            self.lo = max(self.lo, count)
        if self.hi is not None and self.hi - self.lo <= 1:
            self.done = True
        elif self.hi is None:
            if count >= self.cap:
                self.done = True  # not held even at the cap
            else:
                self.candidate = min(self.cap, count + self.stride)
                self.stride *= 2
        elif held and self.hi - self.stride > self.lo:
            self.candidate = self.hi - self.stride
            self.stride *= 2
        else:
            self.candidate = (self.lo + self.hi) // 2


class SchedulePlanner:
    """Plans one scenario (see the module docstring); ``plan()`` runs it."""

    def __init__(self, scenario: Scenario, options: ScheduleOptions,
                 on_trial: Callable[[str], None] | None = None) -> None:
        if not (0.0 <= options.headroom <= 10.0):
            raise PlanError(f"expected 0 <= headroom <= 10, got {options.headroom:g}")
        if options.margin_s < 0 or options.scale_down_delay_s < 0:
            raise PlanError("expected --margin and --scale-down-delay >= 0 s")
        self.scenario = scenario
        self.options = options
        self.on_trial = on_trial
        self.traffic = TrafficModel(scenario)
        if self.traffic.time_scale != 1.0:
            raise PlanError("a schedule is planned at the scenario's own time scale")
        interval_s = scenario.autoscaling.interval_s if scenario.autoscaling else 15.0
        self.grid = StepGrid.of(scenario, options.step_s, interval_s)
        self.simulations = 0
        self.skipped: dict[str, str] = {}
        self.infeasible: dict[str, str] = {}
        self.services = self._plannable()

    # ------------------------------------------------------------------ setup
    def _plannable(self) -> list[str]:
        names = []
        for name in self.scenario.services:
            if name not in self.scenario.slo:
                self.skipped[name] = "no SLO (no entry under 'slo'): nothing to plan against"
            elif self.traffic.peak(name)[0] <= 0:
                self.skipped[name] = "no traffic in the run"
            else:
                spec = self.scenario.services[name]
                model = ServiceModel.of(spec, sampler_for(spec.service_time,
                                                          self.scenario.base_dir))
                peak = estimate_instances(self.scenario.slo[name], self.traffic.peak(name)[0],
                                          model)
                if peak.instances is None:
                    self.infeasible[name] = peak.reason
                else:
                    names.append(name)
        if not names:
            reasons = "; ".join(f"{k}: {v}" for k, v in {**self.skipped,
                                                          **self.infeasible}.items())
            raise PlanError(f"no service of {self.scenario.name} can be planned: {reasons}")
        return names

    def _first_guess(self, name: str) -> list[int]:
        """SIPP-max: the stationary estimate at each step's highest rate (1 s grid)."""
        spec = self.scenario.services[name]
        model = ServiceModel.of(spec, sampler_for(spec.service_time, self.scenario.base_dir))
        objectives = self.scenario.slo[name]
        guesses = []
        for k in range(self.grid.n_steps):
            t0, t1 = self.grid.bounds(k)
            grid = np.arange(t0, t1, 1.0)
            rate = float(self.traffic.rates_rps(name, grid).max()) if grid.size else 0.0
            estimate = estimate_instances(objectives, rate, model)
            assert estimate.instances is not None  # feasible at the peak: at any rate
            guesses.append(self._clamp(name, estimate.instances))
        return guesses

    def _floor(self, name: str) -> int:
        return max(1, self.scenario.services[name].instances.min)

    def _clamp(self, name: str, count: int) -> int:
        spec = self.scenario.services[name]
        return max(self._floor(name), min(count, spec.instances.max))

    # ------------------------------------------------------------------ the search
    def plan(self) -> SchedulePlan:
        started = time.perf_counter()
        searches = {
            name: [_Search(lo=self._floor(name) - 1, hi=None, candidate=g,
                           cap=self.scenario.services[name].instances.max)
                   for g in self._first_guess(name)]
            for name in self.services
        }
        minimum = self._search(searches)
        minimum = self._joint(minimum, searches)
        planned = {n: [self._clamp(n, math.ceil(c * (1 + self.options.headroom) - 1e-9))
                       for c in counts] for n, counts in minimum.items()}
        for _ in range(MAX_CONFIRM_ROUNDS):
            entries, curves = self._entries(planned)
            self._announce("whole run under the planned schedule")
            confirm = simulate_schedule(self.scenario, entries, self.options.seed)
            self.simulations += 1
            verdicts = step_verdicts(confirm, self.scenario, self.grid, list(planned))
            raised = False
            for name, steps in verdicts.items():
                cap = self.scenario.services[name].instances.max
                for k, ok in enumerate(steps):
                    if not ok and planned[name][k] < cap:
                        planned[name][k] += 1
                        raised = True
            if not raised:
                break
        services = {}
        for name in planned:
            missed = [k for k, ok in enumerate(verdicts[name]) if not ok]
            unheld = [k for k, s in enumerate(searches[name]) if s.hi is None]
            note = ""
            if unheld:
                note = (f"steps {self._labels(unheld)} did not hold even at instances.max "
                        f"({self.scenario.services[name].instances.max})")
            elif missed:
                note = f"steps {self._labels(missed)} missed in the confirming run"
            times, counts = curves[name]
            services[name] = ServiceSchedule(
                name, tuple(minimum[name]), tuple(planned[name]), times, counts,
                held=not missed and not unheld and bool(
                    confirm.summary()["services"][name]["slo_met"]), note=note)
        return SchedulePlan(self.scenario, self.grid, self.options, services, entries, confirm,
                            self.simulations, time.perf_counter() - started, self.skipped,
                            self.infeasible)

    def _search(self, searches: dict[str, list[_Search]]) -> dict[str, list[int]]:
        """Step 2: bracket every (service, step) at once until all are settled."""
        while True:
            open_ = {n: [k for k, s in enumerate(ss) if not s.done]
                     for n, ss in searches.items()}
            open_ = {n: ks for n, ks in open_.items() if ks}
            if not open_:
                break
            counts = {n: [s.candidate if not s.done else (s.hi or s.candidate) for s in ss]
                      for n, ss in searches.items() if n in open_}
            first = min(ks[0] for ks in open_.values())
            last = max(ks[-1] for ks in open_.values())
            verdicts = self._trial(counts, first, last)
            for name, steps in open_.items():
                for k in steps:
                    before = counts[name][k - 1] if k else None
                    searches[name][k].advance(counts[name][k], verdicts[name][k], before)
        return {n: [s.hi if s.hi is not None else s.cap for s in ss]
                for n, ss in searches.items()}

    def _joint(self, minimum: dict[str, list[int]],
               searches: dict[str, list[_Search]]) -> dict[str, list[int]]:
        """Step 3: a step that held after more capacity than the previous step now has may
        inherit a larger backlog: simulate those steps with the minima together, raise every
        step that misses, repeat (a raised step's successor is checked again)."""
        current = {n: list(c) for n, c in minimum.items()}
        suspect = {n: {k for k, s in enumerate(ss)
                       if k and s.before is not None and current[n][k - 1] < s.before}
                   for n, ss in searches.items()}
        for _ in range(MAX_JOINT_ROUNDS):
            suspect = {n: ks for n, ks in suspect.items() if ks}
            if not suspect:
                break
            first = min(min(ks) for ks in suspect.values())
            last = max(max(ks) for ks in suspect.values())
            verdicts = self._trial({n: current[n] for n in suspect}, first, last)
            raised: dict[str, set[int]] = {}
            for name, steps in suspect.items():
                cap = self.scenario.services[name].instances.max
                for k in steps:
                    if not verdicts[name][k] and current[name][k] < cap:
                        current[name][k] += 1
                        raised.setdefault(name, set()).update({k, k + 1})
            suspect = {n: {k for k in ks if k < self.grid.n_steps} for n, ks in raised.items()}
        return current

    def _trial(self, counts: dict[str, list[int]], first: int,
               last: int) -> dict[str, list[bool]]:
        """Per service and step: did the step hold? Simulates only ``counts``' services and
        the steps ``first..last`` (plus one step of warm-up before); steps outside the span
        count as held."""
        warm = max(0, first - 1)
        start_s, end_s = self.grid.bounds(warm)[0], self.grid.bounds(last)[1]
        scenario = self.scenario
        names = list(counts)
        if len(names) < len(scenario.services):
            scenario = scenario.model_copy(update={
                "services": {n: scenario.services[n] for n in names},
                "slo": {n: scenario.slo[n] for n in names}})
        whole = start_s <= 0.0 and end_s >= self.traffic.duration_s
        entries, _ = self._entries(counts, shift_s=start_s)
        if not whole:
            scenario = shifted_scenario(scenario, start_s, end_s)
        shown = ", ".join(names)
        self._announce(f"steps {self._labels([warm, last])} of {shown}")
        result = simulate_schedule(scenario, entries, self.options.seed,
                                   self.scenario.autoscaling)
        self.simulations += 1
        grid = self.grid.shifted(start_s, end_s)
        inner = step_verdicts(result, scenario, grid, names)
        offset = warm
        out: dict[str, list[bool]] = {}
        for name in names:
            verdict = [True] * self.grid.n_steps
            for j, ok in enumerate(inner[name]):
                k = j + offset
                if first <= k <= last:
                    verdict[k] = ok
            out[name] = verdict
        return out

    def _entries(self, counts: Mapping[str, list[int]], shift_s: float = 0.0
                 ) -> tuple[list[dict[str, object]], dict[str, tuple[tuple[float, ...],
                                                                    tuple[int, ...]]]]:
        """Schedule entries (and per-service curves) for per-step ``counts``, in run seconds
        of a run that starts ``shift_s`` into the original."""
        curves = {}
        for name, steps in counts.items():
            boot_s = self.scenario.services[name].boot_s
            curves[name] = envelope(self.grid, steps, boot_s + self.options.margin_s,
                                    self.options.scale_down_delay_s)
        return schedule_entries(curves, shift_s), curves

    def _labels(self, steps: list[int]) -> str:
        return ", ".join(self.grid.label(k) for k in steps)

    def _announce(self, what: str) -> None:
        if self.on_trial is not None:
            self.on_trial(what)


def plan_schedule(scenario: Scenario, options: ScheduleOptions,
                  on_trial: Callable[[str], None] | None = None) -> SchedulePlan:
    """The cheapest schedule per service that holds the SLO (see the module docstring)."""
    return SchedulePlanner(scenario, options, on_trial).plan()
