"""The moving parts of a ``ServicePool`` (internal): instances, queued requests, the
service-time stream and the time integrals of slot use."""

from __future__ import annotations

import asyncio
import enum
import time
from collections import deque

import numpy as np

from sim.model import Sampler


class Phase(enum.Enum):
    """Life of an instance: booting -> ready -> draining -> gone (or booting -> gone)."""

    BOOTING = "booting"
    READY = "ready"
    DRAINING = "draining"
    GONE = "gone"


class Instance:
    """One instance: its busy workers and, for per-instance balancers, its own queue."""

    __slots__ = ("index", "state", "busy", "queue", "queued", "holders", "boot_timer", "started_s")

    def __init__(self, index: int, state: Phase) -> None:
        self.index = index
        self.state = state
        self.started_s = time.monotonic()
        self.busy = 0
        self.queue: deque[Waiter] = deque()
        self.queued = 0
        self.holders: set[asyncio.Future[bool]] = set()
        self.boot_timer: asyncio.TimerHandle | None = None


class Waiter:
    """A queued request: its future resolves to the granting instance, or None on timeout."""

    __slots__ = ("future", "timer", "instance")

    def __init__(self, future: asyncio.Future[Instance | None], instance: Instance | None):
        self.future = future
        self.timer: asyncio.TimerHandle | None = None
        self.instance = instance  # None: the shared queue


def resolve(future: asyncio.Future[bool], value: bool) -> None:
    """Set ``future`` to ``value`` unless it is already done."""
    if not future.done():
        future.set_result(value)


class SlotAccounts:
    """Running time integrals of a pool's busy workers, queue and ready slots (seconds).

    ``advance`` must be called with the counts that held since the previous call, before
    they change.
    """

    __slots__ = ("busy_worker_s", "queued_request_s", "ready_worker_s", "last_s")

    def __init__(self, now_s: float) -> None:
        self.busy_worker_s = 0.0
        self.queued_request_s = 0.0
        self.ready_worker_s = 0.0
        self.last_s = now_s

    def advance(self, now_s: float, busy: int, queued: int, ready_slots: int) -> None:
        """Add ``now_s - last`` seconds at the given counts."""
        dt_s = now_s - self.last_s
        if dt_s > 0:
            self.busy_worker_s += busy * dt_s
            self.queued_request_s += queued * dt_s
            self.ready_worker_s += ready_slots * dt_s
            self.last_s = now_s


DRAW_BLOCK = 1024
"""Service times are drawn in blocks: one numpy call per block, same sequence as one by one."""


class ServiceTimes:
    """The stream of a service's service times in seconds, drawn from ``sampler`` with ``rng``
    in the order slots are granted."""

    __slots__ = ("_sampler", "_rng", "_draws_s", "_next")

    def __init__(self, sampler: Sampler, rng: np.random.Generator) -> None:
        self._sampler = sampler
        self._rng = rng
        self._draws_s = np.empty(0)
        self._next = 0

    def next_s(self) -> float:
        """The next service time (s)."""
        if self._next >= len(self._draws_s):
            self._draws_s = self._sampler.sample_ms(self._rng, DRAW_BLOCK) / 1000.0
            self._next = 0
        value = float(self._draws_s[self._next])
        self._next += 1
        return value
