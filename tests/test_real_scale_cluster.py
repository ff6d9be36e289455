"""The real-scale scenario's cluster holds the 11.11 peak: a four-minute copy of
scenarios/singles-day-full.yaml around midnight (read with the loader), its online fleet sized
for the peak by arithmetic (Little's law at 60% utilization) and switched on a minute before
midnight, on the fluid engine. Every instance finds a node, and the batch work that filled the
machines yields exactly the cores the online services need."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from sim.engine import simulate
from sim.model import read_scenario_data, scenario_from_data

TARGET_UTILIZATION = 0.6
SCALE_AT_S = 60.0  # 23:59
DURATION_S = 240.0  # 23:58-00:02


def peak_fleet(data: dict[str, Any]) -> dict[str, int]:
    """Instances for the peak: offered load (peak rate x mean service time, Little's law)
    over workers at the target utilization."""
    peak = data["traffic"]["peak_rps"]
    return {name: math.ceil(peak[name] * spec["service_time"]["mean_ms"] / 1000.0
                            / (spec["workers"] * TARGET_UTILIZATION))
            for name, spec in data["services"].items()}


SCENARIO = Path(__file__).parent.parent / "scenarios" / "singles-day-full.yaml"


@pytest.fixture(scope="module")
def window() -> tuple[dict[str, Any], dict[str, int], Any]:
    path = SCENARIO
    data, lines = read_scenario_data(path)
    fleet = peak_fleet(data)
    data["start_clock"] = "23:58"
    data["duration"] = DURATION_S
    data["autoscaling"] = {"default": "peak", "variants": {"peak": {
        "policy": "scheduled",
        "schedule": [{"at": 0, "instances": {name: spec["instances"]["initial"]
                                             for name, spec in data["services"].items()}},
                     {"at": SCALE_AT_S, "instances": fleet}]}}}
    scenario = scenario_from_data(data, str(path), str(path.parent), lines)
    result = simulate(scenario, engine="fluid")
    return data, fleet, result


def test_the_peak_fleet_fits_the_machines_by_arithmetic(window: Any) -> None:
    data, fleet, _ = window
    nodes = data["cluster"]["node_types"]
    cores = sum(n["cores"] * n["count"] for n in nodes)
    memory_gb = sum(n["memory_gb"] * n["count"] for n in nodes)
    services = data["services"]
    need_cores = sum(fleet[s] * services[s]["resources"]["cores"] for s in fleet)
    need_memory = sum(fleet[s] * services[s]["resources"]["memory_gb"] for s in fleet)
    assert sum(fleet.values()) > 30_000  # a real-sized fleet
    assert cores > 100_000 and len(nodes) >= 2  # thousands of machines of several types
    assert need_cores < cores and need_memory < memory_gb


def test_every_instance_finds_a_node_and_batch_yields_at_the_peak(window: Any) -> None:
    data, fleet, result = window
    columns, rows = result.cluster_table
    ticks = [dict(zip(columns, row, strict=True)) for row in rows]
    services = data["services"]
    cores = sum(n["cores"] * n["count"] for n in data["cluster"]["node_types"])
    initial_cores = sum(s["instances"]["initial"] * s["resources"]["cores"]
                        for s in services.values())
    peak_cores = sum(fleet[s] * services[s]["resources"]["cores"] for s in fleet)
    before = [t for t in ticks if t["t_s"] + data["tick_s"] <= SCALE_AT_S]
    peak = [t for t in ticks if t["t_s"] >= SCALE_AT_S + data["tick_s"]]
    assert before and peak
    # nothing unschedulable: no instance ever waits for a node
    assert all(t["pending_instances"] == 0 for t in ticks)
    assert all(t["online_cores"] == pytest.approx(initial_cores) for t in before)
    assert all(t["online_cores"] == pytest.approx(peak_cores) for t in peak)
    # batch filled the machines beyond what the peak leaves it, then gave the difference back
    spare_at_peak = cores - peak_cores
    assert max(t["batch_cores"] for t in before) > spare_at_peak
    assert all(t["batch_cores"] <= spare_at_peak + 1e-6 for t in peak)
    assert sum(t["batch_preempted"] for t in ticks) > 0
    summary = result.summary()
    assert summary["cluster"]["pending_max"] == 0
    for name, service in summary["services"].items():
        assert service["error_rate"] <= data["slo"][name]["error_rate"], name
