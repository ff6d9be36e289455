"""Intended send times: the open-model schedule a load generator replays.

Each service's requests follow ``rate_rps(service, t)`` of the scenario (after time and rate
scaling). Two arrival processes are offered:

- ``poisson`` (default): a non-homogeneous Poisson process, by time rescaling: with
  ``L(t)`` the integral of the rate, the k-th arrival is at ``L^-1(E_1 + ... + E_k)`` with
  unit-exponential ``E_i``. It is what the simulator draws, so sim-vs-real compares the same
  traffic (queueing delay depends on the burstiness of arrivals, not only on their rate).
- ``paced``: deterministic pacing by the integral of the rate, the k-th send at
  ``L^-1(k + 1/2)`` (like k6's arrival-rate executors and wrk2). Every window then holds
  exactly the expected count, which makes a rate check tight; it understates queueing against
  a model that assumes Poisson arrivals.

A share ``(index, count)`` splits one service's schedule between ``count`` generator processes:
for ``poisson`` each takes an independent process of rate ``rate / count`` (the superposition of
independent Poisson processes is the Poisson process of the summed rate), seeded by its index;
for ``paced`` process ``index`` takes sends ``index, index + count, ...`` of the full sequence.

Memory is bounded: times are generated lazily in blocks of ``BLOCK_S`` seconds. Nothing here
imports Locust or gevent; the locustfile owns the clock and the sleeping.
"""

from __future__ import annotations

import heapq
import math
import zlib
from collections.abc import Iterator
from typing import Literal

import numpy as np

from sim.model import TrafficModel

Arrivals = Literal["poisson", "paced"]
ARRIVALS: tuple[Arrivals, ...] = ("poisson", "paced")

BLOCK_S = 2.0
"""Run seconds of schedule generated at a time."""
GRID_S = 0.005
"""Step of the rate integral's grid; the curve is treated as linear between grid points."""


def service_seed(seed: int, service: str, index: int) -> np.random.Generator:
    """The generator of ``service``'s arrivals in generator process ``index``."""
    return np.random.default_rng([seed, zlib.crc32(service.encode()), index])


class ServiceSchedule:
    """Intended send times (run seconds) of one service for one generator process, in order.

    ``until_s`` ends the schedule (the run's measured span). ``claim()`` hands out the next
    time; ``give_back(t)`` returns a claimed time that was not sent (its sender was stopped),
    so that the next ``claim()`` hands it out again.
    """

    def __init__(
        self, traffic: TrafficModel, service: str, until_s: float, arrivals: Arrivals = "poisson",
        seed: int = 0, index: int = 0, count: int = 1,
    ) -> None:
        if arrivals not in ARRIVALS:
            raise ValueError(f"arrivals must be one of {ARRIVALS}, got {arrivals!r}")
        if not 0 <= index < count:
            raise ValueError(f"share index {index} outside 0..{count - 1}")
        self.traffic = traffic
        self.service = service
        self.until_s = min(until_s, traffic.duration_s)
        self.arrivals = arrivals
        self.index = index
        self.count = count
        self._rng = service_seed(seed, service, index)
        self._block_end_s = 0.0
        self._integral = 0.0  # L(_block_end_s) of the full (unshared) rate
        self._next_target = self._first_target()
        self._buffer: list[float] = []
        """The current block's times as Python floats (read once per send: a list index is
        cheaper than a numpy scalar)."""
        self._pos = 0
        self._returned: list[float] = []
        self.exhausted = False

    # ------------------------------------------------------------------ public
    def claim(self) -> float | None:
        """The next intended send time, or None once the schedule is over."""
        if self._returned and (self._pos >= len(self._buffer)
                               or self._returned[0] <= self._buffer[self._pos]):
            return heapq.heappop(self._returned)
        while self._pos >= len(self._buffer):
            if self._block_end_s >= self.until_s:
                self.exhausted = True
                return None
            self._fill()
        t = self._buffer[self._pos]
        self._pos += 1
        return t

    def give_back(self, t_s: float) -> None:
        """Return a claimed, unsent time to the schedule."""
        heapq.heappush(self._returned, t_s)

    def take_until(self, t_s: float) -> Iterator[float]:
        """Claim every remaining time up to ``t_s``, in order (at the end of a run: the sends
        that never happened)."""
        while (t := self.claim()) is not None:
            if t > t_s:
                self.give_back(t)
                return
            yield t

    # ------------------------------------------------------------------ generation
    def _first_target(self) -> float:
        if self.arrivals == "paced":
            return self.index + 0.5
        return float(self._rng.exponential(1.0)) * self.count

    def _fill(self) -> None:
        """Generate the times of the next block ``[_block_end_s, +BLOCK_S)``."""
        start = self._block_end_s
        end = min(self.until_s, start + BLOCK_S)
        n = max(2, int(math.ceil((end - start) / GRID_S)) + 1)
        grid = np.linspace(start, end, n)
        rates = self.traffic.rates_rps(self.service, grid)
        cumulative = np.concatenate(
            ([0.0], np.cumsum((rates[1:] + rates[:-1]) * np.diff(grid) / 2.0))) + self._integral
        top = float(cumulative[-1])
        targets = []
        # Targets live on the scale of the full rate; this process's share is spaced
        # ``count`` apart on average (poisson: exponential gaps of mean ``count``).
        while self._next_target < top:
            targets.append(self._next_target)
            self._next_target += self._gap()
        self._buffer = self._invert(np.asarray(targets), cumulative, grid).tolist()
        self._pos = 0
        self._block_end_s = end
        self._integral = top

    def _gap(self) -> float:
        if self.arrivals == "paced":
            return float(self.count)
        return float(self._rng.exponential(1.0)) * self.count

    @staticmethod
    def _invert(targets: np.ndarray, cumulative: np.ndarray, grid: np.ndarray) -> np.ndarray:
        """``L^-1`` of each target; flat stretches (zero rate) are skipped, not landed on."""
        if targets.size == 0:
            return targets
        idx = np.clip(np.searchsorted(cumulative, targets, side="right") - 1, 0, grid.size - 2)
        lo, hi = cumulative[idx], cumulative[idx + 1]
        width = np.where(hi > lo, hi - lo, 1.0)
        frac = np.clip((targets - lo) / width, 0.0, 1.0)
        return grid[idx] + frac * (grid[idx + 1] - grid[idx])


class SharedSchedule:
    """The schedules of every service for one generator process (users pull from it)."""

    def __init__(
        self, traffic: TrafficModel, until_s: float, arrivals: Arrivals = "poisson",
        seed: int = 0, index: int = 0, count: int = 1,
    ) -> None:
        self.until_s = min(until_s, traffic.duration_s)
        self.services = {
            name: ServiceSchedule(traffic, name, until_s, arrivals, seed, index, count)
            for name in traffic.services
        }

    def claim(self, service: str) -> float | None:
        """Next intended send time of ``service`` (None: over, or a service not replayed)."""
        schedule = self.services.get(service)
        return None if schedule is None else schedule.claim()

    def give_back(self, service: str, t_s: float) -> None:
        self.services[service].give_back(t_s)
