"""The fluid engine: its waiting-time law against queueing theory, runs against Erlang C and
Little's law, the engine selector, and the --engine option (fast checks; the comparison
with the exact engine is tests/test_engine_fluid_oracle.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from sim.cli import app
from sim.engine import EngineError, choose_engine, scale_fleet, simulate, with_engine
from sim.engine.fluid_model import log_wait_bound, wait_law
from sim.errors import ScenarioError
from sim.model import load_scenario
from sim.plan import erlang_c, mmc_mean_response_s
from sim.plan.queueing import mmc_mean_wait_s
from tests.scenario_factory import single_service


@pytest.mark.parametrize(("c", "rho"), [(1, 0.5), (10, 0.8), (50, 0.95), (2000, 0.99)])
def test_law_without_patience_is_erlang_c(c: int, rho: float) -> None:
    mu = 10.0
    lam = rho * c * mu
    law = wait_law(np.asarray([lam]), np.asarray([float(c)]), np.asarray([mu]),
                   np.asarray([lam / mu]), np.asarray([math.inf]), cs2=1.0)
    p_wait = erlang_c(c, lam / mu)
    assert 1.0 - law.idle[0] == pytest.approx(p_wait, rel=1e-6)
    # mean wait: the integral of P(V > x), with V exponential of rate c mu - lam beyond 0
    mean_wait = law.dens_at[0] / law.decay_rps[0] ** 2
    assert mean_wait == pytest.approx(mmc_mean_wait_s(c, lam, mu), rel=1e-6)
    assert law.lost[0] == 0.0


@pytest.mark.parametrize("c", [3, 10, 60, 400, 3000])
def test_calm_bound_is_above_erlang_c(c: int) -> None:
    # the bound that lets a large pool skip the waiting law never lies below the waiting
    # share of M/M/c (Erlang C) — including at a ramp, where arrivals exceed the busy servers
    for rho in np.linspace(0.02, 0.98, 49):
        for ramp in (1.0, 1.3):
            load = rho * c
            bound = log_wait_bound(float(c), load, load * ramp * 2.0, 2.0)
            worst = erlang_c(c, min(load * ramp, c - 1e-9))
            assert bound == math.inf or worst <= math.exp(bound) * (1 + 1e-9)
    # and it is tight enough to matter: a 3,000-worker pool at 70% busy never waits
    assert c < 3000 or log_wait_bound(3000.0, 2100.0, 4200.0, 2.0) < math.log(1e-50)


@pytest.mark.parametrize("rho", [1.2, 2.0])
def test_law_over_capacity_loses_the_fluid_excess_at_scale(rho: float) -> None:
    """Many servers above capacity: the fluid limit loses 1 - 1/rho (Whitt 2006)."""
    c, mu = 20_000, 10.0
    lam = rho * c * mu
    law = wait_law(np.asarray([lam]), np.asarray([float(c)]), np.asarray([mu]),
                   np.asarray([lam / mu]), np.asarray([1.0]), cs2=1.0)
    assert law.lost[0] == pytest.approx(1.0 - 1.0 / rho, abs=0.01)
    # and nobody is served without waiting
    assert law.idle[0] < 1e-6


def test_law_patience_bounds_the_wait() -> None:
    """M/M/1+D at rho 0.9: what waits longer than the patience is lost, so the served part
    of the law plus the lost part is the whole, and the served waits stay below it."""
    law = wait_law(np.asarray([9.0]), np.asarray([1.0]), np.asarray([10.0]),
                   np.asarray([0.9]), np.asarray([0.3]), cs2=1.0)
    at_patience = law.cdf(np.asarray([0.3, 10.0]))[0]
    assert at_patience[0] + law.lost[0] == pytest.approx(1.0, rel=1e-9)
    assert at_patience[1] == pytest.approx(at_patience[0])
    # without patience the loss would be Erlang C's P(W > 0.3) = 0.9 e^(-(10-9) 0.3)
    assert 0.0 < law.lost[0] < 0.9 * math.exp(-0.3)


def test_fluid_run_matches_erlang_c_and_littles_law() -> None:
    """M/M/20 at rho 0.9 (lambda 180/s, 100 ms): mean response within 3% of Erlang C,
    P(wait) within 3%, and mean busy workers = lambda x E[S] (Little) within 1%."""
    scenario = single_service(workers=20, rate_rps=180, duration_s=600,
                              service="{dist: exponential, mean_ms: 100}")
    summary = simulate(scenario, engine="fluid").summary()
    s = summary["services"]["s"]
    assert summary["engine"]["name"] == "fluid"
    assert s["latency_ms"]["mean"] == pytest.approx(
        mmc_mean_response_s(20, 180.0, 10.0) * 1000, rel=0.03)
    assert s["waited"] / s["completed"] == pytest.approx(erlang_c(20, 18.0), rel=0.03)
    result = simulate(scenario, engine="fluid")
    busy = result.services["s"].columns["busy_workers"]
    assert float(busy[1:].mean()) == pytest.approx(18.0, rel=0.01)


def test_fluid_conserves_attempts_under_overload() -> None:
    """Twice the capacity with a timeout, a queue limit and retries: every attempt ends
    completed, timed out or shed, and retries come back for the failures."""
    scenario = single_service(
        workers=10, rate_rps=200, duration_s=300, service="{dist: exponential, mean_ms: 100}",
        extra=", timeout_ms: 1000, max_queue: 50, retries: {max: 1, backoff_ms: 200}")
    s = simulate(scenario, engine="fluid").summary()["services"]["s"]
    attempts = s["requests"] + s["retries"]
    ended = s["completed"] + s["timed_out"] + s["shed"]
    assert ended == pytest.approx(attempts, rel=0.002)
    assert s["completed"] == pytest.approx(100.0 * 300, rel=0.03)  # served at capacity
    assert s["retries"] > 0.3 * s["requests"]


def test_bigger_pools_wait_less_at_the_same_utilization(scenarios_dir: Path) -> None:
    """Queueing is not scale-invariant: the same scenario at 100x rates and fleet waits
    less (Erlang C falls with the pool size at a fixed load)."""
    scenario = load_scenario(scenarios_dir / "mmc-check.yaml").model_copy(
        update={"duration_s": 600.0})
    small = simulate(scenario, engine="fluid").summary()["services"]["browse"]
    big = simulate(scale_fleet(scenario, 100.0), engine="fluid").summary()["services"]["browse"]
    assert big["requests"] == pytest.approx(100 * small["requests"], rel=1e-6)
    # M/M/1000 at rho 0.8 almost never waits (Erlang C ~1e-12): latency is the 100-ms
    # exponential service time, p99 = 100 ln 100 ms; M/M/10 waits 41% of the time
    assert erlang_c(1000, 800.0) < 1e-9
    assert big["latency_ms"]["mean"] == pytest.approx(100.0, rel=0.02)
    assert big["latency_ms"]["p99"] == pytest.approx(100.0 * math.log(100.0), rel=0.02)
    assert small["latency_ms"]["mean"] == pytest.approx(
        mmc_mean_response_s(10, 80.0, 10.0) * 1000, rel=0.03)


def test_auto_picks_exact_for_small_runs_and_fluid_at_real_scale(scenarios_dir: Path) -> None:
    small = choose_engine(load_scenario(scenarios_dir / "singles-day.yaml"), "auto")
    assert small.name == "exact" and "expected requests" in small.reason
    full = choose_engine(load_scenario(scenarios_dir / "singles-day-full.yaml"), None)
    assert full.name == "fluid"
    assert full.expected_requests == pytest.approx(13.4e9, rel=0.02)


def test_auto_avoids_fluid_where_it_is_weak() -> None:
    """Few workers per pool: auto stays exact while the run is feasible, and says why."""
    few = single_service(workers=2, rate_rps=100_000, duration_s=600,
                         service="{dist: exponential, mean_ms: 10}", instances=1)
    choice = choose_engine(few, "auto")
    assert choice.expected_requests > 20e6
    assert choice.name == "exact" and "2 worker" in choice.reason
    heavy = single_service(workers=200, rate_rps=100_000, duration_s=600,
                           service="{dist: lognormal, mean_ms: 10, sigma: 2.0}")
    assert "heavy-tailed" in choose_engine(heavy, "auto").reason


def test_engine_key_and_override() -> None:
    scenario = single_service(workers=4, rate_rps=10, duration_s=60,
                              service="{dist: constant, mean_ms: 10}", top="engine: fluid")
    assert choose_engine(scenario, None).name == "fluid"
    assert choose_engine(scenario, "exact").name == "exact"
    assert with_engine(scenario, "exact").engine == "exact"
    with pytest.raises(EngineError, match="unknown engine 'fast'"):
        with_engine(scenario, "fast")
    with pytest.raises(ScenarioError, match="engine"):
        single_service(workers=4, rate_rps=10, duration_s=60,
                       service="{dist: constant, mean_ms: 10}", top="engine: fast")


def test_cli_engine_option(runner: CliRunner, tmp_path: Path, scenarios_dir: Path) -> None:
    text = (scenarios_dir / "mmc-check.yaml").read_text(encoding="utf-8")
    short = tmp_path / "mmc.yaml"
    short.write_text(text.replace("duration_s: 3600", "duration_s: 60"), encoding="utf-8")
    result = runner.invoke(app, ["run", str(short), "--engine", "fluid", "--json", "--out",
                                 str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["engine"] == {"name": "fluid", "requested": "fluid", "reason": "asked for",
                                 "expected_requests": -1}
    bad = runner.invoke(app, ["run", str(scenarios_dir / "mmc-check.yaml"), "--engine", "x"])
    assert bad.exit_code == 2
    assert "unknown engine 'x'" in bad.output and "Traceback" not in bad.output
