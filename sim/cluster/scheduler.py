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

At the size of a real cluster (thousands of nodes, thousands of queued containers) nothing
here scans every node or the whole queue per event: rooms come from ``RoomIndex``; the batch
queue is kept per demand (cores, memory), and a pass merges those queues in queue order,
dropping a demand as soon as no room fits it (rooms only shrink during a pass, so nothing
behind it would fit either); only throttled nodes that changed since the last pass are
looked at again (an unchanged one has no room to give back).
"""

from __future__ import annotations

import bisect
import heapq
import math
from dataclasses import dataclass, field
from typing import NamedTuple

from sim.cluster.rooms import RoomIndex
from sim.model import ClusterSection, ColocatedPolicy, NodeType
from sim.policies.colocation import (
    ColocationPolicy,
    Container,
    Demand,
    Kind,
    Node,
    NodeSet,
    Pool,
    make_policy,
    to_mcpu,
    to_mem_mb,
)

QueueKey = tuple[int, float, int]
"""Order of the batch queue: (-priority, submission time, container id)."""


@dataclass
class Changes:
    """What cluster operations did since the last ``take_changes``."""

    placed: list[Container] = field(default_factory=list)
    started: list[Container] = field(default_factory=list)
    evicted: list[Container] = field(default_factory=list)
    rerated: list[Container] = field(default_factory=list)
    emptied: list[Node] = field(default_factory=list)
    wake_s: list[float] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.placed or self.started or self.evicted or self.rerated or self.emptied
                    or self.wake_s)


class InstancePlacement(NamedTuple):
    """Where an online instance is: ``node_id`` None while pending. ``t_s`` is when it was
    placed (its boot starts then); ``evicted``/``throttled`` count batch containers that
    yielded for it."""

    instance_id: int
    service: str
    node_id: int | None
    node: str | None
    t_s: float
    evicted: int = 0
    throttled: int = 0


class PlacementResult(NamedTuple):
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
        self.rooms = RoomIndex(self.nodes, self.policy)
        self.pending: list[Container] = []
        self.changes = Changes()
        # queued batch containers by demand (mcpu, MiB), each list in queue order
        self._queues: dict[tuple[int, int], list[tuple[QueueKey, int]]] = {}
        self._queued: dict[int, Container] = {}
        self._queue_key: dict[int, QueueKey] = {}
        self._next_cid = 0
        self._throttled_nodes: set[int] = set()
        self._restore_mark = (-1, 0, -math.inf)  # change-log epoch, cursor, time
        # after a batch pass no demand still queued fits anywhere: until then, only demands
        # queued since, or that fit a room that grew since, can start
        self._pass_s = -math.inf
        self._new_demands: set[tuple[int, int]] = set()
        self._type_counts: dict[str, int] = {}
        self._ever_fits: dict[Demand, bool] = {}
        self._provisioning: dict[int, Node] = {}
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
        self._type_counts[node.type_name] = self._type_counts.get(node.type_name, 0) + 1
        if ready_s > created_s:
            self._provisioning[node.node_id] = node
        return node

    def remove_node(self, node: Node) -> None:
        """Remove an empty node."""
        self.nodes.remove(node)
        self._type_counts[node.type_name] -= 1
        self._provisioning.pop(node.node_id, None)

    def provisioning(self, t_s: float) -> list[Node]:
        """Nodes asked for and not ready at ``t_s``, in creation order."""
        for node_id in [i for i, n in self._provisioning.items() if n.ready(t_s)]:
            del self._provisioning[node_id]
        return list(self._provisioning.values())

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
        return self._type_counts.get(type_name, 0)

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
        decision = self.policy.place_online(self.rooms, Demand(container.mcpu, container.mem_mb),
                                            t_s)
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
            self.nodes.changed(node)
        elif params.refill_delay_s > 0:
            node.batch_hold_until_s = max(node.batch_hold_until_s, t_s + params.refill_delay_s)
            self.changes.wake_s.append(node.batch_hold_until_s)
            self.nodes.changed(node)
            self.nodes.wake_at(node, node.batch_hold_until_s)

    # ------------------------------------------------------------------ batch
    def submit_batch(self, container: Container, submit_s: float) -> bool:
        """Queue a batch container; False (and not queued) if no node could ever hold it."""
        demand = Demand(container.mcpu, container.mem_mb)
        fits = self._ever_fits.get(demand)
        if fits is None:
            fits = self._ever_fits[demand] = self.policy.batch_can_ever_fit(demand)
        if not fits:
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
        return len(self._queued)

    @property
    def queued(self) -> list[Container]:
        """Queued batch containers in the order they will be tried."""
        return [self._queued[cid] for _, cid in heapq.merge(*self._queues.values())]

    def _enqueue(self, container: Container) -> None:
        key = self._queue_key[container.cid]
        demand = (container.mcpu, container.mem_mb)
        queue = self._queues.get(demand)
        if queue is None:
            queue = self._queues[demand] = []
            self._new_demands.add(demand)
        bisect.insort(queue, (key, container.cid))
        self._queued[container.cid] = container

    def _dequeue(self, container: Container) -> None:
        key = self._queue_key.pop(container.cid)
        demand = (container.mcpu, container.mem_mb)
        queue = self._queues[demand]
        del queue[bisect.bisect_left(queue, (key, container.cid))]
        if not queue:
            del self._queues[demand]
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
        if self._queued:
            self._start_queued(t_s)

    def _restore_throttled(self, t_s: float) -> None:
        epoch, cursor, since_s = self._restore_mark
        changed = self.nodes.changes_since(epoch, cursor)
        woken = self.nodes.woken(since_s, t_s) if t_s > since_s else []
        self._restore_mark = (self.nodes.epoch, len(self.nodes.log), max(since_s, t_s))
        if not self._throttled_nodes:
            return
        todo = set(self._throttled_nodes)
        if changed is not None:
            todo.intersection_update({*changed, *woken})
        for node_id in sorted(todo):
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
        """Start queued containers in queue order where a room fits (backfill: one that fits
        nowhere is skipped). Merges the per-demand queues; a demand no room fits drops out."""
        nodes = self.nodes
        grown = nodes.take_grown()
        if nodes.wakes and t_s > self._pass_s:
            grown.update(nodes.woken(self._pass_s, t_s))
        self._pass_s = max(self._pass_s, t_s)
        candidates = self._new_demands & self._queues.keys()
        self._new_demands = set()
        batch_free, by_id = self.policy.batch_free, nodes.nodes
        rooms = [r for node_id in grown if (node := by_id.get(node_id)) is not None
                 and (r := batch_free(node, t_s)) is not None]
        if rooms:
            most_mcpu = max(mcpu for mcpu, _mem in rooms)
            candidates.update(d for d in self._queues if d[0] <= most_mcpu and any(
                d[0] <= mcpu and d[1] <= mem_mb for mcpu, mem_mb in rooms))
        if not candidates:
            return
        heads = [(self._queues[demand][0], demand) for demand in candidates]
        heapq.heapify(heads)
        while heads:
            (_, cid), demand = heapq.heappop(heads)
            node_id = self.policy.place_batch(self.rooms, Demand(*demand), t_s)
            if node_id is None:
                continue  # fits nowhere now, nor later in this pass
            queue = self._queues[demand]
            queue.pop(0)
            container = self._queued.pop(cid)
            self.nodes.bind(container, self.nodes.nodes[node_id], t_s)
            self.changes.started.append(container)
            if queue:
                heapq.heappush(heads, (queue[0], demand))
            else:
                del self._queues[demand]

    # ------------------------------------------------------------------ misc
    def quiet(self, t_s: float, freed: int | None = None) -> bool:
        """Whether a ``reconcile`` at ``t_s`` would do nothing: no instance pending, nothing
        done since the last one but placing online instances in free room (or removing one
        from node ``freed`` whose room then fits no queued batch container and holds no
        throttled one), no room opened by time since."""
        since_s = self._restore_mark[2]
        if self.pending or self.changes or (
                self.nodes.wakes and t_s > since_s and self.nodes.woken(since_s, t_s)):
            return False
        if freed is None:
            return True
        if freed in self._throttled_nodes:
            return False
        room = self.policy.batch_free(self.nodes.nodes[freed], t_s)
        return room is None or not any(
            mcpu <= room[0] and mem_mb <= room[1] for mcpu, mem_mb in self._queues)

    def take_changes(self) -> Changes:
        """What happened since the last call (and start a fresh record)."""
        changes, self.changes = self.changes, Changes()
        return changes

    def check_invariants(self) -> None:
        """No node over-committed; node totals, queues and container records agree."""
        self.nodes.check_invariants()
        assert all(c.node_id is None for c in self.pending), "a pending instance has a node"
        assert all(c.node_id is None for c in self._queued.values()), "a queued one has a node"
        queued = [cid for queue in self._queues.values() for _, cid in queue]
        assert sorted(queued) == sorted(self._queued), "batch queue and index disagree"
        for demand, queue in self._queues.items():
            assert queue and queue == sorted(queue), "batch queue empty or out of order"
            assert all((self._queued[cid].mcpu, self._queued[cid].mem_mb) == demand
                       for _, cid in queue), "batch container queued under another demand"
        bound = {cid for n in self.nodes.nodes.values() for cid in n.batch}
        assert set(self._queue_key) == bound | set(self._queued), "batch containers went astray"

