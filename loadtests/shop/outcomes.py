"""What the capacity emulation reports: request outcomes and pool state (plain data)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Generic, TypeVar

from sim.errors import PeaksimError

T = TypeVar("T")


class ScaleError(PeaksimError):
    """A scale request the service cannot take (unknown service, count out of bounds)."""


class Outcome(enum.StrEnum):
    """How a request left the capacity emulation (the simulator's outcome names)."""

    COMPLETED = "completed"
    SHED = "shed"
    TIMED_OUT = "timed_out"
    FAILED = "failed"


@dataclass(frozen=True)
class Served(Generic[T]):
    """Result of ``ServicePool.run``: ``value`` is the work's result when it ran.

    ``wait_ms`` is the time queued before a slot (or before leaving the queue), ``service_ms``
    the drawn service time (0 when no slot was granted); ``reason`` explains a shed or failure
    (``no_ready_instance``, ``queue_full``, ``instance_removed``); ``instance`` numbers the
    instance that held the request (0, 1, ... in creation order; -1 when none did).
    """

    outcome: Outcome
    value: T | None = None
    wait_ms: float = 0.0
    service_ms: float = 0.0
    reason: str = ""
    instance: int = -1


@dataclass(frozen=True)
class PoolState:
    """Instantaneous state of one service's pool (instance counts and slot use)."""

    service: str
    workers_per_instance: int
    min_instances: int
    max_instances: int
    desired: int
    ready: int
    booting: int
    draining: int
    busy_workers: int
    queued: int

    @property
    def ready_slots(self) -> int:
        """Worker slots on ready instances."""
        return self.ready * self.workers_per_instance
