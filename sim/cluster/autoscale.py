"""Cluster autoscaling's scale-up: which nodes to ask for when online instances are pending.

Like the Kubernetes cluster-autoscaler, pending instances are first packed first-fit into the
nodes already provisioning; each one that does not fit asks for a node of the first node type
(in file order) that the policy may add, that could hold it and that is below its ``max``.
"""

from __future__ import annotations

from sim.cluster.scheduler import Cluster


def nodes_to_add(cluster: Cluster, t_s: float) -> dict[str, int]:
    """Nodes to ask for at ``t_s``, by node type name, for the instances pending now."""
    policy = cluster.policy
    rooms = [[n.mcpu, n.mem_mb] for n in cluster.provisioning(t_s)
             if n.pool == policy.online_pool]
    added: dict[str, int] = {}
    for c in cluster.pending:
        room = next((r for r in rooms if r[0] >= c.mcpu and r[1] >= c.mem_mb), None)
        if room is None:
            for node_type in policy.scale_up_types():
                count = cluster.count_of(node_type.name) + added.get(node_type.name, 0)
                fits = cluster.fits_type(node_type, c.mcpu, c.mem_mb)
                if count < node_type.max_count and fits:
                    added[node_type.name] = added.get(node_type.name, 0) + 1
                    room = [*cluster.capacity_of(node_type)]
                    rooms.append(room)
                    break
        if room is not None:
            room[0] -= c.mcpu
            room[1] -= c.mem_mb
    return added
