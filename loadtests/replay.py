"""The state of one load generator process during a replay (no Locust, no gevent).

A ``Replay`` reads the scenario once, compiles its declared requests, owns the process's share
of the send schedule, the ``Recorder`` and the captured values waiting to be used. The
locustfile attaches one to the Locust environment and its users call ``claim`` / ``now`` /
``recorder``; everything that decides something lives here so that it can be tested without a
Locust process.
"""

from __future__ import annotations

import gc
import itertools
import math
import random
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from loadtests.declared import (
    CompiledRequest,
    compile_requests,
    effective_loadtest,
    environment_values,
)
from loadtests.recorder import Recorder
from loadtests.schedule import ARRIVALS, Arrivals, SharedSchedule
from loadtests.send_context import CaptureStore, DataTables
from loadtests.sizing import NETWORK_MS, SizingPolicy
from sim.errors import LoadTestError
from sim.model import Retries, Scenario, TrafficModel, load_scenario, sampler_for

DEFAULT_SCENARIO = "scenarios/singles-day.yaml"
START_LEAD_S = 1.0
"""Seconds between the start of a test and its t=0: time for the first users to spawn."""


@dataclass(frozen=True)
class ReplayOptions:
    """The locustfile's own command-line options (see ``add_arguments`` in the locustfile).

    ``time_scale``/``rate_scale``/``window_s`` None mean the scenario's ``loadtest`` defaults;
    ``duration_s`` None means the whole (scaled) scenario.
    """

    scenario: str = DEFAULT_SCENARIO
    time_scale: float | None = None
    rate_scale: float | None = None
    duration_s: float | None = None
    arrivals: Arrivals = "poisson"
    lag_threshold_ms: float = 50.0
    lag_tolerance: float = 0.01
    window_s: float | None = None
    request_timeout_s: float = 30.0
    results_dir: str | None = None
    max_users: int = 2000
    seed: int | None = None
    insecure: bool = False
    ca_bundle: str | None = None
    locustfile: str | None = None
    """The user's own locustfile (its classes with ``peaksim_service`` drive those services)."""

    @classmethod
    def from_namespace(cls, ns: Any) -> ReplayOptions:
        """From Locust's parsed options (attribute names ``peaksim_<field>``)."""
        values = {name: getattr(ns, f"peaksim_{name}", None) for name in cls.__dataclass_fields__}
        options = cls(**{k: v for k, v in values.items() if v is not None and v != ""})
        if options.arrivals not in ARRIVALS:
            raise LoadTestError(f"--arrivals must be one of {', '.join(ARRIVALS)}, "
                                f"got {options.arrivals!r}")
        return options


class Replay:
    """One generator process's replay of a scenario.

    ``clock`` returns seconds (monotonic); run time is ``clock() - t0`` after ``start``.
    ``scenario`` (if given) replaces reading ``options.scenario`` (a worker gets the master's).
    """

    def __init__(self, options: ReplayOptions, clock: Callable[[], float] = time.perf_counter,
                 scenario: Scenario | None = None, custom: frozenset[str] = frozenset()) -> None:
        self.options = options
        self.scenario: Scenario = scenario or load_scenario(options.scenario)
        loadtest = self.scenario.loadtest
        self.declared = effective_loadtest(self.scenario)
        """The scenario's ``loadtest`` section with the requests actually replayed (the
        reference shop's when the scenario declares none)."""
        self.time_scale = options.time_scale or loadtest.time_scale
        self.rate_scale = options.rate_scale or loadtest.rate_scale
        self.traffic = TrafficModel(self.scenario, rate_scale=self.rate_scale,
                                    time_scale=self.time_scale)
        self.until_s = self.traffic.duration_s
        if options.duration_s is not None:
            self.until_s = min(self.until_s, options.duration_s)
        self.window_s = options.window_s or min(10.0, loadtest.window_s)
        self.seed = options.seed if options.seed is not None else self.scenario.seed
        driven = set(self.declared.requests) | set(custom)
        self.services = tuple(s for s in self.traffic.services if s in driven)
        self.skipped = tuple(s for s in self.traffic.services if s not in driven)
        self.custom = frozenset(s for s in custom if s in self.services)
        """Services driven by the user's own Locust classes (``--locustfile``)."""
        self.env_values = environment_values(self.declared, options.scenario)
        self.requests: dict[str, CompiledRequest] = compile_requests(
            self.declared, tuple(s for s in self.services if s not in self.custom),
            self.env_values)
        self.tables = (DataTables(self.declared, self.scenario.base_dir)
                       if self.declared.data else None)
        self.captures = CaptureStore()
        self.sequence = itertools.count(1)
        """``seq()`` of this process's templates (``start`` makes it unique per share)."""
        self.zipf_tables: dict[tuple[int, float], Any] = {}
        """``zipf(n, s)`` distributions, computed once per process for all its users."""
        self.sizing = SizingPolicy(max_users=options.max_users)
        self.drain_s = options.request_timeout_s + 1.0
        """Longest wait for answers after the last send (the run stops as soon as none is in
        flight)."""
        self.in_flight = dict.fromkeys(self.services, 0)
        """Sends not yet answered per service in this process (retry backoffs included)."""
        self.in_flight_peak = dict.fromkeys(self.services, 0)
        """Most sends in flight at once per service since the last ``take_peaks``."""
        self._clock = clock
        self.t0 = clock()
        self.schedule: SharedSchedule | None = None
        self.recorder: Recorder | None = None
        self.share = (0, 1)
        self._users = 0
        self.run_id = 0

    # ------------------------------------------------------------------ lifecycle
    def start(self, index: int = 0, count: int = 1, source: str = "local") -> None:
        """Begin the run now, sending share ``index`` of ``count`` of every schedule."""
        # Everything alive now (Locust, gevent, the scenario) lives for the whole run: out of
        # the collector's sight, a full collection no longer walks it, which stalled every
        # user for tens of milliseconds a few times a second at ~10,000 sends/s (late sends).
        # Done before t=0 is set, so that it does not eat into the users' spawning time.
        gc.collect()
        gc.freeze()
        self.share = (index, count)
        self.run_id += 1
        # The first send is due START_LEAD_S from now: users are still being spawned.
        self.t0 = self._clock() + START_LEAD_S
        self.schedule = SharedSchedule(self.traffic, self.until_s, self.options.arrivals,
                                       self.seed, index, count)
        self.schedule.services = {k: v for k, v in self.schedule.services.items()
                                  if k in self.services}
        self.recorder = Recorder(self.window_s, self.options.lag_threshold_ms, source)
        self.captures.clear()
        self.sequence = itertools.count(index + 1, count)

    def finish(self, run_id: int | None = None) -> None:
        """End the schedule: count every send time that passed unsent (the run stopped, or no
        user was free in time) as dropped. ``run_id`` (if given) must be the current run's."""
        if self.schedule is None or self.recorder is None:
            return
        if run_id is not None and run_id != self.run_id:
            return
        stop_s = min(self.now(), self.until_s)
        for name, schedule in self.schedule.services.items():
            for t in schedule.take_until(stop_s):
                self.recorder.dropped(name, t)
        self.schedule = None

    @property
    def running(self) -> bool:
        return self.schedule is not None

    def now(self) -> float:
        """Run time in seconds (negative during the start lead)."""
        return self._clock() - self.t0

    def begin_send(self, service: str) -> None:
        now = self.in_flight[service] = self.in_flight[service] + 1
        if now > self.in_flight_peak[service]:
            self.in_flight_peak[service] = now

    def end_send(self, service: str) -> None:
        self.in_flight[service] -= 1

    @property
    def busy(self) -> int:
        """Sends in flight in this process, all services."""
        return sum(self.in_flight.values())

    def take_peaks(self) -> dict[str, int]:
        """Per service, the most sends in flight at once since the last call (the count
        restarts from the current one)."""
        peaks, self.in_flight_peak = self.in_flight_peak, dict(self.in_flight)
        return peaks

    # ------------------------------------------------------------------ users
    def claim(self, service: str) -> float | None:
        """The next intended send time of ``service`` for this process (None: nothing left)."""
        if self.schedule is None or self.recorder is None:
            return None
        t = self.schedule.claim(service)
        if t is not None:
            self.recorder.claimed(service, t)
        return t

    def give_back(self, service: str, t_s: float) -> None:
        """A claimed time was not sent (its user was stopped while waiting for it)."""
        if self.schedule is None or self.recorder is None:
            return
        self.schedule.give_back(service, t_s)
        self.recorder.unclaimed(service, t_s)

    def user_rng(self, service: str) -> random.Random:
        """A seeded generator for one new user (template draws, retry jitter); Python's own
        generator: its scalar draws cost a fraction of numpy's, and a user draws per send."""
        self._users += 1
        return random.Random(
            (self.seed << 64) ^ (zlib.crc32(service.encode()) << 32) ^ (self.share[0] << 20)
            ^ self._users)

    def sizing_for(self, sockets: int) -> SizingPolicy:
        """The sizing policy with the user count bounded by ``--max-users`` and by the
        sockets the generator processes can poll (one connection per busy user)."""
        return SizingPolicy(max_users=max(1, min(self.options.max_users, sockets)))

    def retries(self, service: str) -> Retries | None:
        return self.scenario.services[service].retries

    def prior_ms(self) -> dict[str, float]:
        """Expected busy time per request before anything is measured: the scenario's mean
        service time plus loopback overhead."""
        return {
            name: sampler_for(self.scenario.services[name].service_time,
                              self.scenario.base_dir).mean_ms + NETWORK_MS
            for name in self.services
        }


def backoff_s(retries: Retries, attempt: int, rng: random.Random) -> float:
    """Wait before retry ``attempt`` (1-based): ``backoff_ms x multiplier^(attempt-1)``, spread
    uniformly by ``± jitter`` (the simulator's client model)."""
    base_ms = retries.backoff_ms * retries.multiplier ** (attempt - 1)
    spread = retries.jitter * (2.0 * float(rng.random()) - 1.0) if retries.jitter else 0.0
    return max(0.0, base_ms * (1.0 + spread)) / 1000.0


def retryable(status: int) -> bool:
    """Client retries go after timeouts, sheds and server/connection errors, not 4xx."""
    return status == 0 or status == 429 or status >= 500


def lag_verdict(intended: int, late: int, dropped: int, tolerance: float) -> bool:
    """True when the generator kept up: at most ``tolerance`` of the intended sends were late
    or never sent. A handful of sends never make the verdict alone (at least 3 are needed)."""
    bad = late + dropped
    return bad <= max(2, math.floor(tolerance * intended))
