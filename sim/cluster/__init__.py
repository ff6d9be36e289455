"""The cluster model as the engine drives it: nodes, placement, batch work, metrics.

Owns the scheduler that applies colocation decisions, the batch ledger and per-tick cluster
metrics. No SimPy, no I/O, no randomness it was not given. May import the foundation modules,
``sim.model`` and ``sim.policies.colocation``.
"""

from sim.cluster.metrics import ClusterTick
from sim.cluster.simulation import ClusterSim, InstancePlacement

__all__ = [
    "ClusterSim",
    "ClusterTick",
    "InstancePlacement",
]
