"""The simulator agrees with queueing theory (tolerances from the issue: 3% on means and
P(wait), 5% on p99; run lengths chosen so that the statistical error is well inside them)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from sim.engine import simulate
from sim.model import load_scenario
from sim.plan import (
    erlang_c,
    mg1_mean_wait_s,
    mmc_mean_response_s,
    mmc_response_quantile_s,
)
from tests.scenario_factory import single_service

pytestmark = pytest.mark.slow


def check_mmc(summary: dict, c: int, lam: float, mu: float) -> None:
    s = summary["services"][next(iter(summary["services"]))]
    mean_ms = mmc_mean_response_s(c, lam, mu) * 1000
    p_wait = erlang_c(c, lam / mu)
    p99_ms = mmc_response_quantile_s(0.99, c, lam, mu) * 1000
    assert s["latency_ms"]["mean"] == pytest.approx(mean_ms, rel=0.03)
    assert s["waited"] / s["completed"] == pytest.approx(p_wait, rel=0.03)
    assert s["latency_ms"]["p99"] == pytest.approx(p99_ms, rel=0.05)


def test_mmc_check_scenario_matches_erlang_c(scenarios_dir: Path) -> None:
    """scenarios/mmc-check.yaml (M/M/10, lambda 80/s, 100 ms, rho 0.8), run 8x longer."""
    scenario = load_scenario(scenarios_dir / "mmc-check.yaml")
    long_run = scenario.model_copy(update={"duration_s": 8 * 3600.0})
    check_mmc(simulate(long_run).summary(), 10, 80.0, 10.0)
    # Erlang C for the file's own parameters, as stated in its header comment
    assert erlang_c(10, 8.0) == pytest.approx(0.4092, abs=5e-4)
    assert mmc_mean_response_s(10, 80.0, 10.0) * 1000 == pytest.approx(120.46, abs=0.01)


@pytest.mark.parametrize(("lam", "duration_s"), [(50.0, 40_000), (95.0, 100_000)])
def test_mmc_other_loads(lam: float, duration_s: float) -> None:
    """rho = 0.5 and rho = 0.95 with 10 workers and 100 ms exponential service."""
    scenario = single_service(workers=10, rate_rps=lam, duration_s=duration_s,
                              service="{dist: exponential, mean_ms: 100}", seed=3)
    check_mmc(simulate(scenario).summary(), 10, lam, 10.0)


def test_md1_mean_wait_matches_pollaczek_khinchine() -> None:
    """M/D/1, lambda 7/s, constant 100 ms (rho 0.7): Wq = lam D^2 / (2 (1 - rho))."""
    scenario = single_service(workers=1, rate_rps=7.0, duration_s=200_000,
                              service="{dist: constant, mean_ms: 100}", seed=5)
    s = simulate(scenario).summary()["services"]["s"]
    expected_wait_ms = mg1_mean_wait_s(7.0, 0.1, 0.01) * 1000  # 116.67 ms
    assert s["latency_ms"]["mean"] - 100.0 == pytest.approx(expected_wait_ms, rel=0.03)


def test_mg1_lognormal_mean_wait() -> None:
    """M/G/1 with lognormal service (E[S^2] from the distribution) against P-K."""
    scenario = single_service(workers=1, rate_rps=5.0, duration_s=200_000, seed=9,
                              service="{dist: lognormal, mean_ms: 100, sigma: 0.8}")
    s = simulate(scenario).summary()["services"]["s"]
    import math
    second_moment_s2 = 0.01 * math.exp(0.8**2)  # E[S^2] = mean^2 e^{sigma^2}
    expected_wait_ms = mg1_mean_wait_s(5.0, 0.1, second_moment_s2) * 1000
    assert s["latency_ms"]["mean"] - 100.0 == pytest.approx(expected_wait_ms, rel=0.05)


def test_littles_law_on_the_time_series(tmp_path: Path) -> None:
    """Mean number in system over the ticks = throughput x mean response time."""
    scenario = single_service(workers=10, rate_rps=85.0, duration_s=20_000, seed=4,
                              service="{dist: exponential, mean_ms: 100}")
    result = simulate(scenario)
    result.write(tmp_path)
    with (tmp_path / "timeseries.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    in_system = sum(float(r["in_queue"]) + float(r["busy_workers"]) for r in rows) / len(rows)
    s = result.summary()["services"]["s"]
    throughput = s["completed"] / result.duration_s
    assert in_system == pytest.approx(throughput * s["latency_ms"]["mean"] / 1000, rel=0.01)
