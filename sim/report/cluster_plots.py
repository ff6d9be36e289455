"""The cluster plots of a colocation run report: cores, nodes, CPU utilization and batch work.

Each reads ``RunData.cluster`` (``cluster.csv``) and returns PNG bytes; ``RUN_PLOTS`` lists
them in its ``"cluster"`` section. Means over a tick are drawn at the tick's centre; counts
taken at a tick's end and cumulative columns at its end. Online work is always blue, batch
amber, idle grey and losses red (``sim.report.plotting``), so the four figures read as one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sim.report.cluster_data import (
    SECONDS_PER_HOUR,
    ClusterSeries,
    fmt_core_hours,
    fmt_share,
)
from sim.report.data import RunData
from sim.report.decimate import envelope_indices
from sim.report.document import fmt_count
from sim.report.plotting import (
    BATCH_COLOUR,
    IDLE_COLOUR,
    LOSS_COLOUR,
    ONLINE_COLOUR,
    PANEL_COLUMNS,
    count_label,
    empty_note,
    finish_time_axes,
    legend_outside,
    new_figure,
    thin_line,
    to_png_aligned,
    y_labels,
    y_percent,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def has_cluster(run: RunData) -> bool:
    """``applies`` of the cluster plots: the run directory has a ``cluster.csv``."""
    return run.cluster is not None


def _cluster(run: RunData) -> ClusterSeries:
    if run.cluster is None:
        raise ValueError(f"{run.run_dir}: no cluster.csv (a cluster plot was asked for)")
    return run.cluster


def _centres(run: RunData) -> np.ndarray:
    return _cluster(run).t_s + run.summary.tick_s / 2.0


def _ends(run: RunData) -> np.ndarray:
    return _cluster(run).t_s + run.summary.tick_s


def _span(run: RunData) -> tuple[float, float]:
    return 0.0, run.summary.duration_s


def _counts(ax: Axes) -> None:
    """Whole numbers on the y axis (nodes, containers, cores), never below zero."""
    from matplotlib.ticker import MaxNLocator  # the axes exist: matplotlib is imported

    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
    y_labels(ax, amount_label)


def amount_label(value: float) -> str:
    """``50k`` from ten thousand up, so that the label fits the aligned left margin."""
    if 1e4 <= abs(value) < 1e6:
        return f"{value / 1e3:,.4g}k"
    return count_label(value)


def amounts_axis(ax: Axes) -> None:
    """Amounts on the y axis (cores, core-hours) as ``2,000``, ``50k``, ``2.5M``, from 0: a
    real-sized cluster holds and does tens of thousands of them."""
    ax.set_ylim(bottom=0)
    y_labels(ax, amount_label)


def plot_cluster_cores(run: RunData) -> bytes:
    """Cores of the ready nodes stacked online / batch / idle, with the capacity of the ready
    nodes (and of the nodes still provisioning, when some are)."""
    c = _cluster(run)
    x = _centres(run)
    fig, axes = new_figure(1, 3.8)
    ax = axes[0]
    ready = c.ready_cores
    layers = [c["online_cores"], c["batch_cores"], c["idle_cores"]]
    kept = envelope_indices([*layers, ready], PANEL_COLUMNS)
    ax.stackplot(x[kept], *(layer[kept] for layer in layers),
                 colors=[ONLINE_COLOUR, BATCH_COLOUR, IDLE_COLOUR],
                 labels=["online instances", "batch containers", "idle"], lw=0)
    thin_line(ax, x, ready, color="#222222", lw=1.4, label="capacity of ready nodes")
    with np.errstate(divide="ignore", invalid="ignore"):
        per_node = np.where(c["nodes_ready"] > 0, ready / np.maximum(c["nodes_ready"], 1), 0.0)
    if np.any(c["nodes"] > c["nodes_ready"]):
        thin_line(ax, x, per_node * c["nodes"], color="#222222", lw=1.0, ls="--",
                  label="with nodes provisioning")
    ax.set_title(f"cores of the ready nodes, mean over each tick (most {fmt_count(max(ready))}"
                 f" cores on {fmt_count(max(c['nodes_ready']))} nodes)", loc="left")
    ax.set_ylabel("cores")
    _counts(ax)
    legend_outside(ax)
    finish_time_axes(axes, run.start_clock_s, _span(run))
    return to_png_aligned(fig)


def plot_cluster_nodes(run: RunData) -> bytes:
    """Nodes billed / ready / in use, and below them the online instances waiting for a node
    (a panel only when some did: an empty panel would take the eye for nothing)."""
    c = _cluster(run)
    ends = _ends(run)
    pending = c["pending_instances"]
    waited = bool(np.any(pending > 0))
    fig, axes = new_figure(2 if waited else 1, 2.6 if waited else 3.2)
    top = axes[0]
    top.fill_between(ends, 0, c["nodes_ready"], step="pre", color=ONLINE_COLOUR, alpha=0.15,
                     lw=0)
    top.step(ends, c["nodes"], where="pre", color="#222222", lw=1.6,
             label="billed (ready or provisioning)")
    top.step(ends, c["nodes_ready"], where="pre", color=ONLINE_COLOUR, lw=1.2, ls="--",
             label="ready")
    top.step(ends, c["nodes_in_use"], where="pre", color=BATCH_COLOUR, lw=1.4,
             label="in use (any container)")
    title = f"machines: at most {fmt_count(max(c['nodes']))} billed at once"
    top.set_title(title + ("" if waited else "; no online instance waited for a node"),
                  loc="left")
    top.set_ylabel("nodes")
    _counts(top)
    top.set_ylim(0, max(1.0, float(np.max(c["nodes"]))) * 1.12)
    legend_outside(top)
    if waited:
        bottom = axes[1]
        bottom.fill_between(ends, 0, pending, step="pre", color=LOSS_COLOUR, alpha=0.35, lw=0)
        bottom.step(ends, pending, where="pre", color=LOSS_COLOUR, lw=1.2, label="pending")
        bottom.set_title(f"online instances waiting for room on a node: at most "
                         f"{fmt_count(max(pending))} at once", loc="left")
        bottom.set_ylabel("instances")
        _counts(bottom)
        legend_outside(bottom)
    finish_time_axes(axes, run.start_clock_s, _span(run))
    return to_png_aligned(fig)


def plot_cluster_utilization(run: RunData) -> bytes:
    """Mean CPU utilization of the ready nodes over time, split into the online services' busy
    cores and the batch cores, with the run's mean."""
    c = _cluster(run)
    x = _centres(run)
    ready = c.ready_cores
    with np.errstate(divide="ignore", invalid="ignore"):
        batch = np.where(ready > 0, c["batch_cores"] / np.where(ready > 0, ready, 1.0), 0.0)
    total = c["cpu_utilization"]
    online = np.clip(total - batch, 0.0, None)
    fig, axes = new_figure(1, 3.4)
    ax = axes[0]
    layers = [online * 100.0, np.minimum(batch, total) * 100.0]
    kept = envelope_indices([*layers, total], PANEL_COLUMNS)
    ax.stackplot(x[kept], *(layer[kept] for layer in layers),
                 colors=[ONLINE_COLOUR, BATCH_COLOUR], labels=["online (busy workers)", "batch"],
                 lw=0, alpha=0.85)
    thin_line(ax, x, total * 100.0, color="#222222", lw=1.2, label="CPU utilization")
    summary = run.summary.cluster
    mean = summary.mean_cpu_utilization if summary else _weighted_mean(total, ready)
    ax.axhline(mean * 100.0, color="#222222", lw=1.0, ls="--",
               label=f"run mean {fmt_share(mean)}")
    ax.set_title("busy cores over the cores of the ready nodes", loc="left")
    ax.set_ylabel("CPU utilization")
    ax.set_ylim(0, 105)
    y_percent(ax)
    legend_outside(ax)
    finish_time_axes(axes, run.start_clock_s, _span(run))
    return to_png_aligned(fig)


def _weighted_mean(utilization: np.ndarray, ready_cores: np.ndarray) -> float:
    """Utilization over the run, weighting each tick by its ready cores (as the engine does)."""
    weight = float(np.sum(ready_cores))
    return float(np.sum(utilization * ready_cores) / weight) if weight > 0 else 0.0


def plot_cluster_batch(run: RunData) -> bytes:
    """Batch work done and lost (cumulative core-hours), preemptions per tick, and batch
    containers running / queued / throttled."""
    c = _cluster(run)
    ends, tick = _ends(run), run.summary.tick_s
    fig, axes = new_figure(4, 1.95)
    done_ax, lost_ax, preempt_ax, queue_ax = axes
    done = c["batch_core_s_done"] / SECONDS_PER_HOUR
    kept = envelope_indices([done], PANEL_COLUMNS)
    done_ax.fill_between(ends[kept], 0, done[kept], color=BATCH_COLOUR, alpha=0.25, lw=0)
    done_ax.plot(ends[kept], done[kept], color=BATCH_COLOUR, lw=1.8, label="done")
    done_ax.set_title(f"batch work done so far: {fmt_core_hours(float(done[-1]))} core-hours",
                      loc="left")
    done_ax.set_ylabel("core-hours")
    amounts_axis(done_ax)
    lost = c["batch_core_s_lost"] / SECONDS_PER_HOUR
    if np.any(lost > 0):
        thin_line(lost_ax, ends, lost, color=LOSS_COLOUR, lw=1.6, label="lost")
        amounts_axis(lost_ax)
        lost_ax.set_ylabel("core-hours")
    else:
        empty_note(lost_ax, "no batch work lost")
        lost_ax.set_yticks([])
    lost_ax.set_title(f"batch work lost to preemption so far: {fmt_core_hours(float(lost[-1]))}"
                      f" core-hours", loc="left")
    evicted = c["batch_preempted"]
    if np.any(evicted > 0):
        # At least 1/250 of the run wide: a 5 s bar on a day-long axis would be invisible.
        width = max(tick, run.summary.duration_s / 250.0)
        preempt_ax.bar(c.t_s + tick / 2.0, evicted, width=width, color=LOSS_COLOUR, lw=0)
        _counts(preempt_ax)
    else:
        empty_note(preempt_ax, "no batch container was preempted")
        preempt_ax.set_yticks([])
    preempt_ax.set_title(f"batch containers preempted per tick ({fmt_count(np.sum(evicted))} "
                         f"in all)", loc="left")
    preempt_ax.set_ylabel("containers")
    thin_line(queue_ax, ends, c["batch_running"], color=BATCH_COLOUR, lw=1.5, label="running")
    thin_line(queue_ax, ends, c["batch_queued"], color="#555555", lw=1.2, ls="--",
              label="queued")
    if np.any(c["batch_throttled"] > 0):
        thin_line(queue_ax, ends, c["batch_throttled"], color=ONLINE_COLOUR, lw=1.2, ls=":",
                  label="throttled")
    queue_ax.set_title("batch containers at the end of each tick", loc="left")
    queue_ax.set_ylabel("containers")
    _counts(queue_ax)
    for ax in (done_ax, lost_ax, queue_ax):
        if ax.get_legend_handles_labels()[0]:
            legend_outside(ax)
    finish_time_axes(axes, run.start_clock_s, _span(run))
    return to_png_aligned(fig)
