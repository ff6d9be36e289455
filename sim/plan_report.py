"""plan.json, and the "Capacity plan" section that a plan adds to its run's report.

The section is built from plan.json alone (not from the ``Plan`` object), so that
``peaksim report RUN_DIR`` rebuilds it like every other part of the report. The same table is
what ``peaksim plan`` prints.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim import __version__
from sim.errors import RunDirError
from sim.report_model import (
    NO_VALUE,
    ReportDoc,
    Table,
    VerdictLine,
    fmt_money,
    fmt_num,
    fmt_objective,
    fmt_pct,
    objective_label,
)
from sim.units import clock_label, format_duration

if TYPE_CHECKING:
    from sim.plan import Plan, ServicePlan

PLAN_FILE = "plan.json"
PLAN_ANCHOR = "plan"
PLAN_HEADER = ("service", "peak rps", "at", "queueing", "min held", "recommended", "ready by",
               "util at peak", "tightest vs SLO", "cost run", "cost peak")
"""Columns of the plan table; costs are in the plan's currency (named in the note)."""
IN_PLACE = "in place"
"""``ready by`` cell when the scenario's initial count already is the recommended one."""


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


def plan_table(data: dict[str, Any]) -> Table:
    """The "Capacity plan" table from a plan.json mapping (see ``PLAN_HEADER``)."""
    currency = str(data.get("currency", "USD"))
    rows = [_row(name, s) for name, s in data["services"].items()]
    if len(rows) > 1:
        blank = ("",) * (len(PLAN_HEADER) - 3)
        rows.append(("total", *blank, _money(data["cost"]["run"]),
                     _money(data["cost"]["peak"])))
    window = data["window"]
    span = ("the whole run" if window["whole_run"] else
            f"{window['from']}–{window['to']} "
            f"({format_duration(window['end_s'] - window['start_s'])})")
    notes = [
        f"Peak window simulated: {span}; the SLO is judged over it. queueing: M/G/c estimate at "
        f"the peak rate. min held: smallest count that held the SLO over the window. "
        f"recommended: min x (1 + {data['headroom']:g}), rounded up. ready by: when the "
        f"initial count stops holding the traffic, minus {data['margin_s']:g} s; booting starts "
        f"boot_s earlier ({IN_PLACE}: the initial count is already enough). util at peak, "
        f"tightest vs SLO: the recommended count over the window. cost run: that count static "
        f"all run; cost peak: from its boot (or the window start, if earlier) to the window end "
        f"(both in {currency})."]
    notes += [f"{name}: {s['note']}" for name, s in data["services"].items() if s.get("note")]
    notes += [f"{name} not planned: {why}" for name, why in data.get("skipped", {}).items()]
    return Table("Capacity plan", PLAN_HEADER, tuple(rows),
                 ("l",) + ("r",) * (len(PLAN_HEADER) - 1), " ".join(notes), PLAN_ANCHOR)


def _money(value: float | None) -> str:
    """``fmt_money`` without the currency (the column names it)."""
    return fmt_money(value, "").strip()


def _row(name: str, s: dict[str, Any]) -> tuple[str, ...]:
    est = s["estimate"]["instances"]

    def count(v: int | None) -> str:
        return NO_VALUE if v is None else str(v)

    util = s.get("utilization_peak")
    ready = s.get("ready_by") or NO_VALUE
    if s["recommended"] is not None and s.get("ready_by") is None:
        ready = IN_PLACE
    return (name, fmt_num(s["peak_rps"]), s["peak_at"] or NO_VALUE, count(est),
            count(s["minimum"]), count(s["recommended"]), ready,
            NO_VALUE if util is None else fmt_pct(util), _tightest(s["objectives"]),
            _money(s["cost"]["run"]), _money(s["cost"]["peak"]))


def _tightest(objectives: dict[str, dict[str, Any]]) -> str:
    """The objective closest to (or furthest past) its target at the recommended count."""
    scored = [(o["at_recommended"] / o["target"] if o["target"] else 0.0, k, o)
              for k, o in objectives.items() if o["at_recommended"] is not None]
    if not scored:
        return NO_VALUE
    _, name, o = max(scored, key=lambda x: x[0])
    return (f"{objective_label(name)} {fmt_objective(name, o['at_recommended'])} / "
            f"{fmt_objective(name, o['target'])}")


def read_plan(run_dir: Path) -> dict[str, Any] | None:
    """plan.json of ``run_dir``, or None when the run is not a plan. Raises ``RunDirError``
    when the file is there but unreadable."""
    path = run_dir / PLAN_FILE
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        plan_table(data)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RunDirError(f"{path}: expected a plan written by 'peaksim plan' ({exc})") from None
    if not isinstance(data, dict):
        raise RunDirError(f"{path}: expected a JSON object")
    return data


def with_plan_section(doc: ReportDoc, run_dir: Path) -> ReportDoc:
    """``doc`` with the "Capacity plan" table first and the plan's verdict under the run's, when
    ``run_dir`` holds a plan.json; ``doc`` itself otherwise."""
    data = read_plan(run_dir)
    if data is None:
        return doc
    line = VerdictLine(bool(data.get("held")), str(data.get("verdict", "")))
    return replace(doc, verdict=(*doc.verdict, line), tables=(plan_table(data), *doc.tables))


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 6)


def _total(values: Iterable[float | None]) -> float:
    return round(sum(v for v in values if v is not None), 6)
