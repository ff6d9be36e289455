"""What a planned schedule (``peaksim plan --schedule``) adds to its run's report: the
"Planned schedule" table and verdict (from schedule.json, so that ``peaksim report RUN_DIR``
rebuilds them), and schedule.png: per service the planned count, the confirming run's ready
instances and the HPA variant's actual counts, over the traffic."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from sim.errors import RunDirError
from sim.model import TrafficModel
from sim.plan import SCHEDULE_FILE, SCHEDULE_HEADER, SchedulePlan, schedule_rows, schedule_verdict
from sim.report.document import ReportDoc, ReportFigure, Table, VerdictLine
from sim.report.plotting import finish_time_axes, new_figure, service_title, to_png

PLOT_FILE = "schedule.png"


HpaCounts = tuple[str, dict[str, np.ndarray], float]
"""(variant name, running instances per tick of each service, tick_s)."""


def plot_schedule(plan: SchedulePlan, hpa: HpaCounts | None) -> bytes:
    """Per service: the planned count, the confirming run's ready instances and, with ``hpa``,
    the HPA variant's actual counts, against the traffic (right axis, behind)."""
    names = list(plan.services)
    fig, axes = new_figure(len(names), 2.8)
    traffic = TrafficModel(plan.scenario)
    grid_s = np.arange(0.0, plan.grid.duration_s, 10.0)
    tick_s = plan.confirm.tick_s
    for ax, name in zip(axes, names, strict=True):
        s = plan.services[name]
        times = [*s.times_s, plan.grid.duration_s]
        ax.step(times, [*s.counts, s.counts[-1]], where="post", color="black", lw=1.6,
                label="planned schedule")
        ready = plan.confirm.services[name].columns["instances_ready"]
        ticks = np.arange(ready.size) * tick_s
        ax.plot(ticks, ready, color="#2ca02c", lw=1.0, label="ready (planned run)")
        if hpa is not None and name in hpa[1]:
            running = hpa[1][name]
            ax.plot(np.arange(running.size) * hpa[2], running, color="#d62728", lw=1.0,
                    ls="--", label=f"{hpa[0]} (actual)")
        ax.set_ylabel("instances")
        right = ax.twinx()
        right.fill_between(grid_s, traffic.rates_rps(name, grid_s), color="#9e9e9e",
                           alpha=0.25, lw=0, label="traffic (rps)")
        right.set_ylabel("requests/s")
        ax.set_zorder(right.get_zorder() + 1)  # the counts in front of the traffic
        ax.patch.set_visible(False)
        handles = ax.get_legend_handles_labels()
        extra = right.get_legend_handles_labels()
        ax.legend(handles[0] + extra[0], handles[1] + extra[1], loc="upper left",
                  bbox_to_anchor=(1.12, 1.0), frameon=False, fontsize="small")
        cost = plan.confirm.summary()["services"][name]["cost"]
        service_title(ax, name, names, f"planned cost ${cost:.2f}")
    finish_time_axes(axes, plan.scenario.start_clock_s, (0.0, plan.grid.duration_s))
    return to_png(fig)


SCHEDULE_ANCHOR = "schedule"


def schedule_table(data: dict[str, Any]) -> Table:
    """The "Planned schedule" table of a schedule.json mapping (``SCHEDULE_HEADER``)."""
    rows = tuple(tuple(row) for row in schedule_rows(data))
    notes = [
        f"Per {data['step_s']:g}-s step the smallest count that held every objective in "
        f"simulation, x (1 + {data['headroom']:g}) rounded up, ready from the step's start "
        f"(started boot_s + {data['margin_s']:g} s earlier) and kept "
        f"{data['scale_down_delay_s']:g} s after it; the variant is {data.get('variant', '')} "
        f"(variant.yaml), the plot schedule.png."]
    notes += [f"{name} not planned: {why}" for name, why in data.get("skipped", {}).items()]
    return Table("Planned schedule", SCHEDULE_HEADER, rows,
                 ("l", "r", "r", "l", "r", "l"), " ".join(notes), SCHEDULE_ANCHOR)


def with_schedule_section(doc: ReportDoc, run_dir: Path) -> ReportDoc:
    """``doc`` with the schedule table first and its verdict under the run's, when ``run_dir``
    holds a schedule.json; ``doc`` itself otherwise."""
    path = run_dir / SCHEDULE_FILE
    if not path.exists():
        return doc
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        table = schedule_table(data)
        line = VerdictLine(bool(data["held"]), schedule_verdict(data))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RunDirError(f"{path}: expected a schedule written by 'peaksim plan --schedule' "
                          f"({exc})") from None
    figures = doc.figures
    plot = run_dir / PLOT_FILE
    if plot.exists():
        figure = ReportFigure(PLOT_FILE, "Planned schedule", (
            "Per service: the planned instance count (black), the instances ready in the "
            "confirming run (green) and the HPA variant's actual count (red, dashed), over the "
            "traffic (grey, right axis)."), plot.read_bytes())
        figures = (figure, *figures)
    return replace(doc, verdict=(*doc.verdict, line), tables=(table, *doc.tables),
                   figures=figures)
