"""Preemption: batch yields exactly what an online instance needs, lowest priority first."""

from __future__ import annotations

import itertools
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from sim.cluster import ClusterSim
from sim.model import BatchJob, ClusterSection
from sim.policies.colocation import Container, choose_throttle, choose_victims, preemption_order


def batch(cid: int, mcpu: int, priority: int, started_s: float, mem_mb: int = 1024) -> Container:
    return Container(cid, "batch", f"job{cid}", mcpu, mem_mb, priority, node_id=0,
                     eff_mcpu=mcpu, started_s=started_s)


def test_preemption_order_is_lowest_priority_then_youngest() -> None:
    a, b, c, d = batch(0, 2000, 0, 0.0), batch(1, 2000, 0, 10.0), batch(2, 2000, 1, 5.0), \
        batch(3, 1000, 0, 20.0)
    assert [x.cid for x in preemption_order([a, b, c, d])] == [3, 1, 0, 2]


def test_victims_free_exactly_what_is_needed() -> None:
    # Need 2 cores. Greedy in order takes D (1c) then B (2c) = 3c; D can be spared (3-1 = 2).
    a, b, c, d = batch(0, 2000, 0, 0.0), batch(1, 2000, 0, 10.0), batch(2, 2000, 1, 5.0), \
        batch(3, 1000, 0, 20.0)
    victims = choose_victims([a, b, c, d], 2000, 0)
    assert victims is not None and [v.cid for v in victims] == [1]


def test_higher_priority_is_spared_while_lower_priority_can_pay() -> None:
    low_big, high_small = batch(0, 4000, 0, 0.0), batch(1, 1000, 5, 50.0)
    victims = choose_victims([low_big, high_small], 1000, 0)
    assert victims is not None and [v.cid for v in victims] == [0]


def test_memory_need_picks_victims_by_memory() -> None:
    small_mem = batch(0, 4000, 0, 9.0, mem_mb=512)
    big_mem = batch(1, 1000, 0, 1.0, mem_mb=8192)
    # Need 4 GB, no cores: the youngest (small_mem) is tried first but cannot pay; spared.
    victims = choose_victims([small_mem, big_mem], 0, 4096)
    assert victims is not None and [v.cid for v in victims] == [1]


def test_impossible_need_returns_none() -> None:
    assert choose_victims([batch(0, 1000, 0, 0.0)], 2000, 0) is None


def test_victims_against_brute_force() -> None:
    """On random nodes: enough is freed, no victim can be spared, and no container beyond the
    shortest sufficient prefix of the preemption order is touched."""
    rng = np.random.default_rng(7)
    for _ in range(300):
        n = int(rng.integers(1, 7))
        pool = [batch(i, int(rng.integers(1, 5)) * 500, int(rng.integers(0, 3)),
                      float(rng.integers(0, 100)), int(rng.integers(1, 5)) * 512)
                for i in range(n)]
        need_cpu, need_mem = int(rng.integers(0, 6)) * 500, int(rng.integers(0, 6)) * 512
        victims = choose_victims(pool, need_cpu, need_mem)
        order = preemption_order(pool)
        prefix = next((k for k in range(n + 1)
                       if sum(c.eff_mcpu for c in order[:k]) >= need_cpu
                       and sum(c.mem_mb for c in order[:k]) >= need_mem), None)
        if prefix is None:
            assert victims is None
            continue
        assert victims is not None
        cpu, mem = sum(v.eff_mcpu for v in victims), sum(v.mem_mb for v in victims)
        assert cpu >= need_cpu and mem >= need_mem
        for v in victims:
            assert cpu - v.eff_mcpu < need_cpu or mem - v.mem_mb < need_mem
        assert all(v in order[:prefix] for v in victims)
        # Minimal in number among subsets of that prefix? Not required; but never larger
        # than the prefix itself.
        assert len(victims) <= prefix


def test_throttle_takes_cores_lowest_priority_first_down_to_the_minimum_share() -> None:
    a, b = batch(0, 4000, 0, 0.0), batch(1, 4000, 1, 0.0)
    # Need 3.5 cores with min share 0.25: A gives 3 cores (down to 1), B gives the last 0.5.
    plan = choose_throttle([a, b], 3500, 0, 0.25)
    assert plan == ([], [(0, 1000), (1, 3500)])


def test_throttle_evicts_when_memory_is_short() -> None:
    a, b = batch(0, 2000, 0, 0.0, mem_mb=4096), batch(1, 2000, 1, 0.0, mem_mb=4096)
    plan = choose_throttle([a, b], 3000, 2048, 0.5)
    # Memory: evict A (lowest priority), which also frees its 2 cores; B gives 1 more core.
    assert plan is not None
    evicted, throttled = plan
    assert [c.cid for c in evicted] == [0] and throttled == [(1, 1000)]


# ----------------------------------------------------------------------------- end to end
def one_node(policy: dict[str, Any], cores: float = 8.0) -> ClusterSection:
    return ClusterSection.model_validate({
        "node_types": [{"name": "n", "cores": cores, "memory_gb": 64, "count": 1}],
        "policy": {"name": "colocated", **policy},
    })


def services(cores: float) -> dict[str, Any]:
    return {"web": SimpleNamespace(resources=SimpleNamespace(cores=cores, memory_gb=1.0))}


def test_online_instance_evicts_the_hand_picked_victim() -> None:
    jobs = [BatchJob("A", 0.0, 1, 2.0, 1.0, 1000.0, priority=0),
            BatchJob("C", 5.0, 1, 2.0, 1.0, 1000.0, priority=1),
            BatchJob("B", 10.0, 1, 2.0, 1.0, 1000.0, priority=0),
            BatchJob("D", 20.0, 1, 1.0, 1.0, 1000.0, priority=0)]
    cs = ClusterSim(one_node({"preemption": "lose"}), services(3.0), jobs)
    placed = cs.request_instance("web", 30.0)
    assert placed.node_id == 0 and placed.evicted == 1
    owners = sorted(t.container.owner for t in cs.books.running())
    assert owners == ["A", "C", "D"]  # B (priority 0, younger than A) made room
    node = cs.cluster.nodes.nodes[0]
    assert node.free_mcpu == 0  # 1 core was free, B freed 2, the instance took 3
    # B ran 20 s on 2 cores: 40 core-seconds lost; it waits in the queue with no progress.
    assert cs.books.lost_core_s == pytest.approx(40.0)
    assert [c.owner for c in cs.cluster.queued] == ["B"]
    cs.check_invariants()


@pytest.mark.parametrize(("mode", "lost", "finish_s"), [
    # Evicted at 700 s: checkpoint keeps 600 s (interval 300), loses 100 s x 4 cores; back at
    # 800 s with 400 s left -> done at 1200 s. lose: all 700 s lost, 1000 s again from 800.
    ("checkpoint", 400.0, 1200.0),
    ("lose", 2800.0, 1800.0),
])
def test_evicted_work_is_lost_or_checkpointed(mode: str, lost: float, finish_s: float) -> None:
    section = one_node({"preemption": mode, "checkpoint_interval_s": 300}, cores=4.0)
    cs = ClusterSim(section, services(1.0), [BatchJob("job", 0.0, 1, 4.0, 1.0, 1000.0)])
    instance = cs.request_instance("web", 700.0)
    assert instance.evicted == 1
    cs.stop_instance(instance.instance_id, 800.0)
    cs.advance(finish_s - 0.001)
    assert cs.meter.jobs_completed == 0
    cs.advance(finish_s)
    assert cs.meter.jobs_completed == 1
    books = cs.accounting()
    assert books.lost_core_s == pytest.approx(lost)
    assert books.done_core_s == pytest.approx(4000.0)
    assert books.executed_core_s == pytest.approx(4000.0 + lost)
    books.check()


def test_throttled_container_runs_slower_and_gets_its_cores_back() -> None:
    # A (4c, priority 0) and B (4c, priority 1), 100 s each. Online 3c at 20 s throttles A to
    # 1 core (min share 0.25): 20 s done, then 40 s at 1/4 speed = 10 s more; online leaves at
    # 60 s, A is restored with 70 s left -> finishes at 130 s. B finishes at 100 s.
    section = one_node({"preemption": "throttle", "throttle_min_share": 0.25})
    jobs = [BatchJob("A", 0.0, 1, 4.0, 1.0, 100.0, 0), BatchJob("B", 0.0, 1, 4.0, 1.0, 100.0, 1)]
    cs = ClusterSim(section, services(3.0), jobs)
    assert cs.tick(20.0).batch_cores == pytest.approx(8.0)
    instance = cs.request_instance("web", 20.0)
    assert instance.throttled == 1 and instance.evicted == 0
    row = cs.tick(30.0)  # over [20, 30): A on 1 core, B on 4, the instance on 3
    assert row.batch_throttled == 1 and row.batch_cores == pytest.approx(5.0)
    assert row.online_cores == pytest.approx(3.0) and row.idle_cores == pytest.approx(0.0)
    cs.stop_instance(instance.instance_id, 60.0)
    cs.advance(129.99)
    assert cs.meter.jobs_completed == 1  # B only
    cs.advance(130.0)
    assert cs.meter.jobs_completed == 2
    books = cs.accounting()
    assert books.lost_core_s == 0.0 and books.done_core_s == pytest.approx(800.0)
    books.check()


def test_batch_max_share_keeps_headroom() -> None:
    section = one_node({"batch_max_share": 0.5})
    jobs = [BatchJob(f"j{i}", 0.0, 1, 1.0, 1.0, 100.0) for i in range(8)]
    cs = ClusterSim(section, services(4.0), jobs)
    cs.advance(0.0)
    assert len(cs.books.running()) == 4
    assert cs.request_instance("web", 1.0).evicted == 0


@pytest.mark.parametrize("preemption", ["lose", "checkpoint", "throttle"])
def test_online_never_preempts_online(preemption: str) -> None:
    cs = ClusterSim(one_node({"preemption": preemption}), services(3.0),
                    [BatchJob("j", 0.0, 2, 1.0, 1.0, 100.0)])
    ids = [cs.request_instance("web", float(t)) for t in range(3)]
    assert [p.node_id for p in ids] == [0, 0, None]
    assert all(p.node_id is not None for p in itertools.islice(ids, 2))
    cs.check_invariants()
