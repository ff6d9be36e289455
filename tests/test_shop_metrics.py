"""The shop's measurements: windowed snapshots for an autoscaler and the Prometheus text."""

from __future__ import annotations

import pytest
from test_shop_support import prometheus_value

from loadtests.shop.metrics import ShopMetrics
from loadtests.shop.outcomes import Outcome, PoolState

STATE = PoolState(service="browse", workers_per_instance=4, min_instances=1, max_instances=9,
                  desired=3, ready=2, booting=1, draining=0, busy_workers=6, queued=5)


def filled() -> ShopMetrics:
    # Start at t=100 s. Second 0: 3 arrivals, no completion. Second 1: 4 arrivals completed in
    # 10 ms. Second 2: 6 arrivals completed in 100 ms, 1 shed, 1 timed out.
    metrics = ShopMetrics(["browse"], 100.0)
    for _ in range(3):
        metrics.arrival("browse", 100.2)
    for _ in range(4):
        metrics.arrival("browse", 101.5)
        metrics.outcome("browse", False, Outcome.COMPLETED, 10.0, 101.5)
    for _ in range(6):
        metrics.arrival("browse", 102.5)
        metrics.outcome("browse", True, Outcome.COMPLETED, 100.0, 102.5)
    metrics.outcome("browse", False, Outcome.SHED, 0.0, 102.6)
    metrics.outcome("browse", False, Outcome.TIMED_OUT, 600.0, 102.7)
    return metrics


def test_snapshot_over_the_last_complete_seconds() -> None:
    # At t=103.1 the complete seconds are 0, 1 and 2; a 2 s window covers seconds 1 and 2.
    snap = filled().snapshot(STATE, 103.1, window_s=2)
    assert snap.window_s == 2 and snap.t_s == pytest.approx(3.1)
    assert snap.arrival_rate_rps == 5.0 and snap.completed_rps == 5.0
    assert (snap.shed, snap.timed_out, snap.failed) == (1, 1, 0)
    # Ten latencies, four of 10 ms and six of 100 ms: the 5th smallest (p50) is 100 ms.
    assert snap.p50_ms == pytest.approx(100.0, rel=0.02)
    assert snap.p99_ms == pytest.approx(100.0, rel=0.02)
    assert snap.utilization == 6 / 8
    assert (snap.arrivals_total, snap.completed_total) == (13, 10)
    one = filled().snapshot(STATE, 103.1, window_s=1)
    assert one.arrival_rate_rps == 6.0
    assert one.p50_ms == pytest.approx(100.0, rel=0.02)
    three = filled().snapshot(STATE, 103.1, window_s=3)
    assert three.arrival_rate_rps == pytest.approx(13 / 3)
    assert three.p50_ms == pytest.approx(100.0, rel=0.02)


def test_low_percentile_and_empty_windows() -> None:
    metrics = filled()
    snap = metrics.snapshot(STATE, 102.1, window_s=1)  # second 1 only: all 10 ms
    assert snap.p50_ms == pytest.approx(10.0, rel=0.02)
    late = metrics.snapshot(STATE, 1000.0, window_s=60)  # the ring has moved on
    assert late.arrival_rate_rps == 0.0 and late.p50_ms is None
    assert late.arrivals_total == 13
    first = ShopMetrics(["browse"], 0.0).snapshot(STATE, 0.5, window_s=10)
    assert first.window_s == 0 and first.arrival_rate_rps == 0.0


def test_utilization_without_ready_instances() -> None:
    metrics = ShopMetrics(["browse"], 0.0)
    idle = PoolState("browse", 4, 0, 2, 0, 0, 0, 0, 0, 0)
    stuck = PoolState("browse", 4, 0, 2, 0, 0, 0, 1, 3, 0)
    assert metrics.snapshot(idle, 5.0, 1).utilization == 0.0
    assert metrics.snapshot(stuck, 5.0, 1).utilization == 1.0


def test_prometheus_exposition() -> None:
    metrics = filled()
    metrics.response("browse", True, 200)
    metrics.response("browse", True, 200)
    metrics.response("unmatched", False, 404)
    metrics.count("charged_cents", False, 1234)
    text = metrics.render([STATE], 103.0)
    assert prometheus_value(text, "peaksim_shop_requests_total", endpoint="browse",
                            traffic="shadow", code="200") == 2
    assert prometheus_value(text, "peaksim_shop_outcomes_total", service="browse",
                            traffic="real", outcome="shed") == 1
    # Histogram: 4 real requests of 10 ms fall in le=0.01 (bounds are inclusive), 6 shadow
    # ones of 100 ms in le=0.1; buckets are cumulative and +Inf equals the count.
    real = {"service": "browse", "traffic": "real"}
    shadow = {"service": "browse", "traffic": "shadow"}
    bucket = "peaksim_shop_latency_seconds_bucket"
    assert prometheus_value(text, bucket, **real, le="0.005") == 0
    assert prometheus_value(text, bucket, **real, le="0.01") == 4
    assert prometheus_value(text, bucket, **real, le="+Inf") == 4
    assert prometheus_value(text, bucket, **shadow, le="0.05") == 0
    assert prometheus_value(text, bucket, **shadow, le="0.1") == 6
    assert prometheus_value(text, "peaksim_shop_latency_seconds_count", **shadow) == 6
    assert prometheus_value(text, "peaksim_shop_latency_seconds_sum",
                            **shadow) == pytest.approx(0.6)
    assert prometheus_value(text, "peaksim_shop_instances", service="browse",
                            state="booting") == 1
    assert prometheus_value(text, "peaksim_shop_workers", service="browse") == 8
    assert prometheus_value(text, "peaksim_shop_queued", service="browse") == 5
    assert prometheus_value(text, "peaksim_shop_business_total", what="charged_cents",
                            traffic="real") == 1234
    for line in text.splitlines():  # every sample line is "name{labels} number"
        if not line.startswith("#"):
            float(line.rpartition(" ")[2])
    assert text.endswith("\n")
