"""Bucket accounting and histogram percentiles: the single-interval and multi-quantile fast
paths give exactly what the general functions give, and what the definitions say."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.engine.plane_state import QUANTILES, Accounts
from sim.metrics import (
    HIST_BINS,
    add_overlap,
    bin_centre_ms,
    interval_overlap_s,
    percentile_ms,
    percentiles_ms,
)


@settings(max_examples=400, deadline=None)
@given(n=st.integers(1, 60), bucket_s=st.sampled_from([0.1, 0.5, 1.0, 5.0]),
       start=st.floats(-3.0, 320.0), length=st.floats(0.0, 200.0),
       window=st.tuples(st.integers(0, 59), st.integers(1, 60)))
def test_one_interval_is_booked_as_the_general_overlap_books_it(
        n: int, bucket_s: float, start: float, length: float, window: tuple[int, int]) -> None:
    lo = min(window[0], n - 1)
    hi = min(max(window[1], lo + 1), n)
    general = np.zeros(n)
    add_overlap(general, np.asarray([start]), np.asarray([start + length]), bucket_s)
    assert np.array_equal(interval_overlap_s(start, start + length, bucket_s, n, lo, hi),
                          general[lo:hi])


def test_one_interval_fills_whole_buckets_and_cuts_the_ends() -> None:
    # [2.5, 7.25) over 1-s buckets: half of bucket 2, buckets 3..6 whole, a quarter of 7
    got = interval_overlap_s(2.5, 7.25, 1.0, 10, 0, 10)
    assert got.tolist() == [0, 0, 0.5, 1, 1, 1, 1, 0.25, 0, 0]
    assert got.sum() == 7.25 - 2.5


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), fractional=st.booleans())
def test_percentiles_at_once_equal_one_at_a_time(seed: int, fractional: bool) -> None:
    rng = np.random.default_rng(seed)
    counts = rng.poisson(rng.uniform(0.0, 3.0), HIST_BINS) * (rng.random(HIST_BINS) < 0.2)
    histogram = counts * rng.uniform(0.1, 2.0) if fractional else counts.astype(np.int64)
    quantiles = (0.5, 0.9, 0.95, 0.99, 1.0)
    assert percentiles_ms(histogram, quantiles) == [percentile_ms(histogram, q)
                                                    for q in quantiles]


def test_percentiles_follow_the_nearest_rank_definition() -> None:
    counts = np.zeros(HIST_BINS, dtype=np.int64)
    counts[[10, 20, 30]] = [90, 5, 5]
    # 100 values: the 90th is in bin 10, the 95th in bin 20, the 96th..100th in bin 30
    assert percentiles_ms(counts, (0.9, 0.95, 0.96)) == [
        bin_centre_ms(10), bin_centre_ms(20), bin_centre_ms(30)]
    assert percentiles_ms(np.zeros(HIST_BINS, dtype=np.int64), (0.5,)) == [None]


def test_tick_shapes_give_the_percentiles_of_their_expanded_histogram() -> None:
    # A calm tick keeps its latencies as weight x shape; its percentiles must be those of
    # the histogram the weights stand for, including a shape of small total mass (most of
    # a service's attempts late) and ticks holding several shapes or dense counts too.
    acc = Accounts(n_buckets=10, n_ticks=4)
    light = np.zeros(HIST_BINS)
    light[[100, 200, 300]] = [0.1, 0.1, 0.1]  # total 0.3: below half a request on its own
    other = np.zeros(HIST_BINS)
    other[[150, 400]] = [0.5, 0.5]
    acc.add_tick_shape(0, 10.0, light)                       # 3 requests' worth
    acc.add_tick_shape(1, 1.0, light)                        # 0.3: empty
    acc.add_tick_shape(2, 2.0, light)
    acc.add_tick_shape(2, 4.0, other)
    acc.add_tick_counts(3, light * 5.0)
    acc.add_tick_shape(3, 5.0, light)
    acc.close_ticks(4.0, 1.0)
    expected = {0: light * 10.0, 2: light * 2.0 + other * 4.0, 3: light * 10.0}
    for tick, counts in expected.items():
        want = [np.nan if v is None else v for v in percentiles_ms(counts, QUANTILES)]
        assert acc.tick_percentiles_ms[tick].tolist() == want
    assert acc.tick_percentiles_ms[0].tolist() == [bin_centre_ms(200), bin_centre_ms(300),
                                                   bin_centre_ms(300)]
    assert np.isnan(acc.tick_percentiles_ms[1]).all()
