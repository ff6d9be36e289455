"""The simulation search of ``peaksim plan`` finds the Erlang C boundary of M/M/c services.

Two services with one worker per instance and 100 ms exponential service, mean-latency SLO
130 ms (so W(c) = Wq + 100 ms must stay below 130 ms):
- ``a`` at 80 rps: W(10) = 120.5 ms holds, W(9) = 167 ms does not (a = 8 Erlangs);
- ``b`` at 40 rps: W(6) = 114 ms holds, W(5) = 155 ms does not (a = 4 Erlangs).
The margins (over 7%) are far beyond the ~1% sampling error of 2,000 simulated seconds.
"""

from __future__ import annotations

import pytest

from sim.model import parse_scenario
from sim.plan import CountSearch, mmc_mean_response_s

SCENARIO = """
name: boundary
seed: 11
duration_s: 2000
tick_s: 10
traffic: {kind: constant, rps: {a: 80, b: 40}}
services:
  a: {service_time: {dist: exponential, mean_ms: 100}, workers: 1, instances: 1}
  b: {service_time: {dist: exponential, mean_ms: 100}, workers: 1, instances: 1}
slo:
  a: {mean_ms: 130}
  b: {mean_ms: 130}
"""


def test_theory_puts_the_boundaries_where_the_docstring_says() -> None:
    assert mmc_mean_response_s(10, 80.0, 10.0) < 0.130 < mmc_mean_response_s(9, 80.0, 10.0)
    assert mmc_mean_response_s(6, 40.0, 10.0) < 0.130 < mmc_mean_response_s(5, 40.0, 10.0)


def test_search_from_an_exact_estimate_takes_two_simulations() -> None:
    search = CountSearch(parse_scenario(SCENARIO), None, {})
    assert search.minimum_counts({"a": 10, "b": 6}, {"a": 40, "b": 40}) == {"a": 10, "b": 6}
    assert [t.counts for t in search.trials] == [{"a": 10, "b": 6}, {"a": 9, "b": 5}]


def test_search_gallops_down_and_up_then_bisects_all_services_in_each_run() -> None:
    search = CountSearch(parse_scenario(SCENARIO), None, {})
    # a from 14: 14, 13, 11 hold, 7 misses, 9 misses, 10 holds (6 runs);
    # b from 3: 3, 4 miss, 6 holds, 5 misses (4 runs) -- in the same 6 runs
    assert search.minimum_counts({"a": 14, "b": 3}, {"a": 40, "b": 40}) == {"a": 10, "b": 6}
    assert [t.counts["a"] for t in search.trials] == [14, 13, 11, 7, 9, 10]
    assert [t.counts["b"] for t in search.trials][:4] == [3, 4, 6, 5]
    held = search.trial_with("a", 10)
    assert held is not None and held.held("a")
    assert held.services["a"]["latency_ms"]["mean"] == pytest.approx(120.46, rel=0.03)


def test_search_gives_up_at_the_cap() -> None:
    search = CountSearch(parse_scenario(SCENARIO), None, {})
    assert search.minimum_counts({"a": 2}, {"a": 5}) == {"a": None}
    assert [t.counts["a"] for t in search.trials] == [2, 3, 5]
