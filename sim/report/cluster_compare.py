"""The cluster part of a comparison of colocation variants (``peaksim compare`` on a scenario
with a ``cluster:`` section): the headline, the per-variant machine figures, the side-by-side
table and the overlay plots.

The headline ranks the variants that held every SLO by the run's cost, which for a cluster is
the node cost (``summary["cost"]["total"]``). Variants on the same machines often cost exactly
the same; then the headline says what does differ, against the baseline (the first ``dedicated``
variant, else the first variant): mean CPU utilization, batch throughput, batch slowdown and the
online p99 (the SLO impact of colocation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from sim.report.cluster import batch_phrase, machines_phrase
from sim.report.cluster_data import (
    SECONDS_PER_HOUR,
    ClusterRunSummary,
    fmt_core_hours,
    fmt_share,
    fmt_slowdown,
)
from sim.report.cluster_plots import amounts_axis
from sim.report.data import RunData
from sim.report.document import (
    NO_VALUE,
    DocSection,
    ReportFigure,
    Table,
    fmt_count,
    fmt_money,
    fmt_ms,
)
from sim.report.plotting import (
    finish_time_axes,
    legend_outside,
    new_figure,
    thin_line,
    to_png_aligned,
    variant_colour,
    variant_style,
    y_percent,
)
from sim.report.tables import status

if TYPE_CHECKING:
    from matplotlib.axes import Axes

COST_TIE = 0.005
"""Costs closer than half a cent are the same cost (they print the same)."""
SMOOTH_S = 60.0
"""The CPU overlay averages over a minute: per-tick utilization flickers with the online
services' busy workers and would hide the gap between variants."""
SAME_P99 = 0.005
"""Relative p99 changes under 0.5% read as "the same online p99" (histograms are ~1% exact)."""


@dataclass(frozen=True)
class ClusterVariant:
    """One compared colocation run: its name, whether it held every SLO, its cost (the run's
    cost total, i.e. the node cost) and its cluster summary."""

    name: str
    run: RunData
    met: bool
    cost: float
    cluster: ClusterRunSummary

    @property
    def p99_ms(self) -> dict[str, float]:
        """Whole-run p99 per service (services without completions left out)."""
        return {n: s.latency_ms.p99 for n, s in self.run.summary.services.items()
                if s.latency_ms.p99 is not None}


def cluster_variants(names: list[str], runs: list[RunData],
                     met: list[bool]) -> list[ClusterVariant] | None:
    """The variants as cluster runs, or None unless every run has a cluster summary."""
    found = []
    for name, run, ok in zip(names, runs, met, strict=True):
        cluster = run.summary.cluster
        if cluster is None:
            return None
        cost = run.summary.cost.total if run.summary.cost else cluster.cost
        found.append(ClusterVariant(name, run, ok, cost, cluster))
    return found


def baseline(variants: list[ClusterVariant]) -> ClusterVariant:
    """What colocation is measured against: the first dedicated variant, else the first."""
    return next((v for v in variants if v.cluster.policy == "dedicated"), variants[0])


def p99_changes(variant: ClusterVariant, base: ClusterVariant) -> dict[str, float]:
    """Relative change of each service's whole-run p99 against ``base`` (0.06 = +6%)."""
    mine, theirs = variant.p99_ms, base.p99_ms
    return {s: mine[s] / theirs[s] - 1.0 for s in mine if s in theirs and theirs[s] > 0}


def p99_change(variant: ClusterVariant, base: ClusterVariant) -> str:
    """The change of the services' p99 against ``base``: ``"+6%"``, ``"+4% to +9%"`` (when the
    services differ), ``"unchanged"`` (all within 0.5%), or ``""`` without p99s."""
    changes = list(p99_changes(variant, base).values())
    if not changes:
        return ""
    if max(abs(c) for c in changes) < SAME_P99:
        return "unchanged"
    low, high = round(min(changes) * 100), round(max(changes) * 100)
    return f"{high:+d}%" if low == high else f"{low:+d}% to {high:+d}%"


def impact_phrase(variant: ClusterVariant, base: ClusterVariant) -> str:
    """``"+6% online p99"``, ``"+4% to +9% online p99"`` or ``"the same online p99"``."""
    change = p99_change(variant, base)
    if change == "unchanged":
        return "the same online p99"
    return f"{change} online p99" if change else ""


def cluster_headline(variants: list[ClusterVariant]) -> str | None:
    """The comparison headline by node cost, or None when no variant held every SLO (the
    general headline then names the one that missed the fewest)."""
    held = sorted((v for v in variants if v.met), key=lambda v: v.cost)
    if not held:
        return None
    cheapest = held[0]
    tied = [v for v in variants if v.met and abs(v.cost - cheapest.cost) < COST_TIE]
    rest = [v for v in held if v not in tied]
    currency = cheapest.run.currency
    if len(tied) == 1:
        if not rest:
            return (f"{cheapest.name} is the only variant that held every SLO: "
                    f"{_machines(tied)} at {fmt_money(cheapest.cost, currency)} node cost.")
        nxt = rest[0]
        fewer = nxt.cluster.nodes_max - cheapest.cluster.nodes_max
        saved = f", {fewer} machine{'s' if fewer > 1 else ''} fewer" if fewer > 0 else ""
        return (f"{cheapest.name} held every SLO at the lowest node cost of the {len(held)} "
                f"variants that did: {_machines(tied)} at {fmt_money(cheapest.cost, currency)}"
                f" (next: {nxt.name}, {_machines([nxt])} at {fmt_money(nxt.cost, currency)}"
                f"{saved}).")
    subject = (f"all {len(tied)} variants" if len(tied) == len(variants)
               else _and([v.name for v in tied]))
    text = (f"{subject} held every SLO on {_machines(tied)} at "
            f"{fmt_money(cheapest.cost, currency)}")
    if rest:
        text += f", the lowest node cost (next: {rest[0].name} at " \
                f"{fmt_money(rest[0].cost, currency)})"
    base = baseline(variants)
    ref = base if base in tied else tied[0]
    other = min((v for v in tied if v is not ref), key=_better_batch)
    return f"{text}; {_differences(other, ref)}."


def _better_batch(v: ClusterVariant) -> tuple[float, float, float]:
    """Order among equally priced variants: most batch work done, then least lost, then the
    lowest mean slowdown."""
    slowdown = v.cluster.batch_slowdown_mean
    return (-v.cluster.batch.done_core_s, v.cluster.batch.lost_core_s,
            math.inf if slowdown is None else slowdown)


def _differences(other: ClusterVariant, ref: ClusterVariant) -> str:
    """``"compared with dedicated, colocated raised mean CPU from 76.7% to 81.1%, did 491.9
    batch core-hours instead of 465.2 and cut batch slowdown from 3.57 to 2.66 at +6% online
    p99"``."""
    a, b = ref.cluster, other.cluster
    clauses = []
    if fmt_share(a.mean_cpu_utilization) != fmt_share(b.mean_cpu_utilization):
        verb = "raised" if b.mean_cpu_utilization > a.mean_cpu_utilization else "lowered"
        clauses.append(f"{verb} mean CPU from {fmt_share(a.mean_cpu_utilization)} to "
                       f"{fmt_share(b.mean_cpu_utilization)}")
    if fmt_core_hours(a.done_core_h) != fmt_core_hours(b.done_core_h):
        clauses.append(f"did {fmt_core_hours(b.done_core_h)} batch core-hours instead of "
                       f"{fmt_core_hours(a.done_core_h)}")
    slow_a, slow_b = a.batch_slowdown_mean, b.batch_slowdown_mean
    if slow_a is not None and slow_b is not None and fmt_slowdown(slow_a) != fmt_slowdown(slow_b):
        verb = "cut" if slow_b < slow_a else "raised"
        clauses.append(f"{verb} batch slowdown from {fmt_slowdown(slow_a)} to "
                       f"{fmt_slowdown(slow_b)}")
    impact = impact_phrase(other, ref)
    if not clauses:
        if impact and impact != "the same online p99":
            return f"{other.name} differed from {ref.name} only in online p99 ({impact})"
        return (f"{other.name} and {ref.name} did not differ in utilization, batch work or "
                f"online p99")
    return (f"compared with {ref.name}, {other.name} {_and(clauses)}"
            + (f" at {impact}" if impact else ""))


def _machines(variants: list[ClusterVariant]) -> str:
    counts = sorted({v.cluster.nodes_max for v in variants})
    if len(counts) == 1:
        return f"{counts[0]:,} machine{'' if counts[0] == 1 else 's'}"
    return f"{counts[0]:,}–{counts[-1]:,} machines"


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def variant_spend(v: ClusterVariant, variants: list[ClusterVariant]) -> str:
    """What a variant's verdict line says about its machines, batch work and online impact."""
    base = baseline(variants)
    text = (f"{machines_phrase(v.cluster, v.run.currency)}; batch: {batch_phrase(v.cluster)}")
    impact = impact_phrase(v, base)
    if v is not base and impact:
        text += f"; {impact} against {base.name}"
    return text


def cluster_comparison_section(variants: list[ClusterVariant],
                               draw_plots: bool = True) -> DocSection:
    """The side-by-side cluster table and the overlay plots (with ``draw_plots``)."""
    base = baseline(variants)
    intro = ("Machines, utilization, cost and batch work of each variant, and what sharing the "
             f"machines did to the online services' p99 against {base.name}"
             + (" (online and batch on separate machines)" if base.cluster.policy ==
                "dedicated" else "") + ".")
    return DocSection("Cluster", "cluster", intro,
                      (cluster_table(variants), impact_table(variants)),
                      _figures(variants) if draw_plots else ())


def cluster_table(variants: list[ClusterVariant]) -> Table:
    """Machines, utilization, cost and batch work side by side."""
    rows = tuple(
        (v.name, fmt_count(v.cluster.nodes_max), fmt_share(v.cluster.mean_cpu_utilization),
         fmt_money(v.cost, v.run.currency), fmt_core_hours(v.cluster.done_core_h),
         fmt_core_hours(v.cluster.lost_core_h),
         f"{fmt_slowdown(v.cluster.batch_slowdown_mean)} / "
         f"{fmt_slowdown(v.cluster.batch_slowdown_p95)}",
         fmt_count(v.cluster.batch_preemptions), fmt_count(v.cluster.pending_instance_s))
        for v in variants
    )
    return Table(
        "Machines and batch work by variant",
        ("variant", "machines", "mean CPU", "node cost", "batch done", "batch lost",
         "slowdown", "preemptions", "pending"),
        rows, ("l", *("r",) * 8),
        note="Machines: most nodes billed at once. Node cost: node-hours x price, the run's "
             "cost. Batch done: core-hours completed or kept by a checkpoint; lost: "
             "core-hours of progress preemption threw away. Slowdown: mean / p95 of "
             "(completion - submission) / run time at full speed, over completed jobs. "
             "Pending: online instance-seconds spent waiting for a node.",
        anchor="cluster-variants",
    )


def impact_table(variants: list[ClusterVariant]) -> Table:
    """Each service's whole-run p99 and its change against the baseline: what sharing the
    machines cost the online SLO."""
    base = baseline(variants)
    services = list(dict.fromkeys(s for v in variants for s in v.p99_ms))
    rows = []
    for v in variants:
        changes = p99_changes(v, base)
        cells = [NO_VALUE if s not in v.p99_ms else
                 fmt_ms(v.p99_ms[s]) + ("" if v is base or s not in changes
                                        else f" ({changes[s] * 100:+.0f}%)")
                 for s in services]
        judged = any(info.slo for info in v.run.summary.services.values())
        rows.append((v.name, status(v.met) if judged else NO_VALUE, *cells,
                     "baseline" if v is base else (p99_change(v, base) or NO_VALUE)))
    targets = [f"{s} {fmt_ms(t)}" for s in services if (t := _p99_target(variants, s))]
    return Table(
        f"Online p99 against {base.name}",
        ("variant", "SLO", *(f"{s} p99" for s in services), "p99 change"),
        tuple(rows), ("l", "l", *("r",) * len(services), "r"),
        note=f"Whole-run p99 per service; in brackets its change against {base.name}, the "
             f"online SLO impact of the variant (interference grows with a node's CPU "
             f"utilization)." + (f" p99 SLOs: {', '.join(targets)}." if targets else ""),
        anchor="cluster-impact",
    )


def _p99_target(variants: list[ClusterVariant], service: str) -> float | None:
    for v in variants:
        info = v.run.summary.services.get(service)
        if info is not None and "p99_ms" in info.slo:
            return info.slo["p99_ms"].target
    return None


def _figures(variants: list[ClusterVariant]) -> tuple[ReportFigure, ...]:
    if any(v.run.cluster is None for v in variants):
        return ()
    return (
        ReportFigure("compare_cluster_cpu.png", "CPU utilization by variant",
                     "Busy cores (online busy workers + batch) over the cores of the ready "
                     "nodes, averaged over a minute, one line per variant; the legend gives "
                     "each run's mean.",
                     _cpu_overlay(variants)),
        ReportFigure("compare_cluster_batch.png", "Batch work by variant",
                     "Cores held by batch containers (mean over each tick), and batch "
                     "core-hours done so far, one line per variant. Where online scales out, "
                     "batch cores dip: the work is delayed, not gone, unless it is lost.",
                     _batch_overlay(variants)),
    )


def _cpu_overlay(variants: list[ClusterVariant]) -> bytes:
    fig, axes = new_figure(1, 3.4)
    ax = axes[0]
    for i, v in enumerate(variants):
        c = v.run.cluster
        assert c is not None
        tick = v.run.summary.tick_s
        smooth = moving_mean(c["cpu_utilization"], max(1, round(SMOOTH_S / tick)))
        thin_line(ax, c.t_s + tick / 2.0, smooth * 100.0, color=variant_colour(i),
                  ls=variant_style(i), lw=1.4,
                  label=f"{v.name}\nmean {fmt_share(v.cluster.mean_cpu_utilization)}")
    ax.set_title("CPU utilization of the ready nodes (1-minute moving mean)", loc="left")
    ax.set_ylabel("CPU utilization")
    ax.set_ylim(0, 105)
    y_percent(ax)
    legend_outside(ax)
    _finish(variants, axes)
    return to_png_aligned(fig)


def moving_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Centred moving mean over ``window`` samples, the ends padded with the edge values (so
    the curve keeps its length and its level at the ends)."""
    if window <= 1 or values.size == 0:
        return values
    padded = np.pad(values, (window // 2, window - 1 - window // 2), mode="edge")
    return np.convolve(padded, np.ones(window) / window, mode="valid")


def _batch_overlay(variants: list[ClusterVariant]) -> bytes:
    fig, axes = new_figure(2, 2.8)
    cores_ax, done_ax = axes
    for i, v in enumerate(variants):
        c = v.run.cluster
        assert c is not None
        tick = v.run.summary.tick_s
        style = {"color": variant_colour(i), "ls": variant_style(i)}
        thin_line(cores_ax, c.t_s + tick / 2.0, c["batch_cores"], lw=1.3, label=v.name,
                  **style)
        done = c["batch_core_s_done"] / SECONDS_PER_HOUR
        thin_line(done_ax, c.t_s + tick, done, lw=1.6,
                  label=f"{v.name} ({fmt_core_hours(float(done[-1]))})", **style)
    cores_ax.set_title("cores held by batch containers", loc="left")
    cores_ax.set_ylabel("cores")
    done_ax.set_title("batch work done so far", loc="left")
    done_ax.set_ylabel("core-hours")
    for ax in axes:
        amounts_axis(ax)
        legend_outside(ax)
    _finish(variants, axes)
    return to_png_aligned(fig)


def _finish(variants: list[ClusterVariant], axes: list[Axes]) -> None:
    span = (0.0, max(v.run.summary.duration_s for v in variants))
    finish_time_axes(axes, variants[0].run.start_clock_s, span)
