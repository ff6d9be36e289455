"""Load-test building blocks without Locust: send schedules, recorder, merge, sizing, gate.

Expectations are hand-derived (the integral of a linear rate, Little's law by hand, nearest-rank
percentiles of known latencies) or come from theory (Poisson counts within a few standard
deviations, superposition of shares).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from loadtests.collector import ResultsWriter
from loadtests.gate import EXIT_INCONCLUSIVE, EXIT_PASS, EXIT_SLO_MISSED, evaluate_gate
from loadtests.pools import PoolSample, parse_healthz, pool_columns
from loadtests.recorder import Outcome, Recorder, classify, latency_bin
from loadtests.results import merge_results
from loadtests.schedule import ServiceSchedule
from loadtests.sizing import (
    LatencyTracker,
    SizingPolicy,
    UserPlan,
    class_weights,
    total_users,
    users_needed,
)
from loadtests.summary import rate_tolerance
from sim.metrics import latency_bins
from sim.model import TrafficModel, parse_scenario


def _traffic(rps_start: float, rps_end: float, duration_s: float = 100.0) -> TrafficModel:
    scenario = parse_scenario(f"""
name: t
seed: 1
duration_s: {duration_s}
traffic:
  kind: keyframes
  keyframes:
    - {{at: 0, rps: {{browse: {rps_start}}}}}
    - {{at: {duration_s}, rps: {{browse: {rps_end}}}}}
services:
  browse: {{service_time: {{dist: constant, mean_ms: 10}}, workers: 1, instances: 1}}
""")
    return TrafficModel(scenario)


def _all(schedule: ServiceSchedule) -> np.ndarray:
    times = []
    while (t := schedule.claim()) is not None:
        times.append(t)
    return np.asarray(times)


# --- schedules ------------------------------------------------------------------------------

def test_paced_constant_rate_sends_at_half_steps() -> None:
    # 20 rps for 100 s: the k-th send at (k + 1/2) / 20 s, 2,000 sends in all.
    times = _all(ServiceSchedule(_traffic(20, 20), "browse", 100.0, "paced"))
    assert times.size == 2000
    np.testing.assert_allclose(times, (np.arange(2000) + 0.5) / 20.0, atol=1e-9)


def test_paced_ramp_follows_the_inverse_integral() -> None:
    # rate(t) = 10 + 0.4 t: L(t) = 10 t + 0.2 t^2; send k solves L(t) = k + 1/2.
    times = _all(ServiceSchedule(_traffic(10, 50), "browse", 100.0, "paced"))
    total = 10 * 100 + 0.2 * 100**2
    assert times.size == int(total - 0.5) + 1
    k = np.arange(times.size) + 0.5
    exact = (-10 + np.sqrt(100 + 0.8 * k)) / 0.4
    np.testing.assert_allclose(times, exact, atol=1e-4)


def test_paced_shares_partition_the_full_schedule() -> None:
    full = _all(ServiceSchedule(_traffic(10, 50), "browse", 100.0, "paced"))
    shares = [_all(ServiceSchedule(_traffic(10, 50), "browse", 100.0, "paced", index=i, count=3))
              for i in range(3)]
    merged = np.sort(np.concatenate(shares))
    np.testing.assert_allclose(merged, full, atol=1e-9)
    assert [s.size for s in shares] == [len(full[i::3]) for i in range(3)]


def test_poisson_counts_match_the_integral_within_poisson_noise() -> None:
    # rate 10 -> 50 over 100 s: L(t) = 10 t + 0.2 t^2, so 1,000 by t = 50 s and 3,000 in all.
    traffic = _traffic(10, 50)
    times = _all(ServiceSchedule(traffic, "browse", 100.0, "poisson", seed=11))
    for t0, t1, expected in ((0, 50, 10 * 50 + 0.2 * 50**2), (50, 100, 3000 - 1000.0)):
        count = np.count_nonzero((times >= t0) & (times < t1))
        assert abs(count - expected) < 4 * math.sqrt(expected)
    assert np.all(np.diff(times) >= 0)


def test_poisson_constant_rate_is_uniform_and_exponential() -> None:
    times = _all(ServiceSchedule(_traffic(50, 50), "browse", 100.0, "poisson", seed=5))
    n = times.size
    assert abs(n - 5000) < 4 * math.sqrt(5000)
    # Kolmogorov-Smirnov against uniform on [0, 100): 1.63 / sqrt(n) is the 1% critical value.
    ecdf = np.arange(1, n + 1) / n
    assert np.max(np.abs(ecdf - times / 100.0)) < 1.63 / math.sqrt(n)
    gaps = np.diff(times)
    assert abs(gaps.mean() - 0.02) < 4 * 0.02 / math.sqrt(n)  # exponential: sd = mean
    assert abs(gaps.std() - 0.02) < 0.002


def test_poisson_shares_superpose_to_the_full_rate() -> None:
    counts = [_all(ServiceSchedule(_traffic(50, 50), "browse", 100.0, "poisson", seed=5,
                                   index=i, count=4)).size for i in range(4)]
    assert abs(sum(counts) - 5000) < 4 * math.sqrt(5000)
    assert all(abs(c - 1250) < 4 * math.sqrt(1250) for c in counts)


def test_schedule_is_deterministic_and_gives_back_times() -> None:
    a = _all(ServiceSchedule(_traffic(30, 30), "browse", 10.0, "poisson", seed=9))
    schedule = ServiceSchedule(_traffic(30, 30), "browse", 10.0, "poisson", seed=9)
    first, second = schedule.claim(), schedule.claim()
    assert (first, second) == (a[0], a[1])
    schedule.give_back(first)
    assert schedule.claim() == first
    assert schedule.claim() == a[2]
    late = list(schedule.take_until(5.0))
    np.testing.assert_array_equal(late, a[3:np.count_nonzero(a <= 5.0)])
    assert schedule.claim() == a[np.count_nonzero(a <= 5.0)]


# --- recorder, merge ------------------------------------------------------------------------

def test_latency_bin_matches_the_simulator_histograms() -> None:
    values = np.geomspace(1e-4, 1e7, 997)
    assert [latency_bin(v) for v in values] == latency_bins(values).tolist()


def test_classify_maps_statuses_to_simulator_outcomes() -> None:
    assert classify(200, False) is Outcome.COMPLETED
    assert classify(201, False) is Outcome.COMPLETED
    assert classify(504, False) is Outcome.TIMED_OUT
    assert classify(0, True) is Outcome.TIMED_OUT
    assert classify(503, False) is Outcome.SHED
    assert classify(429, False) is Outcome.SHED
    assert classify(0, False) is Outcome.FAILED
    assert classify(404, False) is Outcome.FAILED


def test_recorder_windows_each_count_by_its_own_time() -> None:
    recorder = Recorder(window_s=1.0, lag_threshold_ms=50.0)
    recorder.claimed("browse", 0.5)
    recorder.sent("browse", 0.5, 1.2)  # 700 ms late
    recorder.finished("browse", Outcome.COMPLETED, 0.5, 1.2, 10.5)
    records = {r["w"]: r for r in recorder.drain()}
    assert records[0]["c"] == {"intended": 1, "late": 1}
    assert records[0]["lag_max"] == pytest.approx(700.0)
    assert records[1]["c"] == {"sent": 1}
    assert records[10]["c"] == {"completed": 1}
    assert records[10]["hc"] == {str(latency_bin(10_000.0)): 1}  # from the intended time
    assert records[10]["hr"] == {str(latency_bin(9_300.0)): 1}   # from the actual send
    assert recorder.drain() == []


def _write(path: Path, recorders: list[Recorder], window_s: float, until_s: float) -> None:
    writer = ResultsWriter(path, {"window_s": window_s, "until_s": until_s,
                                  "services": ["browse"]}, window_s, 0.01)
    for recorder in recorders:
        writer.add(recorder.drain())
    writer.close()


def test_merge_is_additive_over_processes_and_drains(tmp_path: Path) -> None:
    # Latencies 1..100 ms (from the intended time), sent on time, spread over 10 s.
    one, two = Recorder(5.0, 50.0, "a"), Recorder(5.0, 50.0, "b")
    for i in range(100):
        target = one if i % 2 else two
        start = i * 0.1
        target.claimed("browse", start)
        target.sent("browse", start, start)
        target.finished("browse", Outcome.COMPLETED, start, start, start + (i + 1) / 1000.0)
    _write(tmp_path / "split", [one, two], 5.0, 10.0)
    merged = merge_results(tmp_path / "split" / "results.jsonl")
    browse = merged.services["browse"]
    assert merged.sources == ("a", "b")
    assert browse.counts["completed"].tolist() == [50, 50]
    assert browse.counts["sent"].tolist() == [50, 50]
    latency = browse.latency(browse.corrected_total)
    # nearest rank of 1..100 ms: p50 = 50 ms, p99 = 99 ms (bins are ~1% wide)
    assert latency["p50"] == pytest.approx(50.0, rel=0.011)
    assert latency["p99"] == pytest.approx(99.0, rel=0.011)
    assert latency["mean"] == pytest.approx(50.5, rel=1e-6)
    assert latency["max"] == pytest.approx(100.0, rel=1e-6)
    per_window = browse.window_percentiles()["p50"]
    assert per_window[0] == pytest.approx(25.0, rel=0.011)  # 1..50 ms in the first window
    assert per_window[1] == pytest.approx(75.0, rel=0.011)


def test_results_writer_flags_a_window_once(tmp_path: Path) -> None:
    writer = ResultsWriter(tmp_path, {"window_s": 10.0, "until_s": 20.0}, 10.0, 0.01)
    record = {"s": "browse", "w": 1, "c": {"intended": 100, "late": 1}}
    assert writer.add([record]) == []  # 1 of 100: within 1%
    warnings = writer.add([{"s": "browse", "w": 1, "c": {"intended": 0, "dropped": 2}}])
    assert len(warnings) == 1 and "browse 10-20 s: 3 of 100" in warnings[0]
    assert writer.add([{"s": "browse", "w": 1, "c": {"late": 5}}]) == []
    writer.close()
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["meta"]["window_s"] == 10.0 and len(lines) == 4


# --- sizing ---------------------------------------------------------------------------------

def test_users_needed_is_littles_law_with_margin() -> None:
    policy = SizingPolicy(margin=2.0, spread=3.0, floor=5)
    # 100 rps x 50 ms = 5 in flight: 2 x 5 + 3 x sqrt(5) + 5 = 21.7 -> 22
    assert users_needed(100.0, 50.0, policy) == 22
    assert users_needed(0.0, 50.0, policy) == 5


def test_total_users_gives_every_weighted_class_its_need() -> None:
    weights = class_weights({"browse": 10.0, "order": 5.0})
    assert weights == {"browse": 1000, "order": 500}
    # browse needs 22 of 2/3 of the users, order 20 of 1/3: order decides, 60 users.
    assert total_users({"browse": 22, "order": 20}, weights) == 60


def test_user_plan_starts_from_the_need_and_grows_with_observed_latency() -> None:
    traffic = _traffic(100, 100)
    plan = UserPlan(traffic, ("browse",), {"browse": 10.0}, SizingPolicy(ewma=1.0), 100.0)
    # Little at the prior: 100 rps x 10 ms = 1 in flight -> 2 + 3 + 5 = 10, twice that is 20;
    # a 0.1-s stall of the target holds 10 sends: 20 users from the start (not thousands).
    assert plan.initial == plan.current == 20
    # Observed 500 ms mean: 50 in flight -> 100 + 3 sqrt(50) + 5 = 126.2 -> 127 users (more
    # than the 1.5x growth step).
    assert plan.target(10.0, {"browse": (100, 50_000.0)}) == 127
    # Faster answers never shrink the pool (a stopped user may hold a claimed send time).
    assert plan.target(20.0, {"browse": (200, 50_100.0)}) == 127
    # In-flight peaks back up Little's law: 200 seen at once -> 1.5 x 200 + 5 = 305.
    assert plan.target(30.0, {}, {"browse": 200}) == 305


def test_latency_tracker_smooths_the_mean_of_new_requests() -> None:
    tracker = LatencyTracker(prior_ms=10.0, ewma=0.5)
    assert tracker.observe(10, 200.0) == pytest.approx(15.0)   # new mean 20 ms
    assert tracker.observe(20, 300.0) == pytest.approx(12.5)   # 10 new, mean 10 ms
    assert tracker.observe(20, 300.0) == pytest.approx(12.5)   # nothing new


# --- gate, tolerances, pools ----------------------------------------------------------------

def _summary(kept_up: bool = True, p99: float = 100.0, target: float = 500.0) -> dict:
    load = {"kept_up": kept_up, "rate_ok": True, "late": 0 if kept_up else 40,
            "intended": 1000, "dropped": 0, "lag_max_ms": 900.0, "sent": 1000,
            "target_requests": 1000.0, "achieved_ratio": 1.0, "rate_tolerance": 0.05}
    slo = {"p99_ms": {"target": target, "value": p99, "met": p99 <= target}}
    return {"generator": {"lag_threshold_ms": 50.0},
            "services": {"browse": {"load": load, "slo": slo}}}


def test_gate_passes_fails_and_refuses_to_judge() -> None:
    assert evaluate_gate(_summary()).exit_code == EXIT_PASS
    missed = evaluate_gate(_summary(p99=900.0))
    assert missed.exit_code == EXIT_SLO_MISSED and "browse p99 900 ms" in missed.reasons[0]
    # a generator that fell behind makes the run inconclusive, even with a miss measured
    behind = evaluate_gate(_summary(kept_up=False, p99=900.0))
    assert behind.exit_code == EXIT_INCONCLUSIVE
    assert "40 of 1,000 sends" in behind.reasons[0]


def test_rate_tolerance_is_three_poisson_sigmas_or_five_percent() -> None:
    assert rate_tolerance(100.0, "poisson") == pytest.approx(0.3)
    assert rate_tolerance(10_000.0, "poisson") == pytest.approx(0.05)
    assert rate_tolerance(600.0, "paced") == pytest.approx(0.05)


def test_pool_columns_average_each_window() -> None:
    body = json.dumps({"services": {"browse": {"desired": 2, "ready": 2, "booting": 0,
                                               "draining": 0, "busy_workers": 5, "queued": 3}}})
    assert parse_healthz(body.encode(), 100.0)[0].busy_workers == 5
    assert parse_healthz(b"<html>", 100.0) == []
    samples = [PoolSample(100.5, "browse", 2, 2, 0, 4, 1),
               PoolSample(101.5, "browse", 3, 2, 1, 8, 3),
               PoolSample(102.5, "browse", 3, 3, 0, 12, 0)]
    cols = pool_columns(samples, t0_unix=100.0, window_s=2.0, n_windows=3,
                        workers={"browse": 4})["browse"]
    assert cols["busy_workers"].tolist() == [6.0, 12.0, 12.0]  # last window repeats
    assert cols["instances_desired"].tolist() == [3.0, 3.0, 3.0]
    assert cols["instances_booting"].tolist() == [1.0, 0.0, 0.0]
    assert cols["utilization"].tolist() == [0.75, 1.0, 1.0]  # 6 of 2 x 4 workers
    assert cols["in_queue"].tolist() == [2.0, 0.0, 0.0]


def test_user_plan_holds_the_count_while_the_generator_is_saturated() -> None:
    plan = UserPlan(_traffic(100, 100), ("browse",), {"browse": 10.0}, SizingPolicy(ewma=1.0),
                    100.0)
    # 500 ms observed would ask for 127 users, but the process uses its whole core: the
    # latency is its own queue, and more users would only add work.
    assert plan.target(10.0, {"browse": (100, 50_000.0)}, cpu_saturated=True) == 20
    assert plan.target(11.0, {"browse": (200, 100_000.0)}) == 127


def test_the_loadgen_bench_prints_lines_that_fit_80_columns() -> None:
    from loadtests.bench.loadgen import LoadgenBench, Round, loadgen_lines

    for worst, verdict in ((0.9144, "no round held"), (1.0, "0.90x with")):
        wide = Round(123_456.7, 111_111.1, 111_110.9, worst, 0.9, 123.4, 456.7)
        for workers, pinned in ((0, True), (12, False)):
            lines = loadgen_lines(LoadgenBench((wide,), workers, 0.9, 600.0, pinned))
            assert all(len(line) <= 80 for line in lines), lines
            assert "ratio 0.90" in lines[2] and f"worst window {worst:.1%}" in lines[3]
            assert any(verdict in line for line in lines)


def test_the_loadgen_bench_refuses_a_keep_directory_it_cannot_make(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from sim.cli import app

    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    monkeypatch.setenv("PEAKSIM_BENCH_KEEP", str(blocker / "runs"))
    result = CliRunner().invoke(app, ["bench", "--loadgen", "--loadgen-seconds", "5",
                                      "--rounds", "1"])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "PEAKSIM_BENCH_KEEP" in lines[0] and "a-file" in lines[0]
    assert "Traceback" not in result.output
