"""Queueing estimate of the instances a service needs to hold its SLO at a given arrival rate.

The service is an approximate M/G/c queue (``sim.plan.queueing``): c = instances x workers slots,
Poisson arrivals at the rate under study, the scenario's service-time distribution. Each SLO
objective becomes a condition at that rate:

- ``pNN_ms``: P(W > target | completed) <= 1 - NN/100, where W is the response time and a
  request completes when W <= timeout (the SLO judges completed requests only);
- ``mean_ms``: E[W] <= target (the unconditioned mean: slightly pessimistic with timeouts);
- ``error_rate``: P(W > timeout) + P(shed) <= target, with P(shed) bounded by
  P(at least instances x max_queue wait). Client retries are ignored: at the peak a failed
  attempt is likely to fail again, so counting the first failure is the safe side.

Every condition also needs a stable queue (rho < 1). The estimate is the smallest instance
count meeting all of them; conditions only get easier with more instances, so the search
gallops up from the smallest stable count and bisects.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from sim.model import Objectives, Sampler, Service
from sim.plan.queueing import mgc_mean_wait_s, mgc_response_survival, mmc_queue_at_least

GRID_POINTS = 4096
"""Equal-probability service-time points: the grid resolves tail probabilities down to about
1 / GRID_POINTS (p99 needs 1e-2; error rates of 1e-4 fall on the grid's last few points)."""

MIN_ERROR_RATE = 1e-6
"""The error rate an ``error_rate: 0`` objective is sized for."""

_QUANTILES = {"p50_ms": 0.50, "p90_ms": 0.90, "p95_ms": 0.95, "p99_ms": 0.99}
_MAX_INSTANCES = 1_000_000
_MIN_MEAN_MS = 1e-3


@dataclass(frozen=True)
class ServiceModel:
    """What the queueing estimate knows about one service (seconds throughout)."""

    workers: int
    mean_s: float
    scv: float
    """Squared coefficient of variation of the service time, Var[S] / E[S]^2."""
    service_s: np.ndarray
    """Equally likely service times standing for the distribution (``service_time_grid_s``)."""
    timeout_s: float
    """0: no timeout."""
    max_queue: int | None
    """Waiting requests allowed per instance before arrivals are shed; None: unbounded."""

    @classmethod
    def of(cls, spec: Service, sampler: Sampler) -> ServiceModel:
        # Service times of 0 ms (empirical samples may be) are modelled as the histograms'
        # resolution, 1 µs, so that rates and waits stay finite.
        mean_ms = max(sampler.mean_ms, _MIN_MEAN_MS)
        scv = max(0.0, sampler.second_moment_ms2 / (mean_ms * mean_ms) - 1.0)
        return cls(spec.workers, mean_ms / 1000.0, scv, service_time_grid_s(sampler),
                   spec.timeout_ms / 1000.0, spec.max_queue)


@dataclass(frozen=True)
class Estimate:
    """The smallest instance count whose queueing model meets every objective at the rate.

    ``instances`` is None when no count can: ``reason`` says which objective the service time
    alone already breaks. ``binding`` names the objective that needed the most instances.
    """

    instances: int | None
    binding: str | None
    reason: str = ""

    @property
    def feasible(self) -> bool:
        return self.instances is not None


def service_time_grid_s(sampler: Sampler, n: int = GRID_POINTS) -> np.ndarray:
    """The service-time quantiles at probabilities (i + 1/2) / n, in seconds.

    Exact inverse CDFs for the parametric distributions; the empirical quantiles of the samples
    otherwise.
    """
    u = (np.arange(n) + 0.5) / n
    spec = sampler.spec
    if spec.dist == "exponential":
        ms = -sampler.mean_ms * np.log1p(-u)
    elif spec.dist == "constant":
        ms = np.full(n, sampler.mean_ms)
    elif spec.dist == "lognormal":
        mu, sigma = spec.lognormal_params()
        normal = NormalDist(mu, sigma)
        ms = np.exp(np.array([normal.inv_cdf(float(p)) for p in u]))
    elif spec.dist == "gamma":
        assert spec.shape is not None and spec.mean_ms is not None  # the schema requires them
        # scipy.stats costs ~0.3 s to import: only scenarios with a gamma service pay it.
        from scipy.stats import gamma as gamma_dist

        ms = gamma_dist.ppf(u, spec.shape, scale=spec.mean_ms / spec.shape)
    elif spec.dist == "uniform":
        assert spec.min_ms is not None and spec.max_ms is not None  # the schema requires them
        ms = spec.min_ms + (spec.max_ms - spec.min_ms) * u
    else:
        assert sampler.samples_ms is not None
        ms = np.quantile(sampler.samples_ms, u)
    return np.asarray(ms, dtype=float) / 1000.0


def objective_holds(
    name: str, target: float, instances: int, rate_rps: float, model: ServiceModel
) -> bool:
    """Whether objective ``name`` (a key of ``Objectives``) holds with ``instances``.

    ``instances`` 0 holds only without traffic.
    """
    if rate_rps <= 0:
        return True
    c = instances * model.workers
    if c <= 0 or rate_rps * model.mean_s >= c:
        return False
    return _tail(name, target, c, instances, rate_rps, model) <= _allowed(name, target)


def _allowed(name: str, target: float) -> float:
    if name == "error_rate":
        # A queueing tail is never exactly 0: size a zero-error target as one in a million
        # (the simulation then judges the real target).
        return max(target, MIN_ERROR_RATE)
    if name == "mean_ms":
        return target / 1000.0
    return 1.0 - _QUANTILES[name]


def _tail(name: str, target: float, c: int, instances: int, rate_rps: float,
          model: ServiceModel) -> float:
    """The quantity compared with ``_allowed``: a tail probability, or the mean in seconds."""
    lam, m, scv, grid = rate_rps, model.mean_s, model.scv, model.service_s
    if name == "mean_ms":
        return mgc_mean_wait_s(c, lam, m, scv) + m
    late = (mgc_response_survival(model.timeout_s, c, lam, m, scv, grid)
            if model.timeout_s > 0 else 0.0)
    if name == "error_rate":
        shed = 0.0
        if model.max_queue is not None:
            shed = mmc_queue_at_least(c, lam * m, model.max_queue * instances)
        return min(1.0, late + shed)
    slow = mgc_response_survival(target / 1000.0, c, lam, m, scv, grid)
    if model.timeout_s > 0 and target / 1000.0 < model.timeout_s:
        # completed requests only: those with W <= timeout
        return max(0.0, slow - late) / max(1e-300, 1.0 - late)
    return slow if model.timeout_s <= 0 else 0.0


def _unreachable(name: str, target: float, model: ServiceModel) -> str:
    """Why ``name`` cannot hold however many instances run ("" if it can): with no waiting at
    all the response time is the service time itself."""
    s = model.service_s
    if name == "mean_ms":
        if model.mean_s * 1000.0 > target:
            own_ms = model.mean_s * 1000.0
            return f"mean_ms {target:g} is below the mean service time ({own_ms:.3g} ms)"
        return ""
    if name == "error_rate":
        late = float(np.mean(s > model.timeout_s)) if model.timeout_s > 0 else 0.0
        if late > max(target, MIN_ERROR_RATE):
            return (f"error_rate {target:g} is below the share of service times longer than the "
                    f"timeout ({late:.3g})")
        return ""
    q = _QUANTILES[name]
    within = s[s <= model.timeout_s] if model.timeout_s > 0 else s
    if within.size and float(np.mean(within > target / 1000.0)) > 1.0 - q:
        # the grid is sorted and equally likely: point i stands at probability (i + 1/2) / n
        own = float(np.interp(q, (np.arange(within.size) + 0.5) / within.size, within)) * 1e3
        return f"{name} {target:g} is below the service time's own {name[:-3]} ({own:.3g} ms)"
    return ""


def estimate_instances(
    objectives: Objectives, rate_rps: float, model: ServiceModel
) -> Estimate:
    """Smallest instance count meeting every objective at ``rate_rps`` (see module doc)."""
    items = objectives.items()
    for name, target in items:
        reason = _unreachable(name, target, model)
        if reason:
            return Estimate(None, name, reason)
    if rate_rps <= 0:
        return Estimate(0, None)
    start = stable_instances(rate_rps, model)
    need: dict[str, int] = {}
    for name, target in items:
        def holds(n: int, name: str = name, target: float = target) -> bool:
            return objective_holds(name, target, n, rate_rps, model)

        try:
            need[name] = smallest_instances(holds, start)
        except ValueError as exc:
            return Estimate(None, name, f"{name} {target:g}: {exc}")
    binding = max(need, key=lambda k: need[k])
    return Estimate(need[binding], binding)


def stable_instances(rate_rps: float, model: ServiceModel) -> int:
    """Fewest instances with rho < 1 at ``rate_rps``."""
    return max(1, math.floor(rate_rps * model.mean_s / model.workers) + 1)


def smallest_instances(check: Callable[[int], bool], start: int) -> int:
    """Smallest n >= ``start`` with ``check(n)`` for a monotone predicate: gallop, then bisect.

    Raises ``ValueError`` when nothing up to ``_MAX_INSTANCES`` holds.
    """
    if check(start):
        return start
    lo, step = start, 1
    while True:
        hi = lo + step
        if hi > _MAX_INSTANCES:
            raise ValueError(f"no instance count up to {_MAX_INSTANCES:,} holds")
        if check(hi):
            break
        lo, step = hi, step * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if check(mid):
            hi = mid
        else:
            lo = mid
    return hi


def max_rate_rps(instances: int, objectives: Objectives, model: ServiceModel) -> float:
    """Highest arrival rate (rps) at which ``instances`` still meet every objective (bisection
    to 0.1%); 0 for no instances."""
    if instances <= 0:
        return 0.0
    hi = instances * model.workers / model.mean_s
    lo = 0.0

    def ok(rate: float) -> bool:
        return all(objective_holds(k, v, instances, rate, model) for k, v in objectives.items())

    while hi - lo > 1e-3 * hi:
        mid = (lo + hi) / 2.0
        if ok(mid):
            lo = mid
        else:
            hi = mid
    return lo
