"""Plots of a load-test report (PNG bytes), in the style of the simulator's report plots."""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes

from sim.report import (
    RunData,
    ServiceSeries,
    centres,
    empty_note,
    latency_axis,
    legend_outside,
    service_colour,
    service_panels,
    service_title,
)

_PANEL_IN = 2.5
_BEHIND_COLOUR = "#c00000"


def _column(series: ServiceSeries, name: str) -> np.ndarray:
    return series[name] if series.has(name) else np.full(series.t_s.shape, np.nan)


def window_edges(starts_s: np.ndarray, window_s: float, end_s: float) -> np.ndarray:
    """The edges of measurement windows starting at ``starts_s``: each lasts ``window_s``,
    the last one ends at the run's end ``end_s`` when that comes first."""
    if starts_s.size == 0:
        return np.array([0.0])
    last = min(float(starts_s[-1]) + window_s, max(end_s, float(starts_s[-1])))
    return np.append(starts_s.astype(float), last)


def plot_generator(run: RunData) -> bytes:
    """Target rate, sent rate and late-or-unsent sends per second, one panel per service."""
    names = run.services
    tick = run.summary.tick_s

    def draw(ax: Axes, name: str, series: ServiceSeries, x: np.ndarray) -> None:
        # Each window's figure holds over the window's span: steps, not a line between window
        # centres (which would draw a ramp that no one sent).
        colour = service_colour(name, names)
        edges = window_edges(series.t_s, tick, run.summary.duration_s)
        ax.stairs(_column(series, "target_rps"), edges, color="#222222", lw=1.0, ls="--",
                  label="target (curve)", baseline=None)
        ax.stairs(series["offered_rps"], edges, color=colour, lw=1.8, label="sent",
                  baseline=None)
        behind = (np.nan_to_num(_column(series, "late"))
                  + np.nan_to_num(_column(series, "dropped"))) / tick
        if np.any(behind > 0):
            ax.stairs(behind, edges, fill=True, color=_BEHIND_COLOUR, alpha=0.35, lw=0,
                      label="late or never sent")
        total = int(np.sum(behind) * tick)
        service_title(ax, name, names, "generator kept up" if total == 0
                      else f"{total:,} sends late or never sent")
        ax.set_ylabel("requests / s")
        ax.set_ylim(bottom=0)
        legend_outside(ax)

    return service_panels(run, draw)


def plot_corrected_vs_raw(run: RunData) -> bytes:
    """Per-window p99 from the intended send time (corrected) and from the actual send (raw)."""
    names = run.services

    def draw(ax: Axes, name: str, series: ServiceSeries, x: np.ndarray) -> None:
        colour = service_colour(name, names)
        corrected, raw = series["p99_ms"], _column(series, "raw_p99_ms")
        if np.all(np.isnan(corrected)):
            empty_note(ax, "no request completed")
        else:
            ax.plot(x, corrected, color=colour, lw=1.8, label="p99 corrected")
            ax.plot(x, raw, color=colour, lw=1.0, ls=":", label="p99 raw")
            latency_axis(ax)
            legend_outside(ax)
        service_title(ax, name, names)

    return service_panels(run, draw)


def plot_sim_overlay(run: RunData, sim_run: RunData) -> bytes:
    """Per-window p95 and p99: measured (solid) vs simulated (dashed), one panel per service."""
    names = run.services

    def draw(ax: Axes, name: str, series: ServiceSeries, x: np.ndarray) -> None:
        colour = service_colour(name, names)
        drawn = False
        for column, width in (("p95_ms", 1.0), ("p99_ms", 1.8)):
            label = column.removesuffix("_ms")
            if not np.all(np.isnan(series[column])):
                ax.plot(x, series[column], color=colour, lw=width,
                        label=f"{label} load test")
                drawn = True
            if name in sim_run.series:
                sim_series = sim_run.series[name]
                if not np.all(np.isnan(sim_series[column])):
                    ax.plot(centres(sim_series, sim_run.summary.tick_s), sim_series[column],
                            color="#222222", lw=width, ls="--", label=f"{label} simulator")
                    drawn = True
        if drawn:
            latency_axis(ax)
            legend_outside(ax)
        else:
            empty_note(ax, "no request completed")
        service_title(ax, name, names)

    return service_panels(run, draw)
