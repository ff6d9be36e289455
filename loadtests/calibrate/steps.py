"""Per-step statistics of a staircase, from a load test's per-window measurements.

A step is a stretch of windows at one offered rate. Its first ``settle_s`` seconds are left out
(queues of the previous step drain or build up there), the rest is summed: offered rate (sends
the schedule called for, by intended time), served rate (2xx answers, by completion time),
timeouts, sheds and other failures, generator lag, and the coordinated-omission corrected
latency histogram (the ``sim.metrics`` bins, ~1% precision) that the fits read.

``detect_steps`` finds steps in a run that was not a staircase (``peaksim calibrate --from``):
consecutive windows whose offered rate stays within a tolerance of their running mean.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from loadtests.results import QUANTILES, ServiceResults, WindowHist
from sim.metrics import bin_centre_ms

SATURATION_SERVED_RATIO = 0.9
"""A step whose served rate is below this share of its offered rate is saturated."""
SATURATION_ERROR_SHARE = 0.02
"""...or whose answers are more than this share timeouts, sheds or failures."""
LATE_SHARE_LIMIT = 0.05
"""A step with more late or unsent sends than this share does not measure the target."""


@dataclass(frozen=True)
class StepStats:
    """What one step measured (rates in requests/s, latencies in ms, counts over ``span_s``)."""

    index: int
    start_s: float
    end_s: float
    span_s: float
    """Seconds summed (the step without its settling time)."""
    offered_rps: float
    served_rps: float
    served_rps_windows: tuple[float, ...]
    completed: int
    timed_out: int
    shed: int
    failed: int
    late: int
    intended: int
    histogram: dict[int, int]
    latency_ms: dict[str, float]
    """``mean`` and ``p50``/``p90``/``p95``/``p99`` of the corrected latency (NaN if none)."""
    max_latency_ms: float

    @property
    def answered(self) -> int:
        return self.completed + self.timed_out + self.shed + self.failed

    @property
    def error_share(self) -> float:
        """Share of answers that were not 2xx."""
        return (self.answered - self.completed) / self.answered if self.answered else 0.0

    @property
    def generator_ok(self) -> bool:
        """The generator sent (almost) every send on time in this step."""
        return self.late <= max(2, LATE_SHARE_LIMIT * self.intended)

    @property
    def saturated(self) -> bool:
        """Throughput stopped following the offered rate, or errors appeared."""
        return (self.served_rps < SATURATION_SERVED_RATIO * self.offered_rps
                or self.error_share > SATURATION_ERROR_SHARE)


def histogram_stats(bins: dict[int, int]) -> dict[str, float]:
    """Mean and percentiles (ms) of a sparse histogram (NaN when empty)."""
    if not bins:
        return {"mean": math.nan, **{label: math.nan for label, _q in QUANTILES}}
    hist = WindowHist(dict(bins))
    order = sorted(bins)
    counts = np.array([bins[i] for i in order], dtype=float)
    centres = np.array([bin_centre_ms(i) for i in order])
    out = {"mean": float(np.sum(counts * centres) / counts.sum())}
    for label, q in QUANTILES:
        value = hist.percentile(q)
        out[label] = math.nan if value is None else float(value)
    return out


def step_stats(results: ServiceResults, window_s: float,
               bounds: Sequence[tuple[float, float]], settle_s: float) -> list[StepStats]:
    """Statistics of each step ``(start_s, end_s)`` of ``results`` (windows of ``window_s``),
    leaving out the first ``settle_s`` of each step (at least one window is always kept)."""
    n_windows = len(results.corrected)
    out = []
    for index, (start_s, end_s) in enumerate(bounds):
        first = int(round(start_s / window_s))
        last = min(n_windows, int(round(end_s / window_s)))
        skip = min(int(math.ceil(settle_s / window_s - 1e-9)), max(0, last - first - 1))
        first += skip
        if last <= first:
            continue
        out.append(_stats(results, index, first, last, window_s))
    return out


def _stats(results: ServiceResults, index: int, first: int, last: int,
           window_s: float) -> StepStats:
    span_s = (last - first) * window_s
    counts = {name: int(values[first:last].sum()) for name, values in results.counts.items()}
    bins: dict[int, int] = {}
    for hist in results.corrected[first:last]:
        for key, value in hist.bins.items():
            bins[key] = bins.get(key, 0) + value
    served = results.counts["completed"][first:last] / window_s
    return StepStats(
        index=index, start_s=first * window_s, end_s=last * window_s, span_s=span_s,
        offered_rps=counts["intended"] / span_s, served_rps=counts["completed"] / span_s,
        served_rps_windows=tuple(float(v) for v in served),
        completed=counts["completed"], timed_out=counts["timed_out"], shed=counts["shed"],
        failed=counts["failed"], late=counts["late"] + counts["dropped"],
        intended=counts["intended"], histogram=bins, latency_ms=histogram_stats(bins),
        max_latency_ms=max((bin_centre_ms(max(h.bins)) for h in results.corrected[first:last]
                            if h.bins), default=math.nan),
    )


def detect_steps(results: ServiceResults, window_s: float, tolerance: float = 0.15,
                 min_windows: int = 2) -> list[tuple[float, float]]:
    """Stretches of windows at one offered rate: a window joins the current stretch while its
    offered rate is within ``tolerance`` (relative) of the stretch's mean; stretches shorter
    than ``min_windows`` windows or with nothing offered are dropped."""
    intended = results.counts["intended"].astype(float)
    bounds: list[tuple[float, float]] = []
    start, total = 0, 0.0
    for i, count in enumerate(intended):
        if i > start:
            mean = total / (i - start)
            if abs(count - mean) > tolerance * max(mean, 1.0) + 2.0 * math.sqrt(max(mean, 1.0)):
                bounds.append((start * window_s, i * window_s))
                start, total = i, 0.0
        total += count
    bounds.append((start * window_s, len(intended) * window_s))
    return [(a, b) for a, b in bounds
            if b - a >= min_windows * window_s - 1e-9
            and intended[int(round(a / window_s)):int(round(b / window_s))].sum() > 0]
