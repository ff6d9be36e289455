"""The plot of a planned schedule (``peaksim plan --schedule``): per service the planned count,
the confirming run's ready instances and the HPA variant's actual counts, over the traffic."""

from __future__ import annotations

import numpy as np

from sim.model import TrafficModel
from sim.plan import SchedulePlan
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
