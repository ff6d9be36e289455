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
class InstanceState:
    """One live instance: ``age_s`` since it was started (booting time included)."""

    index: int
    ready: bool
    draining: bool
    age_s: float


@dataclass(frozen=True)
class PoolState:
    """State of one service's pool: counts now, and time integrals since the pool started.

    ``busy_worker_s``, ``queued_request_s`` and ``ready_worker_s`` integrate busy workers,
    queued requests and worker slots on ready instances over time; the difference of two
    states taken ``dt`` seconds apart gives the window averages the simulator's autoscaler
    scrapes (utilization = d busy / d ready slots, mean queue = d queued / dt).
    """

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
    busy_worker_s: float = 0.0
    queued_request_s: float = 0.0
    ready_worker_s: float = 0.0
    instances: tuple[InstanceState, ...] = ()

    @property
    def ready_slots(self) -> int:
        """Worker slots on ready instances."""
        return self.ready * self.workers_per_instance

