"""A sweep's files: one table as sweep.csv, sweep.json and sweep.md, and pareto.png.

sweep.csv has one row per point: its values, then per figure the mean and the ends of its 95%
interval (equal with one run per point). sweep.json has the same and every figure of every
point (``replications.json``'s content per point). The plot puts cost against SLO attainment,
draws the Pareto front and names the cheapest point that holds the SLO.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sim.intervals import METHOD, Interval, fmt_interval
from sim.report import Table, fmt_ms, fmt_pct, new_figure, plural, render_md_table, to_png
from sim.runio import atomic_write_bytes, atomic_write_csv, atomic_write_json, atomic_write_text
from sim.study.report import fmt_dollars
from sim.study.sweep import Setting
from sim.study.sweep_runs import SweepOutcome

_DECISION_COLOURS = {"pass": "#1a9850", "fail": "#d73027", "undecided": "#fdae61"}


@dataclass(frozen=True)
class SweepFiles:
    """Where the sweep's files were written."""

    csv: Path
    json: Path
    markdown: Path
    plot: Path


def write_sweep(outcome: SweepOutcome, settings: Sequence[Setting]) -> SweepFiles:
    """Write sweep.csv, sweep.json, sweep.md and pareto.png into the sweep directory."""
    out = outcome.out_dir
    files = SweepFiles(out / "sweep.csv", out / "sweep.json", out / "sweep.md",
                       out / "pareto.png")
    header, rows = csv_table(outcome, settings)
    atomic_write_csv(files.csv, header, rows)
    atomic_write_json(files.json, sweep_json(outcome, settings))
    atomic_write_bytes(files.plot, plot_pareto(outcome))
    atomic_write_text(files.markdown, sweep_markdown(outcome, settings))
    return files


def _services(outcome: SweepOutcome) -> list[str]:
    return list(outcome.points[0].replicated.summaries[0]["services"])


def csv_table(outcome: SweepOutcome, settings: Sequence[Setting]
              ) -> tuple[list[str], list[list[Any]]]:
    """The header and rows of sweep.csv."""
    services = _services(outcome)
    figures = ["cost.total"] + [f"services.{s}.{f}" for s in services
                                for f in ("latency_ms.p99", "error_rate")]
    header = ["point", *(s.path for s in settings), "replications", "decision",
              "slo_attainment", "pareto"]
    for figure in figures:
        name = figure.removeprefix("services.").replace("latency_ms.", "").replace(".", "_")
        header += [f"{name}_mean", f"{name}_low", f"{name}_high"]
    rows = []
    for i, p in enumerate(outcome.points):
        row: list[Any] = [p.point.index, *p.point.values.values(), len(outcome.seeds),
                          str(p.replicated.decision), round(p.attainment, 6),
                          int(i in outcome.pareto)]
        for figure in figures:
            interval = p.replicated.figure(figure)
            row += ([""] * 3 if interval is None else
                    [_r(interval.mean), _r(interval.low), _r(interval.high)])
        rows.append(row)
    return header, rows


def sweep_json(outcome: SweepOutcome, settings: Sequence[Setting]) -> dict[str, Any]:
    """The content of sweep.json."""
    cheapest = outcome.cheapest
    return {
        "kind": "sweep", "scenario": outcome.points[0].point.scenario.name,
        "settings": [{"path": s.path, "values": list(s.texts)} for s in settings],
        "replications": len(outcome.seeds), "seeds": list(outcome.seeds),
        "method": METHOD if len(outcome.seeds) > 1 else "one run per point",
        "cheapest_holding": (None if cheapest is None else
                             outcome.points[cheapest].point.index),
        "pareto": [outcome.points[i].point.index for i in outcome.pareto],
        "gate": {"decision": str(outcome.decision), "exit_code": outcome.exit_code,
                 "undecided": [outcome.points[i].point.index for i in outcome.undecided()]},
        "points": [{"point": p.point.index, "values": p.point.values,
                    "decision": str(p.replicated.decision),
                    "slo_attainment": round(p.attainment, 6),
                    "result": p.replicated.to_json()} for p in outcome.points],
    }


def sweep_table(outcome: SweepOutcome, settings: Sequence[Setting]) -> Table:
    """The terminal and Markdown table: one row per point, figures as mean ± half-width."""
    services = _services(outcome)
    rows = []
    for i, p in enumerate(outcome.points):
        mark = ("cheapest holding" if i == outcome.cheapest else
                "pareto" if i in outcome.pareto else "")
        rows.append((
            str(p.point.index), *p.point.values.values(), str(p.replicated.decision),
            f"{100 * p.attainment:.0f}%",
            fmt_interval(p.replicated.figure("cost.total"), fmt_dollars),
            *(fmt_interval(p.replicated.figure(f"services.{s}.latency_ms.p99"), fmt_ms)
              for s in services),
            *(fmt_interval(p.replicated.figure(f"services.{s}.error_rate"), fmt_pct)
              for s in services),
            mark))
    header = ("point", *(s.path for s in settings), "SLO", "attainment", "cost",
              *(f"{s} p99" for s in services), *(f"{s} errors" for s in services), "")
    n = len(outcome.seeds)
    title = (f"sweep of {outcome.points[0].point.scenario.name}: "
             f"{plural(len(outcome.points), 'point')}"
             + (f" x {n} replications (mean ± 95% half-width)" if n > 1 else ", one run each"))
    return Table(title, header, tuple(rows),
                 ("r", *("l" for _ in settings), "l", "r", "r", *("r" for _ in services),
                  *("r" for _ in services), "l"),
                 note="attainment: share of runs in which every service held its SLO.")


_NAMED = 3
"""Undecided points a verdict names (the cheapest ones)."""


def sweep_verdict(outcome: SweepOutcome) -> str:
    """The sweep's verdict: the cheapest point that holds the SLO and how many hold; else that
    none does, and which undecided points more replications might decide."""
    confidence = " with 95% confidence" if len(outcome.seeds) > 1 else ""
    total = len(outcome.points)
    if outcome.cheapest is not None:
        p = outcome.points[outcome.cheapest]
        held = sum(1 for q in outcome.points if q.holds)
        return (f"Cheapest point that holds the SLO{confidence}: point {p.point.index} "
                f"({p.point.label}), cost "
                f"{fmt_interval(p.replicated.figure('cost.total'), fmt_dollars)}; {held} of "
                f"{total} points hold.")
    undecided = outcome.undecided()
    if not undecided:
        which = "the one point" if total == 1 else f"all {total} points"
        return f"No point held the SLO{confidence}: {which} missed an objective."
    named = []
    for i in undecided[:_NAMED]:
        p = outcome.points[i]
        needed = p.replicated.replications_needed
        more = (f"about {needed} replications would likely decide it" if needed is not None
                else "a mean sits on its target")
        named.append(f"point {p.point.index} ({p.point.label}; {more})")
    rest = len(undecided) - len(named)
    return (f"No point held the SLO{confidence}; {len(undecided)} of {total} undecided: "
            + ", ".join(named) + (f" and {rest} more" if rest else "") + ".")


def sweep_markdown(outcome: SweepOutcome, settings: Sequence[Setting]) -> str:
    """sweep.md: the sentence naming the cheapest holding point, the table, the plot's name."""
    return "\n".join([f"# {sweep_table(outcome, settings).title}", "", sweep_verdict(outcome),
                      "", render_md_table(sweep_table(outcome, settings)), "",
                      "Cost against SLO attainment, Pareto front: `pareto.png`.", ""])


def plot_pareto(outcome: SweepOutcome) -> bytes:
    """Cost (x, with its interval) against SLO attainment (y); the front as a step line."""
    fig, (ax,) = new_figure(1, height_in=4.5)
    for decision, colour in _DECISION_COLOURS.items():
        mine = [p for p in outcome.points if str(p.replicated.decision) == decision]
        if not mine:
            continue
        costs = np.array([p.cost for p in mine])
        errors = np.array([_half(p.replicated.figure("cost.total")) for p in mine])
        ax.errorbar(costs, [100 * p.attainment for p in mine], xerr=errors, fmt="o",
                    color=colour, ms=5, capsize=2, label=f"SLO {decision}")
    front = [outcome.points[i] for i in outcome.pareto]
    ax.step([p.cost for p in front], [100 * p.attainment for p in front], where="post",
            color="#4d4d4d", lw=1, ls="--", label="Pareto front")
    if outcome.cheapest is not None:
        best = outcome.points[outcome.cheapest]
        ax.annotate(f"cheapest holding: point {best.point.index}\n{best.point.label}",
                    (best.cost, 100 * best.attainment), xytext=(12, -28),
                    textcoords="offset points", fontsize="small",
                    arrowprops={"arrowstyle": "->", "color": "#1a9850"})
    ax.set_xlabel("cost (USD, mean over replications)")
    ax.set_ylabel("SLO attainment (% of runs)")
    ax.set_ylim(-5, 105)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", frameon=False, fontsize="small")
    return to_png(fig)


def _half(interval: Interval | None) -> float:
    return 0.0 if interval is None else interval.half_width


def _r(value: float) -> float:
    return float(f"{value:.6g}")

