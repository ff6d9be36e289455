"""``peaksim plan``: how many instances of each service must be ready, and from when, to hold
the SLO through the scenario's peak -- and what that costs and leaves to spare.

1. Per service with an SLO: the peak rate and time of its traffic curve and a queueing estimate
   of the instances that hold every objective at that rate (``sim.plan.estimate``).
2. The peak window (``sim.plan.window``): the part of the run that is simulated.
3. A simulation search from the estimates for the smallest count that holds the SLO over the
   window, all services in each run (``sim.plan.search``).
4. ``recommended = ceil(minimum x (1 + headroom))``, simulated over the window (margin) and over
   the whole run with static counts (the confirming run, written as the plan's run directory).
5. When it must be ready: from the first moment the traffic exceeds what the scenario's initial
   count holds (queueing model), minus a margin; booting starts ``boot_s`` earlier.

Method, columns and how to read the margin: docs/planning.md.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from sim.engine import RunLimits, RunResult, simulate
from sim.errors import PeaksimError
from sim.model import Objectives, Scenario, TrafficModel, sampler_for
from sim.plan.estimate import Estimate, ServiceModel, estimate_instances, max_rate_rps
from sim.plan.plans import INFEASIBLE, NOT_HELD, PLANNED, ObjectiveCheck, Plan, ServicePlan
from sim.plan.search import CountSearch, Trial
from sim.plan.window import PeakWindow, peak_window

DEFAULT_HEADROOM = 0.2
DEFAULT_MARGIN_S = 60.0



class PlanError(PeaksimError):
    """The scenario cannot be planned (no service has an SLO, or bad plan options)."""


def make_plan(
    scenario: Scenario, *, headroom: float = DEFAULT_HEADROOM,
    margin_s: float = DEFAULT_MARGIN_S, seed: int | None = None,
    on_trial: Callable[[str], None] | None = None, limits: RunLimits | None = None,
) -> tuple[Plan, RunResult]:
    """The plan and the confirming whole-run simulation of its recommended counts.

    Raises ``PlanError`` when no service has an SLO (or traffic) to plan for, or for options
    out of range.
    """
    if not (0.0 <= headroom <= 10.0) or not math.isfinite(margin_s) or margin_s < 0:
        raise PlanError(f"expected 0 <= headroom <= 10 and margin >= 0 s, got headroom "
                        f"{headroom:g}, margin {margin_s:g} s")
    started = time.perf_counter()
    traffic = TrafficModel(scenario)
    sized, skipped = _size_services(scenario, traffic)
    estimates = {n: p.estimate for n, (p, _) in sized.items() if p.estimate is not None}
    window = peak_window(scenario, list(estimates) or list(sized))
    search = _search(scenario, window, seed, list(estimates), on_trial, limits)
    cap = {n: max(4 * e, e + 16) for n, e in estimates.items()}
    minimum = search.minimum_counts(estimates, cap)
    recommended = {n: math.ceil(m * (1.0 + headroom) - 1e-9)
                   for n, m in minimum.items() if m is not None}
    at_rec = search.trial(recommended) if recommended else None
    if on_trial is not None:
        on_trial("whole run at the recommended counts")
    confirm = simulate(scenario, seed=seed, instances=recommended, limits=limits)
    whole = confirm.summary()["services"]
    plans = []
    for name, (first, model) in sized.items():
        if name not in estimates:
            plans.append(first)  # infeasible: the estimate says why
        elif minimum[name] is None:
            plans.append(replace(first, status=NOT_HELD, note=f"did not hold even with "
                                 f"{cap[name]} instances over the peak window"))
        else:
            assert at_rec is not None
            n_rec = recommended[name]
            at_min = search.trial_with(name, minimum[name])
            plans.append(replace(
                first, minimum=minimum[name], recommended=n_rec,
                objectives=_objectives(scenario, name, at_min, at_rec),
                utilization_peak=at_rec.peak_utilization[name],
                rate_headroom=max_rate_rps(n_rec, scenario.slo[name], model) / first.peak_rps - 1,
                whole_run_met=bool(whole[name]["slo_met"]),
                **_timing(traffic, first, scenario.slo[name], model, window, n_rec, margin_s),
                note=_note(first, n_rec)))
    plan = Plan(
        scenario=scenario.name, scenario_file=scenario.source, seed=confirm.seed,
        headroom=headroom, margin_s=margin_s, duration_s=traffic.duration_s,
        start_clock_s=scenario.start_clock_s if traffic.time_scale == 1.0 else None,
        window_start_s=window.start_s, window_end_s=window.end_s, window_note=window.note,
        whole_run_window=window.scenario is scenario, services=tuple(plans), skipped=skipped,
        simulations=len(search.trials) + 1, wall_s=time.perf_counter() - started)
    return plan, confirm


def _size_services(
    scenario: Scenario, traffic: TrafficModel
) -> tuple[dict[str, tuple[ServicePlan, ServiceModel]], dict[str, str]]:
    """Peak and queueing estimate of every service that can be planned; why the others
    cannot."""
    skipped: dict[str, str] = {}
    sized: dict[str, tuple[ServicePlan, ServiceModel]] = {}
    for name, spec in scenario.services.items():
        objectives = scenario.slo.get(name)
        if objectives is None:
            skipped[name] = "no SLO (no entry under 'slo'): nothing to plan against"
            continue
        peak_rps, peak_s = traffic.peak(name)
        if peak_rps <= 0:
            skipped[name] = "no traffic in the run"
            continue
        model = ServiceModel.of(spec, sampler_for(spec.service_time, scenario.base_dir))
        estimate = estimate_instances(objectives, peak_rps, model)
        sized[name] = (_first_look(scenario, name, (peak_rps, peak_s), estimate, traffic,
                                   model), model)
    if not sized:
        reasons = "; ".join(f"{k}: {v}" for k, v in skipped.items())
        raise PlanError(f"no service of {scenario.name} can be planned: {reasons}")
    return sized, skipped


def _objectives(scenario: Scenario, name: str, at_min: Trial | None,
                at_rec: Trial) -> tuple[ObjectiveCheck, ...]:
    """Each objective over the window at the minimum and at the recommended count."""
    rec = at_rec.services[name]
    low = at_min.services[name] if at_min is not None else None
    return tuple(ObjectiveCheck(k, v, _value(low, k), _value(rec, k),
                                bool(rec["slo"][k]["met"]))
                 for k, v in scenario.slo[name].items())


def _first_look(scenario: Scenario, name: str, peak: tuple[float, float], estimate: Estimate,
                traffic: TrafficModel, model: ServiceModel) -> ServicePlan:
    spec = scenario.services[name]
    return ServicePlan(
        service=name, status=PLANNED if estimate.feasible else INFEASIBLE, peak_rps=peak[0],
        peak_s=peak[1], workers=spec.workers, mean_service_s=model.mean_s,
        boot_s=spec.boot_s / traffic.time_scale, price_per_hour=spec.price_per_hour,
        initial=spec.instances.start, instances_max=spec.instances.max,
        estimate=estimate.instances, binding=estimate.binding, note=estimate.reason)


def _search(scenario: Scenario, window: PeakWindow, seed: int | None,
            searchable: list[str], on_trial: Callable[[str], None] | None,
            limits: RunLimits | None) -> CountSearch:
    def announce(counts: dict[str, int]) -> None:
        if on_trial is not None:
            shown = ", ".join(f"{n} {c}" for n, c in counts.items() if n in searchable)
            on_trial(f"peak window with {shown}")

    base = {n: s.instances.start for n, s in scenario.services.items() if n not in searchable}
    return CountSearch(window.scenario, seed, base, announce, limits=limits)


def _value(service_summary: dict[str, Any] | None, objective: str) -> float | None:
    if service_summary is None:
        return None
    value = service_summary["slo"][objective]["value"]
    return None if value is None else float(value)


def _timing(traffic: TrafficModel, first: ServicePlan, objectives: Objectives,
            model: ServiceModel, window: PeakWindow, recommended: int,
            margin_s: float) -> dict[str, float | None]:
    """needed_from / ready_by / start_boot (run seconds, clamped to the run) and the costs."""
    price_s = first.price_per_hour / 3600.0
    cost_run = recommended * traffic.duration_s * price_s
    if recommended <= first.initial:
        # already in place from t=0: nothing to pre-warm
        return {"needed_from_s": None, "ready_by_s": None, "start_boot_s": None,
                "cost_run": cost_run, "cost_peak": recommended * window.duration_s * price_s}
    holds_rps = max_rate_rps(first.initial, objectives, model)
    step = 1.0 / traffic.time_scale
    grid = np.arange(0.0, first.peak_s + step / 2, step)
    over = np.flatnonzero(traffic.rates_rps(first.service, grid) > holds_rps)
    needed = float(grid[over[0]]) if over.size else window.start_s
    ready_by = max(0.0, needed - margin_s)
    start_boot = max(0.0, ready_by - first.boot_s)
    billed_from = min(start_boot, window.start_s)
    return {"needed_from_s": needed, "ready_by_s": ready_by, "start_boot_s": start_boot,
            "cost_run": cost_run,
            "cost_peak": recommended * (window.end_s - billed_from) * price_s}


def _note(first: ServicePlan, recommended: int) -> str:
    if recommended <= first.instances_max:
        return ""
    return (f"above the scenario's instances.max ({first.instances_max}): raise it (or the "
            f"fixed count) to at least {recommended}")
