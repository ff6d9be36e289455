"""Cluster metrics: per-tick rows, batch accounting and the per-run summary.

``Meter`` integrates piecewise-constant rates (node counts, allocated cores, pending instances,
the price of the nodes running) over simulated time; ``ClusterSim`` feeds it between events.
Ticks and summaries are plain frozen dataclasses, ready for ``dataclasses.asdict``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import NamedTuple

import numpy as np

from sim.policies.colocation import MCPU_PER_CORE, NodeSet


@dataclass(frozen=True)
class ClusterTick:
    """One tick ``[t_s, t_s + tick_s)``. Cores are means over the tick (``idle_cores`` =
    ready capacity not allocated); counts are at its end except ``batch_preempted`` and
    ``batch_jobs_completed`` (events in the tick); core-seconds and ``cost`` are cumulative."""

    t_s: float
    nodes: int
    nodes_ready: int
    nodes_in_use: int
    online_cores: float
    batch_cores: float
    idle_cores: float
    cpu_utilization: float
    pending_instances: int
    batch_running: int
    batch_queued: int
    batch_throttled: int
    batch_preempted: int
    batch_jobs_completed: int
    batch_core_s_done: float
    batch_core_s_lost: float
    cost: float

    @classmethod
    def columns(cls) -> list[str]:
        """Column names, in order, for a timeseries file."""
        return [f.name for f in fields(cls)]


@dataclass(frozen=True)
class BatchAccounting:
    """Batch work in core-seconds.

    ``submitted`` = work of the jobs accepted so far; ``done`` = work completed or kept by a
    checkpoint through an eviction; ``running`` = progress of running containers not yet
    kept; ``remaining`` = work still to execute (a preempted container's lost progress comes
    back here, because it runs again); ``lost`` = CPU spent on progress that preemption
    threw away; ``executed`` = batch cores held, integrated over time.

    Conservation: ``done + running + remaining == submitted`` (the demand side) and
    ``done + running + lost == executed`` (the supply side).
    """

    submitted_core_s: float
    done_core_s: float
    running_core_s: float
    remaining_core_s: float
    lost_core_s: float
    executed_core_s: float

    def check(self, rel_tol: float = 1e-9) -> None:
        """Raise ``AssertionError`` if either conservation law is broken."""
        scale = max(1.0, self.submitted_core_s, self.executed_core_s)
        demand = self.done_core_s + self.running_core_s + self.remaining_core_s
        supply = self.done_core_s + self.running_core_s + self.lost_core_s
        assert abs(demand - self.submitted_core_s) <= rel_tol * scale, (
            f"done + running + remaining = {demand} != submitted {self.submitted_core_s}")
        assert abs(supply - self.executed_core_s) <= rel_tol * scale, (
            f"done + running + lost = {supply} != executed {self.executed_core_s}")


@dataclass(frozen=True)
class ClusterSummary:
    """One run of the cluster model. Utilization is CPU-busy core-seconds (online busy + batch)
    over ready core-seconds; ``nodes_max`` is the machines the run needed (ready or
    provisioning); ``cost`` bills every node from the moment it was asked for."""

    policy: str
    duration_s: float
    nodes_max: int
    nodes_mean: float
    node_hours: float
    cost: float
    mean_cpu_utilization: float
    online_cores_mean: float
    batch_cores_mean: float
    pending_instance_s: float
    pending_max: int
    batch_jobs_submitted: int
    batch_jobs_completed: int
    batch_jobs_rejected: int
    batch_preemptions: int
    batch_core_s_per_s: float
    batch_slowdown_mean: float | None
    batch_slowdown_p95: float | None
    batch: BatchAccounting


@dataclass
class Meter:
    """Time integrals of the cluster's rates (all cumulative from the start of the run)."""

    node_s: float = 0.0
    cost: float = 0.0
    ready_core_s: float = 0.0
    online_core_s: float = 0.0
    batch_core_s: float = 0.0
    in_use_node_s: float = 0.0
    pending_s: float = 0.0
    online_busy_core_s: float = 0.0
    nodes_max: int = 0
    pending_max: int = 0
    preemptions: int = 0
    jobs_completed: int = 0
    slowdowns: list[float] = field(default_factory=list)

    def add(self, dt_s: float, rates: Rates) -> None:
        """Accumulate ``rates`` held for ``dt_s`` seconds."""
        self.node_s += rates.nodes * dt_s
        self.cost += rates.price_per_hour * dt_s / 3600.0
        self.ready_core_s += rates.ready_cores * dt_s
        self.online_core_s += rates.online_cores * dt_s
        self.batch_core_s += rates.batch_cores * dt_s
        self.in_use_node_s += rates.nodes_in_use * dt_s
        self.pending_s += rates.pending * dt_s

    def observe(self, nodes: int, pending: int) -> None:
        """Note the cluster's node and pending-instance counts now."""
        self.nodes_max = max(self.nodes_max, nodes)
        self.pending_max = max(self.pending_max, pending)

    def summary(self, policy: str, span_s: float, batch: BatchAccounting,
                jobs_submitted: int, jobs_rejected: int) -> ClusterSummary:
        """The run's summary over ``span_s`` seconds."""
        per_s = (lambda x: x / span_s) if span_s > 0 else (lambda x: 0.0)
        slowdown_mean, slowdown_p95 = self.slowdown_stats()
        busy = self.online_busy_core_s + self.batch_core_s
        return ClusterSummary(
            policy=policy, duration_s=span_s, nodes_max=self.nodes_max,
            nodes_mean=per_s(self.node_s), node_hours=self.node_s / 3600.0, cost=self.cost,
            mean_cpu_utilization=busy / self.ready_core_s if self.ready_core_s else 0.0,
            online_cores_mean=per_s(self.online_core_s),
            batch_cores_mean=per_s(self.batch_core_s), pending_instance_s=self.pending_s,
            pending_max=self.pending_max, batch_jobs_submitted=jobs_submitted,
            batch_jobs_completed=self.jobs_completed, batch_jobs_rejected=jobs_rejected,
            batch_preemptions=self.preemptions, batch_core_s_per_s=per_s(batch.done_core_s),
            batch_slowdown_mean=slowdown_mean, batch_slowdown_p95=slowdown_p95, batch=batch,
        )

    def slowdown_stats(self) -> tuple[float | None, float | None]:
        if not self.slowdowns:
            return None, None
        values = np.asarray(self.slowdowns)
        return float(values.mean()), float(np.percentile(values, 95))


class Rates(NamedTuple):
    """The cluster's rates between two events (a tuple: one is made per cluster event)."""

    nodes: int
    nodes_ready: int
    nodes_in_use: int
    price_per_hour: float
    ready_cores: float
    online_cores: float
    batch_cores: float
    pending: int


class RateCounter:
    """Counts the cluster's rates from ``NodeSet``'s running totals; walks the nodes only when
    one was added or removed, or became ready, since the last count."""

    def __init__(self) -> None:
        self._fleet: tuple[int, int, float, float] = (0, 0, 0.0, 0.0)
        self._key = (-1, -1.0)  # NodeSet.members, next time a node becomes ready

    def rates(self, nodeset: NodeSet, now_s: float, pending: int) -> Rates:
        """The rates at ``now_s`` with ``pending`` online instances waiting."""
        if nodeset.members != self._key[0] or now_s >= self._key[1]:
            nodes = nodeset.nodes.values()
            ready = [n for n in nodes if n.ready(now_s)]
            self._fleet = (len(nodes), len(ready), sum(n.price_per_hour for n in nodes),
                           sum(n.mcpu for n in ready) / MCPU_PER_CORE)
            coming = [n.ready_s for n in nodes if not n.ready(now_s)]
            self._key = (nodeset.members, min(coming, default=math.inf))
        count, ready_count, price, ready_cores = self._fleet
        # containers sit on ready nodes only, so the totals are the ready nodes' totals
        return Rates(
            nodes=count, nodes_ready=ready_count, nodes_in_use=nodeset.in_use,
            price_per_hour=price, ready_cores=ready_cores,
            online_cores=nodeset.online_mcpu / MCPU_PER_CORE,
            batch_cores=nodeset.batch_mcpu / MCPU_PER_CORE, pending=pending,
        )
