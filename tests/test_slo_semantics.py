"""SLO verdicts with SRE semantics: failed, timed-out and shed requests are bad events.

The expectations are counted by hand (how many of N requests were good within the target) or
follow from the scenario (a constant rate whose service loses every instance at 120 s of a
600 s run fails 80% of its requests, within Poisson noise).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from loadtests.collector import ResultsWriter
from loadtests.gate import EXIT_SLO_MISSED, evaluate_gate
from loadtests.recorder import Outcome, Recorder
from loadtests.results import merge_results
from loadtests.summary import RunFacts, service_summary
from sim.cli import app
from sim.engine import simulate
from sim.metrics import LatencyCounts
from sim.model import Objectives, ServiceOutcome, TrafficModel, judge_objectives, parse_scenario
from sim.model.slo import slo_quantile_ms

KILL_ALL = """
name: kill-all
seed: 1
duration_s: 600
traffic: {kind: constant, rps: {payment: 20}}
services:
  payment:
    service_time: {dist: exponential, mean_ms: 50}
    workers: 4
    instances: {min: 0, max: 4, initial: 2}
    timeout_ms: 1000
slo: {payment: {p95_ms: 400, mean_ms: 120}}
faults:
  - {at: 120, service: payment, kill_fraction: 1.0%s}
"""


def _outcome(requests: int, good_ms: list[float], error_rate: float,
             completed: dict[str, float | None]) -> ServiceOutcome:
    values, counts = np.unique(np.asarray(good_ms, dtype=float), return_counts=True)
    return ServiceOutcome(requests, LatencyCounts(values, counts), error_rate, completed)


# --- the pure judgement ---------------------------------------------------------------------
def test_a_percentile_counts_failed_requests_as_slower_than_any_target() -> None:
    # 100 requests: 90 served in 100 ms, 10 failed for good.
    outcome = _outcome(100, [100.0] * 90, 0.10, {"p90": 100.0, "p95": 100.0, "mean": 100.0})
    verdict = judge_objectives(Objectives(p90_ms=400, p95_ms=400, mean_ms=120), outcome)
    assert verdict["p90_ms"]["met"]  # 90 of 100 good: exactly the 90% asked for
    p95 = verdict["p95_ms"]
    assert not p95["met"] and p95["value"] == 100.0 and p95["slo_value"] is None
    assert p95["reason"] == "10% of requests failed"
    assert p95["good_fraction"] == pytest.approx(0.9)
    mean = verdict["mean_ms"]
    assert not mean["met"] and mean["reason"].startswith("10% of requests failed")


def test_a_request_saved_by_a_retry_is_still_a_bad_latency_event() -> None:
    # 100 requests, none finally failed; 4 first attempts timed out and were retried.
    outcome = _outcome(100, [50.0] * 96, 0.0, {"p95": 50.0, "p99": 52.0, "mean": 50.0})
    verdict = judge_objectives(Objectives(p95_ms=400, p99_ms=400, mean_ms=120,
                                          error_rate=0.01), outcome)
    assert verdict["p95_ms"]["met"] and verdict["mean_ms"]["met"]
    assert verdict["error_rate"]["met"]
    p99 = verdict["p99_ms"]
    assert not p99["met"] and p99["slo_value"] is None
    assert p99["reason"].startswith("96% of requests were served within 400 ms")
    assert "over completed requests only, p99 was 52 ms" in p99["reason"]


def test_the_slo_percentile_is_the_nearest_rank_over_all_requests() -> None:
    # 10 requests: good latencies 1..8 ms, two bad ones count as infinitely slow.
    outcome = _outcome(10, [float(v) for v in range(1, 9)], 0.2, {})
    assert slo_quantile_ms(outcome, 0.5) == 5.0  # rank 5
    assert slo_quantile_ms(outcome, 0.8) == 8.0  # rank 8: the last good one
    assert slo_quantile_ms(outcome, 0.81) is None  # rank 9: a failed request
    assert slo_quantile_ms(_outcome(0, [], 0.0, {}), 0.5) is None


def test_a_mean_holds_up_to_one_percent_errors() -> None:
    fine = judge_objectives(Objectives(mean_ms=120), _outcome(1000, [100.0] * 990, 0.01,
                                                             {"mean": 100.0}))
    assert fine["mean_ms"]["met"] and fine["mean_ms"]["reason"] is None
    worse = judge_objectives(Objectives(mean_ms=120), _outcome(1000, [100.0] * 989, 0.011,
                                                              {"mean": 100.0}))
    assert not worse["mean_ms"]["met"]


# --- the example, end to end -------------------------------------------------------
def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_a_service_that_loses_every_instance_misses_its_latency_slo(tmp_path: Path) -> None:
    scenario = _write(tmp_path / "kill.yaml", KILL_ALL % ", replace: false")
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", str(scenario), "--out", str(out), "--gate"])
    assert result.exit_code == 1, result.output
    summary = json.loads((out / "summary.json").read_text())
    payment = summary["services"]["payment"]
    # Poisson arrivals at a constant rate: 480 of 600 s without instances.
    n = payment["requests"]
    assert abs(payment["error_rate"] - 0.8) < 3 * math.sqrt(0.8 * 0.2 / n)
    assert not summary["slo_met"] and not payment["slo_met"]
    for key in ("p95_ms", "mean_ms"):
        assert payment["slo"][key]["reason"].startswith("80")
        assert "of requests failed" in payment["slo"][key]["reason"]
    assert payment["latency_slo_ms"]["p95"] is None  # beyond every target
    assert payment["latency_ms"]["p95"] < 400  # over completed requests it looked fine
    report = (out / "report.md").read_text()
    assert "held its SLO" not in report and "payment missed its p95 SLO" in report
    html = (out / "report.html").read_text()
    assert "held its SLO" not in html and "of requests failed" in html
    junit = (out / "junit.xml").read_text()
    assert 'failures="2"' in junit and "of requests failed" in junit


def test_killed_instances_are_replaced_after_boot_like_a_deployment() -> None:
    text = KILL_ALL.replace("timeout_ms: 1000", "timeout_ms: 1000\n    boot_s: 30") % ""
    result = simulate(parse_scenario(text))
    payment = result.summary()["services"]["payment"]
    # Only the 30 s of boot are lost: 30 of 600 s, about 5% of the requests.
    n = payment["requests"]
    assert abs(payment["error_rate"] - 0.05) < 3 * math.sqrt(0.05 * 0.95 / n) + 0.002
    kinds = [(e["kind"], e["to"]) for e in result.events]
    assert ("fault", 0) in kinds and ("replace", 2) in kinds


def test_an_autoscaled_service_comes_back_to_its_min(tmp_path: Path) -> None:
    text = (KILL_ALL.replace("{min: 0, max: 4, initial: 2}", "{min: 1, max: 4, initial: 2}")
            % ", replace: false") + """
autoscaling:
  default: hpa
  variants:
    hpa: {policy: target_tracking, metric: utilization, target: 0.99}
"""
    result = simulate(parse_scenario(text))
    restored = [e for e in result.events if e["kind"] == "scale" and e["from"] == 0]
    assert restored and restored[0]["to"] >= 1
    assert restored[0]["t_s"] <= 120 + 15 + 1e-6  # the next decision (HPA sync 15 s)


def test_the_load_test_gate_fails_a_service_whose_requests_failed(tmp_path: Path) -> None:
    text = KILL_ALL.replace("duration_s: 600", "duration_s: 10").replace("payment: 20",
                                                                          "payment: 10")
    scenario = parse_scenario(text[:text.index("faults:")])
    recorder = Recorder(5.0, 50.0)
    for i in range(100):  # 20 requests answered in 50 ms, then 80 answered 503
        at = i * 0.1
        recorder.claimed("payment", at)
        recorder.sent("payment", at, at)
        outcome = Outcome.COMPLETED if i < 20 else Outcome.SHED
        recorder.finished("payment", outcome, at, at, at + 0.05, final_failure=i >= 20)
    writer = ResultsWriter(tmp_path, {"window_s": 5.0, "until_s": 10.0,
                                      "services": ["payment"]}, 5.0, 0.01)
    writer.add(recorder.drain())
    writer.close()
    merged = merge_results(tmp_path / "results.jsonl")
    facts = RunFacts(scenario, TrafficModel(scenario), "local shop", 1, "paced", 50.0, 0.01,
                     "now", 10.0)
    payment = service_summary(merged.services["payment"], facts, 10.0, 5.0, None)
    assert payment["latency_ms"]["p95"] == pytest.approx(50.0, rel=0.011)
    gate = evaluate_gate({"generator": {"lag_threshold_ms": 50.0},
                          "services": {"payment": payment}})
    assert gate.exit_code == EXIT_SLO_MISSED
    assert any(r.startswith("payment: 80% of requests failed") for r in gate.reasons)
