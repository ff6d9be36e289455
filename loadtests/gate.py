"""The CI gate of a load test: pass (0), SLO missed (1), or no verdict possible (2).

A load test can only judge the system under test if it offered the load it was asked to:

1. **Generator** (per service): at most ``lag_tolerance`` of the intended sends were late by
   more than the lag threshold or never sent, and the achieved request count is within the rate
   tolerance of the curve's (5%, or 3 Poisson standard deviations on short runs). Otherwise the
   gate answers 2, *inconclusive*: the latencies include the generator's own delay and the
   target was not offered its load, so neither a pass nor a miss would be honest.
2. **SLOs** (per service, from ``summary.json``): judged by ``sim.model.slo`` with SRE semantics on
   the coordinated-omission corrected latencies (a percentile holds when that share of all
   requests completed on their first attempt within the target; failed, timed-out, shed and
   unfinished requests are bad events; a mean holds only with at most 1% errors) and the error
   rate. Any miss: 1.

With the generator sound and every objective met: 0. A scenario without SLOs passes with a
remark that nothing was gated. ``load_table`` is how the terminal shows what was judged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sim.report import fmt_ms, fmt_objective, fmt_pct, objective_label
from sim.termtable import TextTable

EXIT_PASS = 0
EXIT_SLO_MISSED = 1
EXIT_INCONCLUSIVE = 2


@dataclass(frozen=True)
class GateResult:
    """The gate's answer: exit code, one-line verdict and the reasons behind it."""

    exit_code: int
    headline: str
    reasons: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return self.exit_code == EXIT_PASS


def generator_problems(summary: dict[str, Any]) -> list[str]:
    """One sentence per service whose load was not offered as asked."""
    problems = []
    threshold = summary.get("generator", {}).get("lag_threshold_ms")
    for name, s in summary["services"].items():
        load = s.get("load", {})
        if not load.get("kept_up", True):
            problems.append(
                f"{name}: {load['late']:,} of {load['intended']:,} sends were more than "
                f"{threshold:g} ms late and {load['dropped']:,} were never sent "
                f"(worst lag {load['lag_max_ms']:,.0f} ms)")
        elif not load.get("rate_ok", True):
            ratio = load.get("achieved_ratio")
            shown = f"{100 * ratio:.1f}%" if ratio is not None else "none"
            problems.append(
                f"{name}: sent {load['sent']:,} requests, {shown} of the curve's "
                f"{load['target_requests']:,.0f} (tolerance ±{100 * load['rate_tolerance']:.1f}%)")
    return problems


def slo_misses(summary: dict[str, Any]) -> list[str]:
    """One sentence per missed objective."""
    misses = []
    for name, s in summary["services"].items():
        for key, objective in s.get("slo", {}).items():
            if objective["met"]:
                continue
            value = objective["value"]
            shown = "not measured" if value is None else fmt_objective(key, value)
            text = (f"{name} {objective_label(key)} {shown} against "
                    f"{fmt_objective(key, objective['target'])}")
            reason = objective.get("reason")
            misses.append(f"{name}: {reason} ({text})" if reason else text)
    return misses


def interrupted(summary: dict[str, Any]) -> bool:
    """True when the load test was stopped by Ctrl-C before its end."""
    return bool(summary.get("generator", {}).get("interrupted"))


def judged(summary: dict[str, Any]) -> bool:
    """Whether the SLOs of this load test can be judged: it ran to its end and the target load
    was offered."""
    return not interrupted(summary) and not generator_problems(summary)


def evaluate_gate(summary: dict[str, Any]) -> GateResult:
    """The gate's verdict on a load test's ``summary.json``."""
    if interrupted(summary):
        return GateResult(
            EXIT_INCONCLUSIVE,
            "INCONCLUSIVE: the load test was interrupted (Ctrl-C) before the end of its "
            "traffic, so the SLOs were not judged; the figures cover what was measured",
            tuple(generator_problems(summary)))
    problems = generator_problems(summary)
    if problems:
        return GateResult(
            EXIT_INCONCLUSIVE,
            "INCONCLUSIVE: the load generator could not offer the target load, so the SLOs "
            "were not judged (add --workers, raise --max-users, or lower --rate-scale)",
            tuple(problems))
    misses = slo_misses(summary)
    if misses:
        return GateResult(EXIT_SLO_MISSED, f"FAIL: {len(misses)} SLO objective"
                          f"{'' if len(misses) == 1 else 's'} missed", tuple(misses))
    gated = sum(len(s.get("slo", {})) for s in summary["services"].values())
    if not gated:
        return GateResult(EXIT_PASS, "PASS: the target load was offered; the scenario has no "
                          "SLO objectives to gate on", ())
    held = "its SLO objective held" if gated == 1 else f"all {gated} SLO objectives held"
    return GateResult(EXIT_PASS, f"PASS: the target load was offered and {held}", ())


def _ms(value: float | None) -> str:
    return fmt_ms(value) if value is not None else "-"


def load_table(summary: dict[str, Any], title: str) -> TextTable:
    """One row per service: target vs sent rate, lag, corrected and raw latency, errors, SLO
    (``not judged`` when the load test could not judge it, as the verdict says)."""
    can_judge = judged(summary)
    rows = []
    for name, s in summary["services"].items():
        load, lat = s["load"], s["latency_ms"]
        missed = [key for key, v in s["slo"].items() if not v["met"]]
        slo = ("no SLO" if not s["slo"] else "not judged" if not can_judge
               else "met" if not missed else "MISSED " + ", ".join(missed))
        error_rate = s["error_rate"]
        rows.append((
            name, f"{load['target_rps']:,.1f}", f"{load['achieved_rps']:,.1f}",
            f"{load['late'] + load['dropped']:,}",
            f"{_ms(lat['p50'])} / {_ms(lat['p95'])} / {_ms(lat['p99'])}",
            _ms(s["latency_raw_ms"]["p99"]),
            "-" if error_rate is None else fmt_pct(error_rate), slo))
    return TextTable.of(title, ("service", "target rps", "sent rps", "late / unsent",
                                "p50 / p95 / p99", "raw p99", "errors", "SLO"),
                        "lrrrrrrl", rows)
