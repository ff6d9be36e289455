"""Colocation policies: where instances and batch containers go, and who yields.

Owns the plain cluster state a policy reasons over (nodes, containers, pools), placement
strategies, preemption/throttling choices and the registry of policies by name. May import the
foundation modules and ``sim.model`` (the cluster section of a scenario).
"""

from sim.policies.colocation.policies import (
    COLOCATION_POLICIES,
    PLACEMENT_STRATEGIES,
    ColocationPolicy,
    Demand,
    PlacementStrategy,
    Room,
    RoomKind,
    RoomSource,
    ScanRooms,
    choose_throttle,
    choose_victims,
    make_policy,
    preemption_order,
)
from sim.policies.colocation.state import (
    MCPU_PER_CORE,
    Container,
    Kind,
    Node,
    NodeSet,
    Pool,
    to_mcpu,
    to_mem_mb,
)

__all__ = [
    "COLOCATION_POLICIES",
    "ColocationPolicy",
    "Container",
    "Demand",
    "Kind",
    "MCPU_PER_CORE",
    "Node",
    "NodeSet",
    "PLACEMENT_STRATEGIES",
    "PlacementStrategy",
    "Pool",
    "Room",
    "RoomKind",
    "RoomSource",
    "ScanRooms",
    "choose_throttle",
    "choose_victims",
    "make_policy",
    "preemption_order",
    "to_mcpu",
    "to_mem_mb",
]
