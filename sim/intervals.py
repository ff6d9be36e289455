"""Confidence intervals over replications (Student t) and the three-way SLO decision.

With n independent replications x_1..x_n of a figure (p99, cost, ...), the 95% interval of its
mean is ``mean ± t(0.975, n-1) · s / sqrt(n)`` with s the sample standard deviation: the
Student t interval, which assumes the replication means are roughly normal (they are averages
or quantiles over thousands of requests) and does not need the variance known. Paired
differences (the same seeds under two variants: common random numbers) get the same interval
over the per-seed differences, which is much narrower than the difference of two intervals
when the variants react alike to the same arrivals.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

CONFIDENCE = 0.95
METHOD = "Student t interval over independent replications (95%)"
_MAX_REPLICATIONS = 100_000


@dataclass(frozen=True)
class Interval:
    """The mean of ``n`` replications of a figure and its confidence interval (same unit)."""

    mean: float
    low: float
    high: float
    n: int
    sd: float

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2.0

    def excludes(self, value: float) -> bool:
        """True when ``value`` lies outside the interval (a significant difference from it)."""
        return value < self.low or value > self.high

    def to_json(self) -> dict[str, Any]:
        return {"mean": _r(self.mean), "low": _r(self.low), "high": _r(self.high), "n": self.n,
                "sd": _r(self.sd)}


@functools.cache
def t_quantile(n: int, confidence: float = CONFIDENCE) -> float:
    """The two-sided Student t quantile for ``n`` replications (n - 1 degrees of freedom)."""
    # Imported here: scipy.stats takes half a second, which every single run (whose console
    # imports this module) would pay without ever needing a quantile.
    from scipy import stats

    return float(stats.t.ppf(0.5 + confidence / 2.0, n - 1))


def t_interval(values: Sequence[float | None], confidence: float = CONFIDENCE) -> Interval | None:
    """The interval of the mean of ``values``; None when there is none or any is missing (a
    replication without the figure, e.g. no completed request, leaves it undefined). A single
    value gives a zero-width interval: the figure of one run, judged as a point."""
    if not values or any(v is None or not math.isfinite(v) for v in values):
        return None
    xs = [float(v) for v in values if v is not None]
    n = len(xs)
    mean = math.fsum(xs) / n
    if n == 1:
        return Interval(mean, mean, mean, 1, 0.0)
    sd = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1))
    if sd <= 1e-12 * abs(mean):
        sd = 0.0  # equal values: rounding in the mean is not spread
    half = t_quantile(n, confidence) * sd / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n, sd)


def prediction_interval(values: Sequence[float | None],
                        confidence: float = CONFIDENCE) -> Interval | None:
    """Where one more run's value falls with ``confidence``: ``mean ± t · s · sqrt(1 + 1/n)``
    (for judging a single measurement, e.g. a load test, against replicated predictions)."""
    mean_interval = t_interval(values, confidence)
    if mean_interval is None or mean_interval.n < 2:
        return None
    n, sd = mean_interval.n, mean_interval.sd
    half = t_quantile(n, confidence) * sd * math.sqrt(1.0 + 1.0 / n)
    return Interval(mean_interval.mean, mean_interval.mean - half, mean_interval.mean + half,
                    n, sd)


def replications_to_decide(interval: Interval, target: float,
                           confidence: float = CONFIDENCE) -> int | None:
    """The smallest number of replications whose interval, with the same mean and standard
    deviation, would lie wholly on one side of ``target``; None when the mean sits on it."""
    gap = abs(interval.mean - target)
    if gap == 0.0:
        return None
    if interval.sd == 0.0:
        return interval.n
    n = max(interval.n, 2)
    while n <= _MAX_REPLICATIONS:
        if t_quantile(n, confidence) * interval.sd / math.sqrt(n) < gap:
            return n
        n += max(1, n // 10)  # about 10% steps: the answer is an estimate anyway
    return None


class Decision(StrEnum):
    """The three outcomes of a gate on an interval."""

    PASS = "pass"
    FAIL = "fail"
    UNDECIDED = "undecided"


EXIT_CODES = {Decision.PASS: 0, Decision.FAIL: 1, Decision.UNDECIDED: 3}
"""Exit codes of a gated command: 0 met with confidence, 1 missed with confidence, 3 the
interval straddles the target (more replications needed)."""


def combine(decisions: Sequence[Decision]) -> Decision:
    """A gate over several objectives: any confident miss fails it; else any undecided
    objective leaves it undecided; else it passes."""
    if Decision.FAIL in decisions:
        return Decision.FAIL
    if Decision.UNDECIDED in decisions:
        return Decision.UNDECIDED
    return Decision.PASS


def best_of(decisions: Sequence[Decision]) -> Decision:
    """A gate over alternatives (variants of a comparison, points of a sweep): it passes when
    any alternative passes; else it is undecided when any is undecided (more replications may
    still make one pass); else every alternative failed."""
    if Decision.PASS in decisions:
        return Decision.PASS
    if Decision.UNDECIDED in decisions:
        return Decision.UNDECIDED
    return Decision.FAIL


def fmt_interval(value: Interval | None, fmt: Callable[[float | None], str]) -> str:
    """``mean ± half-width`` with the figure's own formatter for both numbers."""
    if value is None:
        return "-"
    if value.half_width == 0.0:
        return fmt(value.mean)
    return f"{fmt(value.mean)} ± {fmt(value.half_width)}"


def _r(value: float) -> float:
    return float(f"{value:.6g}")
