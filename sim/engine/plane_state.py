"""Book-keeping of a service plane: per-bucket accounts, open tick histograms, in-flight work
and the per-instance load-balancer choice."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sim.metrics import HIST_BINS, add_counts, latency_bins, percentiles_ms

QUANTILES = (0.50, 0.95, 0.99)


@dataclass
class Accounts:
    """Per-bucket counts and worker-seconds of one service, plus per-tick latency percentiles.

    Counts are booked at their event time: arrivals and sheds at arrival, completions at
    finish, timeouts at the deadline, failures at the failure.
    """

    n_buckets: int
    n_ticks: int
    arrivals: np.ndarray = field(init=False)
    retries: np.ndarray = field(init=False)
    completed: np.ndarray = field(init=False)
    waited: np.ndarray = field(init=False)
    timed_out: np.ndarray = field(init=False)
    shed: np.ndarray = field(init=False)
    failed: np.ndarray = field(init=False)
    final_failures: np.ndarray = field(init=False)
    busy_ws: np.ndarray = field(init=False)
    queue_ws: np.ndarray = field(init=False)
    capacity_ws: np.ndarray = field(init=False)
    tick_percentiles_ms: np.ndarray = field(init=False)
    final_failures_at: list[float] = field(default_factory=list)
    _open_ticks: dict[int, np.ndarray] = field(default_factory=dict)
    # a tick's histogram as weight x shape, kept unexpanded until it closes: a calm tick is
    # one shape (the no-wait latencies), whose percentiles are those of the shape alone
    _open_shapes: dict[int, list[tuple[float, np.ndarray]]] = field(default_factory=dict)
    _shape_percentiles: dict[int, tuple[np.ndarray, float, list[float]]] = field(
        default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("arrivals", "retries", "completed", "waited", "timed_out", "shed", "failed",
                     "final_failures", "busy_ws", "queue_ws", "capacity_ws"):
            setattr(self, name, np.zeros(self.n_buckets))
        self.tick_percentiles_ms = np.full((self.n_ticks, len(QUANTILES)), np.nan)

    def flush_failures(self, bucket_s: float) -> None:
        """Book the final failures noted since the last flush."""
        if self.final_failures_at:
            times = np.asarray(self.final_failures_at)
            add_counts(self.final_failures, times, bucket_s)
            self.final_failures_at.clear()

    def add_latencies(self, finish_s: np.ndarray, latency_ms: np.ndarray, tick_s: float) -> None:
        """Add completed attempts to the histogram of the tick they finish in."""
        if finish_s.size == 0:
            return
        ticks = np.minimum((finish_s / tick_s).astype(np.int64), self.n_ticks - 1)
        bins = latency_bins(latency_ms)
        low, high = int(ticks.min()), int(ticks.max())
        flat = np.bincount((ticks - low) * HIST_BINS + bins, minlength=(high - low + 1) * HIST_BINS)
        table = flat.reshape(high - low + 1, HIST_BINS)
        for row in np.flatnonzero(table.sum(axis=1)):
            tick = low + int(row)
            if tick in self._open_ticks:
                self._open_ticks[tick] += table[row]
            else:
                self._open_ticks[tick] = table[row].copy()

    def add_tick_counts(self, tick: int, counts: np.ndarray) -> None:
        """Add a histogram of (expected) latency counts to ``tick``'s open histogram."""
        if tick in self._open_ticks:
            self._open_ticks[tick] = self._open_ticks[tick] + counts
        else:
            self._open_ticks[tick] = counts.astype(float)

    def remove_latency(self, finish_s: float, latency_ms: float, tick_s: float) -> None:
        tick = min(int(finish_s / tick_s), self.n_ticks - 1)
        counts = self._open_ticks.get(tick)
        if counts is not None:
            counts[int(latency_bins(np.asarray([latency_ms]))[0])] -= 1

    def add_tick_shape(self, tick: int, weight: float, shape: np.ndarray) -> None:
        """Add ``weight x shape`` (expected latency counts) to ``tick``'s open histogram;
        ``shape`` must not change afterwards."""
        self._open_shapes.setdefault(tick, []).append((weight, shape))

    def close_ticks(self, before_s: float, tick_s: float, final: bool = False) -> None:
        """Compute the percentiles of every tick that ends by ``before_s`` and drop its
        histogram (no attempt decided later can finish in it)."""
        for tick in sorted(self._open_ticks.keys() | self._open_shapes.keys()):
            if not final and (tick + 1) * tick_s > before_s + 1e-9:
                break  # and so are all later ones
            dense = self._open_ticks.pop(tick, None)
            parts = self._open_shapes.pop(tick, [])
            shape = parts[0][1] if parts else None
            if dense is None and shape is not None and all(s is shape for _w, s in parts):
                total, values = self._shape_summary(shape)
                if sum(w for w, _s in parts) * total < 0.5:  # as percentiles_ms: empty
                    values = [np.nan] * len(QUANTILES)
            else:
                counts = np.zeros(HIST_BINS) if dense is None else dense
                for w, s in parts:
                    counts = counts + w * s
                values = _percentiles(counts)
            self.tick_percentiles_ms[tick] = values

    def _shape_summary(self, shape: np.ndarray) -> tuple[float, list[float]]:
        """A shape's sum and the QUANTILES of any positive multiple of it (kept per shape)."""
        hit = self._shape_percentiles.get(id(shape))
        if hit is not None and hit[0] is shape:
            return hit[1], hit[2]
        total = float(shape.sum())
        values = _percentiles(shape / total) if total > 0 else [np.nan] * len(QUANTILES)
        self._shape_percentiles[id(shape)] = (shape, total, values)  # holds the id's owner
        return total, values


def _percentiles(counts: np.ndarray) -> list[float]:
    """QUANTILES of a histogram, NaN where it is empty."""
    return [np.nan if v is None else v for v in percentiles_ms(counts, QUANTILES)]


class InFlight:
    """Attempts that hold a worker past the end of the last batch, keyed by finish time, so a
    failing instance can take them back."""

    def __init__(self) -> None:
        self._by_finish: dict[float, list[tuple[float, float, int, bool]]] = {}

    def update(
        self, now_s: float, finish_s: np.ndarray, arrival_s: np.ndarray, service_s: np.ndarray,
        attempts: np.ndarray, completed: np.ndarray, _queues: np.ndarray | None,
    ) -> None:
        """Drop what has finished by ``now_s`` and add the new attempts still running."""
        self._by_finish = {f: v for f, v in self._by_finish.items() if f > now_s}
        for f, a, s, k, c in zip(finish_s.tolist(), arrival_s.tolist(), service_s.tolist(),
                                 attempts.tolist(), completed.tolist(), strict=True):
            self._by_finish.setdefault(f, []).append((a, s, k, c))

    def has(self, finish_s: float) -> bool:
        return finish_s in self._by_finish

    def pop(self, finish_s: float) -> tuple[float, float, int, bool] | None:
        """(arrival_s, service_s, attempt, completed) of one attempt finishing at ``finish_s``."""
        entries = self._by_finish.get(finish_s)
        if not entries:
            return None
        entry = entries.pop()
        if not entries:
            del self._by_finish[finish_s]
        return entry


class Chooser:
    """Per-instance load balancing: which ready queue an attempt goes to.

    ``pick`` may be called again for the same attempt (when it is carried to the next batch);
    the choice only advances on ``commit``.
    """

    def __init__(self, balancer: str, rng: np.random.Generator) -> None:
        self.balancer = balancer
        self.rng = rng
        self._counter = 0
        self._draw: float | None = None

    def pick(self, ready: list[int]) -> int:
        if len(ready) == 1:
            return ready[0]
        if self.balancer == "random":
            if self._draw is None:
                self._draw = float(self.rng.random())
            return ready[min(int(self._draw * len(ready)), len(ready) - 1)]
        return ready[self._counter % len(ready)]

    def commit(self) -> None:
        self._counter += 1
        self._draw = None
