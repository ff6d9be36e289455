"""Per-tick series of replicated runs as a mean line with a 95% band.

The series are read from each replication's timeseries.csv (``sim.report.load_run``), as
written, so the command that ran the replications and ``peaksim report`` draw the same plot. At
each tick the band is the Student t interval of the mean over the replications that have a
value there (a tick without completions has no percentile); with fewer than two values the tick
shows the mean alone. Several variants overlay in their variant colours.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.ticker import FixedLocator

from sim.intervals import CONFIDENCE, t_quantile
from sim.report import (
    RunData,
    clock_axis,
    clock_ticks,
    latency_axis,
    legend_outside,
    new_grid,
    service_title,
    to_png_aligned,
    variant_colour,
)

PANELS = (("offered_rps", "offered requests/s"), ("instances_ready", "ready instances"),
          ("p99_ms", "p99 per tick"))


def tick_band(values: np.ndarray, confidence: float = CONFIDENCE
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, low, high) per tick of ``values`` (replications x ticks, NaN for no value)."""
    present = np.isfinite(values)
    n = present.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, np.nansum(values, axis=0) / np.maximum(n, 1), np.nan)
        squares = np.nansum((values - mean) ** 2, axis=0)
        sd = np.sqrt(np.where(n > 1, squares / np.maximum(n - 1, 1), np.nan))
    quantiles = np.array([t_quantile(int(k), confidence) if k > 1 else np.nan for k in n])
    half = quantiles * sd / np.sqrt(np.maximum(n, 1))
    return mean, mean - half, mean + half


def plot_bands(names: Sequence[str], runs: Sequence[Sequence[RunData]],
               start_clock_s: float | None, p99_targets_ms: dict[str, float]) -> bytes:
    """One row per service, one column per panel; ``runs[i]`` are the replications of
    variant ``names[i]``."""
    services = runs[0][0].services
    tick_s = runs[0][0].summary.tick_s
    fig, axes = new_grid(len(services), len(PANELS), height_in=2.6)
    fig.set_size_inches(12, 2.6 * len(services))
    for row, service in enumerate(services):
        for col, (column, label) in enumerate(PANELS):
            ax = axes[row, col]
            for k, (name, outputs) in enumerate(zip(names, runs, strict=True)):
                values = np.array([o.series[service][column] for o in outputs], dtype=float)
                mean, low, high = tick_band(values)
                t_s = (np.arange(values.shape[1]) + 0.5) * tick_s
                colour = variant_colour(k)
                ax.plot(t_s, mean, color=colour, lw=1.0, label=name)
                ax.fill_between(t_s, low, high, color=colour, alpha=0.25, lw=0)
            if column == "p99_ms":
                latency_axis(ax)
                target = p99_targets_ms.get(service)
                if target is not None:
                    ax.axhline(target, color="#b2182b", ls="--", lw=1, label="p99 SLO")
            ax.set_title(label, loc="right", fontsize="small")
            ax.grid(True, alpha=0.3)
            if col == 0:
                service_title(ax, service, services)
        if row == 0:
            legend_outside(axes[0, len(PANELS) - 1])
    span = (0.0, len(runs[0][0].series[services[0]][PANELS[0][0]]) * tick_s)
    for ax in axes[-1, :]:
        clock_axis(ax, start_clock_s, span_s=span)
        # three panels side by side: fewer clock labels, or they overlap
        ax.xaxis.set_major_locator(FixedLocator(clock_ticks(*span, start_clock_s, most=4)))
    return to_png_aligned(fig, left=0.06, right=0.86)
