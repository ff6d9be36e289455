"""The cluster model's indexes give the answers of a full scan: in randomized seeded runs, after
every operation, ``RoomIndex`` picks the node ``ScanRooms`` (every room of every node, built
afresh) picks, for every room kind, strategy and a spread of demands; and the per-service node
load gives each service the mean interference of its instances, node by node."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from sim.cluster import ClusterSim
from sim.model import ClusterSection, generate_jobs
from sim.policies.colocation import PLACEMENT_STRATEGIES, Demand, ScanRooms

SERVICES = {
    "web": SimpleNamespace(resources=SimpleNamespace(cores=2.0, memory_gb=4.0)),
    "api": SimpleNamespace(resources=SimpleNamespace(cores=3.5, memory_gb=6.0)),
}
DEMANDS = [Demand(500, 512), Demand(2000, 4096), Demand(3500, 6144), Demand(8000, 2048),
           Demand(1000, 30000)]


def section(policy: dict[str, Any]) -> ClusterSection:
    return ClusterSection.model_validate({
        "node_types": [
            {"name": "big", "cores": 16, "memory_gb": 32, "count": 4, "max": 8,
             "provision_s": 20},
            {"name": "small", "cores": 6, "memory_gb": 24, "count": 3, "max": 5,
             "provision_s": 0},
        ],
        "policy": policy,
        "cluster_autoscaling": {"enabled": True, "scale_down_idle_s": 60},
        "batch": {"generator": {
            "rate_per_min": 40,
            "instances": {"dist": "choice", "values": [1, 2, 4]},
            "cores": {"dist": "choice", "values": [0.5, 1, 2, 4]},
            "memory_gb_per_core": 2,
            "duration_s": {"dist": "exponential", "mean": 40, "max": 300},
            "priorities": {0: 2, 3: 1},
            "backlog_jobs": 15,
        }},
    })


def assert_index_matches_scan(cs: ClusterSim, t_s: float) -> None:
    cluster = cs.cluster
    scan = ScanRooms(cluster.nodes.nodes, cluster.policy)
    for kind in ("free", "reclaim", "batch"):
        for name, strategy_class in PLACEMENT_STRATEGIES.items():
            strategy = strategy_class()
            for demand in DEMANDS:
                expected = scan.pick(kind, strategy, demand, t_s)
                assert cluster.rooms.pick(kind, strategy, demand, t_s) == expected, (
                    kind, name, demand, t_s)


@pytest.mark.parametrize("policy", [
    {"name": "colocated", "preemption": "checkpoint"},
    {"name": "colocated", "preemption": "throttle", "refill_delay_s": 15,
     "batch_max_share": 0.8},
    {"name": "dedicated", "online": {"big": 2}},
], ids=["checkpoint", "throttle-refill", "dedicated"])
def test_indexed_rooms_pick_what_a_full_scan_picks(policy: dict[str, Any]) -> None:
    rng = np.random.default_rng(7)
    sec = section(policy)
    assert sec.batch is not None and sec.batch.generator is not None
    jobs = generate_jobs(sec.batch.generator, 900.0, np.random.default_rng(8))
    cs = ClusterSim(sec, SERVICES, jobs)
    live: list[int] = []
    t = 0.0
    for _ in range(250):
        op = rng.random()
        if op < 0.45:
            live.append(cs.request_instance(str(rng.choice(list(SERVICES))), t).instance_id)
        elif op < 0.7 and live:
            cs.stop_instance(live.pop(int(rng.integers(len(live)))), t)
        else:
            cs.advance(t)
        assert_index_matches_scan(cs, t)
        cs.check_invariants()
        t += float(rng.exponential(4.0))
    assert cs.summary().batch_jobs_completed > 0


def test_service_load_gives_each_service_the_mean_of_its_instances() -> None:
    """Marked ready and reported per service, instances get the interference a per-instance
    report gives them, node by node (the curve is steep so that every node differs)."""
    sec = section({"name": "colocated", "preemption": "lose"}).model_copy(update={
        "interference": ClusterSection.model_validate({
            "node_types": [{"name": "x", "cores": 1, "memory_gb": 1, "count": 1}],
            "interference": {"curve": [[0.0, 1.0], [1.0, 2.0]]}}).interference})
    assert sec.batch is not None and sec.batch.generator is not None
    jobs = generate_jobs(sec.batch.generator, 300.0, np.random.default_rng(3))
    per_instance = ClusterSim(sec, SERVICES, jobs)
    per_service = ClusterSim(sec, SERVICES, jobs)
    ids: dict[str, list[int]] = {"web": [], "api": []}
    for i in range(14):
        name = "web" if i % 3 else "api"
        first = per_instance.request_instance(name, 1.0)
        second = per_service.request_instance(name, 1.0)
        assert first.node_id == second.node_id
        if first.node_id is not None:
            ids[name].append(first.instance_id)
    per_service.mark_ready([i for group in ids.values() for i in group])
    shares = {"web": 0.7, "api": 0.35}
    row_i = per_instance.tick(60.0, {i: shares[s] for s, group in ids.items() for i in group})
    row_s = per_service.tick(60.0, service_busy=shares)
    assert row_s.cpu_utilization == pytest.approx(row_i.cpu_utilization, rel=1e-12)
    means = per_service.service_inflation()
    for name, group in ids.items():
        factors = [per_instance.inflation_factor(i) for i in group]
        assert len(set(np.round(factors, 12))) > 1  # the nodes differ
        assert means[name] == pytest.approx(float(np.mean(factors)), rel=1e-12)
