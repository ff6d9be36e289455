"""Rooms of thousands of nodes, indexed: the answers of a full scan at a fraction of its cost.

A placement asks "which node does this strategy pick among the rooms of this kind that fit
this demand?". ``ScanRooms`` (``sim.policies.colocation``) answers by building the room of
every node; at a real cluster's size (thousands of nodes, tens of thousands of placements and
batch starts in a run) that is the whole cost of the cluster model. ``RoomIndex`` answers the
same question from one heap per (kind, strategy, demand), ordered by the strategy's own cost and
the node id, as ``PlacementStrategy.pick`` orders them, so the answer is the same node.

The heaps are kept current lazily. Every entry carries the version its node had when it was
pushed; ``NodeSet`` bumps a node's version whenever its room changes and logs the node, so at
each question a heap pushes the nodes changed since its last question (and those whose room
opened by time alone: a node became ready, a refill hold ended), then drops stale entries off
its top. Heaps that grow stale are rebuilt; heaps not asked for a while are rebuilt when the
change log restarts.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from sim.policies.colocation import (
    ColocationPolicy,
    Demand,
    Node,
    NodeSet,
    PlacementStrategy,
    Room,
    RoomKind,
)

_Entry = tuple[tuple[float, ...], int, int]


@dataclass
class _Heap:
    """Entries (cost, node id, node version) of the rooms that fit one demand."""

    entries: list[_Entry] = field(default_factory=list)
    epoch: int = -1
    cursor: int = 0
    synced_s: float = float("-inf")


class RoomIndex:
    """A ``RoomSource`` over a ``NodeSet``, for one colocation policy (module docstring).

    Times asked about must never go backwards.
    """

    def __init__(self, nodes: NodeSet, policy: ColocationPolicy) -> None:
        self.nodes = nodes
        self.policy = policy
        self._heaps: dict[tuple[RoomKind, str, int, int], _Heap] = {}
        # rooms by kind and node, with the node version they were built at: the heaps of
        # one kind (one per demand) share them
        self._rooms: dict[RoomKind, dict[int, tuple[int, Room]]] = {}

    def node(self, node_id: int) -> Node:
        return self.nodes.nodes[node_id]

    def pick(self, kind: RoomKind, strategy: PlacementStrategy, demand: Demand,
             t_s: float) -> int | None:
        key = (kind, strategy.name, demand.mcpu, demand.mem_mb)
        heap = self._heaps.get(key)
        if heap is None:
            heap = self._heaps[key] = _Heap()
        nodeset = self.nodes
        if (heap.cursor != len(nodeset.log) or heap.epoch != nodeset.epoch
                or (nodeset.wakes and t_s > heap.synced_s)):
            self._sync(heap, kind, strategy, demand, t_s)
        entries, nodes = heap.entries, nodeset.nodes
        while entries:
            _, node_id, version = entries[0]
            node = nodes.get(node_id)
            if node is not None and node.version == version:
                return node_id
            heapq.heappop(entries)
        return None

    def _sync(self, heap: _Heap, kind: RoomKind, strategy: PlacementStrategy, demand: Demand,
              t_s: float) -> None:
        nodes = self.nodes
        log = nodes.log
        woke = bool(nodes.wakes) and t_s > heap.synced_s
        changed = nodes.changes_since(heap.epoch, heap.cursor)
        stale = len(heap.entries) > 2 * len(nodes.nodes) + 64
        if changed is None or stale or len(changed) > len(nodes.nodes):
            ids: list[int] | set[int] = list(nodes.nodes)
            heap.entries = []
        else:
            ids = set(changed)
            if woke:
                ids.update(nodes.woken(heap.synced_s, t_s))
        heap.epoch, heap.cursor = nodes.epoch, len(log)
        heap.synced_s = max(heap.synced_s, t_s)
        room, cost, entries, by_id = self.policy.room, strategy.cost, heap.entries, nodes.nodes
        built = self._rooms.setdefault(kind, {})
        fresh = not entries
        for node_id in ids:
            node = by_id.get(node_id)
            if node is None:
                continue
            hit = built.get(node_id)
            if hit is not None and hit[0] == node.version:
                r: Room | None = hit[1]  # a room, once open, stays open until the node changes
            else:
                r = room(kind, node, t_s)
                if r is not None:
                    built[node_id] = (node.version, r)
            if r is not None and demand.mcpu <= r.free_mcpu and demand.mem_mb <= r.free_mem_mb:
                entry = (cost(r, demand), node_id, node.version)
                if fresh:
                    entries.append(entry)
                else:
                    heapq.heappush(entries, entry)
        if fresh:
            heapq.heapify(entries)
