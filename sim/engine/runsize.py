"""How big a run will be, estimated before it starts, and the limits above which it is refused.

A scenario can validate and still ask for more than a machine can give: 10^9 requests, a day
of 10-ms ticks, a million waiting requests per second of overload. ``estimate_run`` computes,
from the traffic curves and the service specs alone (no simulation), the requests (first
attempts), the per-tick rows, and the memory the engine will hold at its largest: per-bucket
and per-tick arrays, worker free-times, instances and waiting requests. ``check_run_size``
refuses a run above ``RunLimits`` with one line that gives the estimate, the limit, the field
that drives it and the way out.

Waiting requests: with ``max_queue`` at most ``max_queue x instances.max`` wait; with a
timeout at most ``peak rate x timeout``; with neither, the queue grows by the rate above the
largest capacity (``instances.max x workers / mean service time``) for as long as it lasts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from sim.engine.engines import choose_engine
from sim.engine.plane import WAITING_CAP
from sim.errors import Problem, ScenarioError
from sim.model import Scenario, TrafficModel

MAX_REQUESTS = 50_000_000
"""Default limit on a run's requests (first attempts): about 15 s of engine time when the
services keep up (an overloaded service costs more per request)."""
MAX_CONTROL_EVENTS = 20_000
"""Limit on metric scrapes plus autoscaler decisions (each advances every service: a few ms)."""
MAX_INSTANCES_RUN = 10_000
"""Limit on the instances of all services together (instances.max summed), exact engine."""
MAX_INSTANCES_FLUID = 1_000_000
"""The same for the fluid engine, whose instances carry no per-worker state."""
MAX_TICK_ROWS = 1_000_000
"""Limit on ticks x services (rows of timeseries.csv)."""
MAX_MEMORY_BYTES = 1_000_000_000
"""Limit on the estimated peak memory of the engine's state (1 GB)."""

_BYTES_PER_BUCKET = 12 * 8  # per-bucket float arrays of a service plane
_BYTES_PER_TICK_ROW = 1_200  # per-tick arrays, the timeseries row and the report's copy
_BYTES_PER_WORKER = 40  # a free time in a heap list
_BYTES_PER_INSTANCE = 400  # an Instance, its queue and its bookkeeping
_BYTES_PER_WAITING = 120  # a carried arrival: arrays, lists and its leave time
_GRID_POINTS = 20_001


@dataclass(frozen=True)
class RunLimits:
    """Limits a run must stay within (``--max-requests`` raises the first)."""

    max_requests: int = MAX_REQUESTS
    max_instances: int = MAX_INSTANCES_RUN
    max_instances_fluid: int = MAX_INSTANCES_FLUID
    max_control_events: int = MAX_CONTROL_EVENTS
    max_tick_rows: int = MAX_TICK_ROWS
    max_memory_bytes: int = MAX_MEMORY_BYTES


@dataclass(frozen=True)
class RunEstimate:
    """The estimated size of one run; ``*_field`` name what drives each figure most."""

    requests: float
    requests_field: tuple[str | int, ...]
    instances: int
    instances_field: tuple[str | int, ...]
    tick_rows: int
    control_events: int
    memory_bytes: float
    memory_field: tuple[str | int, ...]
    memory_cause: str
    memory_way_out: str


def estimate_run(scenario: Scenario, traffic: TrafficModel, tick_s: float) -> RunEstimate:
    """The size of a run of ``scenario`` under ``traffic`` (its scaled curves) with ticks of
    ``tick_s`` run seconds."""
    duration = traffic.duration_s
    grid = np.linspace(0.0, duration, _GRID_POINTS)
    n_ticks = max(1, math.ceil(duration / tick_s - 1e-9))
    n_buckets = n_ticks * max(1, math.ceil(tick_s - 1e-9))
    requests = 0.0
    top_requests: tuple[float, str] = (-1.0, "")
    parts: list[tuple[float, tuple[str | int, ...], str, str]] = []
    for name, spec in scenario.services.items():
        rates = np.nan_to_num(traffic.rates_rps(name, grid), nan=0.0, posinf=1e300)
        count = float(np.trapezoid(rates, grid))
        requests += count
        top_requests = max(top_requests, (count, name))
        slots = spec.instances.max * spec.workers
        parts.append((slots * _BYTES_PER_WORKER + spec.instances.max * _BYTES_PER_INSTANCE,
                      ("services", name, "instances"),
                      f"{slots:,} worker slots of {name} (instances.max x workers)",
                      "lower instances.max or workers"))
        waiting, field, why = _waiting(scenario, name, rates, grid)
        parts.append((waiting * _BYTES_PER_WAITING, field, why,
                      "give a smaller max_queue or timeout_ms, or a smaller rate_scale"))
    services = len(scenario.services)
    parts.append((services * (n_buckets * _BYTES_PER_BUCKET + n_ticks * _BYTES_PER_TICK_ROW),
                  ("tick_s",), f"{n_ticks:,} ticks of {services} service(s)",
                  "raise tick_s or shorten the duration"))
    memory = sum(p[0] for p in parts)
    biggest = max(parts, key=lambda p: p[0])
    control = 0
    if scenario.autoscaling is not None:
        scale = traffic.time_scale
        section = scenario.autoscaling
        control = (math.ceil(duration / (section.scrape_s / scale))
                   + math.ceil(duration / (section.interval_s / scale)))
    most = max(scenario.services, key=lambda n: scenario.services[n].instances.max)
    instances = sum(s.instances.max for s in scenario.services.values())
    return RunEstimate(requests, ("traffic",), instances, ("services", most, "instances"),
                       n_ticks * services, control, memory, *biggest[1:])


def _waiting(scenario: Scenario, name: str, rates: np.ndarray,
             grid: np.ndarray) -> tuple[float, tuple[str | int, ...], str]:
    """(requests waiting at once at most, the field that bounds them, why) of a service."""
    spec = scenario.services[name]
    field: tuple[str | int, ...] = ("services", name)
    if spec.max_queue is not None:
        waiting = float(spec.max_queue) * spec.instances.max
        return waiting, (*field, "max_queue"), f"{waiting:,.0f} waiting requests of {name} " \
                                               f"(max_queue x instances.max)"
    peak = float(rates.max()) if rates.size else 0.0
    if spec.timeout_ms > 0:
        waiting = peak * spec.timeout_ms / 1000.0
        return waiting, (*field, "timeout_ms"), f"{waiting:,.0f} waiting requests of {name} " \
                                                f"(peak rate x timeout_ms)"
    # Without either, the engine caps the queue (plane.WAITING_CAP) and carries at most
    # one batch of arrivals (about a tick's) past each control event.
    per_tick = peak * max(1.0, float(grid[-1]) / max(1, grid.size - 1))
    waiting = WAITING_CAP + per_tick
    return waiting, field, (f"{waiting:,.0f} requests of {name} waiting or carried at once "
                            f"(no max_queue: capped at {WAITING_CAP:,} waiting)")


def check_run_size(scenario: Scenario, estimate: RunEstimate, limits: RunLimits,
                   engine: str = "exact") -> None:
    """Refuse a run above ``limits``: one line with estimate, limit, field and way out.

    For the ``fluid`` engine the request count and the per-request/per-worker memory do not
    apply (its cost does not grow with the rate): only instances, control events and tick rows
    are checked, instances against ``max_instances_fluid``.
    """
    if engine == "fluid":
        limits = replace(limits,
                         max_requests=max(limits.max_requests, math.ceil(estimate.requests)),
                         max_instances=limits.max_instances_fluid,
                         max_memory_bytes=max(limits.max_memory_bytes, estimate.memory_bytes))
    if estimate.requests > limits.max_requests:
        _refuse(scenario, estimate.requests_field,
                f"the run would simulate about {estimate.requests:,.0f} requests, above the "
                f"limit of {limits.max_requests:,}; lower traffic.rate_scale (or --rate-scale) "
                f"or the duration, or raise the limit with --max-requests N")
    if estimate.instances > limits.max_instances:
        _refuse(scenario, estimate.instances_field,
                f"the run could start {estimate.instances:,} instances (instances.max of all "
                f"services), above the limit of {limits.max_instances:,}; lower instances.max "
                f"(more workers per instance model the same capacity)")
    if estimate.control_events > limits.max_control_events:
        _refuse(scenario, ("autoscaling", "interval_s"),
                f"the run would have {estimate.control_events:,} metric scrapes and autoscaler "
                f"decisions, above the limit of {limits.max_control_events:,}; raise "
                f"autoscaling.interval_s and scrape_s or shorten the duration")
    if estimate.tick_rows > limits.max_tick_rows:
        _refuse(scenario, ("tick_s",),
                f"the run would have {estimate.tick_rows:,} tick rows (ticks x services), above "
                f"the limit of {limits.max_tick_rows:,}; raise tick_s or shorten the duration")
    if estimate.memory_bytes > limits.max_memory_bytes:
        _refuse(scenario, estimate.memory_field,
                f"the run would hold about {estimate.memory_bytes / 1e9:,.3g} GB, above the "
                f"limit of {limits.max_memory_bytes / 1e9:g} GB, mostly for "
                f"{estimate.memory_cause}; {estimate.memory_way_out}")


def check_scenario_size(scenario: Scenario, limits: RunLimits | None = None) -> None:
    """``check_run_size`` for a run of the scenario as written (``peaksim validate``)."""
    traffic = TrafficModel(scenario)
    check_run_size(scenario, estimate_run(scenario, traffic,
                                          min(scenario.tick_s, traffic.duration_s)),
                   limits or RunLimits(), choose_engine(scenario, None).name)


def _refuse(scenario: Scenario, field: tuple[str | int, ...], message: str) -> None:
    dotted = ".".join(str(p) for p in field)
    raise ScenarioError([Problem(scenario.source, dotted, message, scenario.line_of(field))])
