"""Colocation policies and placement strategies: pure decisions on plain cluster data.

Two registries (name -> class):

- ``PLACEMENT_STRATEGIES``: where a container goes among nodes with room. ``first_fit`` takes
  the first node in creation order; ``best_fit`` packs, choosing the node left with the fewest
  free cores, then the least free memory; ``spread`` takes the least allocated node, scored
  like the Kubernetes LeastAllocated plugin: the mean of the free shares of cores and memory
  after placing. Ties go to the lowest node id.
- ``COLOCATION_POLICIES``: how online and batch share nodes. ``dedicated`` keeps them on
  separate pools; ``colocated`` shares one pool where online comes first: an online instance
  takes a node with free room if there is one (placed by its strategy), else the strategy picks
  among nodes whose online-free room suffices and batch there yields: evicted
  (``lose``/``checkpoint``) or throttled (``throttle``), lowest priority first, then youngest
  first, freeing what is needed and no more (a greedy pass, then every victim that can be
  spared is reprieved).

A policy reads ``Node``/``Container`` records and returns decisions (``OnlineDecision``, a node
id); it never changes them, keeps no clock and draws no random numbers. It defines the rooms
(``room``: what counts as free on a node for each ``RoomKind``) and asks a ``RoomSource`` for
the node its strategy prefers among them: ``ScanRooms`` looks at every node (the reference),
``sim.cluster.rooms.RoomIndex`` gives the same answers from indexes kept current as nodes
change, for clusters of thousands of nodes.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import ClassVar, Literal, NamedTuple, Protocol

from sim.model import ClusterSection, ColocatedPolicy, DedicatedPolicy, NodeType
from sim.policies.colocation.state import Container, Node, Pool, to_mcpu, to_mem_mb


class Demand(NamedTuple):
    """What a container requests: millicores and MiB."""

    mcpu: int
    mem_mb: int


class Room(NamedTuple):
    """A node as a strategy sees it: capacity and the room that counts as free (a tuple:
    rooms are built by the hundred thousand in a real-sized run)."""

    node_id: int
    cap_mcpu: int
    cap_mem_mb: int
    free_mcpu: int
    free_mem_mb: int

    def fits(self, demand: Demand) -> bool:
        return demand.mcpu <= self.free_mcpu and demand.mem_mb <= self.free_mem_mb


class OnlineDecision(NamedTuple):
    """Put the online instance on ``node_id`` after evicting ``evict`` (container ids) and
    throttling each of ``throttle`` (container id, new effective mcpu)."""

    node_id: int
    evict: tuple[int, ...] = ()
    throttle: tuple[tuple[int, int], ...] = ()


RoomKind = Literal["free", "reclaim", "batch"]
"""``free``: room not held by anything, for online instances; ``reclaim``: room not held by
online instances (batch may yield it); ``batch``: room batch may start on."""


class RoomSource(Protocol):
    """The nodes of a cluster as a policy asks about them."""

    def pick(self, kind: RoomKind, strategy: PlacementStrategy, demand: Demand,
             t_s: float) -> int | None:
        """The node ``strategy`` picks among the rooms of ``kind`` at ``t_s`` that fit
        ``demand`` (None when none fits)."""
        ...

    def node(self, node_id: int) -> Node:
        """The node called ``node_id``."""
        ...


class ScanRooms:
    """A ``RoomSource`` that builds every room of every node at each question."""

    def __init__(self, nodes: Mapping[int, Node], policy: ColocationPolicy) -> None:
        self.nodes = nodes
        self.policy = policy

    def pick(self, kind: RoomKind, strategy: PlacementStrategy, demand: Demand,
             t_s: float) -> int | None:
        room = self.policy.room
        rooms = [r for n in self.nodes.values() if (r := room(kind, n, t_s)) is not None]
        return strategy.pick(rooms, demand)

    def node(self, node_id: int) -> Node:
        return self.nodes[node_id]


# ----------------------------------------------------------------------------- strategies
class PlacementStrategy(ABC):
    """Chooses one of the rooms that fit a demand (None when none fits)."""

    name: ClassVar[str]

    def pick(self, rooms: Iterable[Room], demand: Demand) -> int | None:
        fitting = [r for r in rooms if r.fits(demand)]
        if not fitting:
            return None
        return min(fitting, key=lambda r: (self.cost(r, demand), r.node_id)).node_id

    @abstractmethod
    def cost(self, room: Room, demand: Demand) -> tuple[float, ...]:
        """Lower is better; ties go to the lower node id."""


class FirstFit(PlacementStrategy):
    name = "first_fit"

    def cost(self, room: Room, demand: Demand) -> tuple[float, ...]:
        return ()


class BestFit(PlacementStrategy):
    name = "best_fit"

    def cost(self, room: Room, demand: Demand) -> tuple[float, ...]:
        return (room.free_mcpu - demand.mcpu, room.free_mem_mb - demand.mem_mb)


class Spread(PlacementStrategy):
    name = "spread"

    def cost(self, room: Room, demand: Demand) -> tuple[float, ...]:
        free_cpu = (room.free_mcpu - demand.mcpu) / room.cap_mcpu
        free_mem = (room.free_mem_mb - demand.mem_mb) / room.cap_mem_mb
        return (-(free_cpu + free_mem) / 2.0,)


PLACEMENT_STRATEGIES: Mapping[str, type[PlacementStrategy]] = MappingProxyType({
    cls.name: cls for cls in (FirstFit, BestFit, Spread)
})
"""Every placement strategy by the name scenarios use in ``placement:``."""


# ----------------------------------------------------------------------------- preemption
def preemption_order(batch: Iterable[Container]) -> list[Container]:
    """Who yields first: lowest priority, then the youngest (latest start), then highest id."""
    return sorted(batch, key=lambda c: (c.priority, -c.started_s, -c.cid))


def choose_victims(
    batch: Iterable[Container], need_mcpu: int, need_mem_mb: int
) -> list[Container] | None:
    """The batch containers to evict so that ``need_mcpu`` cores and ``need_mem_mb`` memory
    come free (an eviction frees a container's effective cores and its memory), in preemption
    order, with every victim that can be spared reprieved (highest priority first). None when
    even evicting them all is not enough."""
    order = preemption_order(batch)
    chosen: list[Container] = []
    cpu, mem = 0, 0
    for c in order:
        if cpu >= need_mcpu and mem >= need_mem_mb:
            break
        chosen.append(c)
        cpu, mem = cpu + c.eff_mcpu, mem + c.mem_mb
    if cpu < need_mcpu or mem < need_mem_mb:
        return None
    for c in reversed(list(chosen)):
        if cpu - c.eff_mcpu >= need_mcpu and mem - c.mem_mb >= need_mem_mb:
            chosen.remove(c)
            cpu, mem = cpu - c.eff_mcpu, mem - c.mem_mb
    return chosen


def min_mcpu(container: Container, min_share: float) -> int:
    """Fewest millicores a throttled batch container keeps."""
    return math.ceil(min_share * container.mcpu)


def choose_throttle(
    batch: Iterable[Container], need_mcpu: int, need_mem_mb: int, min_share: float
) -> tuple[list[Container], list[tuple[int, int]]] | None:
    """Throttle instead of evicting: evict only what memory needs (or what throttling down to
    ``min_share`` cannot free), then take the remaining cores from the others in preemption
    order, the last one only partly. Returns (evicted, [(id, new effective mcpu)]) or None."""
    pool = list(batch)
    evicted = choose_victims(pool, 0, need_mem_mb)
    if evicted is None:
        return None
    rest = [c for c in preemption_order(pool) if c not in evicted]
    cpu_left = need_mcpu - sum(c.eff_mcpu for c in evicted)

    def slack(c: Container) -> int:
        return max(0, c.eff_mcpu - min_mcpu(c, min_share))

    # Evict more, in preemption order, while throttling the others cannot cover the cores.
    while rest and cpu_left > sum(slack(c) for c in rest):
        victim = rest.pop(0)
        evicted.append(victim)
        cpu_left -= victim.eff_mcpu
    if cpu_left > sum(slack(c) for c in rest):
        return None
    throttled: list[tuple[int, int]] = []
    for c in rest:
        if cpu_left <= 0:
            break
        take = min(slack(c), cpu_left)
        if take > 0:
            throttled.append((c.cid, c.eff_mcpu - take))
            cpu_left -= take
    return evicted, throttled


# ----------------------------------------------------------------------------- policies
class ColocationPolicy(ABC):
    """How online instances and batch containers share nodes (one per scenario run)."""

    name: ClassVar[str]
    online_pool: ClassVar[Pool]
    batch_pool: ClassVar[Pool]

    def __init__(self, section: ClusterSection) -> None:
        self.section = section
        self.online_strategy = PLACEMENT_STRATEGIES[section.placement.online]()
        self.batch_strategy = PLACEMENT_STRATEGIES[section.placement.batch]()

    @abstractmethod
    def initial_pool(self, node_type: NodeType, index: int) -> Pool:
        """Pool of the ``index``-th node of ``node_type`` present at t=0."""

    @abstractmethod
    def scale_up_types(self) -> list[NodeType]:
        """Node types cluster autoscaling may add for pending online instances, in order."""

    @abstractmethod
    def place_online(
        self, rooms: RoomSource, demand: Demand, t_s: float
    ) -> OnlineDecision | None:
        """Where a new online instance goes and what must yield there (None: pending)."""

    def room(self, kind: RoomKind, node: Node, t_s: float) -> Room | None:
        """The room of ``kind`` on ``node`` at ``t_s`` (None: the node offers none). It
        changes only when the node changes, becomes ready or ends a refill hold."""
        free = self.free(kind, node, t_s)
        return None if free is None else Room(node.node_id, node.mcpu, node.mem_mb, *free)

    def free(self, kind: RoomKind, node: Node, t_s: float) -> tuple[int, int] | None:
        """``room``'s (free mcpu, free MiB) alone, without building the record: the question
        indexes ask of every node that changed."""
        if kind == "batch":
            return self.batch_free(node, t_s)
        if node.pool != self.online_pool or not node.ready(t_s):
            return None
        if kind == "free":
            return node.free_mcpu, node.free_mem_mb
        return node.mcpu - node.online_mcpu, node.mem_mb - node.online_mem_mb

    def batch_room(self, node: Node, t_s: float) -> Room | None:
        """The room batch may use on ``node`` now (None: batch may not start here)."""
        return self.room("batch", node, t_s)

    def batch_free(self, node: Node, t_s: float) -> tuple[int, int] | None:
        """``free("batch", ...)``: what batch may use on ``node`` now."""
        if node.pool != self.batch_pool or not node.ready(t_s) or node.batch_hold_until_s > t_s:
            return None
        return node.free_mcpu, node.free_mem_mb

    def place_batch(self, rooms: RoomSource, demand: Demand, t_s: float) -> int | None:
        """Which node a queued batch container starts on (None: it keeps waiting)."""
        return rooms.pick("batch", self.batch_strategy, demand, t_s)

    def batch_share(self) -> float:
        """Share of a node's cores batch may hold."""
        return 1.0

    def batch_types(self) -> list[NodeType]:
        """Node types whose nodes may run batch."""
        return list(self.section.node_types)

    def batch_can_ever_fit(self, demand: Demand) -> bool:
        """Whether some node type of the batch pool could hold ``demand`` when empty."""
        return any(
            demand.mcpu <= math.floor(self.batch_share() * to_mcpu(t.cores))
            and demand.mem_mb <= to_mem_mb(t.memory_gb)
            for t in self.batch_types()
        )

    def restore_order(self, node: Node) -> list[Container]:
        """Throttled containers get their cores back highest priority first, oldest first."""
        return [c for c in reversed(preemption_order(node.batch.values())) if c.throttled]


class Dedicated(ColocationPolicy):
    """Separate pools: online never meets batch, so nothing is ever preempted."""

    name = "dedicated"
    online_pool = "online"
    batch_pool = "batch"

    def __init__(self, section: ClusterSection) -> None:
        super().__init__(section)
        assert isinstance(section.policy, DedicatedPolicy)
        self.params = section.policy

    def initial_pool(self, node_type: NodeType, index: int) -> Pool:
        return "online" if index < self.params.online_nodes(node_type) else "batch"

    def scale_up_types(self) -> list[NodeType]:
        return [t for t in self.section.node_types if t.name in self.params.online]

    def batch_types(self) -> list[NodeType]:
        return [t for t in self.section.node_types if self.params.online.get(t.name) != "all"]

    def place_online(
        self, rooms: RoomSource, demand: Demand, t_s: float
    ) -> OnlineDecision | None:
        node_id = rooms.pick("free", self.online_strategy, demand, t_s)
        return None if node_id is None else OnlineDecision(node_id)


class Colocated(ColocationPolicy):
    """One shared pool; batch yields to online (see the module docstring)."""

    name = "colocated"
    online_pool = "shared"
    batch_pool = "shared"

    def __init__(self, section: ClusterSection) -> None:
        super().__init__(section)
        assert isinstance(section.policy, ColocatedPolicy)
        self.params = section.policy

    def initial_pool(self, node_type: NodeType, index: int) -> Pool:
        return "shared"

    def scale_up_types(self) -> list[NodeType]:
        return list(self.section.node_types)

    def place_online(
        self, rooms: RoomSource, demand: Demand, t_s: float
    ) -> OnlineDecision | None:
        node_id = rooms.pick("free", self.online_strategy, demand, t_s)
        if node_id is not None:
            return OnlineDecision(node_id)
        # No free room anywhere: batch capacity counts as reclaimable.
        node_id = rooms.pick("reclaim", self.online_strategy, demand, t_s)
        if node_id is None:
            return None
        node = rooms.node(node_id)
        need_mcpu = max(0, demand.mcpu - node.free_mcpu)
        need_mem = max(0, demand.mem_mb - node.free_mem_mb)
        if self.params.preemption == "throttle":
            plan = choose_throttle(node.batch.values(), need_mcpu, need_mem,
                                   self.params.throttle_min_share)
            assert plan is not None, "online-free room covers the demand"
            evicted, throttled = plan
            return OnlineDecision(node_id, tuple(c.cid for c in evicted), tuple(throttled))
        victims = choose_victims(node.batch.values(), need_mcpu, need_mem)
        assert victims is not None, "online-free room covers the demand"
        return OnlineDecision(node_id, tuple(c.cid for c in victims))

    def batch_free(self, node: Node, t_s: float) -> tuple[int, int] | None:
        if node.pool != self.batch_pool or node.ready_s > t_s or node.batch_hold_until_s > t_s:
            return None
        # batch_max_share keeps headroom for online on every node.
        free_mcpu = node.mcpu - node.online_mcpu - node.batch_mcpu
        if self.params.batch_max_share < 1.0:
            cap = math.floor(self.params.batch_max_share * node.mcpu) - node.batch_mcpu
            free_mcpu = min(free_mcpu, cap)
        return max(0, free_mcpu), node.mem_mb - node.online_mem_mb - node.batch_mem_mb

    def batch_share(self) -> float:
        return self.params.batch_max_share


COLOCATION_POLICIES: Mapping[str, type[ColocationPolicy]] = MappingProxyType({
    cls.name: cls for cls in (Dedicated, Colocated)
})
"""Every colocation policy by the name scenarios use in ``cluster.policy``."""


def make_policy(section: ClusterSection) -> ColocationPolicy:
    """The policy a cluster section names."""
    return COLOCATION_POLICIES[section.policy.name](section)
