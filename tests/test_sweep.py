"""peaksim sweep: settings, validation like the file, the grid, the cheapest holding point."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sim.cli import app
from sim.errors import PeaksimError, ScenarioError
from sim.plan import mmc_response_quantile_s
from sim.study.sweep import grid, parse_setting

# browse: lambda 80/s, 100 ms exponential service, 5 workers per instance
_YAML = """
name: sweepy
seed: 3
duration_s: 300
tick_s: 10
traffic: {kind: constant, rps: {browse: 80}}
services:
  browse: {service_time: {dist: exponential, mean_ms: 100}, workers: 5,
           instances: {min: 1, max: 10}, price_per_hour: 1.0}
slo: {browse: {p99_ms: 1000}}
autoscaling:
  variants:
    fixed: {policy: static, instances: {browse: 2}}
    list: {policy: scheduled, schedule: [{at: 60, instances: {browse: 2}}]}
"""


@pytest.fixture
def scenario_file(tmp_path: Path) -> Path:
    path = tmp_path / "sweepy.yaml"
    path.write_text(_YAML)
    return path


def test_values_are_read_as_the_scenario_file_reads_them() -> None:
    setting = parse_setting("autoscaling.variants.x.schedule.0.at=23:30,23:40")
    assert setting.values == ("23:30", "23:40")  # clock times, not base-60 integers
    assert parse_setting("a.b=6,8").values == (6, 8)
    assert parse_setting("a.b=[1, 2],[3]").values == ([1, 2], [3])
    for bad in ("a.b", "=1,2", "a..b=1", "a.b=1,,2", "a.b=1,1"):
        with pytest.raises(PeaksimError):
            parse_setting(bad)


def test_grid_is_every_combination_validated(scenario_file: Path) -> None:
    points = grid(scenario_file, [parse_setting("services.browse.workers=5,6,7"),
                                  parse_setting("autoscaling.variants.list.schedule.0.at=30,90")])
    assert len(points) == 6
    assert [p.scenario.services["browse"].workers for p in points] == [5, 5, 6, 6, 7, 7]
    assert [p.scenario.autoscaling.variants["list"].schedule[0].at for p in points] == \
        [30.0, 90.0] * 3
    assert points[3].values == {"services.browse.workers": "6",
                                "autoscaling.variants.list.schedule.0.at": "90"}


@pytest.mark.parametrize(("option", "message"), [
    ("services.browse.workers=4,-1", "services.browse.workers"),
    ("services.brows.workers=4", "has no key 'brows'"),
    ("autoscaling.variants.list.schedule.3.at=10", "expected an index 0..0"),
    ("services.browse.workers.x=1", "not a mapping or list"),
    ("services.browse.wrkers=4", "services.browse.wrkers"),
])
def test_a_bad_point_is_a_file_and_field_error(runner: CliRunner, scenario_file: Path,
                                               option: str, message: str) -> None:
    with pytest.raises(ScenarioError) as info:
        grid(scenario_file, [parse_setting(option)])
    assert str(scenario_file) in str(info.value) and message in str(info.value)
    result = runner.invoke(app, ["sweep", str(scenario_file), "--set", option])
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and "Traceback" not in result.output


def test_sweep_names_the_cheapest_point_that_holds(runner: CliRunner, scenario_file: Path,
                                                   tmp_path: Path) -> None:
    # 1 instance (5 workers) cannot carry 8 erlangs; 2 instances (10 workers, rho 0.8) have an
    # Erlang C p99 of ~495 ms, half the 1 s target; 3 hold too but cost more
    assert 1000 * mmc_response_quantile_s(0.99, 10, 80.0, 10.0) < 0.6 * 1000
    out = tmp_path / "sweep"
    result = runner.invoke(app, ["sweep", str(scenario_file), "--policy", "fixed", "--set",
                                 "autoscaling.variants.fixed.instances.browse=1,2,3",
                                 "--replications", "2", "--jobs", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Cheapest point that holds the SLO with 95% confidence: point 1" in result.output
    data = json.loads((out / "sweep.json").read_text())
    assert data["cheapest_holding"] == 1
    assert [p["decision"] for p in data["points"]] == ["fail", "pass", "pass"]
    assert data["pareto"] == [0, 1]
    with (out / "sweep.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["autoscaling.variants.fixed.instances.browse"] for r in rows] == ["1", "2", "3"]
    costs = [float(r["cost_total_mean"]) for r in rows]
    assert costs == sorted(costs) and costs[1] == pytest.approx(2 * 300 / 3600, abs=1e-3)
    assert (out / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    assert "| point |" in (out / "sweep.md").read_text()


def test_parallel_sweep_equals_the_serial_one(runner: CliRunner, scenario_file: Path,
                                              tmp_path: Path) -> None:
    for jobs in ("1", "2"):
        result = runner.invoke(app, ["sweep", str(scenario_file), "--set",
                                     "services.browse.workers=6,7", "--jobs", jobs,
                                     "--out", str(tmp_path / jobs)])
        assert result.exit_code == 0, result.output
    assert (tmp_path / "1" / "sweep.json").read_bytes() == \
        (tmp_path / "2" / "sweep.json").read_bytes()
    assert (tmp_path / "1" / "sweep.csv").read_bytes() == \
        (tmp_path / "2" / "sweep.csv").read_bytes()
