"""``peaksim plan`` end to end on a small scenario: plan.json, the report's plan section, the
round trip through static simulations, and the errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sim.cli import app
from sim.engine import simulate
from sim.model import load_scenario
from sim.plan import erlang_c

# api: 2 workers per instance, exponential 50 ms, 20 rps until 11:10, a ramp to 150 rps by
# 11:12, held until 11:17, down to 30 rps by 11:20. batch has no SLO.
SMALL = """
name: small
seed: 5
duration: 30m
tick_s: 10
start_clock: "11:00"
traffic:
  kind: keyframes
  keyframes:
    - {at: 0, rps: {api: 20, batch: 5}}
    - {at: "11:10", rps: {api: 20, batch: 5}}
    - {at: "11:12", rps: {api: 150, batch: 5}}
    - {at: "11:17", rps: {api: 150, batch: 5}}
    - {at: "11:20", rps: {api: 30, batch: 5}}
services:
  api:
    service_time: {dist: exponential, mean_ms: 50}
    workers: 2
    instances: {min: 1, max: 20, initial: 1}
    timeout_ms: 2000
    boot_s: 20
    price_per_hour: 0.5
  batch: {service_time: {dist: constant, mean_ms: 10}, workers: 1, instances: 1}
slo:
  api: {p95_ms: 200, error_rate: 0.01}
"""


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """(scenario file, run directory, stdout) of one `peaksim plan` of SMALL."""
    base = tmp_path_factory.mktemp("plan")
    file = base / "small.yaml"
    file.write_text(SMALL, encoding="utf-8")
    result = CliRunner().invoke(app, ["plan", str(file), "--out", str(base / "run")])
    assert result.exit_code == 0, result.output
    return file, base / "run", result.output


def test_plan_json_holds_the_plan(planned: tuple[Path, Path, str]) -> None:
    _, run_dir, output = planned
    plan = json.loads((run_dir / "plan.json").read_text())
    assert plan["kind"] == "plan" and plan["held"] is True and plan["headroom"] == 0.2
    assert list(plan["services"]) == ["api"]
    assert "no SLO" in plan["skipped"]["batch"]
    api = plan["services"]["api"]
    assert api["status"] == "planned" and api["peak_rps"] == pytest.approx(150.0)
    assert api["peak_at"] == "11:12"
    # at 150 rps x 50 ms = 7.5 Erlangs, 2 workers per instance: 4 instances are the fewest
    # stable ones (rho 0.94); the p95 target needs more
    assert api["estimate"]["instances"] >= 4 and api["minimum"] >= 4
    assert api["recommended"] == math.ceil(api["minimum"] * 1.2)
    assert api["spare"] == api["recommended"] - api["minimum"]
    # one instance (2 workers) holds 20 rps but not much more: needed once the ramp starts
    assert 600.0 <= api["needed_from_s"] <= 720.0
    assert api["ready_by_s"] == api["needed_from_s"] - 60.0
    assert api["start_boot_s"] == api["ready_by_s"] - 20.0
    assert plan["window"]["from"] <= api["ready_by"]
    # static all run: recommended x 0.5 h x 0.5 USD/h
    assert api["cost"]["run"] == pytest.approx(api["recommended"] * 0.25)
    assert 0 < api["utilization_peak"] < 7.5 / (2 * api["recommended"]) * 1.1
    for objective in api["objectives"].values():
        assert objective["met"] and objective["at_recommended"] <= objective["target"]
    assert "PASS" in output and str(run_dir / "report.html") in output


def test_confirming_run_is_the_recommended_static_count(planned: tuple[Path, Path, str]) -> None:
    _, run_dir, _ = planned
    plan = json.loads((run_dir / "plan.json").read_text())
    summary = json.loads((run_dir / "summary.json").read_text())
    api = summary["services"]["api"]
    recommended = plan["services"]["api"]["recommended"]
    assert api["instances"] == {"min": recommended, "max": recommended, "mean": recommended}
    assert api["slo_met"] is True
    # the engine's own accounting agrees with the plan's cost formula
    assert api["cost"] == pytest.approx(plan["services"]["api"]["cost"]["run"], rel=1e-6)


def test_round_trip_minimum_holds_and_one_less_misses(planned: tuple[Path, Path, str]) -> None:
    file, run_dir, _ = planned
    plan = json.loads((run_dir / "plan.json").read_text())
    minimum = plan["services"]["api"]["minimum"]
    scenario = load_scenario(file)
    held = simulate(scenario, instances={"api": minimum}).summary()["services"]["api"]
    missed = simulate(scenario, instances={"api": minimum - 1}).summary()["services"]["api"]
    assert held["slo_met"] and not missed["slo_met"]


def test_report_has_the_capacity_plan_and_rebuilds_it(planned: tuple[Path, Path, str]) -> None:
    _, run_dir, _ = planned
    html = (run_dir / "report.html").read_text()
    markdown = (run_dir / "report.md").read_text()
    assert 'id="plan"' in html and "Capacity plan" in html and 'href="#plan"' in html
    assert "## Capacity plan" in markdown
    row = next(line for line in markdown.splitlines() if line.startswith("| api |"))
    header = next(line for line in markdown.splitlines()
                  if line.startswith("| service | peak rps"))
    assert row.count("|") == header.count("|")
    assert "The plan holds the SLO: api" in markdown
    before = markdown
    result = CliRunner().invoke(app, ["report", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert (run_dir / "report.md").read_text() == before


def test_json_output_is_the_plan(planned: tuple[Path, Path, str], tmp_path: Path) -> None:
    file, run_dir, _ = planned
    result = CliRunner().invoke(app, ["plan", str(file), "--json", "--headroom", "0",
                                      "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed == json.loads((tmp_path / "plan.json").read_text())
    first = json.loads((run_dir / "plan.json").read_text())
    api = printed["services"]["api"]
    # without headroom the recommendation is the minimum, found the same way
    assert api["recommended"] == api["minimum"] == first["services"]["api"]["minimum"]


def test_scenario_without_slo_cannot_be_planned(tmp_path: Path) -> None:
    file = tmp_path / "none.yaml"
    file.write_text(SMALL.split("slo:")[0], encoding="utf-8")
    result = CliRunner().invoke(app, ["plan", str(file), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: no service of small can be planned: api: no SLO")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_unreachable_objective_fails_the_plan(tmp_path: Path) -> None:
    # exponential 50 ms: its own p99 is 50 x ln(100) = 230 ms, so p99 <= 150 ms is impossible
    file = tmp_path / "tight.yaml"
    file.write_text(SMALL.replace("{p95_ms: 200, error_rate: 0.01}", "{p99_ms: 150}"),
                    encoding="utf-8")
    result = CliRunner().invoke(app, ["plan", str(file), "--json", "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    api = json.loads(result.stdout)["services"]["api"]
    assert api["status"] == "infeasible" and api["recommended"] is None
    assert "below the service time's own p99" in api["note"]


def test_erlang_c_sanity_of_the_small_scenario() -> None:
    # the scenario comment's claim: 4 instances (8 workers) are the fewest stable ones
    assert erlang_c(8, 7.5) < 1.0 and erlang_c(6, 7.5) == 1.0


def test_a_peak_no_count_survives_ends_the_search_at_its_cap(tmp_path: Path) -> None:
    # every api instance is killed at 11:13, in the middle of the peak, and never replaced
    file = tmp_path / "dead.yaml"
    file.write_text(SMALL + 'faults:\n  - {at: "11:13", service: api, kill_fraction: 1.0, '
                    'replace: false}\n',
                    encoding="utf-8")
    result = CliRunner().invoke(app, ["plan", str(file), "--json", "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    plan = json.loads(result.stdout)
    api = plan["services"]["api"]
    assert plan["held"] is False and api["status"] == "not_held" and api["minimum"] is None
    cap = max(4 * api["estimate"]["instances"], api["estimate"]["instances"] + 16)
    assert f"did not hold even with {cap} instances" in api["note"]
    # the window starts before the fault, which keeps its place in the run
    assert plan["window"]["start_s"] < 780.0 < plan["window"]["end_s"]
