"""Queueing formulas used for estimates (``peaksim plan``) and as test expectations.

M/M/c with arrival rate ``lam`` (per second), service rate ``mu`` per worker, ``c`` workers,
offered load ``a = lam / mu`` and utilisation ``rho = a / c < 1`` (REFERENCE.md).
"""

from __future__ import annotations

import math

import numpy as np


def erlang_c(c: int, a: float) -> float:
    """Probability that an arrival waits, P(wait), for M/M/c with offered load ``a``
    (Erlangs). 1.0 when the queue is unstable (a >= c)."""
    if a <= 0:
        return 0.0
    if a >= c:
        return 1.0
    # The Erlang B recursion is numerically stable for thousands of servers.
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    rho = a / c
    return b / (1.0 - rho + rho * b)


def mmc_mean_wait_s(c: int, lam: float, mu: float) -> float:
    """Mean time in queue Wq = P(wait) / (c mu - lam), seconds (inf when unstable)."""
    if lam >= c * mu:
        return math.inf
    return erlang_c(c, lam / mu) / (c * mu - lam)


def mmc_mean_response_s(c: int, lam: float, mu: float) -> float:
    """Mean response time W = Wq + 1/mu, seconds."""
    return mmc_mean_wait_s(c, lam, mu) + 1.0 / mu


def mmc_response_survival(t_s: float, c: int, lam: float, mu: float) -> float:
    """P(W > t) for the M/M/c FCFS response time W = Wq + S (exact)."""
    pw = erlang_c(c, lam / mu)
    theta = c * mu - lam
    if abs(theta - mu) < 1e-12:
        tail = (1.0 + mu * t_s) * math.exp(-mu * t_s)  # Erlang-2 tail
    else:
        tail = (theta * math.exp(-mu * t_s) - mu * math.exp(-theta * t_s)) / (theta - mu)
    return (1.0 - pw) * math.exp(-mu * t_s) + pw * tail


def mmc_response_quantile_s(q: float, c: int, lam: float, mu: float) -> float:
    """The q-quantile of the M/M/c response time (bisection on the exact survival)."""
    lo, hi = 0.0, 1.0 / mu
    while mmc_response_survival(hi, c, lam, mu) > 1.0 - q:
        hi *= 2.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if mmc_response_survival(mid, c, lam, mu) > 1.0 - q:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2.0


def mg1_mean_wait_s(lam: float, mean_s: float, second_moment_s2: float) -> float:
    """Pollaczek-Khinchine mean wait of M/G/1: Wq = lam E[S^2] / (2 (1 - rho))."""
    rho = lam * mean_s
    if rho >= 1:
        return math.inf
    return lam * second_moment_s2 / (2.0 * (1.0 - rho))


def min_workers_for_wait(lam: float, mu: float, max_wait_s: float, quantile: float) -> int:
    """Smallest c with P(Wq > max_wait_s) <= 1 - quantile for M/M/c (at least stable)."""
    c = max(1, math.floor(lam / mu) + 1)
    while True:
        pw = erlang_c(c, lam / mu)
        if pw * math.exp(-(c * mu - lam) * max_wait_s) <= 1.0 - quantile:
            return c
        c += 1


# ---------------------------------------------------------------------- M/G/c approximations
# ``peaksim plan`` sizes services whose service time is not exponential (lognormal, empirical).
# It keeps the M/M/c probability of waiting (Erlang C) and the exponential shape of the wait,
# and scales the wait by the Allen-Cunneen factor (1 + cs^2) / 2, where cs^2 is the squared
# coefficient of variation of the service time. The approximation is exact for M/M/c (cs^2 = 1)
# and reproduces Pollaczek-Khinchine for c = 1; for c > 1 it is the usual engineering estimate
# (Allen 1990; Whitt 1993 reports errors of a few percent at moderate to high load). The plan
# only starts from it: simulation decides.


def allen_cunneen_factor(scv: float) -> float:
    """(1 + cs^2) / 2: how much longer an M/G/c queue waits than the M/M/c queue with the
    same mean service time (``scv`` = Var[S] / E[S]^2; 1 for exponential, 0 for constant)."""
    if scv < 0:
        raise ValueError(f"squared coefficient of variation must be >= 0, got {scv}")
    return (1.0 + scv) / 2.0


def mgc_wait_rate(c: int, lam: float, mean_s: float, scv: float) -> float:
    """Rate (1/s) of the exponential wait of those who wait: (c mu - lam) / factor; 0 when
    unstable (lam >= c mu)."""
    excess = c / mean_s - lam
    if excess <= 0:
        return 0.0
    return excess / allen_cunneen_factor(scv)


def mgc_mean_wait_s(c: int, lam: float, mean_s: float, scv: float) -> float:
    """Mean time in queue, seconds: Wq(M/M/c) x (1 + cs^2) / 2 (inf when unstable).

    For c = 1 this is Pollaczek-Khinchine: lam E[S^2] / (2 (1 - rho)).
    """
    theta = mgc_wait_rate(c, lam, mean_s, scv)
    if theta <= 0:
        return math.inf
    return erlang_c(c, lam * mean_s) / theta


def mgc_response_survival(
    t_s: float, c: int, lam: float, mean_s: float, scv: float, service_s: np.ndarray
) -> float:
    """P(W > t_s) for the response time W = Wq + S of an approximate M/G/c FCFS queue.

    ``service_s`` holds equally likely service times (seconds) standing for the distribution
    of S (e.g. its quantiles at (i + 1/2) / n). Wq is 0 with probability 1 - P(wait) and
    otherwise exponential with rate ``mgc_wait_rate``; in FCFS a request's wait does not depend
    on its own service time, so with Wq ~ E the tail is

        P(S + E > t) = P(S > t) + E[1{S <= t} exp(-theta (t - S))].

    1.0 when the queue is unstable.
    """
    theta = mgc_wait_rate(c, lam, mean_s, scv)
    if theta <= 0:
        return 1.0
    p_wait = erlang_c(c, lam * mean_s)
    s = np.asarray(service_s, dtype=float)
    beyond = float(np.mean(s > t_s))
    within = s <= t_s
    delayed = beyond + float(np.sum(np.exp(-theta * (t_s - s[within])))) / s.size
    return (1.0 - p_wait) * beyond + p_wait * delayed


def mgc_response_quantile_s(
    q: float, c: int, lam: float, mean_s: float, scv: float, service_s: np.ndarray
) -> float:
    """The q-quantile of ``mgc_response_survival`` (bisection), seconds; inf when unstable."""
    if not 0.0 < q < 1.0:
        raise ValueError(f"quantile must lie in (0, 1), got {q}")
    if mgc_wait_rate(c, lam, mean_s, scv) <= 0:
        return math.inf
    lo, hi = 0.0, max(float(np.max(service_s)), mean_s)
    while mgc_response_survival(hi, c, lam, mean_s, scv, service_s) > 1.0 - q:
        hi *= 2.0
    for _ in range(100):
        mid = (lo + hi) / 2.0
        if mgc_response_survival(mid, c, lam, mean_s, scv, service_s) > 1.0 - q:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2.0


def mmc_queue_at_least(c: int, a: float, k: int) -> float:
    """P(at least ``k`` requests wait) in M/M/c with an unbounded queue: P(wait) rho^k.

    An upper bound on the share an M/M/c/c+k system sheds (it blocks at exactly c + k), used
    to size ``max_queue``. 1.0 when unstable.
    """
    if a >= c:
        return 1.0
    return erlang_c(c, a) * (a / c) ** k
