"""One service's data plane: arrivals, the FCFS kernel, retries and exact metric accounting.

``ServicePlane.advance_to(t)`` draws the arrivals up to ``t`` (non-homogeneous Poisson by
thinning), decides every attempt with the kernels of ``sim.engine.pool`` and adds the results to
per-bucket arrays (counts at their event time, busy and queue worker-seconds split exactly over
buckets) and per-tick latency histograms. The engine calls it before every control event, so
within a batch the workers never change.
"""

from __future__ import annotations

import heapq
import math
import zlib
from dataclasses import dataclass

import numpy as np

from sim.engine.plane_state import Accounts, Chooser, InFlight
from sim.engine.pool import ABANDONED, SHED, GeneralBatch, Queue, Retry, serve_fast, serve_general
from sim.metrics import LatencyHistogram, add_counts, add_overlap
from sim.model import Sampler, Service, TrafficModel

WAITING_CAP = 100_000
"""Requests that may wait at once in a service without ``max_queue`` (per shared queue; split
over the instances with per-instance queues). Beyond it arrivals are shed and the summary says
so: an unbounded queue would otherwise hold every waiting request in memory."""
_GRID_STEP_S = 0.25  # rate-grid step (scenario seconds) that bounds the thinning envelope
_ENVELOPE = 1.05
MAX_BATCH_ARRIVALS = 500_000
"""Most arrivals one batch draws: a batch is cut into pieces of at most about this many, so
memory stays bounded at any rate (one 5-s tick at the real 11.11 rates is 35 M requests)."""


@dataclass(frozen=True)
class PlaneConfig:
    """What the plane needs to know about its run: buckets, ticks and the horizon."""

    bucket_s: float
    n_buckets: int
    tick_s: float
    n_ticks: int
    seed: int


class ServicePlane:
    """Requests of one service through its pool of workers (see module docstring)."""

    def __init__(
        self, name: str, spec: Service, sampler: Sampler, traffic: TrafficModel,
        config: PlaneConfig,
    ) -> None:
        self.name = name
        self.spec = spec
        self.sampler = sampler
        self.traffic = traffic
        self.config = config
        self.timeout_s = spec.timeout_ms / 1000.0
        self.shared = spec.balancer == "least_outstanding"
        self.wants_ready_ids = not self.shared  # set_ready needs the ready queues' ids
        self.retry_max = spec.retries.max if spec.retries is not None else 0
        self.general = self.retry_max > 0 or not self.shared
        key = zlib.crc32(name.encode())
        self.rng_arrivals = np.random.default_rng([config.seed, key, 1])
        self.rng_service = np.random.default_rng([config.seed, key, 2])
        self.rng_retry = np.random.default_rng([config.seed, key, 3])
        self.rng_faults = np.random.default_rng([config.seed, key, 4])
        self.chooser = Chooser(spec.balancer, np.random.default_rng([config.seed, key, 5]))
        self.queues: list[Queue] = [Queue()] if self.shared else []
        self.ready_queues: list[int] = []  # per-instance mode: indices of ready queues
        self.ready_instances = 0
        self.inflation = np.ones(1)  # service-time factors of the ready instances (colocation)
        self.acc = Accounts(config.n_buckets, config.n_ticks)
        self.hist = LatencyHistogram()
        self.hist_first = LatencyHistogram()
        """First attempts that completed successfully: the SLO's good events (sim.model.slo)."""
        self.inflight = InFlight()
        self.generated_to_s = 0.0
        self.carried = Carried()
        self.retry_heap: list[Retry] = []
        self._retry_service_s: list[float] = []  # buffered draws for retries
        self.workload: tuple[np.ndarray, np.ndarray] | None = None
        """Pre-drawn (arrivals_s, service_s) replacing the random draws (benchmarks, tests)."""
        self._retry_seq = 0
        self.attempts_total = 0
        grid = np.linspace(0.0, traffic.duration_s, 4096)
        self._peak_rps = float(traffic.rates_rps(name, grid).max()) * _ENVELOPE
        self.capped_shed = 0
        """Attempts shed by ``WAITING_CAP`` (a service without ``max_queue``)."""

    # ------------------------------------------------------------------ arrivals
    def _draw_arrivals(self, t0: float, t1: float) -> np.ndarray:
        span = t1 - t0
        if span <= 0:
            return np.zeros(0)
        step = _GRID_STEP_S / self.traffic.time_scale
        grid = np.linspace(t0, t1, max(3, int(math.ceil(span / step)) + 1))
        rates = self.traffic.rates_rps(self.name, grid)
        top = float(rates.max())
        if top <= 0:
            return np.zeros(0)
        if float(rates.min()) == top:  # constant over the batch: homogeneous Poisson
            n = int(self.rng_arrivals.poisson(top * span))
            return np.sort(self.rng_arrivals.uniform(t0, t1, n))
        envelope = top * _ENVELOPE
        n = int(self.rng_arrivals.poisson(envelope * span))
        times = np.sort(self.rng_arrivals.uniform(t0, t1, n))
        rates_at = self.traffic.rates_rps(self.name, times)
        return times[self.rng_arrivals.uniform(0.0, envelope, n) < rates_at]

    def _draw_service_s(self, n: int) -> np.ndarray:
        service = self.sampler.sample_ms(self.rng_service, n) / 1000.0
        if np.any(self.inflation != 1.0):
            pick = self.rng_service.integers(0, self.inflation.size, n)
            service = service * self.inflation[pick]
        return service

    # ------------------------------------------------------------------ batches
    def advance_to(self, t_s: float) -> None:
        """Decide every attempt that arrives before ``t_s`` (or carry it past ``t_s``), in
        pieces of at most about ``MAX_BATCH_ARRIVALS`` arrivals (deciding in pieces gives the
        same outcomes: attempts still waiting at a piece's end are carried)."""
        if t_s <= self.generated_to_s:
            return
        expected = self._peak_rps * (t_s - self.generated_to_s)
        if self.workload is None and expected > MAX_BATCH_ARRIVALS:
            pieces = int(math.ceil(expected / MAX_BATCH_ARRIVALS))
            start, span = self.generated_to_s, t_s - self.generated_to_s
            for k in range(1, pieces):
                self._advance_piece(start + span * k / pieces)
        self._advance_piece(t_s)

    def _advance_piece(self, t_s: float) -> None:
        if self.workload is not None:
            times, all_service = self.workload
            lo, hi = np.searchsorted(times, [self.generated_to_s, t_s])
            new, service = times[lo:hi], all_service[lo:hi]
        else:
            new = self._draw_arrivals(self.generated_to_s, t_s)
            service = self._draw_service_s(new.size)
        self.generated_to_s = t_s
        if self.general:
            self._advance_general(t_s, new, service)
        else:
            self._advance_fast(t_s, new, service)

    def drain(self) -> None:
        """At the end of the run: decide every attempt still queued or due to retry, with no
        new arrivals, so that every attempt ends completed, timed out, shed or failed (events
        after the end are booked in the last bucket)."""
        if self.general:
            self._advance_general(np.inf, np.zeros(0), np.zeros(0))
        else:
            self._advance_fast(np.inf, np.zeros(0), np.zeros(0))

    def _advance_fast(self, t_s: float, new: np.ndarray, service: np.ndarray) -> None:
        carried = self.carried
        carried.extend(new, service)
        arrivals, service_s, pos = carried.arrivals_s, carried.service_s, carried.pos
        starts: list[float] = []
        if self.ready_instances > 0 and self.queues[0].free_s:
            done = serve_fast(self.queues[0], arrivals, service_s, pos, starts, t_s,
                              self.timeout_s, self._queue_limit())
        else:
            done = len(arrivals)
            starts = [SHED] * (done - pos)
        decided_a, decided_s = carried.take(done)
        self._account(t_s, decided_a, decided_s, np.zeros(decided_a.size, dtype=np.int64),
                      np.asarray(starts), None)

    def _advance_general(self, t_s: float, new: np.ndarray, service: np.ndarray) -> None:
        carried = self.carried
        carried.extend(new, service)
        out = GeneralBatch()
        ready = ([0] if self.ready_instances > 0 else []) if self.shared else self.ready_queues
        pos = serve_general(self.queues, ready, carried.arrivals_s, carried.service_s,
                            carried.pos, self.retry_heap, t_s, self.timeout_s,
                            self._queue_limit(), None if self.shared else self.chooser,
                            self._on_failure, out)
        carried.take(pos)
        self._account(t_s, np.asarray(out.arrivals_s), np.asarray(out.service_s),
                      np.asarray(out.attempts, dtype=np.int64), np.asarray(out.starts),
                      np.asarray(out.queues, dtype=np.int64))

    def _queue_limit(self) -> int | None:
        if self.spec.max_queue is None:
            return waiting_cap(self.spec, self.shared)
        return self.spec.max_queue * (self.ready_instances if self.shared else 1)

    def _on_failure(self, _arrival_s: float, t_fail_s: float, attempt: int) -> None:
        """A failed attempt comes back after its backoff, or is a final failure."""
        retries = self.spec.retries
        if retries is None or attempt >= retries.max:
            self.acc.final_failures_at.append(t_fail_s)
            return
        if not self._retry_service_s:
            # Draw in blocks: retries need their own service times, one numpy call per block.
            draws = self._draw_service_s(1024).tolist()
            jitter = self.rng_retry.uniform(-1.0, 1.0, 1024).tolist()
            self._retry_service_s = [x for pair in zip(draws, jitter, strict=True) for x in pair]
        jitter_u = self._retry_service_s.pop()
        service_s = self._retry_service_s.pop()
        backoff_s = retries.backoff_ms / 1000.0 * retries.multiplier ** attempt
        backoff_s *= 1.0 + retries.jitter * jitter_u
        self._retry_seq += 1
        heapq.heappush(self.retry_heap,
                       (t_fail_s + backoff_s, self._retry_seq, service_s, attempt + 1))

    # ------------------------------------------------------------------ accounting
    def _account(
        self, t_s: float, arrivals: np.ndarray, service: np.ndarray, attempts: np.ndarray,
        starts: np.ndarray, queue_ids: np.ndarray | None,
    ) -> None:
        cfg, acc = self.config, self.acc
        self.attempts_total += int(arrivals.size)
        if arrivals.size == 0:
            return
        bs = cfg.bucket_s
        first = attempts == 0
        add_counts(acc.arrivals, arrivals[first], bs)
        add_counts(acc.retries, arrivals[~first], bs)
        served = starts >= 0
        shed = starts == SHED
        abandoned = starts == ABANDONED
        finish = np.where(served, starts + service, np.inf)
        if self.timeout_s > 0:
            deadline = arrivals + self.timeout_s
            completed = served & (finish <= deadline)
            late = served & ~completed
        else:
            deadline = np.full(arrivals.shape, np.inf)
            completed, late = served, np.zeros(arrivals.shape, dtype=bool)
        add_counts(acc.shed, arrivals[shed], bs)
        if self.spec.max_queue is None and self.ready_instances > 0:
            # Workers are fixed within a batch: with a ready instance, a shed attempt met
            # the waiting cap (without one, every attempt is shed for want of workers).
            self.capped_shed += int(np.count_nonzero(shed))
        add_counts(acc.timed_out, deadline[late | abandoned], bs)
        add_counts(acc.completed, finish[completed], bs)
        add_counts(acc.waited, starts[served & (starts > arrivals)], bs)
        add_overlap(acc.busy_ws, starts[served], finish[served], bs)
        add_overlap(acc.queue_ws, arrivals[served], starts[served], bs)
        add_overlap(acc.queue_ws, arrivals[abandoned], deadline[abandoned], bs)
        if not self.general:  # the general path reports final failures as they happen
            acc.final_failures_at.extend(arrivals[shed].tolist())
            acc.final_failures_at.extend(deadline[late | abandoned].tolist())
        latency_ms = (finish[completed] - arrivals[completed]) * 1000.0
        self.hist.add(latency_ms)
        self.hist_first.add(latency_ms[first[completed]])
        acc.add_latencies(finish[completed], latency_ms, cfg.tick_s)
        keep = served & (finish > t_s)
        self.inflight.update(t_s, finish[keep], arrivals[keep], service[keep], attempts[keep],
                             completed[keep],
                             queue_ids[keep] if queue_ids is not None else None)
        acc.flush_failures(bs)

    # ------------------------------------------------------------------ capacity changes
    def add_instance(self, ready_s: float, workers: int) -> int:
        """Add an instance whose workers take work from ``ready_s``; returns its queue id."""
        if self.shared:
            for _ in range(workers):
                heapq.heappush(self.queues[0].free_s, ready_s)
            return 0
        self.queues.append(Queue(free_s=[ready_s] * workers))
        return len(self.queues) - 1

    def set_ready(self, ready_queue_ids: list[int], ready_instances: int,
                  inflation: np.ndarray | None = None) -> None:
        """The instances that take work from now on (called at every readiness change)."""
        self.ready_queues = sorted(ready_queue_ids) if not self.shared else []
        self.ready_instances = ready_instances
        if inflation is not None and inflation.size:
            self.inflation = inflation

    def remove_instance(self, now_s: float, queue_id: int, workers: int, booting_ready_s: float
                        | None, mode: str) -> list[float]:
        """Take an instance's workers away at ``now_s``.

        ``booting_ready_s`` is its ready time if it is still booting (nothing in flight).
        ``mode`` ``drain``: in-flight attempts finish; ``fail``: they fail now (and may retry).
        Returns the free times of the removed workers that were still busy (draining), so the
        caller can count their capacity until then.
        """
        if self.shared:
            heap = self.queues[0].free_s
            if booting_ready_s is not None:
                removed = _take(heap, [i for i, f in enumerate(heap) if f == booting_ready_s],
                                workers)
                return []
            ready_idx = [i for i, f in enumerate(heap) if f <= now_s or self.inflight.has(f)]
            if mode == "drain":
                ready_idx.sort(key=lambda i: heap[i])  # the least busy instance goes first
                removed = _take(heap, ready_idx, workers)
            else:
                chosen = self.rng_faults.permutation(len(ready_idx))[:workers]
                removed = _take(heap, [ready_idx[int(c)] for c in chosen], workers)
        else:
            heap = self.queues[queue_id].free_s
            removed = list(heap)
            heap.clear()
            self.queues[queue_id].waiting_leave_s.clear()
            if booting_ready_s is not None:
                return []
        busy = [f for f in removed if f > now_s]
        if mode == "fail":
            for finish in busy:
                self._fail_inflight(now_s, finish)
            return []
        return busy

    def _fail_inflight(self, now_s: float, finish_s: float) -> None:
        entry = self.inflight.pop(finish_s)
        if entry is None:
            return
        arrival, service, attempt, completed = entry
        cfg, acc = self.config, self.acc
        add_overlap(acc.busy_ws, np.asarray([now_s]), np.asarray([finish_s]), cfg.bucket_s, -1.0)
        if not completed:
            return  # its client gives up at the deadline anyway: it stays a timeout
        latency_ms = (finish_s - arrival) * 1000.0
        self.hist.remove_one(latency_ms)
        if attempt == 0:
            self.hist_first.remove_one(latency_ms)
        acc.remove_latency(finish_s, latency_ms, cfg.tick_s)
        add_counts(acc.completed, np.asarray([finish_s]), cfg.bucket_s, -1.0)
        add_counts(acc.failed, np.asarray([now_s]), cfg.bucket_s)
        if self.general:
            self._on_failure(arrival, now_s, attempt)
        else:
            acc.final_failures_at.append(now_s)


class Carried:
    """Fresh arrivals not decided yet (still waiting at the last control event), in arrival
    order: Python lists the kernels read from ``pos`` on. New arrivals are appended and
    decided ones skipped, so an overload that carries a long queue costs O(new) per batch, not
    O(queue); the lists are compacted once most of them has been decided."""

    def __init__(self) -> None:
        self.arrivals_s: list[float] = []
        self.service_s: list[float] = []
        self.pos = 0

    def extend(self, arrivals_s: np.ndarray, service_s: np.ndarray) -> None:
        self.arrivals_s.extend(arrivals_s.tolist())
        self.service_s.extend(service_s.tolist())

    def take(self, end: int) -> tuple[np.ndarray, np.ndarray]:
        """The arrivals ``pos..end`` (decided now) as arrays; ``pos`` moves to ``end``."""
        arrivals = np.asarray(self.arrivals_s[self.pos:end], dtype=float)
        service = np.asarray(self.service_s[self.pos:end], dtype=float)
        self.pos = end
        if self.pos > 4096 and 2 * self.pos > len(self.arrivals_s):
            del self.arrivals_s[:self.pos]
            del self.service_s[:self.pos]
            self.pos = 0
        return arrivals, service


def _take(heap: list[float], candidates: list[int], count: int) -> list[float]:
    """Remove up to ``count`` entries (by index) from ``heap``; return their values."""
    chosen = set(candidates[:count])
    removed = [heap[i] for i in chosen]
    heap[:] = [f for i, f in enumerate(heap) if i not in chosen]
    heapq.heapify(heap)
    return removed


def waiting_cap(spec: Service, shared: bool) -> int:
    """The cap on waiting requests per queue of a service without ``max_queue``."""
    if shared:
        return WAITING_CAP
    return max(1, math.ceil(WAITING_CAP / max(1, spec.instances.max)))
