"""Rooms of thousands of nodes, indexed: the answers of a full scan at a fraction of its cost.

A placement asks "which node does this strategy pick among the rooms of this kind that fit
this demand?". ``ScanRooms`` (``sim.policies.colocation``) answers by building the room of
every node; at a real cluster's size (thousands of nodes, tens of thousands of placements and
batch starts in a run) that is the whole cost of the cluster model. ``RoomIndex`` answers the
same question from one heap per (kind, strategy, demand), ordered by the strategy's own cost and
the node id, as ``PlacementStrategy.pick`` orders them, so the answer is the same node.

``best_fit`` needs no heap per demand: its order, (free cores, free memory, node id) among
the rooms that fit, is the same for every demand, so one sorted list of the rooms of a kind
answers every demand (the first entry from the demand's cores on whose memory fits).

The heaps are kept current lazily. Every entry carries the version its node had when it was
pushed; ``NodeSet`` bumps a node's version whenever its room changes and logs the node, so at
each question a heap pushes the nodes changed since its last question (and those whose room
opened by time alone: a node became ready, a refill hold ended), then drops stale entries off
its top. Heaps that grow stale are rebuilt; heaps not asked for a while are rebuilt when the
change log restarts.
"""

from __future__ import annotations

import bisect
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


@dataclass
class _Sorted:
    """The open rooms of one kind as (free mcpu, free MiB, node id), sorted."""

    keys: list[tuple[int, int, int]] = field(default_factory=list)
    key_of: dict[int, tuple[int, int, int]] = field(default_factory=dict)
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
        self._sorted: dict[RoomKind, _Sorted] = {}

    def node(self, node_id: int) -> Node:
        return self.nodes.nodes[node_id]

    def pick(self, kind: RoomKind, strategy: PlacementStrategy, demand: Demand,
             t_s: float) -> int | None:
        if strategy.name == "best_fit":
            return self._best_fit(kind, demand, t_s)
        key = (kind, strategy.name, demand.mcpu, demand.mem_mb)
        heap = self._heaps.get(key)
        if heap is None:
            heap = self._heaps[key] = _Heap()
        nodeset = self.nodes
        log = nodeset.log
        if (nodeset.wakes and t_s > heap.synced_s or heap.epoch != nodeset.epoch
                or len(heap.entries) > 2 * len(nodeset.nodes) + 64):
            self._sync(heap, kind, strategy, demand, t_s)  # rebuilds a heap gone stale
        elif heap.cursor == len(log) - 1:
            # one node changed since (typically the one the last answer was placed on)
            heap.cursor += 1
            node = nodeset.nodes.get(log[-1])
            r = None if node is None else self.policy.room(kind, node, t_s)
            if r is not None and demand.mcpu <= r.free_mcpu and demand.mem_mb <= r.free_mem_mb:
                heapq.heappush(heap.entries, (strategy.cost(r, demand), r.node_id, node.version))
        elif heap.cursor != len(log):
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

    def _best_fit(self, kind: RoomKind, demand: Demand, t_s: float) -> int | None:
        index = self._sorted.get(kind)
        if index is None:
            index = self._sorted[kind] = _Sorted()
        nodeset = self.nodes
        if (index.cursor != len(nodeset.log) or index.epoch != nodeset.epoch
                or (nodeset.wakes and t_s > index.synced_s)):
            self._sync_sorted(index, kind, t_s)
        keys = index.keys
        for i in range(bisect.bisect_left(keys, (demand.mcpu, -1, -1)), len(keys)):
            if keys[i][1] >= demand.mem_mb:
                return keys[i][2]
        return None

    def _sync_sorted(self, index: _Sorted, kind: RoomKind, t_s: float) -> None:
        nodes = self.nodes
        changed = nodes.changes_since(index.epoch, index.cursor)
        by_id = nodes.nodes
        if changed is None or len(changed) > len(by_id):
            index.keys, index.key_of = [], {}
            ids: list[int] | set[int] = list(by_id)
        else:
            ids = set(changed)
            if nodes.wakes and t_s > index.synced_s:
                ids.update(nodes.woken(index.synced_s, t_s))
        index.epoch, index.cursor = nodes.epoch, len(nodes.log)
        index.synced_s = max(index.synced_s, t_s)
        keys, key_of = index.keys, index.key_of
        free_of = self.policy.free
        for node_id in ids:
            old = key_of.pop(node_id, None)
            if old is not None:
                del keys[bisect.bisect_left(keys, old)]
            node = by_id.get(node_id)
            free = None if node is None else free_of(kind, node, t_s)
            if free is not None and free[0] > 0 and free[1] > 0:
                key_of[node_id] = key = (free[0], free[1], node_id)
                bisect.insort(keys, key)
