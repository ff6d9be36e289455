"""How many Locust users an open-model replay needs: Little's law with margin.

In the open model a user is only a sender: it takes the next intended send time from the shared
schedule, sleeps until it, sends, and is busy until the answer (plus any client retry backoff).
A send can only be late when every user is busy, so the users needed at time t are the requests
in flight, ``L = rate x W`` by Little's law (``W``: mean time a user is busy per request), plus
room for fluctuations: with Poisson arrivals the number in flight is itself about Poisson, so
``L + spread x sqrt(L)`` covers it with a few standard deviations to spare. The count starts at the
need of the whole run's peak (at the prior latency), is checked against the highest rate of
the next ``lookahead_s`` seconds as latencies are observed, grows in large steps and is never
lowered (a stopped user could be holding a claimed send time).

Locust spreads users over user classes by ``weight``; with one class per service the total must
give every service its need: ``total = max over services of need_s / share_s``.

Pure functions and plain classes: no Locust, no clock.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.model import TrafficModel

NETWORK_MS = 2.0
"""Added to a service's mean service time for the latency prior (loopback HTTP overhead)."""


@dataclass(frozen=True)
class SizingPolicy:
    """Knobs of the user count; ``max_users`` bounds the total (all processes together)."""

    margin: float = 2.0
    spread: float = 3.0
    floor: int = 5
    peak_headroom: float = 1.5
    """Users per service are at least this many times its most sends seen in flight at once."""
    lookahead_s: float = 5.0
    growth: float = 1.5
    """A count that must grow grows by at least this factor: every change of the user count
    costs a Locust worker a ~0.1 s pause (it re-parses its options per spawn message), so
    changes are made few and large."""
    max_users: int = 2000
    initial_factor: float = 2.0
    """The first count is this many times the whole run's peak need at the prior latency..."""
    stall_budget_s: float = 0.1
    """... and at least enough to keep sending through a stall of the target this long (the
    sends due in it are all in flight at once), within ``max_users``. Short on purpose: a
    longer stall is measured as generator lag (corrected latency stays honest) rather than
    paid for with thousands of idle users and sockets."""
    ewma: float = 0.3
    """Weight of the newest observation in the smoothed latency."""
    cpu_saturated_percent: float = 90.0
    """A generator process at or above this CPU use (Locust's measure) is saturated."""


def users_needed(rate_rps: float, busy_ms: float, policy: SizingPolicy) -> int:
    """Users one service needs to send ``rate_rps`` when each send keeps a user busy for
    ``busy_ms`` on average (Little's law, margin, Poisson spread, floor)."""
    in_flight = max(0.0, rate_rps) * max(0.0, busy_ms) / 1000.0
    return int(math.ceil(in_flight * policy.margin + policy.spread * math.sqrt(in_flight)
                         + policy.floor))


def class_weights(needs: Mapping[str, float]) -> dict[str, int]:
    """Integer Locust weights (1..1000) proportional to each service's expected need."""
    top = max(needs.values(), default=0.0)
    if top <= 0:
        return dict.fromkeys(needs, 1)
    return {name: max(1, round(1000.0 * need / top)) for name, need in needs.items()}


def total_users(needs: Mapping[str, int], weights: Mapping[str, int]) -> int:
    """The smallest total that gives every service at least its need when Locust splits users
    by ``weights``."""
    weight_sum = sum(weights.values())
    if weight_sum <= 0:
        return 0
    return max((math.ceil(needs[name] * weight_sum / weights[name]) for name in needs
                if weights.get(name, 0) > 0), default=0)


class LatencyTracker:
    """Smoothed mean busy time per request of one service, from cumulative Locust counters.

    Starts from ``prior_ms``; each ``observe(count, total_ms)`` with new requests blends their
    mean into the estimate. The estimate never drops below a tenth of the prior (an idle
    service's stray fast answer must not shrink the user pool to nothing).
    """

    def __init__(self, prior_ms: float, ewma: float) -> None:
        self.prior_ms = prior_ms
        self.estimate_ms = prior_ms
        self._ewma = ewma
        self._count = 0
        self._total_ms = 0.0

    def observe(self, count: int, total_ms: float) -> float:
        new = count - self._count
        if new > 0:
            mean = (total_ms - self._total_ms) / new
            self.estimate_ms = (1 - self._ewma) * self.estimate_ms + self._ewma * mean
            self.estimate_ms = max(self.estimate_ms, self.prior_ms / 10.0)
        if count < self._count:  # counters were reset (Locust's "reset stats")
            count, total_ms = 0, 0.0
        self._count, self._total_ms = count, total_ms
        return self.estimate_ms


class UserPlan:
    """The user count over a replay: ``target(t_s, observed)`` for the shape's ``tick``.

    ``prior_ms`` is each service's expected busy time per request before anything was measured
    (the scenario's mean service time plus ``NETWORK_MS`` is a fair start).
    """

    def __init__(
        self, traffic: TrafficModel, services: tuple[str, ...], prior_ms: Mapping[str, float],
        policy: SizingPolicy, until_s: float,
    ) -> None:
        self.traffic = traffic
        self.services = services
        self.policy = policy
        self.until_s = until_s
        self.trackers = {s: LatencyTracker(prior_ms[s], policy.ewma) for s in services}
        expected = {s: self._peak(s, 0.0, until_s) * prior_ms[s] for s in services}
        self.weights = class_weights(expected)
        self.capped = False
        # Start with the whole run's peak need at the prior latency: idle users cost little,
        # a late start of users costs late sends.
        peaks = {s: self._peak(s, 0.0, until_s) for s in services}
        needs = {s: max(users_needed(peaks[s], prior_ms[s], policy) * policy.initial_factor,
                        peaks[s] * policy.stall_budget_s) for s in services}
        self.initial = min(policy.max_users, total_users(
            {s: math.ceil(n) for s, n in needs.items()}, self.weights))
        self.current = self.initial
        self.workers: dict[str, dict[str, Any]] = {}
        """Last state each worker reported (distributed mode): run time, in flight, running."""

    def _peak(self, service: str, start_s: float, end_s: float) -> float:
        end_s = min(max(end_s, start_s), self.until_s)
        grid = np.linspace(start_s, end_s, max(2, int((end_s - start_s) / 0.05) + 1))
        return float(np.max(self.traffic.rates_rps(service, grid)))

    def target(self, t_s: float, observed: Mapping[str, tuple[int, float]],
               in_flight_peaks: Mapping[str, int] | None = None,
               cpu_saturated: bool = False) -> int:
        """Users to run from ``t_s``: ``observed`` maps a service to Locust's cumulative
        (request count, total response time ms); ``in_flight_peaks`` to the most sends seen in
        flight at once lately. Queues make the number in flight far burstier than its mean,
        so the measured peak (with headroom) backs up Little's law. Never lower than the
        previous target.

        ``cpu_saturated``: a generator process uses its whole core. Its answers then wait
        for the process itself, so latency and the number in flight grow with the users it
        runs; more users would only add work (a spiral), so the count is held (the lag is
        measured and reported instead)."""
        needs = {}
        peaks = in_flight_peaks or {}
        for name in self.services:
            if name in observed:
                self.trackers[name].observe(*observed[name])
            rate = self._peak(name, t_s, t_s + self.policy.lookahead_s)
            little = users_needed(rate, self.trackers[name].estimate_ms, self.policy)
            seen = math.ceil(peaks.get(name, 0) * self.policy.peak_headroom) + self.policy.floor
            needs[name] = max(little, seen)
        wanted = total_users(needs, self.weights)
        self.capped = wanted > self.policy.max_users
        if cpu_saturated:
            return self.current
        if wanted > self.current:
            grown = max(wanted, math.ceil(self.current * self.policy.growth))
            self.current = min(grown, self.policy.max_users)
        return self.current
