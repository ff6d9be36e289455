"""Node CPU utilization from whole services at once, for fleets of tens of thousands.

An engine that knows only each service's busy share of a tick (the fluid engine: the share is
the same for every ready instance of a service) tells the cluster which instances serve
(``mark_ready``) and each service's share; ``ServiceLoad`` keeps, per node, how many ready
instances of each service it holds, so that every node's utilization and the mean interference
of each service come from a few array operations per tick instead of a walk over every
instance. Per node, as ``sim.model.node_cpu_utilization`` counts it:
``min(1, (batch millicores + sum of instance millicores x busy share) / node millicores)``.

The node arrays follow ``NodeSet``'s change log, so a tick costs O(nodes changed) in Python
plus O(nodes x services) in numpy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from sim.model import Interference
from sim.policies.colocation import Container, NodeSet


class ServiceLoad:
    """Ready online instances per node and service, and the utilization they make.

    ``mcpu_of`` gives each service's millicores per instance (its resources request).
    """

    def __init__(self, nodes: NodeSet, mcpu_of: Mapping[str, int]) -> None:
        self.nodes = nodes
        self.services = list(mcpu_of)
        self._column = {name: j for j, name in enumerate(self.services)}
        self._mcpu = np.asarray([mcpu_of[name] for name in self.services], dtype=float)
        self.ready_count = dict.fromkeys(self.services, 0)
        self.shares = dict.fromkeys(self.services, 0.0)
        self.explicit: dict[int, float] = {}  # busy shares reported per instance
        self._ready: dict[int, tuple[int, int]] = {}  # instance id -> (node id, column)
        self._counts = np.zeros((64, len(self.services)))
        self._node_mcpu = np.zeros(64)
        self._batch_mcpu = np.zeros(64)
        self._mark = (-1, 0)

    def mark_ready(self, instance_id: int, node_id: int, service: str) -> None:
        """The instance serves from now on (once per instance)."""
        if instance_id in self._ready:
            return
        column = self._column[service]
        self._grow(node_id)
        self._ready[instance_id] = (node_id, column)
        self._counts[node_id, column] += 1
        self.ready_count[service] += 1

    def is_ready(self, instance_id: int) -> bool:
        return instance_id in self._ready

    def busy_of(self, instance_id: int, service: str) -> float:
        """The instance's busy share: its service's once marked ready, else its own (0 until
        reported)."""
        if instance_id in self._ready:
            return self.shares[service]
        return self.explicit.get(instance_id, 0.0)

    def remove(self, instance_id: int) -> None:
        """The instance is gone (no-op if it was never marked ready)."""
        self.explicit.pop(instance_id, None)
        entry = self._ready.pop(instance_id, None)
        if entry is not None:
            node_id, column = entry
            self._counts[node_id, column] -= 1
            self.ready_count[self.services[column]] -= 1

    def set_shares(self, shares: Mapping[str, float]) -> float:
        """Each service's busy share (clamped to 0..1) for every ready instance of it; returns
        the busy millicores they make together."""
        busy_mcpu = 0.0
        for name, share in shares.items():
            share = min(1.0, max(0.0, share))
            self.shares[name] = share
            busy_mcpu += self.ready_count[name] * share * float(self._mcpu[self._column[name]])
        return busy_mcpu

    def utilization(self, extra: Iterable[tuple[int, float]] = ()) -> np.ndarray:
        """CPU utilization (0..1) of every node id (0 where there is no node); ``extra``
        adds busy millicores (node id, mcpu) of instances not marked ready."""
        self._sync()
        weights = self._mcpu * np.asarray([self.shares[name] for name in self.services])
        busy = self._batch_mcpu + self._counts @ weights
        for node_id, mcpu in extra:
            busy[node_id] += mcpu
        out = np.zeros_like(busy)
        np.divide(busy, self._node_mcpu, out=out, where=self._node_mcpu > 0)
        return np.minimum(1.0, out)

    def inflation(self, curve: Interference,
                  containers: Mapping[int, Container]) -> dict[str, float]:
        """Mean service-time multiplier of each service's ready instances (services without
        one are left out); ``containers`` holds the instances by id, for those whose busy
        share was reported one by one."""
        extra = [(c.node_id, c.mcpu * share) for iid, share in self.explicit.items()
                 if iid not in self._ready and (c := containers[iid]).node_id is not None]
        factors = curve.inflation_factors(self.utilization(extra))
        means = factors @ self._counts
        return {name: float(means[j]) / self.ready_count[name]
                for j, name in enumerate(self.services) if self.ready_count[name] > 0}

    def _grow(self, node_id: int) -> None:
        size = len(self._node_mcpu)
        if node_id < size:
            return
        new = max(2 * size, node_id + 1)
        self._counts = np.vstack([self._counts, np.zeros((new - size, len(self.services)))])
        self._node_mcpu = np.concatenate([self._node_mcpu, np.zeros(new - size)])
        self._batch_mcpu = np.concatenate([self._batch_mcpu, np.zeros(new - size)])

    def _sync(self) -> None:
        """Bring node capacities and batch millicores up to date from the change log."""
        nodes = self.nodes
        changed = nodes.changes_since(*self._mark)
        if changed is None:
            self._node_mcpu[:] = 0.0
            self._batch_mcpu[:] = 0.0
            changed = list(nodes.nodes)
        self._mark = (nodes.epoch, len(nodes.log))
        if not changed:
            return
        ids = list(set(changed))
        self._grow(max(ids))
        by_id = nodes.nodes
        index = np.asarray(ids)
        self._node_mcpu[index] = [n.mcpu if (n := by_id.get(i)) is not None else 0 for i in ids]
        self._batch_mcpu[index] = [n.batch_mcpu if (n := by_id.get(i)) is not None else 0
                                   for i in ids]
