"""Latencies of the fluid engine: the service-time distribution as quantile points, the
latency histogram of each waiting-time node (wait + service, completed within the timeout),
and a histogram of expected (fractional) counts in the engines' log-spaced bins."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import sparse

from sim.engine.plane_state import Accounts
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
        self._flat = flat.reshape(nodes_s.size, HIST_BINS)
        self.row0 = flat[:HIST_BINS].copy()
        """The no-wait node's latency histogram (dense)."""
        self.row0_sum = float(self.row0.sum())
        self.done_share = w.sum(axis=1)
        self.mean_ms = (w * lat_s).sum(axis=1) * 1000.0

    @cached_property
    def matrix_t(self) -> sparse.csr_matrix:
        """Every node's latency histogram, bins x nodes; built on first use, as most kernels
        serve calm batches (the no-wait row) only. Sparse: a node's latencies cover a few
        hundred of the histogram's bins."""
        return sparse.csr_matrix(self._flat.T)


class FluidHistogram(LatencyHistogram):
    """A latency histogram of expected (fractional) counts."""

    def __init__(self) -> None:
        super().__init__()
        self.counts = np.zeros(HIST_BINS)
        self.weight = 0.0
        # weight x shape added unexpanded (shape id -> (shape, weight)), until ``settle``
        self._shapes: dict[int, tuple[np.ndarray, float]] = {}

    def add_counts(self, counts: np.ndarray, sum_ms: float) -> None:
        self.counts += counts
        self.weight += float(counts.sum())
        self.count = int(round(self.weight))
        self.sum_ms += sum_ms

    def add_shape(self, weight: float, shape: np.ndarray, shape_sum: float,
                  sum_ms: float) -> None:
        """``add_counts(weight x shape, sum_ms)`` with ``shape.sum() == shape_sum``, the
        product formed once per shape at ``settle``; ``shape`` must not change."""
        held = self._shapes.get(id(shape))
        self._shapes[id(shape)] = (shape, weight + (held[1] if held is not None else 0.0))
        self.weight += weight * shape_sum
        self.count = int(round(self.weight))
        self.sum_ms += sum_ms

    def settle(self) -> None:
        """Expand the shapes added into ``counts`` (before reading ``counts``)."""
        for shape, weight in self._shapes.values():
            self.counts += weight * shape
        self._shapes.clear()

    def finish(self) -> None:
        """Set ``max_ms``: the largest latency at least half a request is expected to reach."""
        self.settle()
        tail = np.cumsum(self.counts[::-1])
        reached = np.flatnonzero(tail >= 0.5)
        if reached.size:
            self.max_ms = bin_centre_ms(HIST_BINS - 1 - int(reached[0]))

    @property
    def mean_ms(self) -> float | None:
        return self.sum_ms / self.weight if self.weight > 0 else None


def book_latencies(acc: Accounts, hist: FluidHistogram, ticks: np.ndarray, offered: np.ndarray,
                   masses: np.ndarray, kernel: LatencyKernel, sum_ms: float) -> None:
    """Add a batch's completed attempts to the histograms of the ticks they finish in and to
    the run's: ``offered`` attempts per step, ``masses`` the share of each at each waiting
    node (one column: nobody waits), ``ticks`` each step's tick (never falling), ``sum_ms``
    their summed latency."""
    low = int(ticks[0])
    rows = ticks - low
    change = np.empty(rows.size, dtype=bool)  # where a tick begins
    change[0] = True
    np.not_equal(rows[1:], rows[:-1], out=change[1:])
    starts = np.flatnonzero(change)
    weights = np.add.reduceat(masses * offered[:, None], starts, axis=0)
    if masses.shape[1] == 1:
        # the no-wait histogram scaled: kept as a weight until needed
        for w, tick in zip(weights[:, 0].tolist(), rows[starts].tolist(), strict=True):
            if w * kernel.row0_sum > 0:
                acc.add_tick_shape(low + tick, w, kernel.row0)
        hist.add_shape(float(weights.sum()), kernel.row0, kernel.row0_sum, sum_ms)
        return
    table = (kernel.matrix_t @ weights.T).T
    for row, tick in enumerate(rows[starts].tolist()):
        if table[row].sum() > 0:
            acc.add_tick_counts(low + tick, table[row])
    hist.add_counts(table.sum(axis=0), sum_ms)
