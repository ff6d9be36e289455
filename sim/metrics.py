"""Metric primitives: log-spaced latency histograms and exact per-bucket time accounting.

Memory grows with the number of ticks, never with the number of requests: latencies go into
fixed log-spaced histograms (relative precision ~1%), counts and worker-seconds into arrays with
one slot per time bucket.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

HIST_LOW_MS = 1e-3
"""Smallest latency the histograms resolve (ms); smaller values fall in the first bin."""
HIST_HIGH_MS = 1e8
HIST_RATIO = 1.02
"""Bin width ratio: a value is reported as its bin's geometric centre, within +-1%."""
HIST_BINS = int(math.ceil(math.log(HIST_HIGH_MS / HIST_LOW_MS) / math.log(HIST_RATIO)))
_LOG_RATIO = math.log(HIST_RATIO)
_CENTRES_MS = HIST_LOW_MS * HIST_RATIO ** (np.arange(HIST_BINS) + 0.5)


def latency_bins(latency_ms: np.ndarray) -> np.ndarray:
    """Histogram bin index of each latency (ms); values out of range go to the end bins."""
    safe = np.maximum(latency_ms, HIST_LOW_MS)
    idx = np.floor(np.log(safe / HIST_LOW_MS) / _LOG_RATIO).astype(np.int64)
    return np.clip(idx, 0, HIST_BINS - 1)


def bin_centre_ms(index: int) -> float:
    """The value a histogram bin stands for (its geometric centre, ms)."""
    return float(_CENTRES_MS[index])


def percentile_ms(counts: np.ndarray, q: float) -> float | None:
    """The ``q``-quantile (0..1) of a latency histogram, or None when it is empty.

    Uses the nearest-rank definition: the smallest value with at least ``q x n`` values at or
    below it. Histograms of expected (fractional) counts, as the fluid engine writes them, use
    the continuous rank ``q x n`` and are empty below half a request.
    """
    if counts.dtype.kind == "f":
        weight = float(counts.sum())
        if weight < 0.5:
            return None
        cumulative = np.cumsum(counts)
        return bin_centre_ms(int(np.searchsorted(cumulative, q * weight * (1.0 - 1e-12))))
    total = int(counts.sum())
    if total == 0:
        return None
    rank = max(1, int(math.ceil(q * total - 1e-9)))
    index = int(np.searchsorted(np.cumsum(counts), rank))
    return bin_centre_ms(index)


def percentiles_ms(counts: np.ndarray, quantiles: Sequence[float]) -> list[float | None]:
    """``[percentile_ms(counts, q) for q in quantiles]``, the histogram summed once."""
    if counts.dtype.kind == "f":
        weight = float(counts.sum())
        if weight < 0.5:
            return [None] * len(quantiles)
        cumulative = np.cumsum(counts)
        return [bin_centre_ms(int(np.searchsorted(cumulative, q * weight * (1.0 - 1e-12))))
                for q in quantiles]
    total = int(counts.sum())
    if total == 0:
        return [None] * len(quantiles)
    cumulative = np.cumsum(counts)
    return [bin_centre_ms(int(np.searchsorted(cumulative,
                                              max(1, int(math.ceil(q * total - 1e-9))))))
            for q in quantiles]


@dataclass(frozen=True)
class LatencyCounts:
    """A latency distribution: ``counts[i]`` events of ``values_ms[i]`` ms (ascending). The
    form ``sim.model.slo`` judges, whatever produced it (histograms, a fluid engine)."""

    values_ms: np.ndarray
    counts: np.ndarray

    @property
    def total(self) -> int:
        return int(self.counts.sum())


class LatencyHistogram:
    """Counts of latencies in log-spaced bins plus exact count, sum and max."""

    def __init__(self) -> None:
        self.counts = np.zeros(HIST_BINS, dtype=np.int64)
        self.count = 0
        self.sum_ms = 0.0
        self.max_ms = 0.0

    def add(self, latency_ms: np.ndarray) -> None:
        """Record an array of latencies (ms)."""
        if latency_ms.size == 0:
            return
        self.counts += np.bincount(latency_bins(latency_ms), minlength=HIST_BINS)
        self.count += int(latency_ms.size)
        self.sum_ms += float(latency_ms.sum())
        self.max_ms = max(self.max_ms, float(latency_ms.max()))

    def remove_one(self, latency_ms: float) -> None:
        """Take back one recorded latency (its attempt turned out to fail)."""
        self.counts[int(latency_bins(np.asarray([latency_ms]))[0])] -= 1
        self.count -= 1
        self.sum_ms -= latency_ms

    def percentile(self, q: float) -> float | None:
        return percentile_ms(self.counts, q)

    def distribution(self) -> LatencyCounts:
        """The recorded latencies as bin centres with counts (for ``sim.model.slo``)."""
        return LatencyCounts(_CENTRES_MS, self.counts)

    @property
    def mean_ms(self) -> float | None:
        return self.sum_ms / self.count if self.count else None


def add_counts(target: np.ndarray, times_s: np.ndarray, bucket_s: float,
               weight: float = 1.0) -> None:
    """Add ``weight`` to ``target[k]`` for each time in bucket ``[k*bucket_s, (k+1)*bucket_s)``;
    times past the end count in the last bucket. Touches only the buckets involved."""
    if times_s.size == 0:
        return
    n = target.size
    idx = np.clip((times_s / bucket_s).astype(np.int64), 0, n - 1)
    low = int(idx.min())
    counts = np.bincount(idx - low)
    target[low:low + counts.size] += counts * weight


def bucket_counts(times_s: np.ndarray, bucket_s: float, n_buckets: int) -> np.ndarray:
    """How many of ``times_s`` fall in each of ``n_buckets`` buckets (see ``add_counts``)."""
    out = np.zeros(n_buckets)
    add_counts(out, times_s, bucket_s)
    return out


def add_overlap(target: np.ndarray, starts_s: np.ndarray, ends_s: np.ndarray, bucket_s: float,
                weight: float = 1.0) -> None:
    """Add ``weight`` x the seconds of each interval ``[start, end)`` that fall into each bucket
    (exact); parts beyond the last bucket are dropped. Touches only the buckets involved.

    Over a set of busy intervals this gives the busy worker-seconds per bucket.
    """
    if starts_s.size == 0:
        return
    n = target.size
    horizon = n * bucket_s
    s = np.clip(starts_s, 0.0, horizon)
    e = np.clip(ends_s, 0.0, horizon)
    keep = e > s
    if not np.any(keep):
        return
    s, e = s[keep], e[keep]
    ks = np.minimum((s / bucket_s).astype(np.int64), n - 1)
    ke = np.minimum((e / bucket_s).astype(np.int64), n)
    low = int(ks.min())
    width = int(ke.max()) - low + 2
    out = np.zeros(width)
    same = ks == ke
    out += np.bincount(ks[same] - low, weights=e[same] - s[same], minlength=width)
    ks, ke, s, e = ks[~same], ke[~same], s[~same], e[~same]
    if ks.size:
        out += np.bincount(ks - low, weights=(ks + 1) * bucket_s - s, minlength=width)
        out += np.bincount(ke - low, weights=e - ke * bucket_s, minlength=width)
        full = np.bincount(ks + 1 - low, minlength=width + 1)[:width] * bucket_s
        full -= np.bincount(ke - low, minlength=width + 1)[:width] * bucket_s
        out += np.cumsum(full)
    top = min(n, low + width)
    target[low:top] += out[: top - low] * weight


def interval_overlap_s(start_s: float, end_s: float, bucket_s: float, n_buckets: int,
                       lo: int, hi: int) -> np.ndarray:
    """Seconds of the one interval ``[start_s, end_s)`` in each bucket ``lo .. hi-1`` of
    ``n_buckets`` buckets: ``add_overlap`` for a single interval, the same values without
    its per-call set-up (the control plane books one interval per event)."""
    out = np.zeros(hi - lo)
    horizon = n_buckets * bucket_s
    s = min(max(start_s, 0.0), horizon)
    e = min(max(end_s, 0.0), horizon)
    if not e > s:
        return out
    ks = min(int(s / bucket_s), n_buckets - 1)
    ke = min(int(e / bucket_s), n_buckets)
    if ks == ke:
        if lo <= ks < hi:
            out[ks - lo] = e - s
        return out
    if lo <= ks < hi:
        out[ks - lo] = (ks + 1) * bucket_s - s
    first, last = max(ks + 1, lo), min(ke, hi)
    if first < last:
        out[first - lo:last - lo] = bucket_s
    if lo <= ke < min(hi, n_buckets):
        out[ke - lo] = e - ke * bucket_s
    return out


def bucket_overlap_s(
    starts_s: np.ndarray, ends_s: np.ndarray, bucket_s: float, n_buckets: int
) -> np.ndarray:
    """Seconds of the intervals ``[start, end)`` in each of ``n_buckets`` buckets
    (see ``add_overlap``)."""
    out = np.zeros(n_buckets)
    add_overlap(out, starts_s, ends_s, bucket_s)
    return out


def add_steps(book: list[tuple[np.ndarray, int | np.ndarray, np.ndarray]],
              steps_per_bucket: int, n_buckets: int) -> None:
    """Add per-step amounts to per-bucket arrays: ``book`` holds (target array of
    ``n_buckets``, steps, amounts) per entry, the steps either an array of step indexes or the
    first of a run of consecutive steps (an int); a bucket is ``steps_per_bucket`` steps and
    steps past the end count in the last bucket."""
    general: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for target, steps, amounts in book:
        if not isinstance(steps, int):
            general.append((target, steps, amounts))
        elif steps_per_bucket == 1 and steps >= 0:
            # a run of steps is a slice of buckets: most batches are only this
            inside = max(0, min(amounts.size, n_buckets - steps))
            target[steps:steps + inside] += amounts[:inside]
            if inside < amounts.size:
                target[n_buckets - 1] += float(amounts[inside:].sum())
        else:
            general.append((target, np.arange(steps, steps + amounts.size), amounts))
    if not general:
        return
    buckets = np.clip(np.concatenate([steps for _t, steps, _w in general]) // steps_per_bucket,
                      0, n_buckets - 1)
    low = int(buckets.min())
    width = int(buckets.max()) - low + 1
    which = np.repeat(np.arange(len(general)), [steps.size for _t, steps, _w in general])
    sums = np.bincount(which * width + buckets - low,
                       weights=np.concatenate([w for _t, _s, w in general]),
                       minlength=len(general) * width).reshape(len(general), width)
    for row, (target, _steps, _w) in enumerate(general):
        target[low:low + width] += sums[row]
