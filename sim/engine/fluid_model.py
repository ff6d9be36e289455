"""Queueing formulas of the fluid engine: the waiting time of a many-server queue with
deterministic patience, per time step and vectorised over steps.

The model of one pool in one step is the stationary M/M/s+D queue (``s`` servers of rate
``mu``, Poisson arrivals of rate ``lam``, every waiting request leaves after ``patience_s``),
evaluated pointwise in time with a modified offered load (Feldman, Mandelbaum, Massey & Whitt
2008) and stretched for non-exponential service times. Its virtual waiting time V has an atom
at 0 (a worker is free: the Erlang idle states, Poisson(a) <= s-1) and, with ``r = s mu`` and
``d = r - lam``, the density ``lam p e^(-d x)`` on ``(0, patience)`` (``p`` the Poisson(a)
probability of s-1) and ``lam p e^(-d patience) e^(-r (x - patience))`` beyond, where arrivals
are lost (they abandon, or are shed when the queue limit is the tighter bound). It is stable
for any load, reduces to Erlang C without patience and, as ``s`` grows, to the many-server
fluid limit of Whitt (2006): no wait below capacity, a wait of about ``patience`` and a loss
of ``1 - r/lam`` above it. For general service times the waits are scaled by
``(1 + cs2) / 2`` (Allen-Cunneen); above capacity the fluid limit does not depend on the
service-time distribution beyond its mean (Whitt 2006), which the scaling respects.

Every function takes numpy arrays of equal shape (one entry per step) and returns arrays.
Times in seconds, rates per second.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

_TINY = 1e-300


@dataclass(frozen=True)
class WaitLaw:
    """The waiting-time law of each step (arrays over steps, see the module docstring).

    ``idle`` is P(V = 0); on (0, ``patience_s``) V has the density ``dens_at`` x
    e^(-d (x - ``anchor_s``)) with ``d = decay_rps`` (M/M units; the anchor is 0 below
    capacity and the patience above it, so nothing overflows); ``lost`` is P(V >= patience)
    (lost arrivals); ``stretch`` is the time factor applied to V for general service times;
    ``shift_s`` a deterministic wait added on top (a fluid queue).
    """

    idle: np.ndarray
    dens_at: np.ndarray
    anchor_s: np.ndarray
    decay_rps: np.ndarray
    patience_s: np.ndarray
    lost: np.ndarray
    stretch: float
    shift_s: np.ndarray

    def cdf(self, x_s: np.ndarray) -> np.ndarray:
        """P(V <= x) for V the stretched, shifted wait, ``x_s`` broadcast against the steps
        (steps along axis 0); the lost mass sits at +infinity."""
        y = (np.asarray(x_s) - self.shift_s[:, None]) / self.stretch
        d = self.decay_rps[:, None]
        pat = self.patience_s[:, None]
        anchor = self.anchor_s[:, None]
        yc = np.clip(y, 0.0, pat)
        waited = self.dens_at[:, None] * _integral(d, anchor, yc)
        out = self.idle[:, None] + waited
        return np.where(y < 0.0, 0.0, np.minimum(out, 1.0 - self.lost[:, None]))


def _integral(d: np.ndarray, anchor: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The integral over (0, y) of e^(-d (x - anchor)), continuous at d = 0 (= y); both
    exponents stay <= 0 for anchor 0 with d >= 0 and anchor >= y with d < 0."""
    small = np.abs(d * np.maximum(y, anchor)) < 1e-8
    safe_d = np.where(small, 1.0, d)
    with np.errstate(over="ignore", invalid="ignore"):
        value = (np.exp(-d * (y - anchor)) - np.exp(d * anchor)) / -safe_d
    return np.where(small, y, value)


def log_poisson_terms(servers: np.ndarray,
                      load: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(log P[Poisson(load) <= s-1], log P[Poisson(load) = s-1]) for ``s`` servers: Erlang's
    idle-state masses up to a common factor, in logs (they underflow for large loads)."""
    k = np.maximum(servers - 1.0, 0.0)
    with np.errstate(divide="ignore"):
        log_cdf = np.log(special.pdtr(k, load))
    log_pmf = special.xlogy(k, load) - load - special.gammaln(k + 1.0)
    # where the cdf underflows it is within a factor of the pmf's own size or below it
    return np.maximum(log_cdf, log_pmf), log_pmf


def wait_law(
    lam_rps: np.ndarray, servers: np.ndarray, mu_rps: np.ndarray, load: np.ndarray,
    patience_s: np.ndarray, cs2: float, shift_s: np.ndarray | None = None,
) -> WaitLaw:
    """The M/M/s+D waiting law per step for arrival rate ``lam_rps``, ``servers`` (>= 1),
    per-server rate ``mu_rps``, modified offered load ``load`` (busy servers in an infinite
    pool, in Erlangs) and patience ``patience_s`` (``inf``: none). ``cs2`` is the squared
    coefficient of variation of the service time. Without patience and at or above capacity
    there is no steady state: every share is 0 (the caller's fluid queue takes over)."""
    stretch = max((1.0 + cs2) / 2.0, 1e-3)
    pat = patience_s / stretch
    rate = servers * mu_rps
    d = rate - lam_rps
    log_cdf, log_pmf = log_poisson_terms(servers, load)
    log_head = np.log(np.maximum(lam_rps, _TINY)) + log_pmf
    finite = np.isfinite(pat)
    pat_f = np.where(finite, pat, 0.0)
    # above capacity the density grows towards the patience: anchor it there and scale
    # every mass by e^(d patience) <= 1 (a common factor: it cancels in the normalisation);
    # all masses are combined in logs, as Poisson terms of large loads underflow
    over = finite & (d < 0)
    anchor = np.where(over, pat_f, 0.0)
    log_scale = np.where(over, np.minimum(d, 0.0) * pat_f, 0.0)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        waited = np.where(finite, _integral(d, anchor, pat_f),
                          np.where(d > 0, 1.0 / np.maximum(d, _TINY), np.inf))
        tail = np.where(finite, np.exp(-d * (pat_f - anchor)), 0.0)
        lost_un = tail / np.maximum(rate, _TINY)
        a_idle = log_cdf + log_scale
        a_wait = log_head + np.log(waited + lost_un)
        ok = np.isfinite(a_wait)
        top = np.where(ok, np.maximum(a_idle, a_wait), 0.0)
        e_idle = np.exp(a_idle - top)
        norm = np.where(ok, 1.0 / (e_idle + np.exp(np.where(ok, a_wait - top, 0.0))), 0.0)
        e_head = np.exp(np.where(ok, log_head - top, -np.inf))
    idle = np.where(ok, e_idle * norm, 0.0)
    dens_at = np.where(ok, e_head * norm, 0.0)
    lost = np.where(ok, e_head * lost_un * norm, 0.0)
    shift = np.zeros_like(lam_rps) if shift_s is None else shift_s
    return WaitLaw(idle, dens_at, anchor, np.where(ok, d, 0.0), np.where(ok, pat, 0.0), lost,
                   stretch, shift)


def log_wait_bound(servers: float, load: float, lam_rps: float, mu_rps: float) -> float:
    """An upper bound (natural log) of the share of arrivals that wait, for a pool of
    ``servers`` whose steps have at most ``load`` Erlangs and ``lam_rps`` arrivals: the
    waiting share is (lam / (s mu - lam)) P[X = s-1] / P[X <= s-1] for X ~ Poisson(load), and
    for a = max(load, lam / mu) < s - 1, P[X <= s-1] >= 1/2 and P[X = s-1] <= P[X >= s-1] <=
    e^-a (e a / (s-1))^(s-1) (Chernoff). +inf where no bound applies. Lets a large pool far
    below capacity skip the waiting law (its idle share is 1 to within the bound)."""
    a = max(load, lam_rps / mu_rps) if mu_rps > 0 else math.inf
    k = servers - 1.0
    if not (0.0 < a < k):
        return -math.inf if a == 0.0 and k > 0 else math.inf
    return (math.log(2.0 * a / (servers - a)) + k - a + k * math.log(a / k))


def fluid_queue(lam: np.ndarray, rate: float, bound_s: float, start: float, dt_s: float,
                mean_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The fluid queue of one pool (expected waiting requests) through steps of ``dt_s``:
    Q' = min(Q + (lam - rate) dt, bound x rate), never below 0, from ``start``; ``mean_s`` is
    the mean service time. Returns the mean queue per step, the share of each step's arrivals
    lost over the bound, and which steps are congested (a queue beyond the pool's square-root
    fluctuations)."""
    n = lam.size
    cap = bound_s * rate
    small = math.sqrt(max(rate * mean_s, 1.0))
    if start <= small and not np.any(lam > rate):
        zeros = np.zeros(n)
        return zeros, zeros, np.zeros(n, dtype=bool)
    queue = np.empty(n)
    lost = np.empty(n)
    q = start
    for k, (inflow, arrivals) in enumerate(zip(((lam - rate) * dt_s).tolist(),
                                               (lam * dt_s).tolist(), strict=True)):
        after = q + inflow
        over = after - cap if after > cap else 0.0
        after = min(max(after, 0.0), cap)
        queue[k] = (q + after) / 2.0
        lost[k] = over / arrivals if arrivals > 0 else 0.0
        q = after
    congested = (queue > small) | (lam > rate * (1.0 + 1.0 / small))
    return queue, lost, congested


def modified_offered_load(lam_rps: np.ndarray, mean_s: float, dt_s: float,
                          start: float) -> tuple[np.ndarray, float]:
    """Busy servers of the infinite-server queue fed by ``lam_rps`` (one rate per step of
    ``dt_s``), starting from ``start`` Erlangs: the modified offered load of Feldman et al.
    for exponential service, m(t) = m(t-dt) e^(-dt/E[S]) + lam E[S] (1 - e^(-dt/E[S])).
    Returns the load per step and the last value (the state carried to the next call)."""
    target = lam_rps * mean_s
    keep = math.exp(-dt_s / mean_s) if mean_s > 0 else 0.0
    if keep < 1e-9 or target.size == 0:
        return target.copy(), float(target[-1]) if target.size else start
    gain = 1.0 - keep
    out = []
    value = start
    for x in target.tolist():  # a first-order filter: a few hundred steps per call
        value = keep * value + gain * x
        out.append(value)
    return np.asarray(out), value


def retry_spread(lo_s: float, hi_s: float, dt_s: float) -> tuple[int, np.ndarray]:
    """When retries come back, in steps of ``dt_s`` after the step of the attempt: a delay
    uniform on ``[lo_s, hi_s]`` (backoff +- jitter, after the failure) as (first step offset,
    weights per step from it). A retry is never due in its own step."""
    first = int(math.floor(lo_s / dt_s + 0.5))
    last = max(first, int(math.floor(hi_s / dt_s + 0.5)))
    if last == first:
        return max(first, 1), np.ones(1)
    grid = np.arange(first, last + 1) * dt_s
    width = np.clip(np.minimum(grid + dt_s / 2, hi_s) - np.maximum(grid - dt_s / 2, lo_s),
                    0.0, None)
    weights = width / width.sum()
    if first == 0:
        weights = weights[1:] / max(weights[1:].sum(), 1e-12)
        first = 1
    return first, weights
