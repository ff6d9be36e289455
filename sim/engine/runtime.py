"""The engine's runtime state, and the view of it that the engine's helpers are given.

``Instance`` and ``ServiceRuntime`` are the control-plane state of each service. The autoscaling
controller (``control.py``), the cluster link (``cluster.py``) and the run result
(``result.py``) act on the simulation only through ``EngineState``, so none of them imports the
engine (``simulation.py``) that builds them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import simpy

from sim.engine.engines import DataPlane
from sim.model import Scenario, Service, TrafficModel


@dataclass
class Instance:
    """One instance of a service: pending (waiting for a node, with a cluster), booting until
    ``ready_s``, then ready until removed."""

    id: int
    started_s: float
    ready_s: float
    queue_id: int
    ready: bool = False
    pending: bool = False
    cluster_id: int | None = None
    removed: bool = False


class InstanceList:
    """A service's instances in start order, with O(1) removal and membership (a real-scale
    fleet has tens of thousands)."""

    def __init__(self) -> None:
        self._items: dict[int, Instance] = {}

    def append(self, inst: Instance) -> None:
        self._items[id(inst)] = inst

    def remove(self, inst: Instance) -> None:
        del self._items[id(inst)]

    def __contains__(self, inst: object) -> bool:
        return id(inst) in self._items

    def __iter__(self) -> Iterator[Instance]:
        return iter(self._items.values())

    def __len__(self) -> int:
        return len(self._items)


@dataclass
class ServiceRuntime:
    """Control-plane state of one service: its instances and per-tick instance counts."""

    name: str
    spec: Service
    plane: DataPlane
    desired: int
    instances: InstanceList = field(default_factory=InstanceList)
    next_id: int = 0
    n_ready: int = 0
    not_ready: dict[int, Instance] = field(default_factory=dict)
    """Instances booting or pending a node, by ``id()``, in start order."""
    last_change_s: float = 0.0
    ready_workers: int = 0
    running: int = 0
    scale_events: int = 0
    tick_desired: np.ndarray = field(default_factory=lambda: np.zeros(0))
    tick_booting: np.ndarray = field(default_factory=lambda: np.zeros(0))
    instance_s: np.ndarray = field(default_factory=lambda: np.zeros(0))
    ready_instance_s: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def ready_count(self) -> int:
        """Ready instances (kept up to date at every start, boot and removal)."""
        return self.n_ready

    @property
    def booting_count(self) -> int:
        """Instances started but not ready: booting, or pending a node."""
        return len(self.not_ready)

    @property
    def pending_count(self) -> int:
        return sum(1 for i in self.instances if i.pending)


class EngineState(Protocol):
    """What the controller, the cluster link and the run result use of a running simulation.

    Times are simulated seconds; ``bucket_s`` divides ``tick_s`` (the engine's accounting
    resolution), ``events`` is the run's event log (dicts, see docs/formats.md); ``engine``
    names the data plane (``exact`` or ``fluid``).
    """

    scenario: Scenario
    engine: str
    traffic: TrafficModel
    seed: int
    env: simpy.Environment
    duration_s: float
    tick_s: float
    bucket_s: float
    n_ticks: int
    wall_s: float
    services: Mapping[str, ServiceRuntime]
    events: list[dict[str, Any]]

    def book_capacity(self, rt: ServiceRuntime) -> None:
        """Record ``rt``'s current workers in the per-bucket capacity accounts."""

    def scale_to(self, rt: ServiceRuntime, desired: int, reason: str) -> None:
        """Start or remove instances of ``rt`` towards ``desired``; log ``reason``."""

    def boot_placed(self, rt: ServiceRuntime, inst: Instance) -> None:
        """Start booting ``inst``, which the cluster has just placed on a node."""
