"""The overlay plots of a comparison report (``compare_*.png``): one colour and line style per
variant in every plot; per-tick p99 as small multiples, so variants that overlap stay apart."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import numpy as np

from sim.report.data import RunData, ServiceSeries
from sim.report.derive import cumulative_cost, errors
from sim.report.document import ReportFigure, fmt_money, fmt_ms
from sim.report.plots import peak_window, peak_zoom_applies
from sim.report.plotting import (
    PANEL_COLUMNS,
    clock_axis,
    latency_axis,
    legend_outside,
    new_figure,
    new_grid,
    service_title,
    slo_line,
    thin_line,
    to_png,
    to_png_aligned,
    variant_colour,
    variant_style,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes


class Variant(Protocol):
    """What the plots read of a compared run (``sim.report.compare.Variant``)."""

    @property
    def name(self) -> str: ...
    @property
    def run(self) -> RunData: ...


def comparison_figures(variants: list[Variant], services: list[str]) -> tuple[ReportFigure, ...]:
    """Every figure of a comparison report, in reading order."""
    # Per-tick p99 over hours is noise when overlaid; the variants differ at the peak.
    first = variants[0].run
    zoom = peak_window(first) if peak_zoom_applies(first) else None
    figures = [
        ReportFigure("compare_instances.png", "Ready instances by variant",
                     "Mean ready instances per tick, one line per variant.",
                     _overlay(variants, services, lambda s, _t: s["instances_ready"],
                              "instances", log=False)),
        ReportFigure("compare_p99.png", "Per-tick p99 latency (ms) by variant" + (
                         " around the peak" if zoom else ""),
                     "p99 in ms of the attempts completing in each tick (log scale): one "
                     "column per variant, in its colour, with the other variants in grey "
                     "behind it, so variants that overlap stay readable; the red dashed line "
                     "is the p99 SLO." + (
                         " Zoomed on the 30 minutes around the highest offered load of the "
                         f"first variant ({variants[0].name})." if zoom else ""),
                     _p99_multiples(variants, services, zoom)),
        ReportFigure("compare_errors.png", "Lost attempts by variant",
                     "Attempts per second that timed out, were shed or failed, per variant.",
                     _overlay(variants, services, lambda s, t: errors(s) / t, "attempts / s",
                              log=False)),
    ]
    if any(cumulative_cost(v.run, s) is not None for v in variants for s in v.run.services):
        figures.append(ReportFigure(
            "compare_cost.png", "Cost over time by variant",
            "Cumulative cost of all services' instances, one line per variant.",
            _cost_overlay(variants)))
    return tuple(figures)


def _overlay(variants: list[Variant], services: list[str],
             values: Callable[[ServiceSeries, float], np.ndarray], ylabel: str,
             log: bool, span_s: tuple[float, float] | None = None) -> bytes:
    fig, axes = new_figure(len(services), 2.5)
    for ax, service in zip(axes, services, strict=True):
        for i, v in enumerate(variants):
            if service not in v.run.series:
                continue
            series, tick = v.run.series[service], v.run.summary.tick_s
            x, y = series.t_s + tick / 2, values(series, tick)
            if span_s is not None:
                inside = (x >= span_s[0] - tick) & (x <= span_s[1] + tick)
                x, y = x[inside], y[inside]
            thin_line(ax, x, y, color=variant_colour(i), ls=variant_style(i), lw=1.5,
                      label=v.name)
        slo = _p99_target(variants, service) if log else None
        if slo is not None:
            ax.axhline(slo, color="#c00000", lw=1.0, ls="--", label=f"p99 SLO {fmt_ms(slo)}")
        service_title(ax, service, services)
        if log:
            latency_axis(ax)
        else:
            ax.set_ylabel(ylabel)
            ax.set_ylim(bottom=0)
        legend_outside(ax)
    _finish(variants, axes, span_s)
    return to_png_aligned(fig)


MAX_MULTIPLES = 6
"""Most variants drawn side by side in compare_p99.png; more are overlaid in one panel."""


def _p99_multiples(variants: list[Variant], services: list[str],
                   span_s: tuple[float, float] | None) -> bytes:
    """Small multiples of per-tick p99: a row per service, a column per variant (its line in
    its colour over the others' in grey), one latency scale per row."""
    if len(variants) > MAX_MULTIPLES:
        return _overlay(variants, services, lambda s, _t: s["p99_ms"], "per-tick p99",
                        log=True, span_s=span_s)
    fig, axes = new_grid(len(services), len(variants), 2.2)
    span = span_s or (0.0, max(v.run.summary.duration_s for v in variants))
    lines = {(i, service): _p99_line(v, service, span_s)
             for i, v in enumerate(variants) for service in services}
    columns = PANEL_COLUMNS // len(variants)  # pixel columns of one small multiple
    for row, service in enumerate(services):
        slo = _p99_target(variants, service)
        for col, v in enumerate(variants):
            ax = axes[row, col]
            for (i, name), (x, y) in lines.items():
                if name == service and i != col:
                    thin_line(ax, x, y, columns, color="#c8c8c8", lw=0.8)
            x, y = lines[(col, service)]
            thin_line(ax, x, y, columns, color=variant_colour(col), lw=1.3)
            latency_axis(ax)
            ax.set_ylabel("")
            ax.grid(True, alpha=0.3)
            if slo is not None:
                slo_line(ax, slo, "SLO")
            if row == 0:
                ax.set_title(v.name, loc="left", color=variant_colour(col), fontsize="small",
                             fontweight="bold")
            if col == 0:
                ax.set_ylabel(f"{service}\np99 per tick", fontweight="bold")
            clock_axis(ax, variants[0].run.start_clock_s, label=row == len(services) - 1,
                       span_s=span, most=3)
            ax.tick_params(labelsize="x-small")
        _share_row_scale(axes[row])
    return to_png(fig)


def _p99_line(v: Variant, service: str,
              span_s: tuple[float, float] | None) -> tuple[np.ndarray, np.ndarray]:
    if service not in v.run.series:
        return np.array([]), np.array([])
    series, tick = v.run.series[service], v.run.summary.tick_s
    x, y = series.t_s + tick / 2, series["p99_ms"]
    if span_s is not None:
        inside = (x >= span_s[0] - tick) & (x <= span_s[1] + tick)
        x, y = x[inside], y[inside]
    return x, y


def _share_row_scale(row: np.ndarray) -> None:
    """One latency range for every panel of a row (the widest), so heights compare."""
    low = min(ax.get_ylim()[0] for ax in row)
    high = max(ax.get_ylim()[1] for ax in row)
    for ax in row:
        ax.set_ylim(low, high)


def _p99_target(variants: list[Variant], service: str) -> float | None:
    for v in variants:
        info = v.run.summary.services.get(service)
        if info is not None and "p99_ms" in info.slo:
            return info.slo["p99_ms"].target
    return None


def _cost_overlay(variants: list[Variant]) -> bytes:
    fig, axes = new_figure(1, 3.4)
    for i, v in enumerate(variants):
        curves = [cumulative_cost(v.run, s) for s in v.run.services]
        shapes = {c.shape for c in curves if c is not None}
        if len(shapes) != 1:
            continue
        total = np.sum([c for c in curves if c is not None], axis=0)
        ends = v.run.series[v.run.services[0]].t_s + v.run.summary.tick_s
        thin_line(axes[0], ends, total, color=variant_colour(i), ls=variant_style(i), lw=1.8,
                  label=f"{v.name} ({fmt_money(float(total[-1]), v.run.currency)})")
    axes[0].set_title("cost so far, all services", loc="left")
    axes[0].set_ylabel(f"cost ({variants[0].run.currency})")
    axes[0].set_ylim(bottom=0)
    legend_outside(axes[0])
    _finish(variants, axes)
    return to_png_aligned(fig)


def _finish(variants: list[Variant], axes: list[Axes],
            span_s: tuple[float, float] | None = None) -> None:
    for ax in axes:
        ax.grid(True, alpha=0.3)
    span = span_s or (0.0, max(v.run.summary.duration_s for v in variants))
    clock_axis(axes[-1], variants[0].run.start_clock_s, span_s=span)
