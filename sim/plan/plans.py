"""A capacity plan's data (``Plan``, ``ServicePlan``, ``ObjectiveCheck``) and plan.json, the
form in which a plan is written beside its confirming run (docs/planning.md).

``sim.report`` rebuilds the "Capacity plan" section from plan.json alone, so the report never
needs the ``Plan`` object.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sim import __version__
from sim.units import clock_label

PLAN_FILE = "plan.json"
PLANNED, INFEASIBLE, NOT_HELD = "planned", "infeasible", "not_held"
"""``ServicePlan.status`` values."""


@dataclass(frozen=True)
class ObjectiveCheck:
    """One SLO objective over the peak window: target, value at the minimum count and at the
    recommended count (ms, or a fraction for ``error_rate``; None without completions)."""

    name: str
    target: float
    at_minimum: float | None
    at_recommended: float | None
    met: bool


@dataclass(frozen=True)
class ServicePlan:
    """The plan for one service. Times are run seconds from t=0; counts are instances."""

    service: str
    status: str
    """``planned``; ``infeasible`` (no count can hold an objective); ``not_held`` (the search
    reached its cap without a count that held)."""
    peak_rps: float
    peak_s: float
    workers: int
    mean_service_s: float
    boot_s: float
    price_per_hour: float
    initial: int
    instances_max: int
    estimate: int | None
    binding: str | None
    minimum: int | None = None
    recommended: int | None = None
    needed_from_s: float | None = None
    """When the scenario's initial count stops holding the traffic (queueing model)."""
    ready_by_s: float | None = None
    start_boot_s: float | None = None
    utilization_peak: float | None = None
    """Highest per-tick utilization over the window at the recommended count."""
    rate_headroom: float | None = None
    """Highest rate the recommended count holds (queueing model) / forecast peak - 1."""
    objectives: tuple[ObjectiveCheck, ...] = ()
    whole_run_met: bool | None = None
    cost_run: float | None = None
    cost_peak: float | None = None
    note: str = ""

    @property
    def held(self) -> bool:
        return (self.status == PLANNED and self.whole_run_met is True
                and all(o.met for o in self.objectives))


@dataclass(frozen=True)
class Plan:
    """A whole capacity plan (``to_json`` is the content of plan.json)."""

    scenario: str
    scenario_file: str
    seed: int
    headroom: float
    margin_s: float
    duration_s: float
    start_clock_s: float | None
    window_start_s: float
    window_end_s: float
    window_note: str
    whole_run_window: bool
    services: tuple[ServicePlan, ...]
    skipped: dict[str, str]
    simulations: int
    wall_s: float
    currency: str = "USD"

    @property
    def held(self) -> bool:
        return bool(self.services) and all(s.held for s in self.services)

    def to_json(self) -> dict[str, Any]:
        return plan_json(self)


def plan_json(plan: Plan) -> dict[str, Any]:
    """The content of plan.json (docs/planning.md)."""
    clock = plan.start_clock_s

    def at(t_s: float | None) -> str | None:
        return None if t_s is None else clock_label(t_s, clock)

    services = {s.service: _service_json(s, at) for s in plan.services}
    return {
        "peaksim_version": __version__,
        "kind": "plan",
        "scenario": plan.scenario,
        "scenario_file": plan.scenario_file,
        "seed": plan.seed,
        "headroom": plan.headroom,
        "margin_s": plan.margin_s,
        "duration_s": plan.duration_s,
        "start_clock": None if clock is None else clock_label(0.0, clock),
        "held": plan.held,
        "verdict": plan_verdict(plan),
        "window": {"start_s": plan.window_start_s, "end_s": plan.window_end_s,
                   "from": at(plan.window_start_s), "to": at(plan.window_end_s),
                   "whole_run": plan.whole_run_window, "note": plan.window_note},
        "simulations": plan.simulations,
        "wall_s": round(plan.wall_s, 3),
        "currency": plan.currency,
        "cost": {"run": _total(s["cost"]["run"] for s in services.values()),
                 "peak": _total(s["cost"]["peak"] for s in services.values())},
        "services": services,
        "skipped": dict(plan.skipped),
    }


def _service_json(s: ServicePlan, at: Callable[[float | None], str | None]) -> dict[str, Any]:
    utilization = None
    if s.estimate:
        utilization = round(s.peak_rps * s.mean_service_s / (s.estimate * s.workers), 4)
    return {
        "status": s.status,
        "peak_rps": round(s.peak_rps, 3), "peak_s": s.peak_s, "peak_at": at(s.peak_s),
        "workers": s.workers, "boot_s": s.boot_s, "price_per_hour": s.price_per_hour,
        "initial": s.initial, "instances_max": s.instances_max,
        "estimate": {"instances": s.estimate, "binding": s.binding, "utilization": utilization},
        "minimum": s.minimum, "recommended": s.recommended,
        "spare": (s.recommended - s.minimum
                  if s.recommended is not None and s.minimum is not None else None),
        "needed_from_s": s.needed_from_s, "needed_from": at(s.needed_from_s),
        "ready_by_s": s.ready_by_s, "ready_by": at(s.ready_by_s),
        "start_boot_s": s.start_boot_s, "start_boot": at(s.start_boot_s),
        "utilization_peak": _round(s.utilization_peak),
        "rate_headroom": _round(s.rate_headroom),
        "objectives": {o.name: {"target": o.target, "at_minimum": _round(o.at_minimum),
                                "at_recommended": _round(o.at_recommended), "met": o.met}
                       for o in s.objectives},
        "whole_run_met": s.whole_run_met,
        "cost": {"run": _round(s.cost_run), "peak": _round(s.cost_peak)},
        "note": s.note,
    }


def plan_verdict(plan: Plan) -> str:
    """One sentence: does the plan hold, with which counts, from when."""
    if plan.held:
        counts = ", ".join(f"{s.service} {s.recommended}" for s in plan.services)
        ready = [s.ready_by_s for s in plan.services if s.ready_by_s is not None]
        when = f" ready by {clock_label(min(ready), plan.start_clock_s)}" if ready else ""
        return (f"The plan holds the SLO: {counts} instances{when} (headroom "
                f"{plan.headroom:.0%}) hold every objective through the peak and over the whole "
                f"run.")
    problems = []
    for s in plan.services:
        if s.status != "planned":
            problems.append(f"{s.service}: {s.note}")
        elif not all(o.met for o in s.objectives):
            problems.append(f"{s.service} missed its SLO at {s.recommended} instances over the "
                            f"peak window")
        elif s.whole_run_met is False:
            problems.append(f"{s.service} at {s.recommended} instances missed its SLO over the "
                            f"whole run")
    return "The plan does not hold: " + "; ".join(problems) + "."


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 6)


def _total(values: Iterable[float | None]) -> float:
    return round(sum(v for v in values if v is not None), 6)
