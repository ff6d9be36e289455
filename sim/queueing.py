"""Queueing formulas used for estimates (``peaksim plan``) and as test expectations.

M/M/c with arrival rate ``lam`` (per second), service rate ``mu`` per worker, ``c`` workers,
offered load ``a = lam / mu`` and utilisation ``rho = a / c < 1`` (REFERENCE.md).
"""

from __future__ import annotations

import math


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
