"""The "Capacity plan" section that a plan (its plan.json) adds to its run's report.

The section is built from plan.json alone (not from the ``Plan`` object), so that
``peaksim report RUN_DIR`` rebuilds it like every other part of the report. The same table is
what ``peaksim plan`` prints.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from sim.errors import RunDirError
from sim.plan import PLAN_FILE
from sim.report.document import (
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
from sim.units import format_duration

PLAN_ANCHOR = "plan"
PLAN_HEADER = ("service", "peak rps", "at", "queueing", "min held", "recommended", "ready by",
               "util at peak", "tightest vs SLO", "cost run", "cost peak")
"""Columns of the plan table; costs are in the plan's currency (named in the note)."""
IN_PLACE = "in place"
"""``ready by`` cell when the scenario's initial count already is the recommended one."""


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
                 tuple("l" if h in ("service", "tightest vs SLO") else "r" for h in PLAN_HEADER),
                 " ".join(notes), PLAN_ANCHOR)


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
