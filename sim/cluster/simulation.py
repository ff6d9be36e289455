"""``ClusterSim``: the cluster model as the simulation engine drives it.

No SimPy, no I/O, no randomness: the engine owns the clock and calls in with times that never
go backwards. The API, in the order an engine uses it (docs/colocation.md, "For engine
authors"): ``from_scenario``; ``request_instance`` (a placement, its node None while pending;
``request_instances`` for a run of them); ``stop_instance``; ``advance`` (batch arrivals and
completions, nodes provisioned or removed); ``take_placed`` (pending instances placed since,
boot from their ``t_s``); ``next_event_s``; ``inflation_factor``; ``tick`` (the
``ClusterTick`` of the tick ending then, from each instance's busy share: busy worker-s /
(workers x tick)); ``summary``.

An engine with fleets of tens of thousands of instances marks the instances that serve
(``mark_ready``) and reports one busy share per service instead (``tick(t, service_busy=...)``,
``service_inflation()``): the per-tick cost is then O(nodes), not O(instances)
(``sim.cluster.utilization``). The cluster's own per-event cost does not grow with the
nodes either: rooms are indexed (``sim.cluster.rooms``), totals kept as containers move.

An online request at time t is served before batch events at the same t. Batch containers run
at full speed on the cores they hold (a throttled one at eff/requested speed) and count as fully
busy for CPU utilization; an online instance counts ``cores x busy fraction``. Interference uses
the node's utilization from the latest reported busy fractions (one tick behind).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.cluster.autoscale import nodes_to_add
from sim.cluster.batch_books import BatchBooks
from sim.cluster.metrics import (
    BatchAccounting,
    ClusterSummary,
    ClusterTick,
    Meter,
    RateCounter,
    Rates,
)
from sim.cluster.scheduler import Cluster, InstancePlacement
from sim.cluster.utilization import ServiceLoad
from sim.model import (
    BatchJob,
    ClusterSection,
    HasResources,
    Workload,
    load_workload,
    node_cpu_utilization,
)
from sim.policies.colocation import MCPU_PER_CORE, Container, Node, to_mcpu

if TYPE_CHECKING:
    from sim.model import Scenario

_FINISH, _NODE_READY, _IDLE, _WAKE = range(4)


class ClusterSim:
    """Nodes, online instances and a batch workload, stepped by the engine (module docstring).

    ``services`` maps a service name to anything with ``resources.cores`` and
    ``resources.memory_gb`` (a scenario ``Service``); ``jobs`` is the batch workload.
    """

    def __init__(
        self, section: ClusterSection, services: Mapping[str, HasResources],
        jobs: Workload | Sequence[BatchJob] = (), t0_s: float = 0.0,
    ) -> None:
        self.section = section
        self.cluster = Cluster(section, t0_s)
        self.now_s = t0_s
        self._t0_s = t0_s
        self._resources = {n: (s.resources.cores, s.resources.memory_gb)
                           for n, s in services.items()}
        job_list = jobs.jobs if isinstance(jobs, Workload) else tuple(jobs)
        self._jobs = sorted(job_list, key=lambda j: j.submit_s)
        self._next_job = 0
        self._heap: list[tuple[float, int, int, int, int]] = []
        self._seq = itertools.count()
        self._instances: dict[int, Container] = {}
        self._cores_of: dict[int, float] = {}
        self._placed: list[InstancePlacement] = []
        self._requesting: int | None = None
        self.books = BatchBooks(self.cluster, section)
        self.load = ServiceLoad(self.cluster.nodes,
                                {n: to_mcpu(cores) for n, (cores, _) in self._resources.items()})
        self.meter = Meter()
        self._last_tick = (t0_s, Meter())
        self._counter = RateCounter()
        self._rates_now: Rates | None = None
        self._measure()
        for node in self.cluster.nodes.nodes.values():
            self._schedule_idle(node, t0_s)
        self._absorb(t0_s)

    @classmethod
    def from_scenario(
        cls, scenario: Scenario, rng: np.random.Generator, variant: str | None = None
    ) -> ClusterSim:
        """The cluster of ``scenario`` (which must have a ``cluster`` section) as its
        ``variant`` sees it; the batch workload is drawn or read now (``rng`` seeds a
        generated one). Raises ``ScenarioError`` for an unusable batch CSV, ``KeyError`` for
        an unknown variant."""
        section: Any = scenario.cluster
        if section is None:
            raise ValueError(f"scenario {scenario.name!r} has no cluster section")
        if not isinstance(section, ClusterSection):
            section = ClusterSection.model_validate(section)
        section = section.variant(variant)
        jobs: Workload | tuple[()] = ()
        if section.batch is not None:
            jobs = load_workload(section.batch, scenario.base_dir, scenario.duration_s, rng)
        return cls(section, scenario.services, jobs)

    # ------------------------------------------------------------------ online instances
    def request_instance(self, service: str, t_s: float) -> InstancePlacement:
        """Ask for a node for a new instance of ``service`` at ``t_s``."""
        self._run(t_s, inclusive=False)
        return self._request(service, t_s)[0]

    def request_instances(self, service: str, count: int, t_s: float) -> list[InstancePlacement]:
        """Up to ``count`` ``request_instance`` calls; stops after the first that changed more
        than its own node (batch yielded, it went pending, time opened room) so that the caller
        sees its effects (``take_placed``) before asking for the rest; asks for none when
        catching up to ``t_s`` placed pending instances (take them first)."""
        self._run(t_s, inclusive=False)
        placements: list[InstancePlacement] = []
        if self._placed:
            return placements
        for _ in range(count):
            placement, quiet = self._request(service, t_s)
            placements.append(placement)
            if not quiet:
                break
        return placements

    def _request(self, service: str, t_s: float) -> tuple[InstancePlacement, bool]:
        cores, memory_gb = self._resources[service]
        container = self.cluster.new_container("online", service, cores, memory_gb)
        self._instances[container.cid] = container
        self._cores_of[container.cid] = container.mcpu / MCPU_PER_CORE
        result = self.cluster.place(container, t_s)
        self._requesting = container.cid
        quiet = self.cluster.quiet(t_s)
        if quiet:
            self._measure()  # placed in free room, nothing waiting: reconciling does nothing
        else:
            self._absorb(t_s)
            self._reconcile(t_s)
        self._requesting = None
        placement = self._placement(container, t_s, len(result.evicted), len(result.throttled))
        return placement, quiet

    def stop_instance(self, instance_id: int, t_s: float) -> None:
        """The instance is gone (scaled in or failed): its room is free from ``t_s``."""
        self._run(t_s, inclusive=False)
        container = self._instances.pop(instance_id)
        self.load.remove(instance_id)
        node_id = container.node_id
        self.cluster.remove(container, t_s)
        if node_id is not None and self.cluster.quiet(t_s, freed=node_id):
            self._measure()  # the room it left fits nothing waiting: reconciling does nothing
            return
        self._absorb(t_s)
        self._reconcile(t_s)

    def take_placed(self) -> list[InstancePlacement]:
        """Pending instances that found a node since the last call, in placement order."""
        placed, self._placed = self._placed, []
        return placed

    def mark_ready(self, instance_ids: Iterable[int]) -> None:
        """These placed instances serve from now on: each is busy at its service's share of
        the ticks that ``tick(..., service_busy=...)`` reports."""
        for instance_id in instance_ids:
            container = self._instances[instance_id]
            assert container.node_id is not None, "a pending instance cannot serve"
            self.load.mark_ready(instance_id, container.node_id, container.owner)

    def pending_instances(self, service: str | None = None) -> int:
        return sum(1 for c in self.cluster.pending if service is None or c.owner == service)

    def node_utilization(self, instance_id: int) -> float:
        """CPU utilization (0..1) of the instance's node; 0 while it is pending."""
        node_id = self._instances[instance_id].node_id
        if node_id is None:
            return 0.0
        node = self.cluster.nodes.nodes[node_id]
        return node_cpu_utilization(node.mcpu, node.batch_mcpu, (
            (c.mcpu, self.load.busy_of(c.cid, c.owner)) for c in node.online.values()))

    def service_inflation(self) -> dict[str, float]:
        """Mean service-time multiplier of each service's instances marked ready (services
        without one left out), from every node's utilization at once."""
        return self.load.inflation(self.section.interference, self._instances)

    def inflation_factor(self, instance_id: int) -> float:
        """Service-time multiplier of the instance from its node's utilization."""
        return self.section.interference.inflation_factor(self.node_utilization(instance_id))

    # ------------------------------------------------------------------ time
    def advance(self, to_t_s: float) -> None:
        """Process every cluster event up to and including ``to_t_s``."""
        self._run(to_t_s, inclusive=True)

    def next_event_s(self) -> float | None:
        """Time of the next cluster event (batch arrival or completion, node ready, idle-node
        check, refill), or None."""
        t_s = self._heap[0][0] if self._heap else None
        if self._next_job < len(self._jobs):
            job_s = max(self._t0_s, self._jobs[self._next_job].submit_s)
            t_s = job_s if t_s is None else min(t_s, job_s)
        return t_s

    def _run(self, to_t_s: float, inclusive: bool) -> None:
        if to_t_s < self.now_s:
            raise ValueError(f"time went backwards: {to_t_s} < {self.now_s}")
        if to_t_s == self.now_s and not inclusive:
            return  # a second request at the same time: no event can be due before it
        while True:
            t = self.next_event_s()
            if t is None or t > to_t_s or (t == to_t_s and not inclusive):
                break
            self._move_to(t)
            while self._next_job < len(self._jobs) and self._jobs[self._next_job].submit_s <= t:
                self.books.arrive(self._jobs[self._next_job], t)
                self._next_job += 1
            while self._heap and self._heap[0][0] <= t:
                _, _, kind, key, version = heapq.heappop(self._heap)
                self._handle(kind, key, version, t)
            self._absorb(t)
            self._reconcile(t)
        self._move_to(to_t_s)

    def _push(self, t_s: float, kind: int, key: int = -1, version: int = 0) -> None:
        heapq.heappush(self._heap, (t_s, next(self._seq), kind, key, version))

    def _handle(self, kind: int, key: int, version: int, t_s: float) -> None:
        if kind == _FINISH:
            job = self.books.finish(key, version, t_s)
            if job is not None:
                self.meter.jobs_completed += 1
                self.meter.slowdowns.append((t_s - job.job.submit_s) / job.job.duration_s)
        elif kind == _NODE_READY:
            node = self.cluster.nodes.nodes.get(key)
            if node is not None:
                self._schedule_idle(node, t_s)
        elif kind == _IDLE:
            self._maybe_remove(key, t_s)

    def _move_to(self, t_s: float) -> None:
        if t_s > self.now_s:
            self.meter.add(t_s - self.now_s, self._rates)
            self.now_s = t_s

    def _measure(self) -> None:
        """The cluster changed: note the most nodes and pending instances; the rates are
        recounted when next needed."""
        self._rates_now = None
        self.meter.observe(len(self.cluster.nodes.nodes), len(self.cluster.pending))

    @property
    def _rates(self) -> Rates:
        if self._rates_now is None:
            self._rates_now = self._counter.rates(self.cluster.nodes, self.now_s,
                                                  len(self.cluster.pending))
        return self._rates_now

    # ------------------------------------------------------------------ decisions
    def _reconcile(self, t_s: float) -> None:
        self.cluster.reconcile(t_s)
        self._absorb(t_s)
        if self._scale_up(t_s):
            self.cluster.reconcile(t_s)
            self._absorb(t_s)
        self._measure()

    def _scale_up(self, t_s: float) -> bool:
        """Ask for nodes for pending online instances not covered by nodes already on their
        way; True if a node was ready at once (zero provisioning delay)."""
        if not self.section.cluster_autoscaling.enabled or not self.cluster.pending:
            return False
        policy = self.cluster.policy
        added = nodes_to_add(self.cluster, t_s)
        ready_now = False
        for name, count in added.items():
            node_type = self.section.node_type(name)
            for _ in range(count):
                node = self.cluster.add_node(node_type, policy.online_pool, t_s,
                                             t_s + node_type.provision_s)
                self._push(node.ready_s, _NODE_READY, node.node_id)
                ready_now = ready_now or node.ready(t_s)
        return ready_now

    def _schedule_idle(self, node: Node, t_s: float) -> None:
        if self.section.cluster_autoscaling.enabled:
            self._push(t_s + self.section.cluster_autoscaling.scale_down_idle_s, _IDLE,
                       node.node_id)

    def _maybe_remove(self, node_id: int, t_s: float) -> None:
        node = self.cluster.nodes.nodes.get(node_id)
        idle_s = self.section.cluster_autoscaling.scale_down_idle_s
        if node is None or not node.empty or node.empty_since_s is None or not node.ready(t_s):
            return
        if t_s - node.empty_since_s < idle_s - 1e-9:
            return  # it was busy in between; a later check covers its new idle period
        if self.cluster.count_of(node.type_name) > self.section.node_type(node.type_name).min_count:
            self.cluster.remove_node(node)

    # ------------------------------------------------------------------ batch books
    def _absorb(self, t_s: float) -> None:
        """Book what the cluster just did: evictions, starts, rate changes, placements."""
        changes = self.cluster.changes
        if not changes:
            return
        self.cluster.take_changes()
        for container in changes.evicted:
            self.books.evict(container, t_s)
        for container in (*changes.started, *changes.rerated):
            finish = self.books.rerate(container, t_s)
            if finish is not None:
                self._push(finish[0], _FINISH, container.cid, finish[1])
        for container in changes.placed:
            if container.cid != self._requesting:
                self._placed.append(self._placement(container, t_s))
        for node in changes.emptied:
            self._schedule_idle(node, t_s)
        for wake_s in changes.wake_s:
            self._push(wake_s, _WAKE)
        self.meter.preemptions += len(changes.evicted)

    def accounting(self) -> BatchAccounting:
        """Batch core-seconds now (see ``BatchAccounting`` for the two conservation laws)."""
        return self.books.accounting(self.now_s, self.meter.batch_core_s)

    # ------------------------------------------------------------------ metrics
    def tick(self, t_s: float, busy_fractions: Mapping[int, float] | None = None,
             service_busy: Mapping[str, float] | None = None) -> ClusterTick:
        """Advance to ``t_s`` and report the tick since the previous call. ``busy_fractions``
        maps online instance ids to their busy share of the tick (missing: 0);
        ``service_busy`` gives one share for every instance of a service marked ready."""
        self.advance(t_s)
        start_s, before = self._last_tick
        length_s = t_s - start_s
        busy_core_s = 0.0
        for iid, fraction in (busy_fractions or {}).items():
            share = min(1.0, max(0.0, fraction))
            busy_core_s += share * self._cores_of[iid] * length_s
            if iid in self._instances:
                self.load.explicit[iid] = share
        if service_busy:
            busy_core_s += self.load.set_shares(service_busy) / MCPU_PER_CORE * length_s
        self.meter.online_busy_core_s += busy_core_s
        m, rates = self.meter, self._rates
        ready_core_s = m.ready_core_s - before.ready_core_s
        batch_core_s = m.batch_core_s - before.batch_core_s
        online_core_s = m.online_core_s - before.online_core_s

        def mean(core_s: float) -> float:  # millicore resolution hides float residue
            return round(core_s / length_s, 3) if length_s > 0 else 0.0

        nodes = self.cluster.nodes
        row = ClusterTick(
            t_s=float(start_s), nodes=rates.nodes, nodes_ready=rates.nodes_ready,
            nodes_in_use=rates.nodes_in_use, online_cores=mean(online_core_s),
            batch_cores=mean(batch_core_s),
            idle_cores=mean(ready_core_s - online_core_s - batch_core_s),
            cpu_utilization=round((busy_core_s + batch_core_s) / ready_core_s, 6)
            if ready_core_s > 0 else 0.0,
            pending_instances=rates.pending, batch_running=nodes.batch_running,
            batch_queued=self.cluster.queued_count, batch_throttled=nodes.batch_throttled,
            batch_preempted=m.preemptions - before.preemptions,
            batch_jobs_completed=m.jobs_completed - before.jobs_completed,
            batch_core_s_done=self.books.done_core_s, batch_core_s_lost=self.books.lost_core_s,
            cost=m.cost,
        )
        self._last_tick = (t_s, Meter(**{**vars(m), "slowdowns": []}))
        return row

    def summary(self) -> ClusterSummary:
        """The run so far (call after the last ``tick``)."""
        books = self.books
        return self.meter.summary(
            self.section.policy.name, self.now_s - self._t0_s, self.accounting(),
            books.jobs_submitted, books.jobs_rejected)

    def check_invariants(self) -> None:
        """No node over-committed; books balanced (``AssertionError`` otherwise)."""
        self.cluster.check_invariants()
        assert set(self.books.tasks) == self.cluster.batch_ids, "batch books and cluster differ"
        assert set(self._instances) >= {c.cid for c in self.cluster.pending}
        self.accounting().check()

    def _placement(self, c: Container, t_s: float, evicted: int = 0,
                   throttled: int = 0) -> InstancePlacement:
        name = None if c.node_id is None else self.cluster.nodes.nodes[c.node_id].name
        return InstancePlacement(c.cid, c.owner, c.node_id, name, t_s, evicted, throttled)
