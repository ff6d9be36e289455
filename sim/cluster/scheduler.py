"""The cluster scheduler: nodes, online instances, batch containers and who yields to whom.

``Cluster`` applies the decisions of a colocation policy (``sim.policies.colocation``) to
the plain state of nodes and containers (``sim.policies.colocation.state``). It knows the time
only as the ``t_s`` it is given, and it
does no accounting of batch work: every operation records what it did in ``changes`` (online
instances placed from the pending queue, batch containers started, evicted, throttled or
restored, nodes that fell empty, moments to wake up), which ``sim.cluster.simulation.ClusterSim``
drains to keep the books and to drive time.

Queues: online instances that found no node wait in ``pending`` (first come, first placed, a
smaller request may pass a larger one that does not fit); batch containers wait in a queue
ordered by priority (highest first), then submission time, then id. ``reconcile(t)`` places
what it can: pending online instances first, then the cores of throttled batch containers,
then queued batch containers.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from sim.model import ClusterSection, ColocatedPolicy, NodeType
from sim.policies.colocation import (
    ColocationPolicy,
    Container,
    Demand,
    Kind,
    Node,
    NodeSet,
    Pool,
    Room,
    make_policy,
    to_mcpu,
    to_mem_mb,
)


@dataclass
class Changes:
    """What cluster operations did since the last ``take_changes``."""

    placed: list[Container] = field(default_factory=list)
    started: list[Container] = field(default_factory=list)
    evicted: list[Container] = field(default_factory=list)
    rerated: list[Container] = field(default_factory=list)
    emptied: list[Node] = field(default_factory=list)
    wake_s: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class PlacementResult:
    """Where an online instance went: ``node_id`` None means it is pending."""

    container: Container
    node_id: int | None
    evicted: tuple[Container, ...] = ()
    throttled: tuple[Container, ...] = ()


class Cluster:
    """Nodes and containers of one run under one colocation policy."""

    def __init__(self, section: ClusterSection, t0_s: float = 0.0) -> None:
        self.section = section
        self.policy: ColocationPolicy = make_policy(section)
        self.nodes = NodeSet()
        self.pending: list[Container] = []
        self.changes = Changes()
        self._queue: list[tuple[tuple[int, float, int], int]] = []
        self._queued: dict[int, Container] = {}
        self._queue_key: dict[int, tuple[int, float, int]] = {}
        self._next_cid = 0
        self._throttled_nodes: set[int] = set()
        for node_type in section.node_types:
            for index in range(node_type.count):
                self.add_node(node_type, self.policy.initial_pool(node_type, index), t0_s, t0_s)

    # ------------------------------------------------------------------ nodes
    def add_node(self, node_type: NodeType, pool: Pool, created_s: float, ready_s: float) -> Node:
        """A node of ``node_type`` asked for at ``created_s``, ready at ``ready_s`` (the caller
        wakes the cluster then)."""
        node = self.nodes.add(node_type.name, pool, to_mcpu(node_type.cores),
                              to_mem_mb(node_type.memory_gb), node_type.price_per_hour,
                              created_s, ready_s)
        return node

    def remove_node(self, node: Node) -> None:
        """Remove an empty node."""
        self.nodes.remove(node)

    @staticmethod
    def capacity_of(node_type: NodeType) -> tuple[int, int]:
        """(mcpu, MiB) of one node of ``node_type``."""
        return to_mcpu(node_type.cores), to_mem_mb(node_type.memory_gb)

    def fits_type(self, node_type: NodeType, mcpu: int, mem_mb: int) -> bool:
        """Whether an empty node of ``node_type`` could hold the request."""
        cap_mcpu, cap_mem = self.capacity_of(node_type)
        return mcpu <= cap_mcpu and mem_mb <= cap_mem

    def count_of(self, type_name: str) -> int:
        """Nodes of a type, ready or provisioning."""
        return sum(1 for n in self.nodes.nodes.values() if n.type_name == type_name)

    # ------------------------------------------------------------------ online
    def new_container(
        self, kind: Kind, owner: str, cores: float, memory_gb: float, priority: int = 0
    ) -> Container:
        """A container with a fresh id, not yet placed or queued."""
        container = Container(self._next_cid, kind, owner, to_mcpu(cores), to_mem_mb(memory_gb),
                              priority)
        self._next_cid += 1
        return container

    def place(self, container: Container, t_s: float) -> PlacementResult:
        """Place an online instance now, making batch yield if the policy says so; if it
        cannot be placed it joins the pending queue (and is placed by a later ``reconcile``)."""
        evicted_before = len(self.changes.evicted)
        rerated_before = len(self.changes.rerated)
        if not self._try_place_online(container, t_s):
            self.pending.append(container)
            return PlacementResult(container, None)
        return PlacementResult(
            container, container.node_id,
            tuple(self.changes.evicted[evicted_before:]),
            tuple(self.changes.rerated[rerated_before:]),
        )

    def remove(self, container: Container, t_s: float) -> None:
        """Stop an online instance (placed or pending) or a batch container (running: it
        completed, or queued); the caller accounts for the batch work."""
        if container.kind == "online" and container.node_id is None:
            self.pending.remove(container)
            return
        if container.kind == "batch" and container.node_id is None:
            self._dequeue(container)
            return
        node = self.nodes.unbind(container, t_s)
        if container.kind == "online":
            self._hold_batch(node, t_s)
        else:
            del self._queue_key[container.cid]
        if node.empty:
            self.changes.emptied.append(node)

    def _try_place_online(self, container: Container, t_s: float) -> bool:
        nodes = list(self.nodes.nodes.values())
        decision = self.policy.place_online(nodes, Demand(container.mcpu, container.mem_mb), t_s)
        if decision is None:
            return False
        node = self.nodes.nodes[decision.node_id]
        for cid in decision.evict:
            victim = node.batch[cid]
            self.nodes.unbind(victim, t_s)
            self._enqueue(victim)
            self.changes.evicted.append(victim)
        for cid, eff_mcpu in decision.throttle:
            victim = node.batch[cid]
            self.nodes.set_effective(victim, eff_mcpu)
            self.changes.rerated.append(victim)
            self._throttled_nodes.add(node.node_id)
        self.nodes.bind(container, node, t_s)
        return True

    def _hold_batch(self, node: Node, t_s: float) -> None:
        """After online leaves a shared node, batch waits ``refill_delay_s`` (or for ever)."""
        params = self.section.policy
        if not isinstance(params, ColocatedPolicy):
            return
        if not params.batch_refill:
            node.batch_hold_until_s = math.inf
        elif params.refill_delay_s > 0:
            node.batch_hold_until_s = max(node.batch_hold_until_s, t_s + params.refill_delay_s)
            self.changes.wake_s.append(node.batch_hold_until_s)

    # ------------------------------------------------------------------ batch
    def submit_batch(self, container: Container, submit_s: float) -> bool:
        """Queue a batch container; False (and not queued) if no node could ever hold it."""
        if not self.policy.batch_can_ever_fit(Demand(container.mcpu, container.mem_mb)):
            return False
        self._queue_key[container.cid] = (-container.priority, submit_s, container.cid)
        self._enqueue(container)
        return True

    @property
    def batch_ids(self) -> set[int]:
        """Ids of the batch containers the cluster knows (running or queued)."""
        return set(self._queue_key)

    @property
    def queued_count(self) -> int:
        return len(self._queue)

    @property
    def queued(self) -> list[Container]:
        """Queued batch containers in the order they will be tried."""
        return [self._queued[cid] for _, cid in self._queue]

    def _enqueue(self, container: Container) -> None:
        key = self._queue_key[container.cid]
        bisect.insort(self._queue, (key, container.cid))
        self._queued[container.cid] = container

    def _dequeue(self, container: Container) -> None:
        key = self._queue_key.pop(container.cid)
        index = bisect.bisect_left(self._queue, (key, container.cid))
        del self._queue[index]
        del self._queued[container.cid]

    # ------------------------------------------------------------------ reconcile
    def reconcile(self, t_s: float) -> None:
        """Place pending online instances, give throttled batch its cores back, start queued
        batch containers, all where room allows at ``t_s``."""
        if self.pending:
            still: list[Container] = []
            for container in self.pending:
                if self._try_place_online(container, t_s):
                    self.changes.placed.append(container)
                else:
                    still.append(container)
            self.pending = still
        self._restore_throttled(t_s)
        if self._queue:
            self._start_queued(t_s)

    def _restore_throttled(self, t_s: float) -> None:
        for node_id in sorted(self._throttled_nodes):
            node = self.nodes.nodes.get(node_id)
            if node is None:
                self._throttled_nodes.discard(node_id)
                continue
            waiting = self.policy.restore_order(node)
            room = self.policy.batch_room(node, t_s)
            budget = room.free_mcpu if room is not None else 0
            for container in waiting:
                if budget <= 0:
                    break
                give = min(container.mcpu - container.eff_mcpu, budget)
                self.nodes.set_effective(container, container.eff_mcpu + give)
                self.changes.rerated.append(container)
                budget -= give
            if not any(c.throttled for c in waiting):
                self._throttled_nodes.discard(node_id)

    def _start_queued(self, t_s: float) -> None:
        rooms: dict[int, Room] = {}
        for node in self.nodes.nodes.values():
            room = self.policy.batch_room(node, t_s)
            if room is not None and room.free_mcpu > 0 and room.free_mem_mb > 0:
                rooms[node.node_id] = room
        if not rooms:
            return
        most_mcpu, most_mem = _largest(rooms.values())
        kept: list[tuple[tuple[int, float, int], int]] = []
        for i, entry in enumerate(self._queue):
            if not rooms:
                kept.extend(self._queue[i:])
                break
            container = self._queued[entry[1]]
            if container.mcpu > most_mcpu or container.mem_mb > most_mem:
                kept.append(entry)  # fits nowhere: skip without asking the strategy
                continue
            node_id = self.policy.place_batch(list(rooms.values()),
                                              Demand(container.mcpu, container.mem_mb))
            if node_id is None:
                kept.append(entry)
                continue
            node = self.nodes.nodes[node_id]
            self.nodes.bind(container, node, t_s)
            del self._queued[container.cid]
            self.changes.started.append(container)
            room = self.policy.batch_room(node, t_s)
            if room is None or room.free_mcpu <= 0 or room.free_mem_mb <= 0:
                rooms.pop(node_id)
            else:
                rooms[node_id] = room
            if rooms:
                most_mcpu, most_mem = _largest(rooms.values())
        self._queue = kept  # a subsequence of a sorted list: still sorted

    # ------------------------------------------------------------------ misc
    def take_changes(self) -> Changes:
        """What happened since the last call (and start a fresh record)."""
        changes, self.changes = self.changes, Changes()
        return changes

    def check_invariants(self) -> None:
        """No node over-committed; node totals, queues and container records agree."""
        self.nodes.check_invariants()
        assert all(c.node_id is None for c in self.pending), "a pending instance has a node"
        assert all(c.node_id is None for c in self._queued.values()), "a queued one has a node"
        assert len(self._queue) == len(self._queued), "batch queue and index disagree"
        assert self._queue == sorted(self._queue), "batch queue out of order"
        bound = {cid for n in self.nodes.nodes.values() for cid in n.batch}
        assert set(self._queue_key) == bound | set(self._queued), "batch containers went astray"


def _largest(rooms: Iterable[Room]) -> tuple[int, int]:
    rooms = list(rooms)
    return max(r.free_mcpu for r in rooms), max(r.free_mem_mb for r in rooms)
