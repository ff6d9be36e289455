"""Engine behaviour: conservation of attempts, timeouts, shedding, retries, faults, boot
times, load balancers and determinism."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from sim.engine import simulate
from sim.plan import mmc_mean_response_s
from tests.scenario_factory import single_service

EXP100 = "{dist: exponential, mean_ms: 100}"


def outcomes(s: dict) -> int:
    return s["completed"] + s["timed_out"] + s["shed"] + s["failed"]


def test_overload_with_timeouts_conserves_attempts_and_respects_the_timeout() -> None:
    # capacity 4 workers x 10/s = 40/s against 60/s: the queue grows until requests time out
    scenario = single_service(workers=4, rate_rps=60, duration_s=600, service=EXP100,
                              extra=", timeout_ms: 500")
    s = simulate(scenario).summary()["services"]["s"]
    assert s["timed_out"] > 0.2 * s["requests"]
    assert outcomes(s) == s["requests"]
    assert s["latency_ms"]["max"] <= 500.0
    # completed attempts are bounded by the capacity: at most 40/s
    assert s["completed"] <= 40 * 600 * 1.05
    assert s["error_rate"] == pytest.approx((s["timed_out"] + s["shed"]) / s["requests"])


def test_queue_limit_sheds_at_once_and_bounds_the_wait() -> None:
    # 2 workers, at most 3 waiting: a completed request waited behind at most 3 others
    scenario = single_service(workers=2, rate_rps=40, duration_s=600,
                              service="{dist: constant, mean_ms: 100}",
                              extra=", max_queue: 3")
    result = simulate(scenario)
    s = result.summary()["services"]["s"]
    assert s["shed"] > 0.3 * s["requests"]
    assert outcomes(s) == s["requests"]
    # with constant 100 ms service and 2 workers, waiting behind 3 takes at most 200 ms
    assert s["latency_ms"]["max"] <= 300.0 * 1.01


def test_retries_are_counted_separately_and_come_back() -> None:
    scenario = single_service(workers=2, rate_rps=30, duration_s=600, service=EXP100,
                              extra=", timeout_ms: 300, retries: {max: 2, backoff_ms: 100}")
    s = simulate(scenario).summary()["services"]["s"]
    assert s["retries"] > 0
    # every attempt has exactly one outcome
    assert outcomes(s) == s["requests"] + s["retries"]
    # a first attempt fails finally only after all its retries failed: at most as many
    # final failures as attempts that failed, and every retry follows a failure
    failures = s["timed_out"] + s["shed"]
    assert s["final_failures"] <= failures
    assert s["retries"] <= failures
    assert failures == s["retries"] + s["final_failures"]


def test_retry_storm_makes_an_overload_worse() -> None:
    base = dict(workers=4, rate_rps=45, duration_s=900, service=EXP100)
    plain = simulate(single_service(**base, extra=", timeout_ms: 400")).summary()
    storm = simulate(single_service(
        **base, extra=", timeout_ms: 400, retries: {max: 3, backoff_ms: 50}")).summary()
    assert storm["services"]["s"]["retries"] > 0
    # retries add load, so more attempts time out than without them
    assert storm["services"]["s"]["timed_out"] > plain["services"]["s"]["timed_out"]


def test_random_balancer_is_m_m_1_per_instance() -> None:
    """4 instances x 1 worker, random balancing of 28/s: each is M/M/1 with 7/s, so the
    mean response is 1/(10 - 7) s, far worse than one shared queue (M/M/4)."""
    scenario = single_service(workers=1, rate_rps=28, duration_s=40_000, service=EXP100,
                              instances=4, extra=", balancer: random", seed=2)
    s = simulate(scenario).summary()["services"]["s"]
    assert s["latency_ms"]["mean"] == pytest.approx(1000 / 3, rel=0.03)
    shared = simulate(single_service(workers=1, rate_rps=28, duration_s=40_000, seed=2,
                                     service=EXP100, instances=4)).summary()["services"]["s"]
    assert shared["latency_ms"]["mean"] == pytest.approx(
        mmc_mean_response_s(4, 28, 10) * 1000, rel=0.03)


def test_round_robin_sits_between_random_and_shared_queue() -> None:
    kw = dict(workers=1, rate_rps=28, duration_s=20_000, service=EXP100, instances=4, seed=8)
    rr = simulate(single_service(**kw, extra=", balancer: round_robin")).summary()
    rnd = simulate(single_service(**kw, extra=", balancer: random")).summary()
    shared = simulate(single_service(**kw)).summary()
    mean = [x["services"]["s"]["latency_ms"]["mean"] for x in (shared, rr, rnd)]
    assert mean[0] < mean[1] < mean[2]


def fault_scenario(mode: str, replace: str = ", replace: false") -> dict:
    top = f"faults: [{{at: 300, service: s, kill_fraction: 0.3, mode: {mode}{replace}}}]"
    scenario = single_service(workers=4, rate_rps=60, duration_s=900, instances=10,
                              service="{dist: constant, mean_ms: 500}", top=top, tick_s=10)
    return simulate(scenario)


def test_fault_kills_ready_instances_and_fails_in_flight_work(tmp_path: Path) -> None:
    result = fault_scenario("fail")
    s = result.summary()["services"]["s"]
    # 30% of 10 instances: 3 killed; their busy workers' attempts fail at the fault
    assert s["instances"]["max"] == 10 and s["instances"]["min"] == 7
    assert s["failed"] > 0
    assert outcomes(s) == s["requests"]
    assert any(e["kind"] == "fault" and e["to"] == 7 for e in result.events)
    result.write(tmp_path)
    rows = [r for r in csv.DictReader((tmp_path / "timeseries.csv").open())]
    failed_ticks = {float(r["t_s"]) for r in rows if int(r["failed"]) > 0}
    assert failed_ticks == {300.0}
    ready_after = [float(r["instances_ready"]) for r in rows if float(r["t_s"]) >= 300]
    assert all(v == pytest.approx(7) for v in ready_after)


def test_drained_fault_loses_nothing() -> None:
    s = fault_scenario("drain").summary()["services"]["s"]
    assert s["failed"] == 0
    assert outcomes(s) == s["requests"]


def test_replacements_boot_before_taking_work(tmp_path: Path) -> None:
    scenario = single_service(
        workers=4, rate_rps=60, duration_s=900, instances=10, tick_s=10,
        service="{dist: constant, mean_ms: 500}", extra=", boot_s: 60",
        top="faults: [{at: 300, service: s, kill: 5, mode: drain, replace_after_s: 100}]")
    result = simulate(scenario)
    result.write(tmp_path)
    rows = {float(r["t_s"]): r for r in csv.DictReader((tmp_path / "timeseries.csv").open())}
    assert float(rows[350.0]["instances_ready"]) == pytest.approx(5)
    # replacements start at 400 s and boot for 60 s: booting until 460 s, then ready
    assert int(rows[410.0]["instances_booting"]) == 5
    assert float(rows[410.0]["instances_ready"]) == pytest.approx(5)
    assert float(rows[470.0]["instances_ready"]) == pytest.approx(10)
    assert int(rows[470.0]["instances_booting"]) == 0


def test_same_seed_same_summary_other_seed_differs() -> None:
    scenario = single_service(workers=3, rate_rps=25, duration_s=600, service=EXP100,
                              extra=", timeout_ms: 300, retries: {max: 1, backoff_ms: 50, "
                                    "jitter: 0.5}")
    wall = ("wall_s", "sim_requests_per_s", "started_at")

    def strip(summary: dict) -> str:
        return json.dumps({k: v for k, v in summary.items() if k not in wall}, sort_keys=True)

    assert strip(simulate(scenario).summary()) == strip(simulate(scenario).summary())
    assert strip(simulate(scenario).summary()) != strip(simulate(scenario, seed=99).summary())


def test_no_ready_instance_sheds_everything() -> None:
    scenario = single_service(workers=2, rate_rps=10, duration_s=100, service=EXP100,
                              instances="{min: 0, max: 3, initial: 0}")
    s = simulate(scenario).summary()["services"]["s"]
    assert s["requests"] > 0 and s["shed"] == s["requests"] and s["completed"] == 0
    assert s["slo_met"] is True  # no SLO configured for this service
