"""Plot helpers shared by every figure: a headless backend, per-service colours and clock axes.

Figures are saved as PNG bytes (callers write them atomically). Time axes show the scenario's
wall clock when it has one (``23:00 .. 01:00``), elapsed time otherwise.

matplotlib is imported when the first figure is made (``pyplot()``), not with this module, so
that a report written without plots (``--no-plots``) never pays for it; modules that draw
import matplotlib's classes for type hints only, and ask this module for axes formatters.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from sim.report.decimate import envelope
from sim.units import clock_label

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

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
    from matplotlib.ticker import FixedLocator, FuncFormatter

    t0, t1 = span_s if span_s is not None else ax.get_xlim()
    ax.set_xlim(t0, t1)
    ax.xaxis.set_major_locator(FixedLocator(clock_ticks(t0, t1, start_clock_s, most)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: clock_label(x, start_clock_s)))
    if label:
        ax.set_xlabel("time of day" if start_clock_s is not None else "time since start")


DPI = 110
"""Resolution of every PNG (a 10-inch figure is 1,100 pixels wide)."""
FIGURE_WIDTH_IN = 10.0
ALIGNED_LEFT, ALIGNED_RIGHT = 0.085, 0.78
"""Where ``to_png_aligned`` puts the panels' left and right edges (fractions of the width)."""
PANEL_COLUMNS = round((ALIGNED_RIGHT - ALIGNED_LEFT) * FIGURE_WIDTH_IN * DPI)
"""Pixel columns of an aligned panel: series longer than twice this are thinned for drawing."""

_STYLE = {
    # A title sits right above its axes. matplotlib's default (None) moves it above any
    # x tick labels on top, which none of these figures has, at the price of measuring
    # every tick label of the panel on each draw: a third of the drawing time.
    "axes.titley": 1.0,
    # No "+1.2e3" offset above an axis, where it would collide with the panel title:
    # large values are labelled in full or by ``count_label``.
    "axes.formatter.useoffset": False,
}


@functools.cache
def pyplot() -> ModuleType:
    """``matplotlib.pyplot`` on the headless Agg backend (reports are made on servers and in
    CI), imported on the first call."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def new_figure(rows: int = 1, height_in: float = 3.6) -> tuple[Figure, list[Axes]]:
    """A figure of ``rows`` stacked axes sharing the time axis, sized for a report page."""
    fig, axes = new_grid(rows, 1, height_in)
    return fig, list(axes[:, 0])


def new_grid(rows: int, cols: int, height_in: float = 2.5,
             sharex: bool = True) -> tuple[Figure, np.ndarray]:
    """A figure of ``rows x cols`` axes (``axes[row, col]``) sharing the time axis unless
    ``sharex`` is False, sized for a report page."""
    plt = pyplot()
    with plt.rc_context(_STYLE):
        fig, axes = plt.subplots(rows, cols, figsize=(FIGURE_WIDTH_IN, height_in * rows),
                                 sharex=sharex, squeeze=False, dpi=DPI)
    return fig, axes


def to_png(fig: Figure) -> bytes:
    """Lay ``fig`` out tightly around its labels, render and close it; return the PNG bytes."""
    fig.tight_layout()
    return _render(fig)


def _render(fig: Figure) -> bytes:
    """Draw ``fig`` once into PNG bytes and close it."""
    # tight_layout leaves a placeholder layout engine behind, which makes savefig draw the
    # whole figure a second time; the layout is done, so drop it.
    fig.set_layout_engine(None)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    pyplot().close(fig)
    return buffer.getvalue()


_VARIANT_COLOURS = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d"]
_VARIANT_STYLES = ["-", "--", "-.", ":"]


def to_png_aligned(fig: Figure, left: float = ALIGNED_LEFT, right: float = ALIGNED_RIGHT) -> bytes:
    """``to_png`` with the axes at fixed horizontal positions, so that the time axes of the
    figures of one report line up above each other whatever their labels and legends.

    A figure of one column of panels is laid out from the font sizes alone (``stack_layout``)
    and drawn once; a grid of several columns is measured with ``tight_layout`` first, which
    draws it a second time."""
    if fig.axes and fig.axes[0].get_subplotspec().get_gridspec().ncols == 1:
        fig.subplots_adjust(left=left, right=right, **stack_layout(fig))
    else:
        fig.tight_layout()
        fig.subplots_adjust(left=left, right=right)
    return _render(fig)


def stack_layout(fig: Figure) -> dict[str, float]:
    """``top``, ``bottom`` and ``hspace`` of ``subplots_adjust`` for one column of panels
    sharing the time axis, computed from the fonts as ``tight_layout`` would find them: a
    pad of 1.08 font sizes around the figure and between panels, each panel's title above
    it, tick labels and the time-axis label under the last one, and room for a y tick label
    overhanging a panel's bottom edge. Titles are assumed at the axes' title size."""
    from matplotlib import rcParams

    rows = fig.axes[0].get_subplotspec().get_gridspec().nrows
    titles_pt = [0.0] * rows  # twin axes share their panel's row
    xlabel = False
    for ax in fig.axes:
        row = ax.get_subplotspec().rowspan.start
        titles_pt[row] = max(titles_pt[row], _title_pt(ax))
        xlabel = xlabel or (row == rows - 1 and bool(ax.get_xlabel()))
    height_in = fig.get_figheight()
    pad_pt = 1.08 * float(rcParams["font.size"])
    tick_h, _ = _line_pt(rcParams["ytick.labelsize"])
    overhang_pt = tick_h / 2.0  # a y tick label is centred on its tick
    top_pt = pad_pt + max(titles_pt[0], overhang_pt)
    label_h, _ = _line_pt(rcParams["axes.labelsize"])
    xlabel_pt = float(rcParams["axes.labelpad"]) + label_h if xlabel else 0.0
    bottom_pt = (pad_pt + float(rcParams["xtick.major.size"]) + float(rcParams["xtick.major.pad"])
                 + _line_pt(rcParams["xtick.labelsize"])[0] + xlabel_pt)
    gap_pt = pad_pt + overhang_pt + max(titles_pt[1:], default=0.0)
    panels_in = height_in - (top_pt + bottom_pt + gap_pt * (rows - 1)) / 72.0
    return {"top": 1.0 - top_pt / 72.0 / height_in, "bottom": bottom_pt / 72.0 / height_in,
            "hspace": gap_pt / 72.0 / (panels_in / rows) if rows > 1 else 0.0}


def _title_pt(ax: Axes) -> float:
    """How far the tallest title of ``ax`` reaches above it, in points (0 without one)."""
    from matplotlib import rcParams

    lines = max((ax.get_title(loc).count("\n") + 1 for loc in ("left", "center", "right")
                 if ax.get_title(loc)), default=0)
    if not lines:
        return 0.0
    size = rcParams["axes.titlesize"]
    height, descent = _line_pt(size)
    spacing = 1.2 * _points(size)  # matplotlib's line spacing
    return float(rcParams["axes.titlepad"]) + height - descent + (lines - 1) * spacing


@functools.cache
def _line_pt(size: float | str) -> tuple[float, float]:
    """Height and descent in points of a line of text at font ``size`` (as matplotlib lays
    out one line: from the descender of "p" to the ascender of "l")."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath

    _, height, descent = TextToPath().get_text_width_height_descent(
        "lp", FontProperties(size=size), ismath=False)
    return float(height), float(descent)


def _points(size: float | str) -> float:
    from matplotlib.font_manager import FontProperties

    return float(FontProperties(size=size).get_size_in_points())


def thin_line(ax: Axes, x: np.ndarray, y: np.ndarray, columns: int = PANEL_COLUMNS,
              **style: object) -> None:
    """``ax.plot`` of ``y`` over ``x`` thinned to its min/max envelope over ``columns`` pixel
    columns (``sim.report.decimate``): every peak and dip drawn, no more points than pixels."""
    ax.plot(*envelope(x, y, columns), **style)


def count_axis(ax: Axes) -> None:
    """A rate or count axis from zero, labelled with thousands separators (``2.5M`` from a
    million), small values (a few lost attempts/s) with their decimals."""
    ax.set_ylim(bottom=0)
    y_labels(ax, count_label)


def y_labels(ax: Axes, label: Callable[[float], str]) -> None:
    """Label the y axis's major ticks with ``label(value)``."""
    from matplotlib.ticker import FuncFormatter

    ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _p: label(y)))


def y_percent(ax: Axes, whole: float = 100.0) -> None:
    """Label the y axis in percent of ``whole``."""
    from matplotlib.ticker import PercentFormatter

    ax.yaxis.set_major_formatter(PercentFormatter(whole))


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
    from matplotlib.ticker import FuncFormatter, LogLocator

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
    from matplotlib.lines import Line2D  # the figure exists: matplotlib is imported

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
