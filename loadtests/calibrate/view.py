"""What ``peaksim calibrate`` prints: a line per measured step, a table of the fits."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table

from loadtests.calibrate.fit import ServiceCalibration
from loadtests.calibrate.steps import StepStats
from sim.report_model import fmt_ms


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
