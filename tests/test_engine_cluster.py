"""The engine with a cluster: placement before boot, pending instances, no over-commitment,
batch work conserved, and interference that shows in online latency."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from sim.engine import Simulation, simulate
from sim.model import load_scenario, parse_scenario


def colocation(duration_s: float = 900.0):
    scenario = load_scenario(Path(__file__).parent.parent / "scenarios" / "colocation.yaml")
    return scenario.model_copy(update={"duration_s": duration_s})


@pytest.mark.parametrize("variant", ["dedicated", "colocated", "colocated-throttle"])
def test_no_node_is_over_committed_on_any_tick(variant: str) -> None:
    scenario = load_scenario(Path(__file__).parent.parent / "scenarios" / "colocation.yaml")
    # 23:30-00:10: batch yields while online pre-warms and peaks
    sim = Simulation(scenario.model_copy(update={"duration_s": 2400.0}),
                     cluster_variant=variant)
    assert sim.cluster is not None
    link = sim.cluster
    checked = []
    original = link.on_tick

    def on_tick_checked(tick: int, end_s: float) -> None:
        original(tick, end_s)
        link.cs.check_invariants()  # capacity and both batch conservation laws
        checked.append(tick)

    link.on_tick = on_tick_checked  # type: ignore[method-assign]
    result = sim.run()
    assert len(checked) == sim.n_ticks
    ledger = link.cs.summary().batch
    # done + running + remaining = submitted (work is re-queued when lost, so it remains)
    assert ledger.done_core_s + ledger.running_core_s + ledger.remaining_core_s == pytest.approx(
        ledger.submitted_core_s, rel=1e-9)
    assert result.services["browse"].columns["completed"].sum() > 0


def test_colocation_preempts_batch_for_the_online_prewarm_and_hurts_latency_a_little() -> None:
    scenario = colocation(2400.0)
    dedicated = simulate(scenario, variant="dedicated").summary()
    colocated = simulate(scenario, variant="colocated").summary()
    assert dedicated["cluster"]["batch_preemptions"] == 0
    assert colocated["cluster"]["batch_preemptions"] > 0
    # sharing machines keeps them busier
    assert (colocated["cluster"]["mean_cpu_utilization"]
            > dedicated["cluster"]["mean_cpu_utilization"])
    # interference: busier nodes inflate service times, so online latency rises (mildly)
    for service in ("browse", "order", "payment"):
        before = dedicated["services"][service]["latency_ms"]["mean"]
        after = colocated["services"][service]["latency_ms"]["mean"]
        assert before < after < before * 1.15  # the default curve never exceeds x1.15


SMALL_CLUSTER = """
name: pending
seed: 3
duration_s: 900
tick_s: 5
traffic: {kind: constant, rps: {web: 100}}
services:
  web:
    service_time: {dist: exponential, mean_ms: 50}
    workers: 4
    instances: {min: 1, max: 6, initial: 2}
    resources: {cores: 4, memory_gb: 4}
    boot_s: 20
autoscaling:
  default: fixed
  variants:
    fixed:
      policy: scheduled
      schedule: [{at: 0, instances: {web: 2}}, {at: 300, instances: {web: 4}}]
cluster:
  node_types:
    - {name: small, cores: 8, memory_gb: 16, price_per_hour: 1.0, count: 1, max: 3,
       provision_s: 120}
  cluster_autoscaling: {enabled: true}
"""


def test_pending_instances_boot_once_a_node_is_provisioned(tmp_path: Path) -> None:
    """One 8-core node holds two 4-core instances. At 300 s the schedule asks for 4: two are
    pending until the cluster autoscaler's new node is ready (provision_s 120 s), then they
    boot for 20 s: ready at 440 s."""
    scenario = parse_scenario(SMALL_CLUSTER)
    result = simulate(scenario)
    result.write(tmp_path)
    cluster_rows = {float(r["t_s"]): r for r in csv.DictReader((tmp_path / "cluster.csv").open())}
    series = {float(r["t_s"]): r for r in csv.DictReader((tmp_path / "timeseries.csv").open())}
    assert int(cluster_rows[300.0]["pending_instances"]) == 2
    assert int(cluster_rows[410.0]["pending_instances"]) == 2
    assert int(cluster_rows[420.0]["pending_instances"]) == 0
    assert int(cluster_rows[420.0]["nodes_ready"]) == 2
    assert float(series[410.0]["instances_ready"]) == pytest.approx(2)
    assert int(series[425.0]["instances_booting"]) == 2
    assert float(series[445.0]["instances_ready"]) == pytest.approx(4)
    summary = result.summary()
    assert summary["cluster"]["nodes_max"] == 2
    assert summary["cluster"]["pending_max"] == 2
    assert summary["cost"]["basis"] == "nodes"


def test_cluster_cpu_counts_the_online_busy_cores_of_every_tick(tmp_path: Path) -> None:
    """cpu_utilization x ready cores - batch cores = the online services' busy cores, from
    timeseries.csv (busy workers / workers x cores per instance), on every tick."""
    scenario = colocation(900.0)
    result = simulate(scenario, variant="colocated")
    result.write(tmp_path)
    cluster = list(csv.DictReader((tmp_path / "cluster.csv").open()))
    series = list(csv.DictReader((tmp_path / "timeseries.csv").open()))
    specs = scenario.services
    online_busy: dict[float, float] = {}
    for row in series:
        spec = specs[row["service"]]
        online_busy[float(row["t_s"])] = online_busy.get(float(row["t_s"]), 0.0) + (
            float(row["busy_workers"]) / spec.workers * spec.resources.cores)
    for row in cluster[:-1]:
        ready_cores = int(row["nodes_ready"]) * 32
        seen = float(row["cpu_utilization"]) * ready_cores - float(row["batch_cores"])
        assert seen == pytest.approx(online_busy[float(row["t_s"])], rel=0.02, abs=0.05)
