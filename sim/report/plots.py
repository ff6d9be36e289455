"""The plots of a run report, and the registry (name -> ``ReportPlot``) they are chosen from.

Each plot decides from the run (usually from the CSV's column names) whether it applies, so a
plot for columns that only some runs have (colocation: cores online/batch/idle, nodes in use)
is one more entry in ``RUN_PLOTS`` and simply does not appear for runs without those columns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np

from sim.report.cluster_plots import (
    has_cluster,
    plot_cluster_batch,
    plot_cluster_cores,
    plot_cluster_nodes,
    plot_cluster_utilization,
)
from sim.report.data import RunData, ServiceSeries
from sim.report.decimate import envelope, envelope_indices
from sim.report.derive import (
    capacity_rps,
    cumulative_cost,
    miss_windows,
    served_rps,
)
from sim.report.document import fmt_money, fmt_ms, objective_label
from sim.report.plotting import (
    PANEL_COLUMNS,
    SLO_COLOUR,
    booting_marks,
    clock_axis,
    count_axis,
    latency_axis,
    legend_outside,
    neutral_legend,
    new_figure,
    new_grid,
    service_colour,
    service_title,
    slo_line,
    thin_line,
    to_png,
    to_png_aligned,
    y_percent,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes

_LATENCY_COLUMNS = (("p50_ms", 0.8, ":"), ("p95_ms", 1.1, "--"), ("p99_ms", 1.6, "-"))
_ERROR_KINDS = (("timed_out", "timed out", "#b2182b"), ("shed", "shed", "#ef8a62"),
                ("failed", "failed", "#4d4d4d"))
_SLO_COLOUR = SLO_COLOUR
_KEY = "#555555"
"""Legend colour of a line drawn in each service's own colour."""
_PANEL_IN = 2.5
_ZOOM_BEFORE_S, _ZOOM_AFTER_S = 600.0, 1200.0


@dataclass(frozen=True)
class ReportPlot:
    """One figure of a run report: its file name, how to read it, when it applies, how to draw
    it (``render`` returns PNG bytes). ``section`` names the report part it appears in
    (``""``: the main plots; ``CLUSTER_SECTION``: the cluster part of a colocation run)."""

    filename: str
    title: str
    caption: str
    applies: Callable[[RunData], bool]
    render: Callable[[RunData], bytes]
    section: str = ""


CLUSTER_SECTION = "cluster"


def has_columns(*columns: str) -> Callable[[RunData], bool]:
    """``applies`` for a plot that needs these CSV columns."""
    needed = frozenset(columns)
    return lambda run: needed <= run.columns


def centres(series: ServiceSeries, tick_s: float) -> np.ndarray:
    """Values describe whole ticks; drawing them at the tick centre keeps peaks in place."""
    return series.t_s + tick_s / 2.0


def finish_axes(run: RunData, axes: list[Axes], span_s: float | None = None) -> None:
    """Grid on every panel and the clock axis (t=0 .. the run's end) on the last one."""
    for ax in axes:
        ax.grid(True, alpha=0.3)
    clock_axis(axes[-1], run.start_clock_s, span_s=(0.0, span_s or run.summary.duration_s))


PanelDraw = Callable[["Axes", str, ServiceSeries, np.ndarray], None]
"""Fills one service's panel: ``draw(ax, service, series, x)`` with x the tick centres."""


def service_panels(run: RunData, draw: PanelDraw, span_s: float | None = None) -> bytes:
    """A figure of one panel per service sharing the time axis, drawn by ``draw``."""
    fig, axes = new_figure(len(run.services), _PANEL_IN)
    for ax, name in zip(axes, run.services, strict=True):
        series = run.series[name]
        draw(ax, name, series, centres(series, run.summary.tick_s))
    finish_axes(run, axes, span_s)
    return to_png_aligned(fig)


def plot_traffic(run: RunData) -> bytes:
    """Offered vs served vs capacity, one panel per service."""
    names = run.services
    tick = run.summary.tick_s

    def draw(ax: Axes, name: str, series: ServiceSeries, x: np.ndarray) -> None:
        capacity, exact = capacity_rps(run, name)
        thin_line(ax, x, series["offered_rps"], color=service_colour(name, names), lw=1.8,
              label="offered")
        thin_line(ax, x, served_rps(series, tick), color="#222222", lw=0.9, ls="--",
              label="served in time")
        if not np.all(np.isnan(capacity)):
            thin_line(ax, x, capacity, color="#7f7f7f", lw=1.2, ls="-.",
                  label="capacity" + ("" if exact else " (estimated)"))
        service_title(ax, name, names)
        ax.set_ylabel("requests / s")
        count_axis(ax)
        legend_outside(ax)

    return service_panels(run, draw)


def plot_instances(run: RunData) -> bytes:
    """Ready instances with booting ones stacked on top, and the desired count."""
    names = run.services
    tick = run.summary.tick_s

    def draw(ax: Axes, name: str, series: ServiceSeries, x: np.ndarray) -> None:
        ready, booting = series["instances_ready"], series["instances_booting"]
        kept = envelope_indices([ready, ready + booting], PANEL_COLUMNS)
        ready, booting, at = ready[kept], booting[kept], x[kept]
        colour = service_colour(name, names)
        ax.fill_between(at, 0, ready, color=colour, alpha=0.25, lw=0)
        ax.plot(at, ready, color=colour, lw=1.6, label="ready")
        ax.fill_between(at, ready, ready + booting, facecolor="#e0e0e0", hatch="///",
                        edgecolor="#6f6f6f", lw=0.0, label="booting")
        ends, desired = envelope(series.t_s + tick, series["instances_desired"], PANEL_COLUMNS)
        ax.step(ends, desired, where="pre", color="#222222", lw=1.0, ls="--", label="desired")
        booting_marks(ax, series.t_s, series["instances_booting"], tick,
                      run.summary.duration_s)
        service_title(ax, name, names)
        ax.set_ylabel("instances")
        count_axis(ax)
        legend_outside(ax)

    return service_panels(run, draw)


def plot_latency(run: RunData) -> bytes:
    """p50/p95/p99 per tick on a log axis, the SLO targets, and the ticks above them shaded."""
    names = run.services
    tick = run.summary.tick_s

    def draw(ax: Axes, name: str, series: ServiceSeries, x: np.ndarray) -> None:
        colour = service_colour(name, names)
        for column, width, style in _LATENCY_COLUMNS:
            thin_line(ax, x, series[column], color=colour, lw=width, ls=style,
                  label=column.removesuffix("_ms"))
        for key, objective in run.summary.services[name].slo.items():
            if key == "error_rate":
                continue
            ax.axhline(objective.target, color=_SLO_COLOUR, lw=1.0, ls="--",
                       label=f"{objective_label(key)} SLO {fmt_ms(objective.target)}")
            if series.has(key):
                for window in miss_windows(series.t_s, series[key], objective.target, tick):
                    ax.axvspan(window.start_s, window.end_s, color=_SLO_COLOUR, alpha=0.10,
                               lw=0)
        service_title(ax, name, names)
        latency_axis(ax)
        legend_outside(ax)

    return service_panels(run, draw)


def plot_errors(run: RunData) -> bytes:
    """Lost attempts per second, stacked by cause."""
    names = run.services
    tick = run.summary.tick_s

    def draw(ax: Axes, name: str, series: ServiceSeries, x: np.ndarray) -> None:
        rates = [series[column] / tick for column, _, _ in _ERROR_KINDS]
        kept = envelope_indices([*rates, sum(rates)], PANEL_COLUMNS)  # each cause and the top
        ax.stackplot(x[kept], *(rate[kept] for rate in rates),
                     colors=[c for _, _, c in _ERROR_KINDS],
                     labels=[label for _, label, _ in _ERROR_KINDS], lw=0)
        lost = int(sum(float(np.sum(series[c])) for c, _, _ in _ERROR_KINDS))
        if lost == 0:
            ax.text(0.5, 0.5, "no attempts lost", transform=ax.transAxes, ha="center",
                    va="center", color="#4d4d4d")
            ax.set_ylim(0, 1)
        service_title(ax, name, names, f"{lost:,} attempt{'' if lost == 1 else 's'} lost")
        ax.set_ylabel("attempts / s")
        count_axis(ax)
        legend_outside(ax)

    return service_panels(run, draw)


def plot_utilization(run: RunData) -> bytes:
    """Worker utilization and mean queue length, one line per service."""
    names = run.services
    tick = run.summary.tick_s
    fig, axes = new_figure(2, 3.0)
    for name in names:
        series = run.series[name]
        x = centres(series, tick)
        colour = service_colour(name, names)
        thin_line(axes[0], x, series["utilization"] * 100.0, color=colour, lw=1.4, label=name)
        thin_line(axes[1], x, series["in_queue"], color=colour, lw=1.4, label=name)
    axes[0].set_title("busy share of ready workers", loc="left")
    axes[0].set_ylabel("utilization")
    axes[0].set_ylim(0, 105)
    y_percent(axes[0])
    axes[1].set_title("requests waiting for a worker (mean over tick)", loc="left")
    axes[1].set_ylabel("waiting requests")
    count_axis(axes[1])
    for ax in axes:
        legend_outside(ax)
    finish_axes(run, axes)
    return to_png_aligned(fig)


def peak_window(run: RunData) -> tuple[float, float]:
    """The 30 minutes around the highest total offered load: 10 before, 20 after (the
    midnight rush of 11.11 climbs in seconds and decays over minutes)."""
    first = run.series[run.services[0]]
    total = sum((run.series[n]["offered_rps"] for n in run.services
                 if run.series[n].t_s.shape == first.t_s.shape), np.zeros_like(first.t_s))
    peak_s = float(first.t_s[int(np.argmax(total))])
    start = max(0.0, peak_s - _ZOOM_BEFORE_S)
    return start, min(run.summary.duration_s, start + _ZOOM_BEFORE_S + _ZOOM_AFTER_S)


def peak_zoom_applies(run: RunData) -> bool:
    """True when the run is much longer than the window ``peak_window`` zooms on."""
    needed = has_columns("offered_rps", "completed", "instances_ready", "p95_ms", "p99_ms")
    return needed(run) and run.summary.duration_s > 3 * (_ZOOM_BEFORE_S + _ZOOM_AFTER_S)


def plot_peak(run: RunData) -> bytes:
    """Around the peak: rates vs capacity (left) and p95/p99 vs the SLO (right) per service."""
    names = run.services
    tick = run.summary.tick_s
    window = peak_window(run)
    fig, axes = new_grid(len(names), 2, 2.3)
    for row, name in enumerate(names):
        series = run.series[name]
        x = centres(series, tick)
        inside = (x >= window[0] - tick) & (x <= window[1] + tick)
        colour = service_colour(name, names)
        rates, lat = axes[row, 0], axes[row, 1]
        capacity, exact = capacity_rps(run, name)
        half = PANEL_COLUMNS // 2  # two columns of panels
        thin_line(rates, x[inside], series["offered_rps"][inside], half, color=colour, lw=1.8,
              label="offered")
        thin_line(rates, x[inside], served_rps(series, tick)[inside], half, color="#222222", lw=0.9,
              ls="--", label="served in time")
        thin_line(rates, x[inside], capacity[inside], half, color="#7f7f7f", lw=1.2, ls="-.",
              label="capacity" + ("" if exact else " (estimated)"))
        count_axis(rates)
        rates.set_ylabel(f"{name}\nrequests / s", color=colour, fontweight="bold")
        thin_line(lat, x[inside], series["p95_ms"][inside], half, color=colour, lw=1.0, ls="--",
              label="p95")
        thin_line(lat, x[inside], series["p99_ms"][inside], half, color=colour, lw=1.6, label="p99")
        target = run.summary.services[name].slo.get("p99_ms")
        latency_axis(lat)
        lat.set_ylabel("")
        if target is not None:
            for w in miss_windows(series.t_s, series["p99_ms"], target.target, tick):
                lat.axvspan(w.start_s, w.end_s, color=_SLO_COLOUR, alpha=0.10, lw=0)
            slo_line(lat, target.target, "p99 SLO")
    axes[0, 0].set_title("requests per second", loc="left")
    axes[0, 1].set_title("latency per tick", loc="left")
    # Lines are drawn in each service's colour: the legends show their styles in grey.
    neutral_legend(axes[-1, 0], [("offered", "-", 1.8, _KEY), ("served in time", "--", 0.9,
                                 "#222222"), ("capacity", "-.", 1.2, "#7f7f7f")])
    neutral_legend(axes[-1, 1], [("p95", "--", 1.0, _KEY), ("p99", "-", 1.6, _KEY),
                                 ("p99 SLO", "--", 1.0, _SLO_COLOUR)])
    for col in range(2):
        clock_axis(axes[-1, col], run.start_clock_s, span_s=window)
    for ax in axes.flat:
        ax.grid(True, alpha=0.3)
    return to_png(fig)


def _has_prices(run: RunData) -> bool:
    return any(cumulative_cost(run, name) is not None for name in run.services)


def plot_cost(run: RunData) -> bytes:
    """Cumulative cost per service and in total."""
    names = run.services
    fig, axes = new_figure(1, 3.4)
    ax = axes[0]
    end = run.series[names[0]].t_s + run.summary.tick_s
    total = np.zeros_like(end)
    for name in names:
        spent = cumulative_cost(run, name)
        if spent is None or spent.shape != total.shape:
            continue
        total = total + spent
        thin_line(ax, end, spent, lw=1.5, color=service_colour(name, names),
              label=f"{name} ({fmt_money(float(spent[-1]), run.currency)})")
    thin_line(ax, end, total, color="#222222", lw=2.0,
          label=f"total ({fmt_money(float(total[-1]), run.currency)})")
    ax.set_title("cost so far (instance-hours x price per hour)", loc="left")
    ax.set_ylabel(f"cost ({run.currency})")
    count_axis(ax)
    legend_outside(ax)
    finish_axes(run, axes)
    return to_png_aligned(fig)


RUN_PLOTS: Mapping[str, ReportPlot] = MappingProxyType({
    "traffic": ReportPlot(
        "traffic.png", "Traffic: offered, served and capacity",
        "Requests per second per service: offered (first attempts arriving), served "
        "(completed within the timeout) and the capacity of the ready instances at full "
        "utilization. Where offered rises above capacity, queues build and the SLO is at risk.",
        has_columns("offered_rps", "completed", "instances_ready"), plot_traffic),
    "peak": ReportPlot(
        "peak.png", "Around the peak",
        "The 30 minutes around the highest total offered load, where the run is decided: "
        "offered, served and capacity per service (left) and the per-tick p95 and p99 against "
        "the p99 SLO (right). Shown when the run is much longer than the peak.",
        peak_zoom_applies, plot_peak),
    "instances": ReportPlot(
        "instances.png", "Instances: desired, booting, ready",
        "Ready instances (filled), instances still booting (hatched, on top) and the count "
        "the autoscaler wanted (dashed). The gap between desired and ready is boot time. "
        "Orange bars along the bottom mark when instances were booting, with the most at once "
        "(+N); a bar is drawn at least about 5 pixels wide, so a boot of a minute stays "
        "visible on a two-hour axis.",
        has_columns("instances_ready", "instances_booting", "instances_desired"),
        plot_instances),
    "latency": ReportPlot(
        "latency.png", "Latency per tick against the SLO",
        "Percentiles of the attempts completing in each tick (log scale), with the SLO "
        "targets as red dashed lines; shaded spans are ticks above a target.",
        has_columns("p50_ms", "p95_ms", "p99_ms"), plot_latency),
    "errors": ReportPlot(
        "errors.png", "Lost attempts per tick",
        "Attempts per second that timed out, were shed (queue full or no ready instance) or "
        "failed with their instance, stacked.",
        has_columns("timed_out", "shed", "failed"), plot_errors),
    "utilization": ReportPlot(
        "utilization.png", "Utilization and queues",
        "Share of ready workers that were busy, and the mean number of requests waiting. "
        "Near 100% utilization the queue, and with it latency, grows without bound.",
        has_columns("utilization", "in_queue"), plot_utilization),
    "cost": ReportPlot(
        "cost.png", "Cost over time",
        "Cumulative cost of booting and ready instances per service and in total; the end "
        "values are the run's costs in the instances table.",
        lambda run: has_columns("instances_ready", "instances_booting")(run) and _has_prices(run),
        plot_cost),
    "cluster_cores": ReportPlot(
        "cluster_cores.png", "Cluster cores: online, batch, idle",
        "Cores of the ready nodes (mean over each tick) held by online instances, by batch "
        "containers and left idle; the solid line is the capacity of the ready nodes (dashed: "
        "with the nodes still provisioning). Where online grows at the peak, batch must "
        "shrink: by preemption, throttling, or by never having been there (dedicated pools).",
        has_cluster, plot_cluster_cores, CLUSTER_SECTION),
    "cluster_nodes": ReportPlot(
        "cluster_nodes.png", "Machines and pending instances",
        "Nodes billed (ready or still provisioning), ready, and in use (holding at least one "
        "container), at the end of each tick; below, online instances that the autoscaler "
        "started but no node had room for. Pending instances are capacity the SLO counted on "
        "and did not get.",
        has_cluster, plot_cluster_nodes, CLUSTER_SECTION),
    "cluster_utilization": ReportPlot(
        "cluster_utilization.png", "Cluster CPU utilization",
        "Busy cores over the cores of the ready nodes: the online services' busy workers "
        "(blue) and the batch containers (amber, counted fully busy); the dashed line is the "
        "run's mean, the figure colocation is meant to raise.",
        has_cluster, plot_cluster_utilization, CLUSTER_SECTION),
    "cluster_batch": ReportPlot(
        "cluster_batch.png", "Batch work: done, lost, preempted, waiting",
        "Cumulative batch core-hours done (completed, or kept by a checkpoint) and lost "
        "(progress preemption threw away, to be redone); batch containers preempted in each "
        "tick; containers running, queued and throttled. A growing queue is batch work "
        "delayed; lost work is CPU paid for twice.",
        has_cluster, plot_cluster_batch, CLUSTER_SECTION),
})
"""Every plot a run report may show, in report order. Add a plot family by adding an entry."""
