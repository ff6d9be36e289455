"""Plot helpers shared by every figure: a headless backend, per-service colours and clock axes.

Figures are saved as PNG bytes (callers write them atomically). Time axes show the scenario's
wall clock when it has one (``23:00 .. 01:00``), elapsed time otherwise.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # headless: reports are made on servers and in CI

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator  # noqa: E402

from sim.units import clock_label  # noqa: E402

_KNOWN_COLOURS = {"browse": "#1f77b4", "order": "#ff7f0e", "payment": "#2ca02c"}
_OTHER_COLOURS = ["#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]


def count_label(value: float) -> str:
    """An axis label for a count or rate: thousands separators, millions as ``2.5M`` (real
    11.11 rates would not fit the axis margin), small values with three digits."""
    if abs(value) >= 1e6:
        return f"{value / 1e6:,.4g}M"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def service_colour(name: str, all_names: Sequence[str]) -> str:
    """The colour of a service, the same in every plot of every report."""
    if name in _KNOWN_COLOURS:
        return _KNOWN_COLOURS[name]
    others = [n for n in all_names if n not in _KNOWN_COLOURS]
    index = others.index(name) if name in others else len(others)
    return _OTHER_COLOURS[index % len(_OTHER_COLOURS)]


_TICK_STEPS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600)


def clock_ticks(
    t0_s: float, t1_s: float, start_clock_s: float | None, most: int = 9
) -> list[float]:
    """Tick positions on round clock times (every 1 s .. 6 h) with at most ``most`` ticks."""
    span = max(t1_s - t0_s, 1e-9)
    step = next((s for s in _TICK_STEPS_S if span / s <= most), _TICK_STEPS_S[-1])
    offset = start_clock_s or 0.0
    first = np.ceil((t0_s + offset) / step) * step - offset
    return list(np.arange(first, t1_s + 1e-9, step))


def clock_axis(
    ax: Axes, start_clock_s: float | None, label: bool = True,
    span_s: tuple[float, float] | None = None, most: int = 9,
) -> None:
    """Label the x axis (seconds from t=0) with wall-clock times on round clock ticks (at most
    ``most``: fewer on a narrow panel)."""
    t0, t1 = span_s if span_s is not None else ax.get_xlim()
    ax.set_xlim(t0, t1)
    ax.xaxis.set_major_locator(FixedLocator(clock_ticks(t0, t1, start_clock_s, most)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: clock_label(x, start_clock_s)))
    if label:
        ax.set_xlabel("time of day" if start_clock_s is not None else "time since start")


def new_figure(rows: int = 1, height_in: float = 3.6) -> tuple[Figure, list[Axes]]:
    """A figure of ``rows`` stacked axes sharing the time axis, sized for a report page."""
    fig, axes = plt.subplots(rows, 1, figsize=(10, height_in * rows), sharex=True, squeeze=False)
    return fig, list(axes[:, 0])


def new_grid(rows: int, cols: int, height_in: float = 2.5) -> tuple[Figure, np.ndarray]:
    """A figure of ``rows x cols`` axes sharing the time axis (``axes[row, col]``), sized for a
    report page."""
    fig, axes = plt.subplots(rows, cols, figsize=(10, height_in * rows), sharex=True,
                             squeeze=False)
    return fig, axes


def to_png(fig: Figure) -> bytes:
    """Render and close ``fig``; return the PNG bytes."""
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


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
    fig, axes = plt.subplots(2 if with_zoom else 1, 1, figsize=(10, 7.6 if with_zoom else 4.2),
                             squeeze=False)
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
            ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _p: count_label(y)))
        ax.grid(True, alpha=0.3)
        clock_axis(ax, start_clock_s, span_s=window)
    panels[0][0].legend(loc="upper left", frameon=False)
    return to_png(fig)


_VARIANT_COLOURS = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d"]
_VARIANT_STYLES = ["-", "--", "-.", ":"]


def to_png_aligned(fig: Figure, left: float = 0.085, right: float = 0.78) -> bytes:
    """``to_png`` with the axes at fixed horizontal positions, so that the time axes of the
    figures of one report line up above each other whatever their labels and legends."""
    fig.tight_layout()
    fig.subplots_adjust(left=left, right=right)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def variant_colour(index: int) -> str:
    """The colour of the ``index``-th policy variant in a comparison (same in every plot)."""
    return _VARIANT_COLOURS[index % len(_VARIANT_COLOURS)]


def variant_style(index: int) -> str:
    """A line style per variant, so overlaid variants stay apart in grey-scale print too."""
    return _VARIANT_STYLES[index % len(_VARIANT_STYLES)]


def format_ms(value_ms: float) -> str:
    """Axis label for a latency: ``"250 ms"``, ``"2 s"``."""
    if value_ms >= 1000:
        return f"{value_ms / 1000:g} s"
    return f"{value_ms:g} ms"


def latency_axis(ax: Axes) -> None:
    """A logarithmic latency axis labelled in ms / s (tails span decades at a peak)."""
    ax.set_yscale("log")
    # 1-2-5 steps: a single decade still gets three labels.
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _p: format_ms(y)))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda _y, _p: ""))
    ax.set_ylabel("latency")


SLO_COLOUR = "#c00000"
"""The colour of SLO targets in every plot."""


def slo_line(ax: Axes, target_ms: float, label: str) -> None:
    """An SLO target on a latency axis: a dashed line labelled with its value (``"p99 SLO
    300 ms"``) inside the panel, and the axis extended so the line never sits on the edge.
    Call after the data are drawn and ``latency_axis`` is set."""
    ax.axhline(target_ms, color=SLO_COLOUR, lw=1.0, ls="--")
    bottom, top = ax.get_ylim()
    log = ax.get_yscale() == "log"
    headroom = target_ms * 2.0 if log else target_ms * 1.25
    if top < headroom:
        ax.set_ylim(bottom, headroom)
    ax.annotate(f"{label} {format_ms(target_ms)}", xy=(1.0, target_ms),
                xycoords=("axes fraction", "data"), xytext=(-4, 3),
                textcoords="offset points", ha="right", va="bottom", fontsize="small",
                color=SLO_COLOUR,
                bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.8})


def neutral_legend(ax: Axes, entries: Sequence[tuple[str, str, float, str]],
                   below: float = -0.32) -> None:
    """A legend under ``ax`` for entries drawn in each service's colour: line styles only
    (``(label, linestyle, linewidth, colour)``), so no entry reads as one service's."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], ls=ls, lw=lw, color=colour, label=label)
               for label, ls, lw, colour in entries]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, below), ncol=3,
              frameon=False, fontsize="small")


def legend_outside(ax: Axes) -> None:
    """A legend to the right of the axes: it never hides a curve, whatever the data."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize="small")


def service_title(ax: Axes, name: str, all_names: Sequence[str], detail: str = "") -> None:
    """Panel title naming the service in its colour."""
    ax.set_title(name + (f" — {detail}" if detail else ""), loc="left",
                 color=service_colour(name, all_names), fontweight="bold")


ONLINE_COLOUR = "#2b5c8a"
"""Cores and CPU of the online services together, in every cluster plot."""
BATCH_COLOUR = "#d9a21b"
"""Cores and work of the batch jobs, in every cluster plot."""
IDLE_COLOUR = "#e8e8e8"
"""Free cores of ready nodes."""
LOSS_COLOUR = "#b2182b"
"""Batch work lost and preemptions (the same red as timed-out attempts)."""


def finish_time_axes(
    axes: Sequence[Axes], start_clock_s: float | None, span_s: tuple[float, float],
) -> None:
    """Light grid on every panel and clock labels on the bottom one, over ``span_s``."""
    for ax in axes:
        ax.grid(True, alpha=0.3)
    clock_axis(axes[-1], start_clock_s, span_s=span_s)


def empty_note(ax: Axes, text: str) -> None:
    """Say in the panel that there is nothing to draw (rather than an empty frame)."""
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="#4d4d4d")
    ax.set_ylim(0, 1)


BOOT_COLOUR = "#d95f02"
"""Bars marking booting instances (instances.png)."""
MIN_MARK = 0.006
"""Narrowest booting bar, as a fraction of the time axis (about 5 px at the report's size)."""


def booting_marks(ax: Axes, t_s: np.ndarray, booting: np.ndarray, tick_s: float,
                  span_s: float) -> None:
    """Each stretch of ticks with booting instances as a dark bar along the bottom of ``ax``
    with its largest count (``+14``): a one-minute boot is a sliver of a two-hour axis, so a
    bar is drawn at least ``MIN_MARK`` of the axis wide, from where the boot starts."""
    active = np.nan_to_num(booting) > 0
    starts = np.flatnonzero(active & ~np.concatenate(([False], active[:-1])))
    for n, first in enumerate(starts):
        last = first
        while last + 1 < active.size and active[last + 1]:
            last += 1
        start_s, end_s = float(t_s[first]), float(t_s[last]) + tick_s
        ax.axvspan(start_s, max(end_s, start_s + MIN_MARK * span_s), ymin=0.0, ymax=0.05,
                   color=BOOT_COLOUR, lw=0, label="booting, +most at once" if n == 0 else None)
        ax.annotate(f"+{np.max(booting[first:last + 1]):.0f}", xy=(start_s, 0.05),
                    xycoords=("data", "axes fraction"), xytext=(0, 2),
                    textcoords="offset points", fontsize="x-small", color=BOOT_COLOUR,
                    ha="left", va="bottom")
