"""Every class of hostile or extreme scenario file gets one line (file, line, field, what was
expected) and exit 2, or runs and writes every file; none gives a traceback, a hang or a
memory blow-up (issue: inputs that never crash peaksim)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from sim.cli import app
from sim.engine import simulate
from sim.engine.plane import WAITING_CAP
from sim.engine.runsize import (
    MAX_CONTROL_EVENTS,
    MAX_INSTANCES_RUN,
    MAX_REQUESTS,
    MAX_TICK_ROWS,
)
from sim.errors import ScenarioError
from sim.model import BatchGenerator, arrival_times_s, parse_scenario
from sim.model.inputfiles import MAX_INPUT_BYTES, MAX_INPUT_ROWS
from sim.model.yamlguard import MAX_DEPTH, MAX_FILE_BYTES, MAX_NODES

BASE = """\
name: t
seed: 1
duration_s: 60
traffic: {kind: constant, rps: {s: 20}}
services:
  s: {service_time: {dist: exponential, mean_ms: 50}, workers: 2, instances: 1}
slo: {s: {p95_ms: 400}}
"""
LINE = re.compile(r"^error: (?P<file>[^:]+\.yaml|/dev/zero):((?P<line>\d+):)? ")


def _cli(*args: str) -> tuple[int, list[str]]:
    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, [line for line in result.output.splitlines() if line.strip()]


def _refused(tmp_path: Path, text: str, *, command: str = "validate", name: str = "bad.yaml"
             ) -> str:
    """The single error line of ``peaksim <command>`` on ``text`` (exit 2 asserted)."""
    file = tmp_path / name
    file.write_text(text, encoding="utf-8")
    extra = ["--out", str(tmp_path / "out")] if command == "run" else []
    code, lines = _cli(command, str(file), *extra)
    assert code == 2, lines
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, lines
    match = LINE.match(errors[0])
    assert match and match["file"] == str(file), errors[0]
    return errors[0]


# --- YAML -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "line", "says"), [
    ("name: " + "[" * 500 + "]" * 500 + "\n", 1, "nesting deeper than 32 levels"),
    (BASE + "foo: &f [*f]\n", 8, "refers to its own anchor"),
    (BASE.replace("name: t", "name: t\x01"), 1, "unacceptable character #x01"),
    (BASE.replace("seed: 1", "seed: " + "9" * 5000), 2, "a number of 5,000 characters"),
    ("a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n"
        for i in range(8)), 6, "once aliases are expanded"),
])
def test_hostile_yaml_is_one_line(tmp_path: Path, text: str, line: int, says: str) -> None:
    error = _refused(tmp_path, text)
    assert f"bad.yaml:{line}: " in error and says in error


def test_a_file_that_is_not_a_regular_file_is_refused() -> None:
    code, lines = _cli("validate", "/dev/zero")
    assert code == 2 and lines == ["error: /dev/zero: is not a regular file (a device, pipe or "
                                   "socket), expected a YAML file"]


# --- referenced files -----------------------------------------------------------------------
def test_a_trace_of_random_bytes_and_a_device_as_samples(tmp_path: Path) -> None:
    (tmp_path / "noise.csv").write_bytes(bytes(range(128, 256)) * 20)
    error = _refused(tmp_path, BASE.replace("{kind: constant, rps: {s: 20}}",
                                            "{kind: trace, path: noise.csv}"))
    assert ":4: traffic.path: cannot read trace" in error and "not UTF-8" in error
    error = _refused(tmp_path, BASE.replace("{dist: exponential, mean_ms: 50}",
                                            "{dist: empirical, csv: /dev/zero}"))
    assert ":6: services.s.service_time.csv:" in error and "not a regular file" in error


# --- numbers that validate but would break the engine ---------------------------------------
@pytest.mark.parametrize(("old", "new", "field"), [
    ("rps: {s: 20}", "rps: {s: 1e308}", "traffic.rps.s"),
    ("rps: {s: 20}}", "rps: {s: 20}, rate_scale: 1e308}", "traffic.rate_scale"),
    ("rps: {s: 20}}", "rps: {s: 20}, time_scale: 1e308}", "traffic.time_scale"),
    ("rps: {s: 20}}", "rps: {s: 20}, time_scale: 1e-308}", "traffic.time_scale"),
    ("rps: {s: 20}}", "rps: {s: 20}, flash_sales: [{at: 1, duration_s: 5, multiplier: 1e308}]}",
     "traffic.flash_sales[0].multiplier"),
    ("duration_s: 60", "duration_s: 60\ntick_s: 1e-300", "tick_s"),
    ("mean_ms: 50", "mean_ms: 1e308", "services.s.service_time.mean_ms"),
    ("instances: 1}", "instances: 1, retries: {max: 3, multiplier: 1e308}}",
     "services.s.retries.multiplier"),
    ("duration_s: 60", "duration: 31d\ntick_s: 0.001", "tick_s"),
    ("duration_s: 60", "duration: 400d", "duration"),
    ("instances: 1}", "instances: 10000000}", "services.s.instances"),
    ("instances: 1}", "instances: {min: 1, max: 10000000}}", "services.s.instances.max"),
    ("name: t", "name: " + "n" * 5000, "name"),
    ("slo: {s: {p95_ms: 400}}", "slo: {s: {p95_ms: 400}}\nautoscaling: {variants: {hpa: "
     "{policy: target_tracking, metric: utilization, target: 1e-300}}}",
     "autoscaling.variants.hpa.target"),
])
def test_out_of_range_numbers_name_their_field(tmp_path: Path, old: str, new: str,
                                               field: str) -> None:
    error = _refused(tmp_path, BASE.replace(old, new))
    assert f": {field}: " in error and "expected" in error


def test_zero_service_times_run_and_write_every_file(tmp_path: Path) -> None:
    file = tmp_path / "zero.yaml"
    file.write_text(BASE.replace("{dist: exponential, mean_ms: 50}",
                                 "{dist: empirical, samples_ms: [0]}"))
    code, lines = _cli("run", str(file), "--out", str(tmp_path / "run"))
    assert code == 0, lines
    written = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"summary.json", "timeseries.csv", "report.html", "report.md",
            "junit.xml"} <= written
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["services"]["s"]["error_rate"] == 0.0


# --- work too large to finish ---------------------------------------------------------------
@pytest.mark.parametrize(("old", "new", "says"), [
    ("instances: 1}", "instances: 100000}", "lower instances.max"),
    ("workers: 2, instances: 1}", "workers: 100000, instances: 5000}", "worker slots"),
    ("rps: {s: 20}", "rps: {s: 1000000}", "--max-requests N"),
    ("duration_s: 60", "duration: 1d\ntick_s: 0.01", "raise tick_s"),
    ("slo: {s: {p95_ms: 400}}", "slo: {s: {p95_ms: 400}}\nautoscaling: {interval_s: 0.001, "
     "variants: {hpa: {policy: target_tracking, metric: utilization, target: 0.5}}}",
     "raise autoscaling.interval_s"),
])
def test_too_large_runs_are_refused_with_the_way_out(tmp_path: Path, old: str, new: str,
                                                     says: str) -> None:
    error = _refused(tmp_path, BASE.replace(old, new), command="run")
    assert "the run " in error and "above the limit" in error and says in error
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_max_requests_raises_the_limit(tmp_path: Path) -> None:
    file = tmp_path / "many.yaml"
    file.write_text(BASE)  # 60 s x 20 rps: about 1,200 requests
    code, lines = _cli("run", str(file), "--out", str(tmp_path / "a"), "--max-requests", "500")
    assert code == 2 and "above the limit of 500" in lines[-1]
    code, _ = _cli("run", str(file), "--out", str(tmp_path / "b"), "--max-requests", "5000")
    assert code == 0


def test_an_unbounded_queue_is_capped_and_the_summary_says_so() -> None:
    # One worker serving 100 requests/s is offered 20,000/s for 20 s with no max_queue and no
    # timeout: all but what it serves and the capped queue must be shed.
    scenario = parse_scenario(BASE.replace("rps: {s: 20}", "rps: {s: 20000}")
                              .replace("duration_s: 60", "duration_s: 20")
                              .replace("{dist: exponential, mean_ms: 50}, workers: 2",
                                       "{dist: constant, mean_ms: 10}, workers: 1"))
    s = simulate(scenario).summary()["services"]["s"]
    cap = s["queue_cap"]
    assert cap["max_waiting"] == WAITING_CAP and cap["shed"] == s["shed"]
    expected = s["requests"] - WAITING_CAP - 100 * 20  # admitted: the cap plus 20 s of service
    assert s["shed"] == pytest.approx(expected, rel=0.01)


# --- messages -------------------------------------------------------------------------------
def test_line_100_is_not_an_emoji(tmp_path: Path) -> None:
    text = BASE + "".join(f"# {i}\n" for i in range(92)) + "bogus: 1\n"
    error = _refused(tmp_path, text)
    assert "bad.yaml:100: bogus: unknown key" in error and "\U0001f4af" not in error


def test_a_policy_field_is_named_by_its_path_in_the_file(tmp_path: Path) -> None:
    source = Path("scenarios/colocation.yaml").read_text()
    text = source.replace("  policy: {name: colocated, preemption: checkpoint, "
                          "checkpoint_interval_s: 300}\n  placement",
                          "  policy: {name: colocated, preemption: bogus}\n  placement")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "batch-sample.csv").write_bytes(
        Path("scenarios/data/batch-sample.csv").read_bytes())
    error = _refused(tmp_path, text)
    assert ": cluster.policy.preemption: unknown value 'bogus'" in error


def test_clock_keyframes_without_start_clock_say_so(tmp_path: Path) -> None:
    text = BASE.replace("traffic: {kind: constant, rps: {s: 20}}",
                        "traffic:\n  kind: keyframes\n  keyframes:\n"
                        "    - {at: \"00:00\", rps: {s: 10}}\n    - {at: \"00:05\", rps: {s: 20}}")
    file = tmp_path / "kf.yaml"
    file.write_text(text)
    code, lines = _cli("validate", str(file))
    assert code == 2 and len(lines) == 2
    assert all("needs a top-level 'start_clock'" in line for line in lines)
    assert not any("entry" in line for line in lines)


def test_limits_are_documented() -> None:
    docs = Path("docs/scenarios.md").read_text()
    for figure in (f"{MAX_FILE_BYTES:,} bytes", f"{MAX_DEPTH} levels", f"{MAX_NODES:,} values",
                   f"{MAX_REQUESTS:,} requests", f"{MAX_TICK_ROWS:,} tick rows",
                   f"{MAX_INSTANCES_RUN:,} instances", "1 GB", f"{WAITING_CAP:,}",
                   f"{MAX_CONTROL_EVENTS:,} metric scrapes",
                   f"{MAX_INPUT_BYTES:,} bytes", f"{MAX_INPUT_ROWS:,} rows"):
        assert figure in docs, figure
    assert os.path.exists("README.md") and "Limits" in Path("README.md").read_text()


def test_a_batch_generator_that_would_draw_too_many_jobs_is_refused() -> None:
    spec = BatchGenerator.model_validate({"rate_per_min": 1_000_000, "duration_s": {
        "dist": "constant", "value": 60}})
    with pytest.raises(ScenarioError, match="above the limit of 1,000,000; lower rate_per_min"):
        arrival_times_s(spec, 3600.0, np.random.default_rng(0))
