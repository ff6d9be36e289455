"""The two data-plane engines behind one control plane, and the ``--engine`` selector.

``exact`` decides every request (``sim.engine.plane.ServicePlane``: cost grows with the request
count); ``fluid`` moves expected flows per time step (``sim.engine.fluid_plane.FluidPlane``: cost
grows with the time steps only). Both implement ``DataPlane``, the contract the engine's
SimPy control plane (``sim.engine.Simulation``) and the autoscaler's scrapes rely on.
``auto`` picks exact while the run is small enough to decide request by request and where
the fluid model is weak (docs/engines.md), fluid otherwise, and says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from sim.engine.plane import PlaneConfig, ServicePlane
from sim.engine.plane_state import Accounts
from sim.errors import PeaksimError
from sim.metrics import LatencyHistogram
from sim.model import Sampler, Scenario, Service, TrafficModel, sampler_for

EngineName = Literal["exact", "fluid", "auto"]
ENGINE_NAMES: tuple[str, ...] = ("exact", "fluid", "auto")

AUTO_EXACT_MAX_REQUESTS = 20_000_000
"""``auto`` decides request by request up to this many expected attempts (about 10 s of the
exact engine on one core)."""
AUTO_EXACT_HARD_MAX_REQUESTS = 500_000_000
"""Above this, ``auto`` runs fluid even where the fluid model is weak (the exact run would
take hours): the choice says so."""
WEAK_POOL_SERVERS = 10
"""A pool of fewer workers than this is far from the many-server limit."""
WEAK_SERVICE_CS2 = 4.0
"""Service times with a squared coefficient of variation above this are heavy-tailed."""


class DataPlane(Protocol):
    """What the control plane needs from one service's data plane (times in run seconds)."""

    acc: Accounts
    hist: LatencyHistogram
    capped_shed: int
    sampler: Sampler
    inflation: np.ndarray
    rng_faults: np.random.Generator
    workload: tuple[np.ndarray, np.ndarray] | None
    wants_ready_ids: bool

    @property
    def attempts_total(self) -> float: ...

    @property
    def hist_first(self) -> LatencyHistogram:
        """First attempts that completed successfully (the SLO's good events)."""

    def advance_to(self, t_s: float) -> None: ...

    def drain(self) -> None: ...

    def add_instance(self, ready_s: float, workers: int) -> int: ...

    def set_ready(self, ready_queue_ids: list[int], ready_instances: int,
                  inflation: np.ndarray | None = None) -> None: ...

    def remove_instance(self, now_s: float, queue_id: int, workers: int,
                        booting_ready_s: float | None, mode: str) -> list[float]: ...


class PlaneFactory(Protocol):
    def __call__(self, name: str, spec: Service, sampler: Sampler, traffic: TrafficModel,
                 config: PlaneConfig) -> DataPlane: ...


def _fluid_plane(name: str, spec: Service, sampler: Sampler, traffic: TrafficModel,
                 config: PlaneConfig) -> DataPlane:
    # imported on first use: scipy's special functions take most of a second to import,
    # which exact runs should not pay
    from sim.engine.fluid_plane import FluidPlane

    return FluidPlane(name, spec, sampler, traffic, config)


PLANES: dict[str, PlaneFactory] = {"exact": ServicePlane, "fluid": _fluid_plane}
"""Engine name -> data-plane factory."""


class EngineError(PeaksimError):
    """An unknown engine name."""


@dataclass(frozen=True)
class EngineChoice:
    """Which engine runs, what was asked for, and why."""

    name: str
    requested: str
    reason: str
    expected_requests: float

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "requested": self.requested, "reason": self.reason,
                "expected_requests": int(round(self.expected_requests))}


def expected_requests(scenario: Scenario, rate_scale: float = 1.0,
                      time_scale: float = 1.0) -> float:
    """Expected first attempts of a run: the traffic curves integrated over the run."""
    traffic = TrafficModel(scenario, rate_scale=rate_scale, time_scale=time_scale)
    points = int(min(200_000, max(1_000, traffic.duration_s)))
    grid = np.linspace(0.0, traffic.duration_s, points)
    total = 0.0
    for name in scenario.services:
        rates = traffic.rates_rps(name, grid)
        total += float(np.sum((rates[1:] + rates[:-1]) / 2.0 * np.diff(grid)))
    return total


def fluid_weakness(scenario: Scenario) -> str | None:
    """Why the fluid model is weak for ``scenario`` (few workers per pool, heavy-tailed
    service times), or None."""
    for name, spec in scenario.services.items():
        shared = spec.balancer == "least_outstanding"
        pool = spec.workers * max(spec.instances.start, spec.instances.min, 1) if shared \
            else spec.workers
        if pool < WEAK_POOL_SERVERS:
            return f"{name} has pools of {pool} worker(s) (< {WEAK_POOL_SERVERS})"
        sampler = sampler_for(spec.service_time, scenario.base_dir)
        cs2 = sampler.second_moment_ms2 / sampler.mean_ms**2 - 1.0
        if cs2 > WEAK_SERVICE_CS2:
            return (f"{name} has heavy-tailed service times (squared coefficient of "
                    f"variation {cs2:.1f} > {WEAK_SERVICE_CS2:g})")
    return None


def choose_engine(scenario: Scenario, requested: str | None, rate_scale: float = 1.0,
                  time_scale: float = 1.0) -> EngineChoice:
    """The engine for a run: ``requested`` (``--engine``), else the scenario's ``engine``
    key; ``auto`` resolved as the module docstring says."""
    asked = requested if requested is not None else scenario.engine
    if asked not in ENGINE_NAMES:
        raise EngineError(f"unknown engine {asked!r}; expected one of "
                          f"{', '.join(ENGINE_NAMES)}")
    if asked != "auto":
        return EngineChoice(asked, asked, "asked for", -1.0)
    count = expected_requests(scenario, rate_scale, time_scale)
    weak = fluid_weakness(scenario)
    if count <= AUTO_EXACT_MAX_REQUESTS:
        return EngineChoice("exact", "auto", f"{count:,.0f} expected requests <= "
                            f"{AUTO_EXACT_MAX_REQUESTS:,}", count)
    if weak is not None and count <= AUTO_EXACT_HARD_MAX_REQUESTS:
        return EngineChoice("exact", "auto", f"the fluid model is weak here: {weak}", count)
    reason = f"{count:,.0f} expected requests > {AUTO_EXACT_MAX_REQUESTS:,}"
    if weak is not None:
        reason += f" (too many to decide one by one, although {weak})"
    return EngineChoice("fluid", "auto", reason, count)


def with_engine(scenario: Scenario, engine: str | None) -> Scenario:
    """``scenario`` with its ``engine`` key set to ``engine`` (None: unchanged), so every
    simulation a command starts from it (plan trials, confirmations) uses that engine."""
    if engine is None:
        return scenario
    if engine not in ENGINE_NAMES:
        raise EngineError(f"unknown engine {engine!r}; expected one of {', '.join(ENGINE_NAMES)}")
    return scenario.model_copy(update={"engine": engine})
