"""Plain cluster state: nodes and the containers bound to them, in integer units.

Cores are counted in millicores (``mcpu``, 1 core = 1000) and memory in MiB (``mem_mb``), as
Kubernetes does, so that sums never drift and "fits" is an exact comparison. ``NodeSet`` is the
only code that changes what a node holds; it keeps each node's totals in step with its
containers and ``check_invariants`` proves it (and that no node is over-committed).

These are plain data: colocation policies read them to decide, the ``Cluster`` acts on the
decision. Nothing here knows about time beyond the timestamps it is given.

For clusters of thousands of nodes, ``NodeSet`` also keeps what indexes over the nodes need to
stay current without scanning them: every node has a ``version`` that changes whenever its
room changes, a change log lists the nodes changed (``log``, restarted with a new ``epoch``
when it grows long), ``wakes`` lists the times a node's room opens without a change (a node
becoming ready, a refill delay ending), and cluster-wide totals are kept as containers move.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from typing import Literal

MCPU_PER_CORE = 1000
MB_PER_GB = 1024

Pool = Literal["online", "batch", "shared"]
Kind = Literal["online", "batch"]


def to_mcpu(cores: float) -> int:
    """Millicores for ``cores`` (at least 1)."""
    return max(1, round(cores * MCPU_PER_CORE))


def to_mem_mb(memory_gb: float) -> int:
    """MiB for ``memory_gb`` (at least 1)."""
    return max(1, round(memory_gb * MB_PER_GB))


@dataclass(eq=False)
class Container:
    """An online instance or a batch container.

    ``mcpu``/``mem_mb`` are what it requests; ``eff_mcpu`` the cores it holds now (less than
    ``mcpu`` only while a batch container is throttled). ``priority`` orders batch preemption
    (lower goes first). ``started_s`` is when it was bound to its current node.
    """

    cid: int
    kind: Kind
    owner: str
    mcpu: int
    mem_mb: int
    priority: int = 0
    node_id: int | None = None
    eff_mcpu: int = 0
    started_s: float = math.nan

    @property
    def throttled(self) -> bool:
        return self.node_id is not None and self.eff_mcpu < self.mcpu


@dataclass(eq=False)
class Node:
    """One machine. ``online_*`` and ``batch_*`` total what its containers hold (batch cores
    are the effective, possibly throttled, ones). Batch may not start here before
    ``batch_hold_until_s`` (the refill delay after online left)."""

    node_id: int
    type_name: str
    pool: Pool
    mcpu: int
    mem_mb: int
    price_per_hour: float
    created_s: float
    ready_s: float
    online: dict[int, Container] = field(default_factory=dict)
    batch: dict[int, Container] = field(default_factory=dict)
    online_mcpu: int = 0
    online_mem_mb: int = 0
    batch_mcpu: int = 0
    batch_mem_mb: int = 0
    batch_hold_until_s: float = -math.inf
    empty_since_s: float | None = None
    version: int = 0

    @property
    def name(self) -> str:
        return f"{self.type_name}-{self.node_id}"

    @property
    def free_mcpu(self) -> int:
        return self.mcpu - self.online_mcpu - self.batch_mcpu

    @property
    def free_mem_mb(self) -> int:
        return self.mem_mb - self.online_mem_mb - self.batch_mem_mb

    @property
    def empty(self) -> bool:
        return not self.online and not self.batch

    def ready(self, t_s: float) -> bool:
        return self.ready_s <= t_s


LOG_LIMIT = 1 << 16
"""Change-log entries kept before the log restarts (readers then rescan every node)."""


class NodeSet:
    """The nodes of a cluster in creation order, and the only writer of what they hold.

    Totals over all nodes (``online_mcpu``, ``batch_mcpu``, ``in_use``: nodes holding a
    container, ``batch_running``, ``batch_throttled``) are kept in step with every change;
    ``members`` counts node additions and removals; ``grown`` collects the nodes that got more
    room (added, a container left, a batch container was throttled) until ``take_grown``;
    rooms opened by time alone are in ``wakes``.
    """

    def __init__(self) -> None:
        self.nodes: dict[int, Node] = {}
        self._next_id = 0
        self.log: list[int] = []
        self.epoch = 0
        self.wakes: list[tuple[float, int]] = []
        self.members = 0
        self.grown: set[int] = set()
        self.online_mcpu = self.batch_mcpu = 0
        self.in_use = self.batch_running = self.batch_throttled = 0

    def changed(self, node: Node) -> None:
        """Record that ``node``'s room (or eligibility) changed."""
        node.version += 1
        if len(self.log) >= LOG_LIMIT:
            self.log = []
            self.epoch += 1
        self.log.append(node.node_id)

    def wake_at(self, node: Node, t_s: float) -> None:
        """``node``'s room opens at ``t_s`` with no change of its own (ready, hold over)."""
        if math.isfinite(t_s):
            bisect.insort(self.wakes, (t_s, node.node_id))

    def woken(self, after_s: float, upto_s: float) -> list[int]:
        """Nodes whose room opened in ``(after_s, upto_s]``."""
        lo = bisect.bisect_right(self.wakes, (after_s, math.inf))
        hi = bisect.bisect_right(self.wakes, (upto_s, math.inf))
        return [node_id for _, node_id in self.wakes[lo:hi]]

    def take_grown(self) -> set[int]:
        """The nodes that got more room since the last call."""
        grown, self.grown = self.grown, set()
        return grown

    def changes_since(self, epoch: int, cursor: int) -> list[int] | None:
        """Nodes changed since a reader's (epoch, cursor); None when the log restarted since
        (the reader must look at every node)."""
        if epoch != self.epoch:
            return None
        return self.log[cursor:]

    def add(
        self, type_name: str, pool: Pool, mcpu: int, mem_mb: int, price_per_hour: float,
        created_s: float, ready_s: float,
    ) -> Node:
        node = Node(self._next_id, type_name, pool, mcpu, mem_mb, price_per_hour, created_s,
                    ready_s, empty_since_s=ready_s)
        self._next_id += 1
        self.nodes[node.node_id] = node
        self.members += 1
        self.grown.add(node.node_id)
        self.changed(node)
        if ready_s > created_s:
            self.wake_at(node, ready_s)
        return node

    def remove(self, node: Node) -> None:
        """Take an empty node out of the cluster."""
        if not node.empty:
            raise ValueError(f"node {node.name} still holds containers")
        del self.nodes[node.node_id]
        self.members += 1
        self.changed(node)

    def bind(self, container: Container, node: Node, t_s: float) -> None:
        """Place ``container`` on ``node`` with all the cores it requests."""
        if container.node_id is not None:
            raise ValueError(f"container {container.cid} is already on node {container.node_id}")
        if container.mcpu > node.free_mcpu or container.mem_mb > node.free_mem_mb:
            raise ValueError(f"container {container.cid} does not fit on node {node.name}")
        if node.empty:
            self.in_use += 1
        container.node_id = node.node_id
        container.eff_mcpu = container.mcpu
        container.started_s = t_s
        if container.kind == "online":
            node.online[container.cid] = container
            node.online_mcpu += container.mcpu
            node.online_mem_mb += container.mem_mb
            self.online_mcpu += container.mcpu
        else:
            node.batch[container.cid] = container
            node.batch_mcpu += container.mcpu
            node.batch_mem_mb += container.mem_mb
            self.batch_mcpu += container.mcpu
            self.batch_running += 1
        node.empty_since_s = None
        self.changed(node)

    def unbind(self, container: Container, t_s: float) -> Node:
        """Take ``container`` off its node; returns the node."""
        if container.node_id is None:
            raise ValueError(f"container {container.cid} is not on a node")
        node = self.nodes[container.node_id]
        if container.kind == "online":
            del node.online[container.cid]
            node.online_mcpu -= container.mcpu
            node.online_mem_mb -= container.mem_mb
            self.online_mcpu -= container.mcpu
        else:
            del node.batch[container.cid]
            node.batch_mcpu -= container.eff_mcpu
            node.batch_mem_mb -= container.mem_mb
            self.batch_mcpu -= container.eff_mcpu
            self.batch_running -= 1
            self.batch_throttled -= container.throttled
        container.node_id = None
        container.eff_mcpu = 0
        if node.empty:
            node.empty_since_s = t_s
            self.in_use -= 1
        self.grown.add(node.node_id)
        self.changed(node)
        return node

    def set_effective(self, container: Container, eff_mcpu: int) -> None:
        """Throttle (or restore) a bound batch container to ``eff_mcpu`` cores."""
        if container.kind != "batch" or container.node_id is None:
            raise ValueError(f"container {container.cid} is not a placed batch container")
        if not 0 <= eff_mcpu <= container.mcpu:
            raise ValueError(f"effective cores {eff_mcpu} outside 0..{container.mcpu}")
        node = self.nodes[container.node_id]
        if eff_mcpu - container.eff_mcpu > node.free_mcpu:
            raise ValueError(f"node {node.name} has no room to restore container {container.cid}")
        node.batch_mcpu += eff_mcpu - container.eff_mcpu
        self.batch_mcpu += eff_mcpu - container.eff_mcpu
        if eff_mcpu < container.eff_mcpu:
            self.grown.add(node.node_id)
        self.batch_throttled -= container.throttled
        container.eff_mcpu = eff_mcpu
        self.batch_throttled += container.throttled
        self.changed(node)

    def check_invariants(self) -> None:
        """Raise ``AssertionError`` if a node is over-committed in cores or memory, or if its
        totals disagree with its containers."""
        for node in self.nodes.values():
            online_mcpu = sum(c.mcpu for c in node.online.values())
            online_mem = sum(c.mem_mb for c in node.online.values())
            batch_mcpu = sum(c.eff_mcpu for c in node.batch.values())
            batch_mem = sum(c.mem_mb for c in node.batch.values())
            totals = (node.online_mcpu, node.online_mem_mb, node.batch_mcpu, node.batch_mem_mb)
            assert totals == (online_mcpu, online_mem, batch_mcpu, batch_mem), (
                f"node {node.name}: totals {totals} disagree with its containers "
                f"{(online_mcpu, online_mem, batch_mcpu, batch_mem)}")
            assert online_mcpu + batch_mcpu <= node.mcpu, (
                f"node {node.name} over-committed: {online_mcpu + batch_mcpu} of {node.mcpu} mcpu")
            assert online_mem + batch_mem <= node.mem_mb, (
                f"node {node.name} over-committed: {online_mem + batch_mem} of {node.mem_mb} MiB")
            for c in (*node.online.values(), *node.batch.values()):
                assert c.node_id == node.node_id, f"container {c.cid} misfiled on {node.name}"
                assert 0 <= c.eff_mcpu <= c.mcpu, f"container {c.cid} holds {c.eff_mcpu} mcpu"
            assert all(c.eff_mcpu == c.mcpu for c in node.online.values())
            starts = [c.started_s for c in (*node.online.values(), *node.batch.values())]
            assert not starts or min(starts) >= node.ready_s, (
                f"node {node.name} got a container before it was ready")
        nodes = list(self.nodes.values())
        batch = [c for n in nodes for c in n.batch.values()]
        totals = (self.online_mcpu, self.batch_mcpu, self.in_use, self.batch_running,
                  self.batch_throttled)
        assert totals == (sum(n.online_mcpu for n in nodes), sum(n.batch_mcpu for n in nodes),
                          sum(1 for n in nodes if not n.empty), len(batch),
                          sum(1 for c in batch if c.throttled)), f"cluster totals {totals} drifted"
