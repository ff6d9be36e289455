"""ClusterSim as the engine drives it: pending instances, cluster autoscaling, refill,
utilization, interference and cost, each against a hand-worked example."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from sim.cluster import ClusterSim
from sim.model import BatchJob, ClusterSection


def section(**overrides: Any) -> ClusterSection:
    data: dict[str, Any] = {
        "node_types": [{"name": "n", "cores": 4, "memory_gb": 16, "count": 1}],
        "policy": "colocated",
    }
    data.update(overrides)
    return ClusterSection.model_validate(data)


def web(cores: float = 3.0, memory_gb: float = 1.0) -> dict[str, Any]:
    return {"web": SimpleNamespace(resources=SimpleNamespace(cores=cores, memory_gb=memory_gb))}


def test_pending_instance_is_placed_once_room_appears() -> None:
    cs = ClusterSim(section(), web())
    first = cs.request_instance("web", 0.0)
    second = cs.request_instance("web", 5.0)
    assert first.node_id == 0 and second.node_id is None
    assert cs.tick(10.0).pending_instances == 1
    assert cs.take_placed() == []
    cs.stop_instance(first.instance_id, 50.0)
    placed = cs.take_placed()
    assert [(p.instance_id, p.node_id, p.t_s) for p in placed] == [(second.instance_id, 0, 50.0)]
    assert cs.pending_instances() == 0
    # Pending from 5 s to 50 s: 45 instance-seconds.
    assert cs.summary().pending_instance_s == pytest.approx(45.0)


def test_a_stopped_pending_instance_leaves_the_queue() -> None:
    cs = ClusterSim(section(), web())
    cs.request_instance("web", 0.0)
    waiting = cs.request_instance("web", 1.0)
    cs.stop_instance(waiting.instance_id, 2.0)
    assert cs.pending_instances() == 0
    cs.check_invariants()


def test_smaller_request_passes_a_larger_one_that_does_not_fit() -> None:
    services = {**web(3.0), "tiny": SimpleNamespace(resources=SimpleNamespace(cores=1.0,
                                                                               memory_gb=1.0))}
    cs = ClusterSim(section(), services)
    cs.request_instance("web", 0.0)  # 1 core left
    assert cs.request_instance("web", 1.0).node_id is None
    assert cs.request_instance("tiny", 2.0).node_id == 0


def autoscaled(**extra: Any) -> ClusterSection:
    node = {"name": "n", "cores": 4, "memory_gb": 16, "count": 1, "min": 1, "max": 3,
            "provision_s": 120, "price_per_hour": 3.6}
    return section(node_types=[node], cluster_autoscaling={"enabled": True,
                                                           "scale_down_idle_s": 600}, **extra)


def test_cluster_autoscaling_adds_a_node_after_its_provisioning_delay() -> None:
    cs = ClusterSim(autoscaled(), web())
    cs.request_instance("web", 0.0)
    waiting = cs.request_instance("web", 10.0)
    assert waiting.node_id is None
    row = cs.tick(129.0)
    assert (row.nodes, row.nodes_ready, row.pending_instances) == (2, 1, 1)
    assert cs.take_placed() == []
    assert cs.next_event_s() == 130.0
    cs.advance(130.0)
    placed = cs.take_placed()
    assert [(p.instance_id, p.node_id, p.t_s) for p in placed] == [(waiting.instance_id, 1, 130.0)]
    # Billing starts when a node is asked for: 3.6/h = 0.001/s; 200 s + 190 s by t = 200.
    assert cs.tick(200.0).cost == pytest.approx(0.39)


def test_one_new_node_covers_several_pending_instances() -> None:
    cs = ClusterSim(autoscaled(), web(cores=2.0))
    for t in range(4):  # two fit on the first node, two wait
        cs.request_instance("web", float(t))
    assert cs.tick(10.0).nodes == 2  # one 4-core node holds both pending 2-core instances
    cs.advance(200.0)
    assert len(cs.take_placed()) == 2 and cs.pending_instances() == 0


def test_cluster_autoscaling_respects_max() -> None:
    cs = ClusterSim(autoscaled(), web())
    for t in range(5):
        cs.request_instance("web", float(t))
    assert cs.tick(10.0).nodes == 3
    assert cs.pending_instances() == 4


def test_empty_node_is_removed_after_the_idle_period_down_to_min() -> None:
    cs = ClusterSim(autoscaled(), web())
    cs.request_instance("web", 0.0)
    second = cs.request_instance("web", 0.0)
    cs.advance(120.0)
    assert cs.take_placed()[0].node_id == 1
    cs.stop_instance(second.instance_id, 300.0)
    assert cs.tick(899.0).nodes == 2
    assert cs.tick(900.0).nodes == 1  # empty since 300 s, idle 600 s
    assert list(cs.cluster.nodes.nodes) == [0]


def test_node_at_min_count_stays_even_when_empty() -> None:
    cs = ClusterSim(autoscaled(), web())
    instance = cs.request_instance("web", 0.0)
    cs.stop_instance(instance.instance_id, 10.0)
    assert cs.tick(5000.0).nodes == 1


def test_batch_refills_after_the_refill_delay() -> None:
    policy = {"name": "colocated", "refill_delay_s": 60}
    jobs = [BatchJob("j", 1.0, 4, 1.0, 1.0, 1000.0)]
    cs = ClusterSim(section(policy=policy), web(), jobs)
    instance = cs.request_instance("web", 0.0)  # batch arrives after: 1 core for it
    cs.advance(1.0)
    assert len(cs.books.running()) == 1
    cs.stop_instance(instance.instance_id, 100.0)
    cs.advance(159.0)
    assert len(cs.books.running()) == 1
    cs.advance(160.0)
    assert len(cs.books.running()) == 4


def test_no_refill_keeps_capacity_for_online() -> None:
    policy = {"name": "colocated", "batch_refill": False}
    jobs = [BatchJob("j", 1.0, 4, 1.0, 1.0, 1000.0)]
    cs = ClusterSim(section(policy=policy), web(), jobs)
    instance = cs.request_instance("web", 0.0)
    cs.stop_instance(instance.instance_id, 100.0)
    cs.advance(5000.0)
    assert len(cs.books.running()) == 0  # the node had online once: batch may not start there


def test_dedicated_pools_never_mix() -> None:
    pools = {"name": "dedicated", "online": {"n": 1}}
    node = {"name": "n", "cores": 4, "memory_gb": 16, "count": 2}
    jobs = [BatchJob("j", 0.0, 8, 1.0, 1.0, 100.0)]
    cs = ClusterSim(section(node_types=[node], policy=pools), web(), jobs)
    cs.advance(0.0)
    assert {t.container.node_id for t in cs.books.running()} == {1}
    assert len(cs.cluster.queued) == 4  # the online node stays free for online
    assert cs.request_instance("web", 1.0).node_id == 0
    assert cs.request_instance("web", 2.0).node_id is None  # no preemption across pools


def test_utilization_and_interference_from_busy_fractions() -> None:
    # 10-core node: a 2-core instance 50% busy (1 core) + 6 batch cores = 70% utilization.
    # Default curve: 1.0 at 50%, 1.05 at 80% -> 1 + 0.05 * (0.7 - 0.5) / 0.3 at 70%.
    node = {"name": "n", "cores": 10, "memory_gb": 64, "count": 1}
    jobs = [BatchJob("j", 0.0, 3, 2.0, 1.0, 1000.0)]
    cs = ClusterSim(section(node_types=[node]), web(cores=2.0), jobs)
    instance = cs.request_instance("web", 0.0)
    row = cs.tick(10.0, {instance.instance_id: 0.5})
    assert row.cpu_utilization == pytest.approx(0.7)
    assert (row.online_cores, row.batch_cores, row.idle_cores) == (2.0, 6.0, 2.0)
    assert cs.node_utilization(instance.instance_id) == pytest.approx(0.7)
    assert cs.inflation_factor(instance.instance_id) == pytest.approx(1.0 + 0.05 * 0.2 / 0.3)
    assert cs.summary().mean_cpu_utilization == pytest.approx(0.7)


def test_interference_curve_ends_and_switch() -> None:
    sec = section(interference={"curve": [[0.2, 1.1], [0.6, 1.3]]})
    curve = sec.interference
    assert curve.inflation_factor(0.0) == 1.1 and curve.inflation_factor(1.0) == 1.3
    assert curve.inflation_factor(0.4) == pytest.approx(1.2)
    off = section(interference={"enabled": False}).interference
    assert off.inflation_factor(1.0) == 1.0
    grid = np.linspace(-0.5, 1.5, 41)
    assert curve.inflation_factors(grid) == pytest.approx([curve.inflation_factor(u)
                                                           for u in grid])
    assert list(off.inflation_factors(grid)) == [1.0] * 41


def test_job_too_big_for_every_node_is_rejected() -> None:
    jobs = [BatchJob("big", 0.0, 1, 5.0, 1.0, 10.0), BatchJob("ok", 0.0, 1, 1.0, 1.0, 10.0)]
    cs = ClusterSim(section(), {}, jobs)
    cs.advance(20.0)
    summary = cs.summary()
    assert (summary.batch_jobs_rejected, summary.batch_jobs_completed) == (1, 1)
    assert summary.batch.submitted_core_s == pytest.approx(10.0)


def test_slowdown_of_a_job_that_had_to_queue() -> None:
    # One 4-core node, two 4-core jobs of 100 s at t=0: the second waits 100 s -> slowdown 2.
    jobs = [BatchJob("a", 0.0, 1, 4.0, 1.0, 100.0), BatchJob("b", 0.0, 1, 4.0, 1.0, 100.0)]
    cs = ClusterSim(section(), {}, jobs)
    cs.tick(300.0)
    summary = cs.summary()
    assert summary.batch_slowdown_mean == pytest.approx(1.5)
    assert summary.batch_core_s_per_s == pytest.approx(800.0 / 300.0)


def test_time_must_not_go_backwards() -> None:
    cs = ClusterSim(section(), web())
    cs.advance(10.0)
    with pytest.raises(ValueError, match="backwards"):
        cs.request_instance("web", 5.0)


SCENARIO = """
name: colo-test
seed: 7
duration: 1h
traffic: {kind: constant, rps: {web: 10}}
services:
  web:
    service_time: {dist: exponential, mean_ms: 20}
    workers: 4
    instances: 2
    resources: {cores: 2, memory_gb: 4}
cluster:
  node_types: [{name: std, cores: 32, memory_gb: 128, count: 4, price_per_hour: 1.5}]
  policy: {name: colocated, preemption: checkpoint}
  batch: {csv: data/batch-sample.csv, sample_fraction: 0.5}
"""


def test_from_scenario_builds_the_cluster_and_its_workload() -> None:
    from pathlib import Path

    from sim.model import parse_scenario

    scenarios = Path(__file__).resolve().parent.parent / "scenarios"
    scenario = parse_scenario(SCENARIO, "colo.yaml", base_dir=str(scenarios))
    cs = ClusterSim.from_scenario(scenario, np.random.default_rng(scenario.seed))
    assert [n.name for n in cs.cluster.nodes.nodes.values()] == [f"std-{i}" for i in range(4)]
    placed = cs.request_instance("web", 0.0)
    assert placed.node_id == 0 and placed.node == "std-0"
    cs.tick(3600.0)
    summary = cs.summary()
    assert summary.cost == pytest.approx(4 * 1.5)
    assert summary.batch_jobs_submitted > 500
    cs.check_invariants()
