"""``peaksim run`` and ``peaksim compare`` as a user and a CI pipeline call them."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from typer.testing import CliRunner

from sim.cli import app

SMALL = """
name: small
seed: 4
duration_s: 300
tick_s: 5
traffic: {{kind: constant, rps: {{web: 40}}}}
services:
  web: {{service_time: {{dist: exponential, mean_ms: 100}}, workers: 4,
        instances: {{min: 1, max: 4, initial: 2}}, timeout_ms: 1000}}
slo: {{web: {{p99_ms: {p99}, error_rate: 0.01}}}}
autoscaling:
  variants:
    two: {{policy: static, instances: {{web: 2}}}}
    one: {{policy: static, instances: {{web: 1}}}}
"""


def write(tmp_path: Path, p99_ms: float) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(SMALL.format(p99=p99_ms), encoding="utf-8")
    return path


def test_run_writes_the_run_directory_and_json(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = runner.invoke(app, ["run", str(write(tmp_path, 2000)), "--out", str(out),
                                 "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary == json.loads((out / "summary.json").read_text())
    for name in ("timeseries.csv", "report.html", "report.md", "junit.xml"):
        assert (out / name).stat().st_size > 0
    rows = list(csv.DictReader((out / "timeseries.csv").open()))
    assert len(rows) == 300 // 5
    web = summary["services"]["web"]
    # 40/s for 300 s: Poisson count within 5 standard deviations (sqrt(12000) ~ 110)
    assert abs(web["requests"] - 12_000) < 550
    assert sum(int(r["arrivals"]) for r in rows) == web["requests"]
    assert web["slo"]["p99_ms"]["target"] == 2000 and summary["slo_met"] is True


def test_gate_exits_1_on_a_missed_slo_and_0_when_met(runner: CliRunner, tmp_path: Path) -> None:
    missed = runner.invoke(app, ["run", str(write(tmp_path, 50)), "--out",
                                 str(tmp_path / "a"), "--gate"])
    assert missed.exit_code == 1, missed.output
    assert "MISSED" in missed.output
    met = runner.invoke(app, ["run", str(write(tmp_path, 2000)), "--out",
                              str(tmp_path / "b"), "--gate"])
    assert met.exit_code == 0, met.output


def test_bad_input_exits_2_with_one_line(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nseed: -1\n", encoding="utf-8")
    result = runner.invoke(app, ["run", str(path), "--out", str(tmp_path / "c")])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "seed" in result.output
    unknown = runner.invoke(app, ["run", str(write(tmp_path, 2000)), "--policy", "tow"])
    assert unknown.exit_code == 2
    assert "did you mean 'two'" in unknown.output
    assert len(unknown.output.strip().splitlines()) == 1


def test_compare_runs_every_variant_on_the_same_seed(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    result = runner.invoke(app, ["compare", str(write(tmp_path, 2000)), "--out", str(out),
                                 "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["rows"]
    assert [r["policy"] for r in rows] == ["two", "one"]
    two, one = rows
    # one instance of 4 workers against 40/s x 100 ms (4 Erlangs): overloaded, it times out
    assert one["timed_out"] > 0 and two["timed_out"] < one["timed_out"]
    assert two["instance_seconds"] == 2 * one["instance_seconds"] == 600
    summaries = [json.loads((out / v / "summary.json").read_text()) for v in ("two", "one")]
    assert summaries[0]["seed"] == summaries[1]["seed"] == 4
    assert summaries[0]["services"]["web"]["requests"] == summaries[1]["services"]["web"][
        "requests"]  # same seed, same arrivals
    assert (out / "report.html").stat().st_size > 0
