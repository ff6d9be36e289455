"""``peaksim curve``: tabulate and plot a scenario's traffic."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sim.model import Scenario, TrafficModel
from sim.report.plotting import (
    clock_axis,
    count_label,
    new_grid,
    service_colour,
    to_png,
    y_labels,
)
from sim.runio import atomic_write_bytes, atomic_write_csv, new_run_dir
from sim.units import clock_label


@dataclass(frozen=True)
class PeakRow:
    """A service's peak: the curve's highest rate on a 1-s grid of scenario time (the one
    definition of "peak" that ``plan``, ``run`` and the reports share), when, and the expected
    requests over the whole run."""

    service: str
    peak_rps: float
    peak_s: float
    at: str
    total: float


@dataclass(frozen=True)
class CurveResult:
    csv_path: Path
    png_path: Path
    peaks: list[PeakRow]

    def to_json(self) -> dict[str, Any]:
        """``peaksim curve --json``: the files written and each service's peak."""
        return {"csv": str(self.csv_path), "png": str(self.png_path), "services": {
            row.service: {"peak_rps": round(row.peak_rps, 3), "peak_s": row.peak_s,
                          "peak_at": row.at, "expected_requests": round(row.total, 1)}
            for row in self.peaks}}


def curve_grid_s(duration_s: float, time_scale: float) -> np.ndarray:
    """Sample times: one per second of scenario time, at most 20,000 rows."""
    step = max(1.0 / time_scale, duration_s / 20_000)
    return np.arange(0.0, duration_s + step / 2, step)


def write_curve(
    scenario: Scenario, out: Path | None, log_scale: bool = False,
    rate_scale: float = 1.0, time_scale: float = 1.0,
) -> CurveResult:
    """Write ``traffic.csv`` (``t_s`` and ``<service>_rps`` columns) and ``traffic.png``."""
    model = TrafficModel(scenario, rate_scale=rate_scale, time_scale=time_scale)
    times = curve_grid_s(model.duration_s, model.time_scale)
    rates = {name: model.rates_rps(name, times) for name in model.services}
    out_dir = new_run_dir(scenario.name, out, kind="curve")
    csv_path, png_path = out_dir / "traffic.csv", out_dir / "traffic.png"
    header = ["t_s", *[f"{name}_rps" for name in rates]]
    rows = zip(times.tolist(), *[r.tolist() for r in rates.values()], strict=True)
    atomic_write_csv(csv_path, header, rows)
    # Clock labels follow the scenario's clock compressed by the time scale.
    clock = scenario.start_clock_s
    title = f"{scenario.name}: requests per second"
    scales = [f"rates x{model.rate_scale:g}"] if model.rate_scale != 1.0 else []
    scales += [f"time /{model.time_scale:g}"] if model.time_scale != 1.0 else []
    if scales:
        title += f" ({', '.join(scales)})"
    png = plot_traffic(times, rates, clock if model.time_scale == 1.0 else None, title, log_scale)
    atomic_write_bytes(png_path, png)
    peaks = []
    for name in model.services:
        peak, at = model.peak(name)
        total = model.expected_count(name, 0.0, model.duration_s, step_s=1.0 / model.time_scale)
        label = clock_label(at, clock if model.time_scale == 1.0 else None)
        peaks.append(PeakRow(name, peak, at, label, total))
    return CurveResult(csv_path, png_path, peaks)


def plot_traffic(
    times_s: np.ndarray,
    rates: dict[str, np.ndarray],
    start_clock_s: float | None,
    title: str,
    log_scale: bool = False,
) -> bytes:
    """Requests per second of every service over time, one line per service.

    When the run is long compared with its peak, a second panel zooms on the 30 minutes
    around the highest peak, where the midnight ramp of tens of seconds is visible.
    """
    names = list(rates)
    peak_name = max(names, key=lambda n: float(np.max(rates[n])))
    peak_t = float(times_s[int(np.argmax(rates[peak_name]))])
    span = float(times_s[-1] - times_s[0])
    zoom = (max(times_s[0], peak_t - 600.0), min(times_s[-1], peak_t + 1200.0))
    with_zoom = span > 2 * (zoom[1] - zoom[0])
    fig, axes = new_grid(2 if with_zoom else 1, 1, 3.8 if with_zoom else 4.2, sharex=False)
    panels = [(axes[0, 0], (float(times_s[0]), float(times_s[-1])), title)]
    if with_zoom:
        panels.append((axes[1, 0], zoom, "around the peak"))
    for ax, window, panel_title in panels:
        for name, values in rates.items():
            peak_i = int(np.argmax(values))
            ax.plot(times_s, values, color=service_colour(name, names), lw=1.6,
                    label=f"{name} (peak {values[peak_i]:,.0f} rps at "
                          f"{clock_label(times_s[peak_i], start_clock_s)})")
        ax.set_ylabel("requests per second")
        ax.set_title(panel_title, loc="left")
        if log_scale:
            ax.set_yscale("log")
        else:
            ax.set_ylim(bottom=0)
            y_labels(ax, count_label)
        ax.grid(True, alpha=0.3)
        clock_axis(ax, start_clock_s, span_s=window)
    panels[0][0].legend(loc="upper left", frameon=False)
    return to_png(fig)
