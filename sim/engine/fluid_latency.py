"""Latencies of the fluid engine: the service-time distribution as quantile points, the
latency histogram of each waiting-time node (wait + service, completed within the timeout),
and a histogram of expected (fractional) counts in the engines' log-spaced bins."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from sim.metrics import HIST_BINS, LatencyHistogram, bin_centre_ms, latency_bins
from sim.model import Sampler


@dataclass(frozen=True)
class ServiceShape:
    """The service-time distribution as quantile points: ``points_s`` with masses
    ``weights`` (denser in the tail, so p99 of latency is resolved)."""

    points_s: np.ndarray
    weights: np.ndarray
    mean_s: float
    cs2: float

    @classmethod
    def of(cls, sampler: Sampler, seed: int) -> ServiceShape:
        edges = np.concatenate([np.linspace(0.0, 0.95, 96),
                                1.0 - np.geomspace(0.05, 1e-5, 64), [1.0]])
        mids = (edges[:-1] + edges[1:]) / 2.0
        draws = sampler.sample_ms(np.random.default_rng([seed, 99]), 200_000)
        points = np.quantile(draws, mids) / 1000.0
        mean_s = sampler.mean_ms / 1000.0
        cs2 = sampler.second_moment_ms2 / max(sampler.mean_ms**2, 1e-12) - 1.0
        return cls(points, np.diff(edges), mean_s, max(cs2, 0.0))


class LatencyKernel:
    """Per waiting-time node: the histogram of latency = wait + service (completed only,
    latency within the timeout), the share served late and the mean latency."""

    def __init__(self, shape: ServiceShape, nodes_s: np.ndarray, timeout_s: float,
                 factor: float) -> None:
        lat_s = nodes_s[:, None] + factor * shape.points_s[None, :]
        ok = lat_s <= timeout_s if timeout_s > 0 else np.ones(lat_s.shape, dtype=bool)
        w = np.where(ok, shape.weights[None, :], 0.0)
        bins = latency_bins(lat_s * 1000.0)
        rows = np.arange(nodes_s.size)[:, None] * HIST_BINS + bins
        flat = np.bincount(rows.ravel(), weights=w.ravel(), minlength=nodes_s.size * HIST_BINS)
        # sparse: a node's latencies cover a few hundred of the histogram's bins
        self.matrix_t = sparse.csr_matrix(flat.reshape(nodes_s.size, HIST_BINS).T)
        self.row0 = flat[:HIST_BINS].copy()
        """The no-wait node's latency histogram (dense)."""
        self.done_share = w.sum(axis=1)
        self.mean_ms = (w * lat_s).sum(axis=1) * 1000.0


class FluidHistogram(LatencyHistogram):
    """A latency histogram of expected (fractional) counts."""

    def __init__(self) -> None:
        super().__init__()
        self.counts = np.zeros(HIST_BINS)
        self.weight = 0.0

    def add_counts(self, counts: np.ndarray, sum_ms: float) -> None:
        self.counts += counts
        self.weight += float(counts.sum())
        self.count = int(round(self.weight))
        self.sum_ms += sum_ms

    def finish(self) -> None:
        """Set ``max_ms``: the largest latency at least half a request is expected to reach."""
        tail = np.cumsum(self.counts[::-1])
        reached = np.flatnonzero(tail >= 0.5)
        if reached.size:
            self.max_ms = bin_centre_ms(HIST_BINS - 1 - int(reached[0]))

    @property
    def mean_ms(self) -> float | None:
        return self.sum_ms / self.weight if self.weight > 0 else None
