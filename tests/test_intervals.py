"""Student t intervals, the three-way decision and replication seeds."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.intervals import (
    Decision,
    Interval,
    best_of,
    combine,
    fmt_interval,
    prediction_interval,
    replications_to_decide,
    t_interval,
    t_quantile,
)
from sim.study import replication_seeds


def test_interval_is_mean_plus_minus_t_times_standard_error() -> None:
    # 1..5: mean 3, s = sqrt(2.5); t(0.975, 4) = 2.7764 (Student's table)
    interval = t_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    assert interval is not None
    assert interval.mean == 3.0
    assert interval.half_width == pytest.approx(2.7764 * math.sqrt(2.5) / math.sqrt(5), rel=1e-4)
    assert interval.n == 5


def test_missing_value_leaves_the_interval_undefined_and_one_value_is_a_point() -> None:
    assert t_interval([1.0, None, 3.0]) is None
    assert t_interval([]) is None
    point = t_interval([7.5])
    assert point is not None and (point.low, point.mean, point.high) == (7.5, 7.5, 7.5)


def test_equal_values_give_a_zero_width_interval() -> None:
    interval = t_interval([0.1, 0.1, 0.1])
    assert interval is not None and interval.half_width == 0.0


def test_coverage_of_the_t_interval_is_95_percent() -> None:
    # 2,000 intervals of 5 normal draws: coverage 0.95 with binomial sd 0.0049; 4 sd tolerance
    rng = np.random.default_rng(18)
    covered = 0
    trials = 2000
    for _ in range(trials):
        interval = t_interval(list(rng.normal(10.0, 3.0, size=5)))
        assert interval is not None
        covered += interval.low <= 10.0 <= interval.high
    assert abs(covered / trials - 0.95) < 4 * math.sqrt(0.95 * 0.05 / trials)


def test_replications_to_decide_gives_an_interval_clear_of_the_target() -> None:
    interval = Interval(mean=495.0, low=476.0, high=514.0, n=5, sd=15.0)
    needed = replications_to_decide(interval, 500.0)
    assert needed is not None and needed > 5
    assert t_quantile(needed) * 15.0 / math.sqrt(needed) < 5.0
    # the plain normal approximation (1.96 s / gap)^2 = 35 is a lower bound of the t answer
    assert needed >= (1.96 * 15.0 / 5.0) ** 2


def test_a_mean_on_the_target_cannot_be_decided() -> None:
    assert replications_to_decide(Interval(500.0, 490.0, 510.0, 5, 8.0), 500.0) is None


def test_combine_fail_beats_undecided_beats_pass() -> None:
    assert combine([Decision.PASS, Decision.UNDECIDED, Decision.FAIL]) is Decision.FAIL
    assert combine([Decision.PASS, Decision.UNDECIDED]) is Decision.UNDECIDED
    assert combine([Decision.PASS, Decision.PASS]) is Decision.PASS


def test_best_of_alternatives_pass_beats_undecided_beats_fail() -> None:
    # a sweep or comparison holds when one alternative holds, whatever the others did
    assert best_of([Decision.FAIL, Decision.UNDECIDED, Decision.PASS]) is Decision.PASS
    assert best_of([Decision.FAIL, Decision.UNDECIDED]) is Decision.UNDECIDED
    assert best_of([Decision.FAIL, Decision.FAIL]) is Decision.FAIL


def test_interval_formatting_uses_the_figures_formatter() -> None:
    assert fmt_interval(Interval(412.0, 394.0, 430.0, 5, 14.5), lambda v: f"{v:.0f} ms") == \
        "412 ms ± 18 ms"
    assert fmt_interval(Interval(3.0, 3.0, 3.0, 4, 0.0), lambda v: f"{v:.0f}") == "3"
    assert fmt_interval(None, str) == "-"


def test_replication_seeds_are_reproducible_distinct_and_extend_with_n() -> None:
    five = replication_seeds(1111, 5)
    assert five == replication_seeds(1111, 5)
    assert len(set(five)) == 5 and 1111 not in five
    assert replication_seeds(1111, 3) == five[:3]
    assert replication_seeds(1112, 3) != five[:3]


def test_prediction_interval_covers_95_percent_of_new_runs() -> None:
    # a new draw falls in mean ± t s sqrt(1 + 1/n) with probability 0.95 (normal data)
    rng = np.random.default_rng(5)
    trials = 2000
    hits = 0
    for _ in range(trials):
        interval = prediction_interval(list(rng.normal(0.0, 1.0, size=4)))
        assert interval is not None
        hits += interval.low <= rng.normal(0.0, 1.0) <= interval.high
    assert abs(hits / trials - 0.95) < 4 * math.sqrt(0.95 * 0.05 / trials)


def test_load_test_figures_are_judged_against_single_run_spread() -> None:
    from loadtests.simreplicate import compare_replicated

    def summary(p99: float, err: float) -> dict:
        return {"services": {"browse": {"latency_ms": {"p50": 80.0, "p95": 300.0, "p99": p99},
                                        "error_rate": err}}}

    sims = [summary(p, 0.0) for p in (450.0, 460.0, 470.0, 455.0)]
    rows = {r["metric"]: r for r in compare_replicated(sims, summary(520.0, 0.0))}
    assert rows["p99"]["predicted"] == pytest.approx(458.75)
    assert rows["p99"]["within"] is False  # 520 ms is far outside 459 ± 3.18 x 8.5 x 1.12
    rows = {r["metric"]: r for r in compare_replicated(sims, summary(462.0, 0.0))}
    assert rows["p99"]["within"] is True and rows["p50"]["within"] is True
