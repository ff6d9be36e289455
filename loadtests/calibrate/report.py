"""The calibration report: ``calibration.md``, one staircase plot per service, and what the
command prints (a line per measured step, a table of the fits).

Plot ``staircase-<service>.png`` has two panels over the steps (x: offered rate):

- offered vs served rate, with the fitted capacity (``workers x instances / E[S]``) as a
  horizontal line and the identity as a guide: served leaves the identity where the service
  saturates;
- latency p50/p95/p99 measured per step (points) and predicted by the fitted M/G/c model
  (lines, steps below saturation), log scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rich.table import Table

from loadtests.calibrate.fit import ServiceCalibration
from loadtests.calibrate.output import comment_block
from loadtests.calibrate.steps import StepStats
from sim.report import fmt_ms, latency_axis, new_figure, to_png
from sim.runio import atomic_write_bytes, atomic_write_text

PERCENTILES = (("p50", "tab:blue"), ("p95", "tab:orange"), ("p99", "tab:red"))


def plot_staircase(fit: ServiceCalibration) -> bytes:
    """The two-panel staircase plot of ``fit`` as PNG bytes."""
    fig, (rates, latency) = new_figure(rows=2, height_in=3.2)
    offered = np.array([s.offered_rps for s in fit.steps])
    served = np.array([s.served_rps for s in fit.steps])
    top = float(max(offered.max(), served.max(), fit.capacity_rps)) * 1.1
    rates.plot([0, top], [0, top], color="0.8", linewidth=1, label="served = offered")
    rates.plot(offered, served, "o-", color="tab:blue", label="served (measured)")
    rates.axhline(fit.capacity_rps, color="tab:red", linestyle="--",
                  label=f"fitted capacity {fit.capacity_rps:,.1f} rps")
    rates.set_xlabel("offered rate (rps)")
    rates.set_ylabel("served rate (rps)")
    rates.set_title(f"{fit.service}: staircase ({len(fit.steps)} steps, {fit.instances} "
                    f"instance(s), {fit.workers} workers each)", loc="left", fontsize=10)
    rates.legend(fontsize=8, loc="upper left")
    for label, colour in PERCENTILES:
        latency.plot(offered, [s.latency_ms[label] for s in fit.steps], "o", color=colour,
                     label=f"{label} measured")
        if fit.predictions:
            latency.plot([p.rate_rps for p in fit.predictions],
                         [p.predicted_ms[label] for p in fit.predictions], "-", color=colour,
                         label=f"{label} M/G/c model")
    latency.set_yscale("log")
    latency_axis(latency)
    latency.set_xlabel("offered rate (rps)")
    latency.set_ylabel("latency")
    latency.legend(fontsize=7, ncol=2, loc="upper left")
    return to_png(fig)


def markdown(fits: Sequence[ServiceCalibration], scenario_out: Path, source: str) -> str:
    """``calibration.md``: a table per service plus the comment block of the scenario."""
    lines = ["# Calibration", "", f"Source: {source}. Calibrated scenario: `{scenario_out}`.",
             ""]
    lines += ["| service | distribution | mean service time (95% CI) | workers | instances | "
              "capacity | M/G/c curve | overload |", "|---|---|---|---|---|---|---|---|"]
    for fit in fits:
        low, high = fit.mean_ci_ms
        over = fit.overload
        lines.append(
            f"| {fit.service} | {fit.choice.dist} | {fit.mean_service_ms:.2f} ms "
            f"({low:.2f}-{high:.2f}) | {fit.workers} | {fit.instances} | "
            f"{fit.capacity_rps:,.1f} rps | {'follows' if fit.follows_curve else 'departs'} | "
            f"{100 * over.timeout_share:.1f}% timeouts, {100 * over.shed_share:.1f}% shed |")
    for fit in fits:
        lines += ["", f"## {fit.service}", "", f"![staircase](staircase-{fit.service}.png)", "",
                  "| step | offered rps | served rps | p50 measured / model | p95 measured / "
                  "model | p99 measured / model | errors |", "|---|---|---|---|---|---|---|"]
        predicted = {p.index: p for p in fit.predictions}
        for step in fit.steps:
            cells = []
            for label in ("p50", "p95", "p99"):
                model = predicted.get(step.index)
                shown = fmt_ms(model.predicted_ms[label]) if model else "-"
                cells.append(f"{fmt_ms(step.latency_ms[label])} / {shown}")
            lines.append(f"| {step.index + 1} | {step.offered_rps:,.1f} | "
                         f"{step.served_rps:,.1f} | {' | '.join(cells)} | "
                         f"{100 * step.error_share:.1f}% |")
        lines += ["", "```", comment_block([fit], source).rstrip(), "```"]
    return "\n".join(lines) + "\n"


def write_report(out_dir: Path, fits: Sequence[ServiceCalibration], scenario_out: Path,
                 source: str) -> Path:
    """Write the plots and ``calibration.md`` into ``out_dir``; return the Markdown path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for fit in fits:
        atomic_write_bytes(out_dir / f"staircase-{fit.service}.png", plot_staircase(fit))
    path = out_dir / "calibration.md"
    atomic_write_text(path, markdown(fits, scenario_out, source))
    return path


def step_line(service: str, step: StepStats) -> str:
    """``browse step 3: offered 90.1 rps, served 89.7 rps, p50 45 ms, p95 80 ms, errors 0.0%``."""
    flag = "  SATURATED" if step.saturated else ""
    lag = "" if step.generator_ok else "  (generator behind)"
    return (f"{service} step {step.index + 1}: offered {step.offered_rps:,.1f} rps, served "
            f"{step.served_rps:,.1f} rps, p50 {fmt_ms(step.latency_ms['p50'])}, p95 "
            f"{fmt_ms(step.latency_ms['p95'])}, errors {100 * step.error_share:.1f}%{flag}{lag}")


def fit_table(fits: Sequence[ServiceCalibration]) -> Table:
    """One row per calibrated service."""
    table = Table(title="calibration", title_justify="left")
    for column in ("service", "service time", "mean (95% CI)", "workers x inst.", "capacity",
                   "M/G/c", "overload"):
        table.add_column(column, justify="left" if column in ("service", "service time")
                         else "right")
    for fit in fits:
        low, high = fit.mean_ci_ms
        over = fit.overload
        table.add_row(
            fit.service, fit.choice.reason if fit.choice.dist != "empirical"
            else "empirical (families rejected)",
            f"{fit.mean_service_ms:.1f} ms ({low:.1f}-{high:.1f})",
            f"{fit.workers} x {fit.instances}", f"{fit.capacity_rps:,.1f} rps",
            "follows" if fit.follows_curve else "departs",
            f"{100 * over.timeout_share:.0f}% t/o, {100 * over.shed_share:.0f}% shed")
    return table
