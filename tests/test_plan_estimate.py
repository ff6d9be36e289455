"""The queueing estimate of ``peaksim plan`` against hand-computed queueing numbers.

Hand derivations used below (M/M/c, arrival rate lam, service rate mu, a = lam / mu):
- M/M/2, lam = mu = 1: Erlang C = (a^2/2! * 2/(2-a)) / (1 + a + a^2/2! * 2/(2-a)) = 1/3,
  Wq = C / (2 mu - lam) = 1/3 s, and (Erlang-2 case, theta = c mu - lam = mu)
  P(W > t) = (1 - C) e^-t + C (1 + t) e^-t = e^-t (1 + t/3).
- M/M/1, lam = 5, mu = 10: W ~ Exp(mu - lam = 5): P(W > t) = e^(-5t), p99 = ln(100)/5 s.
- M/M/2, lam = 5, mu = 10 (a = 0.5): C = (0.125 * 4/3) / (1.5 + 0.125 * 4/3) = 0.1.
- M/M/10, lam = 80, mu = 10: C = 0.4092, W = 120.46 ms (scenarios/mmc-check.yaml).
- M/D/1, lam = 7, D = 0.1 s (rho = 0.7): Pollaczek-Khinchine Wq = lam D^2 / (2 (1 - rho))
  = 0.07 / 0.6 s.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.model import Objectives, Service, parse_scenario, sampler_for
from sim.plan import (
    ServiceModel,
    erlang_c,
    estimate_instances,
    max_rate_rps,
    mgc_mean_wait_s,
    mgc_response_quantile_s,
    mgc_response_survival,
    mmc_queue_at_least,
    objective_holds,
    service_time_grid_s,
)


def exp_grid(mean_s: float, n: int = 4096) -> np.ndarray:
    u = (np.arange(n) + 0.5) / n
    return -mean_s * np.log1p(-u)


def service(service_time: str, *, workers: int = 1, extra: str = "") -> ServiceModel:
    scenario = parse_scenario(f"""
name: t
seed: 1
duration_s: 60
traffic: {{kind: constant, rps: {{s: 1}}}}
services:
  s: {{service_time: {service_time}, workers: {workers}, instances: 1{extra}}}
""")
    spec: Service = scenario.services["s"]
    return ServiceModel.of(spec, sampler_for(spec.service_time))


def test_erlang_c_hand_numbers() -> None:
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert erlang_c(2, 0.5) == pytest.approx(0.1)
    assert erlang_c(10, 8.0) == pytest.approx(0.4092, abs=5e-4)


def test_mgc_mean_wait_is_erlang_c_for_exponential_and_pk_for_one_server() -> None:
    assert mgc_mean_wait_s(2, 1.0, 1.0, scv=1.0) == pytest.approx(1 / 3)
    assert (mgc_mean_wait_s(10, 80.0, 0.1, scv=1.0) + 0.1) * 1000 == pytest.approx(120.46,
                                                                                 abs=0.01)
    assert mgc_mean_wait_s(1, 7.0, 0.1, scv=0.0) == pytest.approx(0.07 / 0.6)
    assert mgc_mean_wait_s(2, 2.0, 1.0, scv=1.0) == math.inf  # rho = 1


def test_response_survival_matches_hand_derived_tails() -> None:
    grid = exp_grid(1.0)
    assert mgc_response_survival(2.0, 2, 1.0, 1.0, 1.0, grid) == pytest.approx(
        math.exp(-2) * (1 + 2 / 3), abs=2e-3)
    grid = exp_grid(0.1)
    assert mgc_response_survival(0.2, 1, 5.0, 0.1, 1.0, grid) == pytest.approx(
        math.exp(-1), abs=2e-3)
    assert mgc_response_quantile_s(0.99, 1, 5.0, 0.1, 1.0, grid) == pytest.approx(
        math.log(100) / 5, rel=0.01)


def test_queue_length_tail_is_the_m_m_1_geometric_tail() -> None:
    # M/M/1 at rho 0.5: P(at least 3 waiting) = P(N >= 4) = rho^4
    assert mmc_queue_at_least(1, 0.5, 3) == pytest.approx(0.5**4)


def test_service_time_grid_has_the_distributions_mean_and_quantiles() -> None:
    model = service("{dist: lognormal, mean_ms: 60, p99_ms: 300}")
    assert float(np.mean(model.service_s)) == pytest.approx(0.060, rel=0.01)
    assert float(np.quantile(model.service_s, 0.99)) == pytest.approx(0.300, rel=0.01)
    # lognormal with p99/mean = 5: sigma = 0.845, cs^2 = exp(sigma^2) - 1 = 1.044
    assert model.scv == pytest.approx(1.044, abs=0.002)
    uniform = sampler_for(Service.model_validate({
        "service_time": {"dist": "uniform", "min_ms": 10, "max_ms": 30}, "workers": 1,
        "instances": 1}).service_time)
    grid = service_time_grid_s(uniform, 4)
    assert grid.tolist() == pytest.approx([0.0125, 0.0175, 0.0225, 0.0275])


def test_mean_latency_objective_sizes_m_m_c_at_the_erlang_c_boundary() -> None:
    # M/M/c with one worker per instance, lam 80/s, 100 ms: W(10) = 120.46 ms
    model = service("{dist: exponential, mean_ms: 100}")
    assert estimate_instances(Objectives(mean_ms=121), 80.0, model).instances == 10
    assert estimate_instances(Objectives(mean_ms=120), 80.0, model).instances == 11
    # four workers per instance: 8 workers are unstable (rho = 1), 12 hold 120 ms
    four = service("{dist: exponential, mean_ms: 100}", workers=4)
    assert estimate_instances(Objectives(mean_ms=120), 80.0, four).instances == 3


def test_p99_objective_on_m_m_1_against_the_exponential_tail() -> None:
    model = service("{dist: exponential, mean_ms: 100}")
    # one instance: p99 = ln(100)/5 s = 921 ms
    assert estimate_instances(Objectives(p99_ms=1000), 5.0, model).instances == 1
    assert estimate_instances(Objectives(p99_ms=900), 5.0, model).instances == 2


def test_latency_is_judged_on_completed_requests_only() -> None:
    # M/M/1 lam 5, mu 10, timeout 1 s: P(W > 0.9 | W <= 1) = (e^-4.5 - e^-5) / (1 - e^-5)
    # = 0.0044 <= 1%, although P(W > 0.9) = e^-4.5 = 1.1% is not
    model = service("{dist: exponential, mean_ms: 100}", extra=", timeout_ms: 1000")
    assert objective_holds("p99_ms", 900, 1, 5.0, model)
    no_timeout = service("{dist: exponential, mean_ms: 100}")
    assert not objective_holds("p99_ms", 900, 1, 5.0, no_timeout)


def test_error_rate_counts_timeouts_and_shedding() -> None:
    # M/M/1 lam 5, mu 10, timeout 500 ms: P(W > 0.5) = e^-2.5 = 0.082
    timed = service("{dist: exponential, mean_ms: 100}", extra=", timeout_ms: 500")
    assert estimate_instances(Objectives(error_rate=0.1), 5.0, timed).instances == 1
    assert estimate_instances(Objectives(error_rate=0.05), 5.0, timed).instances == 2
    # max_queue 2 per instance: P(at least 2 wait) = rho^3 = 0.125 with one instance;
    # two instances (queue limit 4): 0.1 * 0.25^4 = 0.0004
    shed = service("{dist: exponential, mean_ms: 100}", extra=", max_queue: 2")
    assert not objective_holds("error_rate", 0.1, 1, 5.0, shed)
    assert objective_holds("error_rate", 0.1, 2, 5.0, shed)


def test_an_objective_the_service_time_alone_breaks_cannot_be_planned() -> None:
    # exponential 100 ms: its own p99 is 100 ms x ln(100) = 460.5 ms
    model = service("{dist: exponential, mean_ms: 100}")
    estimate = estimate_instances(Objectives(p99_ms=400), 5.0, model)
    assert estimate.instances is None and not estimate.feasible
    assert "p99_ms 400" in estimate.reason and "46" in estimate.reason
    assert estimate_instances(Objectives(mean_ms=90), 5.0, model).instances is None


def test_binding_objective_is_the_one_needing_most_instances() -> None:
    model = service("{dist: exponential, mean_ms: 100}")
    estimate = estimate_instances(Objectives(mean_ms=500, p99_ms=900), 5.0, model)
    assert (estimate.instances, estimate.binding) == (2, "p99_ms")


def test_max_rate_inverts_the_mean_latency_condition() -> None:
    # M/M/1, mu 10: W = 1 / (mu - lam) <= 0.2 s  <=>  lam <= 5
    model = service("{dist: exponential, mean_ms: 100}")
    assert max_rate_rps(1, Objectives(mean_ms=200), model) == pytest.approx(5.0, rel=2e-3)
    assert max_rate_rps(0, Objectives(mean_ms=200), model) == 0.0
