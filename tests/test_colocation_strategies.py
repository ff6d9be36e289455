"""Placement strategies on small hand-made clusters: exact placements, worked out by hand."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from sim.cluster import ClusterSim
from sim.model import POLICY_NAMES, STRATEGY_NAMES, ClusterSection
from sim.policies.colocation import COLOCATION_POLICIES, PLACEMENT_STRATEGIES, Demand, Room

GB = 1024


def rooms() -> list[Room]:
    """Four nodes; free room in brackets: n0 8c/32G [2c/8G], n1 16c/64G [6c/10G],
    n2 16c/64G [12c/60G], n3 8c/32G [3c/4G]."""
    return [
        Room(0, 8000, 32 * GB, 2000, 8 * GB),
        Room(1, 16000, 64 * GB, 6000, 10 * GB),
        Room(2, 16000, 64 * GB, 12000, 60 * GB),
        Room(3, 8000, 32 * GB, 3000, 4 * GB),
    ]


DEMAND = Demand(2500, 4 * GB)  # 2.5 cores, 4 GB: n0 is too small in cores


def test_registries_match_the_schema_names() -> None:
    assert tuple(PLACEMENT_STRATEGIES) == STRATEGY_NAMES
    assert tuple(COLOCATION_POLICIES) == POLICY_NAMES


def test_first_fit_takes_the_first_node_with_room() -> None:
    assert PLACEMENT_STRATEGIES["first_fit"]().pick(rooms(), DEMAND) == 1


def test_best_fit_leaves_the_fewest_free_cores() -> None:
    # Left after placing: n1 3.5c, n2 9.5c, n3 0.5c.
    assert PLACEMENT_STRATEGIES["best_fit"]().pick(rooms(), DEMAND) == 3


def test_best_fit_breaks_a_core_tie_on_memory_then_on_node_id() -> None:
    same_cores = [Room(0, 8000, 32 * GB, 4000, 20 * GB), Room(1, 8000, 32 * GB, 4000, 9 * GB),
                  Room(2, 8000, 32 * GB, 4000, 9 * GB)]
    assert PLACEMENT_STRATEGIES["best_fit"]().pick(same_cores, Demand(1000, GB)) == 1


def test_spread_takes_the_least_allocated_node() -> None:
    # Mean free share after placing: n1 (3.5/16 + 6/64)/2 = 0.156, n2 (9.5/16 + 56/64)/2 = 0.734,
    # n3 (0.5/8 + 0/32)/2 = 0.031.
    assert PLACEMENT_STRATEGIES["spread"]().pick(rooms(), DEMAND) == 2


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_no_room_means_no_node(name: str) -> None:
    assert PLACEMENT_STRATEGIES[name]().pick(rooms(), Demand(12001, GB)) is None
    assert PLACEMENT_STRATEGIES[name]().pick([], DEMAND) is None


def cluster(strategy: str, policy: Any = "dedicated") -> ClusterSim:
    """A big node (8 cores, 32 GB) then a small one (4 cores, 32 GB), both serving online."""
    if policy == "dedicated":
        policy = {"name": "dedicated", "online": {"big": "all", "small": "all"}}
    section = ClusterSection.model_validate({
        "node_types": [{"name": "big", "cores": 8, "memory_gb": 32, "count": 1},
                       {"name": "small", "cores": 4, "memory_gb": 32, "count": 1}],
        "policy": policy,
        "placement": {"online": strategy, "batch": strategy},
    })
    web = SimpleNamespace(resources=SimpleNamespace(cores=3.0, memory_gb=4.0))
    return ClusterSim(section, {"web": web})


@pytest.mark.parametrize(("strategy", "expected"), [
    # first_fit: big holds two (8 -> 5 -> 2 cores free), then small, then nothing fits.
    ("first_fit", [0, 0, 1, None]),
    # best_fit: small is left with 1 core (vs 5 on big), then big twice.
    ("best_fit", [1, 0, 0, None]),
    # spread: 1st big (0.625+0.875)/2=0.75 beats small (0.25+0.875)/2=0.5625;
    # 2nd big (0.25+0.75)/2=0.5 loses to small 0.5625; 3rd only big has 3 cores.
    ("spread", [0, 1, 0, None]),
])
def test_instances_land_where_each_strategy_says(strategy: str, expected: list[int | None]) -> None:
    cs = cluster(strategy)
    placed = [cs.request_instance("web", float(t)).node_id for t in range(4)]
    assert placed == expected
    assert cs.pending_instances() == 1
    cs.check_invariants()


@pytest.mark.parametrize(("strategy", "expected"), [
    ("first_fit", [0, 0, 1]), ("best_fit", [1, 0, 0]), ("spread", [0, 1, 0])])
def test_batch_containers_follow_the_batch_strategy(strategy: str, expected: list[int]) -> None:
    from sim.model import BatchJob

    section = cluster(strategy, "colocated").section
    jobs = [BatchJob(f"j{i}", float(i), 1, 3.0, 4.0, 1000.0) for i in range(3)]
    cs = ClusterSim(section, {}, jobs)
    cs.advance(10.0)
    nodes = [task.container.node_id for task in sorted(cs.books.tasks.values(),
                                                         key=lambda t: t.container.cid)]
    assert nodes == expected
