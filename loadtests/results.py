"""Merge a load test's ``results.jsonl`` into per-window series and whole-run histograms.

The records (``loadtests.recorder``) are summed per (service, window): counters add, sparse
histograms add bin by bin, lag maxima take the maximum. Per-window percentiles come from each
window's histogram; whole-run percentiles from the sum of all of them (``sim.metrics``
histograms, so load tests and simulations report percentiles the same way). Reading streams the
file: memory grows with windows, not with requests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from loadtests.collector import iter_results
from loadtests.recorder import COUNTERS
from sim.errors import LoadTestError
from sim.metrics import LatencyHistogram, bin_centre_ms

QUANTILES = (("p50", 0.50), ("p90", 0.90), ("p95", 0.95), ("p99", 0.99))


@dataclass
class WindowHist:
    """Sparse latency histogram of one window (bin index -> count)."""

    bins: dict[int, int] = field(default_factory=dict)

    def add(self, sparse: Mapping[str, int]) -> None:
        for key, count in sparse.items():
            index = int(key)
            self.bins[index] = self.bins.get(index, 0) + int(count)

    def percentile(self, q: float) -> float | None:
        """Nearest-rank ``q``-quantile (as ``sim.engine.percentile_ms``), or None if empty."""
        if not self.bins:
            return None
        order = sorted(self.bins)
        cumulative = np.cumsum([self.bins[i] for i in order])
        rank = max(1, int(np.ceil(q * cumulative[-1] - 1e-9)))
        return bin_centre_ms(order[int(np.searchsorted(cumulative, rank))])


@dataclass
class ServiceResults:
    """Per-window arrays (length ``n_windows``) and whole-run histograms of one service."""

    name: str
    counts: dict[str, np.ndarray]
    lag_ms_sum: np.ndarray
    lag_ms_max: np.ndarray
    corrected: list[WindowHist]
    raw: list[WindowHist]
    corrected_total: LatencyHistogram
    raw_total: LatencyHistogram
    first_total: LatencyHistogram
    """Corrected latencies of the first attempts that completed (the SLO's good events)."""
    reasons: dict[str, int] = field(default_factory=dict)
    """Why attempts failed, whole run (``status 404``, ``expect: ...``, ``timeout``, ...)."""

    def total(self, counter: str) -> int:
        return int(self.counts[counter].sum())

    def window_percentiles(self, raw: bool = False) -> dict[str, np.ndarray]:
        """p50/p95/p99 per window (NaN where nothing completed)."""
        hists = self.raw if raw else self.corrected
        out = {}
        for label, q in QUANTILES:
            out[label] = np.array([np.nan if (v := h.percentile(q)) is None else v
                                   for h in hists])
        return out

    @staticmethod
    def latency(hist: LatencyHistogram) -> dict[str, float | None]:
        """``{"mean", "p50", "p90", "p95", "p99", "max"}`` of a whole-run histogram (ms)."""
        out: dict[str, float | None] = {"mean": _round(hist.mean_ms)}
        for label, q in QUANTILES:
            out[label] = _round(hist.percentile(q))
        out["max"] = _round(hist.max_ms) if hist.count else None
        return out


@dataclass
class MergedResults:
    """Everything measured, merged: the meta line and one ``ServiceResults`` per service."""

    meta: dict[str, Any]
    window_s: float
    n_windows: int
    services: dict[str, ServiceResults]
    sources: tuple[str, ...]


def merge_results(path: Path, span_s: float | None = None) -> MergedResults:
    """Read and merge ``path``; ``span_s`` (default: the meta's ``until_s``) sets how many
    windows the series have (later completions land in the last window)."""
    if not path.exists():
        raise LoadTestError(f"{path}: missing; the load generator wrote no results (see "
                            f"locust.log next to it)")
    lines = iter_results(path)
    meta = next(lines, {}).get("meta")
    if not isinstance(meta, dict):
        raise LoadTestError(f"{path}: expected a first line {{\"meta\": ...}}")
    window_s = float(meta["window_s"])
    span = float(span_s if span_s is not None else meta["until_s"])
    n = max(1, int(np.ceil(span / window_s - 1e-9)))
    services = {name: _empty(name, n) for name in meta.get("services", [])}
    sources: set[str] = set()
    for record in lines:
        name = str(record["s"])
        results = services.get(name) or services.setdefault(name, _empty(name, n))
        w = min(int(record["w"]), n - 1)
        sources.add(str(record.get("src", "")))
        for counter, value in record.get("c", {}).items():
            if counter in results.counts:
                results.counts[counter][w] += int(value)
        results.lag_ms_sum[w] += float(record.get("lag_sum", 0.0))
        results.lag_ms_max[w] = max(results.lag_ms_max[w], float(record.get("lag_max", 0.0)))
        results.corrected[w].add(record.get("hc", {}))
        results.raw[w].add(record.get("hr", {}))
        for reason, count in record.get("rs", {}).items():
            results.reasons[str(reason)] = results.reasons.get(str(reason), 0) + int(count)
        for key, count in record.get("hf", {}).items():
            results.first_total.counts[int(key)] += int(count)
            results.first_total.count += int(count)
        for key, total in (("c", results.corrected_total), ("r", results.raw_total)):
            total.sum_ms += float(record.get(f"lat_sum_{key}", 0.0))
            total.max_ms = max(total.max_ms, float(record.get(f"lat_max_{key}", 0.0)))
    for results in services.values():
        _totals(results)
    return MergedResults(meta, window_s, n, services, tuple(sorted(sources)))


def _empty(name: str, n: int) -> ServiceResults:
    return ServiceResults(
        name=name, counts={c: np.zeros(n, dtype=np.int64) for c in COUNTERS},
        lag_ms_sum=np.zeros(n), lag_ms_max=np.zeros(n),
        corrected=[WindowHist() for _ in range(n)], raw=[WindowHist() for _ in range(n)],
        corrected_total=LatencyHistogram(), raw_total=LatencyHistogram(),
        first_total=LatencyHistogram(),
    )


def _totals(results: ServiceResults) -> None:
    """Whole-run histograms: the sum of the windows' (exact sum and max come with records)."""
    for windows, total in ((results.corrected, results.corrected_total),
                           (results.raw, results.raw_total)):
        for hist in windows:
            for index, count in hist.bins.items():
                total.counts[index] += count
                total.count += count


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)
