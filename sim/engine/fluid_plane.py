"""The fluid data plane: one service's requests as flows per time step, at a cost that does
not depend on the request rate.

``FluidPlane`` implements the data-plane contract of ``sim.dataplane.DataPlane`` (the exact
``ServicePlane`` is the other implementation), so the engine's SimPy control plane
(autoscaler, boots, faults, scrapes, cluster) drives it unchanged. Per step of ``step_s``
(one metric bucket, 1 s by default) it takes the expected arrivals from the
traffic curve plus the retries due, and splits them with the waiting-time law of
``sim.engine.fluid_model`` (M/M/s+D with a modified offered load, servers = ready instances x
workers, patience = the tighter of the timeout and the queue limit) into shed, abandoned,
served late (timed out in service: their worker was used) and completed. Failures come back
as retries after their backoff (spread by the jitter); a service without timeout or queue
limit above capacity grows an unbounded one.

Queues are carried from step to step as a fluid (Whitt 2006): while a pool is congested (its
queue beyond the square-root fluctuations of a pool of that size), arrivals wait behind the
fluid queue, which grows at ``arrival rate - service rate`` up to the bound set by the timeout
or queue limit (the excess is lost) and drains after a scale-up; the stochastic part on top
is the stationary law at the pool's Halfin-Whitt load.

Latencies: the law's waiting time on a log grid, convolved with the service-time
distribution (quantile points), go into the same per-tick log histograms as the exact
engine's, so percentiles, SLO verdicts and plots work unchanged. Counts are expected values
(fractional); the run files round them as they round the exact counts.
"""

from __future__ import annotations

import math

import numpy as np

from sim.engine.fluid_latency import (
    FluidHistogram,
    LatencyKernel,
    ServiceShape,
    book_latencies,
)
from sim.engine.fluid_model import (
    WaitLaw,
    fluid_queue,
    log_wait_bound,
    modified_offered_load,
    retry_spread,
    wait_law,
)
from sim.engine.plane import PlaneConfig
from sim.engine.plane_state import Accounts
from sim.metrics import add_steps
from sim.model import Sampler, Service, TrafficModel

STEP_TARGET_S = 1.0
"""Longest fluid step (run seconds): resolves the 26-s midnight ramp and boot times; the
waiting-time law within a step is stationary (queues relax within the timeouts)."""
_WAIT_NODES = 160
_NO_PATIENCE_HORIZON_S = 1e4
_CURVE_CHUNK_STEPS = 4096
_CALM = 1e-9
"""A waiting share below this is none: the step is served by the no-wait node alone."""
_LOG_CALM = math.log(_CALM) - math.log(10.0)
_RETRY_SWEEPS = 6  # fixed-point sweeps for retries that land in the same batch


class FluidPlane:
    """One service as flows (see the module docstring)."""

    def __init__(self, name: str, spec: Service, sampler: Sampler, traffic: TrafficModel,
                 config: PlaneConfig) -> None:
        self.name = name
        self.spec = spec
        self.sampler = sampler
        self.traffic = traffic
        self.config = config
        self.timeout_s = spec.timeout_ms / 1000.0
        self.shared = spec.balancer == "least_outstanding"
        self.wants_ready_ids = False  # set_ready needs the ready queues' ids
        self.sub = max(1, int(math.ceil(config.bucket_s / STEP_TARGET_S - 1e-9)))
        self.step_s = config.bucket_s / self.sub
        self.n_steps = config.n_buckets * self.sub
        self.steps_per_tick = int(round(config.tick_s / self.step_s))
        self.acc = Accounts(config.n_buckets, config.n_ticks)
        self.hist = FluidHistogram()
        self.capped_shed = 0
        """Always 0: a long queue is a number here, so it needs no cap (``WAITING_CAP``)."""
        self.rng_faults = np.random.default_rng([config.seed, 7])
        self.inflation = np.ones(1)
        self._factor_of: np.ndarray | None = None
        self._factor_value = 1.0
        self.workload: tuple[np.ndarray, np.ndarray] | None = None
        self.shape = ServiceShape.of(sampler, config.seed)
        hi = self.timeout_s if self.timeout_s > 0 else _NO_PATIENCE_HORIZON_S
        lo = min(1e-3 * self.shape.mean_s, hi / 1e3)
        self.edges_s = np.concatenate([[0.0], np.geomspace(lo, hi, _WAIT_NODES)])
        mids = np.sqrt(self.edges_s[1:-1] * self.edges_s[2:])
        self.nodes_s = np.concatenate([[0.0, lo / 2.0], mids])
        self._kernels: dict[int, LatencyKernel] = {}
        retries = spec.retries
        self.retry_max = retries.max if retries is not None else 0
        self.retry_due = np.zeros((self.retry_max + 1, self.n_steps + 1))
        self.ready_instances = 0
        self.k_done = 0
        self.mol = 0.0
        self.backlog = 0.0
        self.attempts_total = 0.0
        self._fresh_from = 0
        self._fresh = np.zeros(0)

    # ------------------------------------------------------------------ capacity changes
    def add_instance(self, ready_s: float, workers: int) -> int:
        """Instances are counted, not queued: every instance is queue 0."""
        return 0

    def set_ready(self, ready_queue_ids: list[int], ready_instances: int,
                  inflation: np.ndarray | None = None) -> None:
        self.ready_instances = ready_instances
        if inflation is not None and inflation.size:
            self.inflation = inflation

    def remove_instance(self, now_s: float, queue_id: int, workers: int,
                        booting_ready_s: float | None, mode: str) -> list[float]:
        """Take one instance away at ``now_s``: its share of the busy workers drains
        (returned as finish times, for capacity booking) or fails and may retry."""
        if booting_ready_s is not None or self.ready_instances <= 0:
            return []
        busy = self.mol * min(1.0, workers / max(self._servers_total(), 1.0))
        if busy <= 0:
            return []
        k = min(int(now_s / self.step_s), self.n_steps - 1)
        acc = self.acc
        bucket = min(k // self.sub, self.config.n_buckets - 1)
        if mode == "drain":
            # the draining workers count as capacity until their work is done (half a service
            # time on average): booked here rather than returned one by one
            acc.capacity_ws[bucket] += busy * self.shape.mean_s * self._factor() / 2.0
            return []
        acc.failed[bucket] += busy
        acc.completed[bucket] -= busy
        if self.retry_max > 0:
            self._schedule(1, k, np.asarray([busy]), delay_s=0.0)
        else:
            acc.final_failures[bucket] += busy
        return []

    # ------------------------------------------------------------------ stepping
    def _servers_total(self) -> float:
        return float(self.ready_instances * self.spec.workers)

    def _factor(self) -> float:
        """Mean service-time inflation of the ready instances (colocation; 1 without)."""
        inflation = self.inflation
        if inflation is not self._factor_of:
            self._factor_of = inflation
            self._factor_value = (float(inflation[0]) if inflation.size == 1 else
                                  float(np.mean(inflation)) if inflation.size else 1.0)
        return self._factor_value

    def advance_to(self, t_s: float) -> None:
        """Flow every whole step that ends by ``t_s``."""
        k1 = min(self.n_steps, int(math.floor(t_s / self.step_s + 1e-9)))
        if k1 <= self.k_done:
            return
        self._flow(self.k_done, k1)
        self.k_done = k1

    def drain(self) -> None:
        """At the end: retries still due count in the last bucket, served at once."""
        self.hist.finish()
        rest = float(self.retry_due[1:, self.n_steps:].sum())
        if rest > 0:
            self.acc.retries[-1] += rest
            self.acc.completed[-1] += rest
            self.attempts_total += rest

    def _flow(self, k0: int, k1: int) -> None:
        n = k1 - k0
        fresh = self._fresh_arrivals(k0, k1)
        factor = self._factor()
        mean_s = self.shape.mean_s * factor
        per = self._pool()
        levels = self.retry_due[:, k0:k1].copy()
        levels[0] += fresh
        inside = np.zeros_like(levels)
        # retries that fall due inside this batch change its load: a fixed point, found by
        # a few sweeps (each adds one more round of retries)
        for _sweep in range(_RETRY_SWEEPS):
            out = self._split(levels + inside, per, mean_s, factor)
            if not self.retry_max:
                break
            new_inside = self._retries_from(levels + inside, out, k0, n, commit=False)
            settled = bool(np.abs(new_inside - inside).max() <= 1e-9 + 1e-9 * inside.max())
            inside = new_inside
            if settled:
                break
        levels = levels + inside
        self._retries_from(levels, out, k0, n, commit=True)
        self.mol = float(out["mol"][0])
        self.backlog = float(out["backlog"][0])
        self._book(k0, fresh, levels, out, mean_s)

    def _fresh_arrivals(self, k0: int, k1: int) -> np.ndarray:
        """Fresh arrivals of steps ``k0 .. k1-1`` (the curve at each step's middle x the
        step), drawn from the curve a chunk of steps ahead: batches between control events
        are a few steps long, and the curve costs the same for one step as for thousands."""
        if not (self._fresh_from <= k0 and k1 <= self._fresh_from + self._fresh.size):
            end = min(self.n_steps, max(k1, k0 + _CURVE_CHUNK_STEPS))
            mid_s = (np.arange(k0, end) + 0.5) * self.step_s
            self._fresh = self.traffic.rates_rps(self.name, mid_s) * self.step_s
            self._fresh_from = k0
        return self._fresh[k0 - self._fresh_from:k1 - self._fresh_from]

    def _pool(self) -> tuple[float, float, float]:
        """(servers per pool, pools, queue limit per pool) for the ready instances."""
        inst = self.ready_instances
        if inst <= 0:
            return 0.0, 0.0, 0.0
        limit = math.inf if self.spec.max_queue is None else float(self.spec.max_queue)
        if self.shared:
            return float(inst * self.spec.workers), 1.0, limit * inst
        return float(self.spec.workers), float(inst), limit

    def _split(self, levels: np.ndarray, pool: tuple[float, float, float], mean_s: float,
               factor: float) -> dict[str, np.ndarray]:
        """Shares of the offered attempts per step: lost (shed or abandoned), late, done,
        the waiting-node masses, and the state after the batch (``mol``, ``backlog``)."""
        offered = levels.sum(axis=0)
        servers, pools, limit = pool
        n = offered.size
        dt = self.step_s
        if servers <= 0:
            zeros = np.zeros(n)
            return {"shed": np.ones(n), "abandoned": zeros, "masses": np.zeros((n, 1)),
                    "late": zeros, "done": zeros, "mol": np.zeros(1),
                    "backlog": np.asarray([self.backlog])}
        mu = 1.0 / mean_s
        lam = offered / dt / pools
        load, last = modified_offered_load(lam, mean_s, dt, self.mol / pools)
        patience = self.timeout_s if self.timeout_s > 0 else math.inf
        queue_wait_s = limit / (servers * mu)
        bound = min(patience, queue_wait_s)
        rate = servers * mu
        queue, fluid_lost, congested = fluid_queue(lam, rate, bound, self.backlog / pools,
                                                   dt, self.shape.mean_s)
        patience_s = np.full(n, bound)
        shift = None
        if congested.any():
            # a fluid queue carries the wait (and the losses) from step to step; the
            # stochastic part on top is that of a pool at its Halfin-Whitt load
            cap = rate * (1.0 - 1.0 / math.sqrt(max(servers, 1.0)))
            wait_s = np.where(congested, queue / rate, 0.0)
            lam = np.where(congested, np.minimum(lam, cap), lam)
            load = np.where(congested, np.minimum(load, cap * mean_s), load)
            patience_s = np.where(congested, np.inf, patience_s)  # the fluid does the losing
            shift = wait_s
        kernel = self._kernel(factor)
        if not congested.any() and log_wait_bound(servers, float(load.max()), float(lam.max()),
                                                  mu) < _LOG_CALM:
            return self._calm(np.ones(n), kernel, factor, last * pools)
        law = wait_law(lam, np.full(n, servers), np.full(n, mu), load, patience_s,
                       self.shape.cs2, shift)
        if not congested.any() and float((1.0 - law.idle).max()) < _CALM:
            return self._calm(law.idle, kernel, factor, last * pools)
        masses = self._masses(law)
        lost = np.where(congested, fluid_lost, law.lost)
        if congested.any():
            masses *= ((1.0 - lost) / np.maximum(masses.sum(axis=1), 1e-300))[:, None]
        backlog = float(queue[-1]) * pools if n else self.backlog
        shed_share = lost if queue_wait_s < patience else np.zeros(n)
        abandon_share = lost - shed_share
        late = masses @ (1.0 - kernel.done_share)
        done = masses @ kernel.done_share
        return {"shed": shed_share, "abandoned": abandon_share, "masses": masses,
                "late": late, "done": done, "mol": np.asarray([last * pools]),
                "backlog": np.asarray([backlog]), "kernel": np.asarray([self._kernel_key(factor)])}

    def _calm(self, idle: np.ndarray, kernel: LatencyKernel, factor: float,
              mol: float) -> dict[str, np.ndarray]:
        """Nobody waits (a large pool well below capacity, most of a real day): only the
        no-wait node, whose latencies are the service times."""
        n = idle.size
        return {"shed": np.zeros(n), "abandoned": np.zeros(n), "masses": idle[:, None],
                "late": idle * (1.0 - kernel.done_share[0]), "done": idle * kernel.done_share[0],
                "mol": np.asarray([mol]), "backlog": np.asarray([self.backlog]),
                "kernel": np.asarray([self._kernel_key(factor)])}

    def _masses(self, law: WaitLaw) -> np.ndarray:
        """Probability of each waiting node per step (node 0: no wait), served only."""
        cdf = law.cdf(self.edges_s)
        masses = np.empty((law.idle.size, self.nodes_s.size))
        masses[:, 0] = cdf[:, 0]
        masses[:, 1:] = np.diff(cdf, axis=1)
        # below 1e-15 a mass is noise; subnormal ones would slow the matrix products 7x
        masses[masses < 1e-15] = 0.0
        return masses

    def _kernel_key(self, factor: float) -> int:
        return int(round(factor * 200))

    def _kernel(self, factor: float) -> LatencyKernel:
        key = self._kernel_key(factor)
        kernel = self._kernels.get(key)
        if kernel is None:
            kernel = LatencyKernel(self.shape, self.nodes_s, self.timeout_s, key / 200.0)
            self._kernels[key] = kernel
        return kernel

    # ------------------------------------------------------------------ retries
    def _retries_from(self, levels: np.ndarray, out: dict[str, np.ndarray], k0: int, n: int,
                      commit: bool) -> np.ndarray:
        """Schedule the retries of this batch's failures; return those due inside it."""
        inside = np.zeros_like(levels)
        if self.retry_max == 0:
            return inside
        for level in range(self.retry_max):
            shed = levels[level] * out["shed"]
            timed = levels[level] * (out["abandoned"] + out["late"])
            for amount, delay in ((shed, 0.0), (timed, self.timeout_s)):
                if float(amount.sum()) < 1e-9:
                    continue
                spread = self._spread(level, delay)
                first, kernel = spread
                series = np.convolve(amount, kernel)
                lo = k0 + first
                if commit:
                    self._add_due(level + 1, lo, series)
                else:
                    rel = first + np.arange(series.size)
                    keep = rel < n
                    np.add.at(inside[level + 1], rel[keep], series[keep])
        return inside

    def _spread(self, level: int, delay_s: float) -> tuple[int, np.ndarray]:
        retries = self.spec.retries
        assert retries is not None
        back_s = retries.backoff_ms / 1000.0 * retries.multiplier**level
        return retry_spread(delay_s + back_s * (1.0 - retries.jitter),
                            delay_s + back_s * (1.0 + retries.jitter), self.step_s)

    def _schedule(self, level: int, k: int, amount: np.ndarray, delay_s: float) -> None:
        first, kernel = self._spread(level - 1, delay_s)
        self._add_due(level, k + first, np.convolve(amount, kernel))

    def _add_due(self, level: int, start: int, series: np.ndarray) -> None:
        end = start + series.size
        cap = self.n_steps
        if start >= cap:
            self.retry_due[level, cap] += float(series.sum())
            return
        inside = min(end, cap) - start
        self.retry_due[level, start:start + inside] += series[:inside]
        if end > cap:
            self.retry_due[level, cap] += float(series[inside:].sum())

    # ------------------------------------------------------------------ accounting
    def _book(self, k0: int, fresh: np.ndarray, levels: np.ndarray,
              out: dict[str, np.ndarray], mean_s: float) -> None:
        acc, dt = self.acc, self.step_s
        n = fresh.size
        steps = np.arange(k0, k0 + n)
        offered = levels.sum(axis=0)
        self.attempts_total += float(offered.sum())
        masses = out["masses"]
        served = offered * (1.0 - out["shed"] - out["abandoned"])
        shed = offered * out["shed"]
        abandoned = offered * out["abandoned"]
        late = offered * out["late"]
        done = offered * out["done"]
        timeout_steps = int(round(self.timeout_s / dt))
        last = self.retry_max
        # entries start at a step and cover consecutive ones, except the completions of
        # a batch where some waited (each step's own latency)
        book: list[tuple[np.ndarray, int | np.ndarray, np.ndarray]] = [
            (acc.arrivals, k0, fresh), (acc.retries, k0, offered - fresh), (acc.shed, k0, shed),
            (acc.timed_out, k0 + timeout_steps, abandoned + late),
            (acc.final_failures, k0, levels[last] * out["shed"]),
            (acc.final_failures, k0 + timeout_steps,
             levels[last] * (out["abandoned"] + out["late"]))]
        kernel: LatencyKernel | None = None  # none: nobody was served
        if masses.shape[1] == 1 and "kernel" in out:  # calm: no waiting at all
            kernel = self._kernels[int(out["kernel"][0])]
            lat_ms = np.full(n, kernel.mean_ms[0] / max(kernel.done_share[0], 1e-300))
            finish = k0 + int(round(float(lat_ms[0]) / 1000.0 / dt))
            book += [(acc.completed, finish, done), (acc.busy_ws, k0, served * mean_s)]
        elif masses.shape[1] == self.nodes_s.size:
            served_mass = np.maximum(masses.sum(axis=1), 1e-300)
            kernel = self._kernels[int(out["kernel"][0])]
            waited_share = 1.0 - masses[:, 0] / served_mass
            mean_wait_s = (masses @ self.nodes_s) / served_mass
            lat_ms = (masses @ kernel.mean_ms) / np.maximum(out["done"], 1e-300)
            finish = steps + np.round(lat_ms / 1000.0 / dt).astype(np.int64)
            book += [(acc.waited, k0, served * waited_share),
                     (acc.queue_ws, k0, served * mean_wait_s + abandoned * self.timeout_s),
                     (acc.completed, finish, done), (acc.busy_ws, k0, served * mean_s)]
        add_steps(book, self.sub, self.config.n_buckets)
        if kernel is not None:
            ticks = np.minimum(steps // self.steps_per_tick, self.config.n_ticks - 1)
            book_latencies(self.acc, self.hist, ticks, offered, masses, kernel,
                           float((lat_ms * done).sum()))

    @property
    def hist_first(self) -> FluidHistogram:
        """First attempts that completed successfully (the SLO's good events): the completed
        attempts' histogram times the share of first attempts among all attempts, a retry
        being taken to fare as a first attempt does."""
        first = float(self.acc.arrivals.sum())
        attempts = first + float(self.acc.retries.sum())
        share = first / attempts if attempts > 0 else 1.0
        self.hist.settle()
        scaled = FluidHistogram()
        scaled.add_counts(self.hist.counts * share, self.hist.sum_ms * share)
        scaled.max_ms = self.hist.max_ms
        return scaled
