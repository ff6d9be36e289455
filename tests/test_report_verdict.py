"""The verdict, the miss windows and the derived series, against hand-worked examples."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_report_rundir import (
    BROWSE_MEAN_MS,
    BROWSE_WORKERS,
    synthetic_summary,
    write_synthetic_run,
)

from sim.report import (
    Window,
    capacity_rps,
    cumulative_cost,
    fmt_ms,
    fmt_pct,
    judge,
    load_run,
    miss_windows,
    when,
)


def test_miss_windows_merge_short_gaps_only() -> None:
    t_s = np.arange(10) * 10.0
    values = np.array([1, 5, 6, 1, 1, 1, 5, 1, 1, 1], dtype=float)
    # Three compliant ticks (t = 30, 40, 50) separate the misses: two windows.
    assert miss_windows(t_s, values, 2.0, 10.0, merge_gap_ticks=2) == [
        Window(10.0, 30.0, 6.0), Window(60.0, 70.0, 5.0)]
    # With gaps of up to three ticks tolerated they are one window.
    assert miss_windows(t_s, values, 2.0, 10.0, merge_gap_ticks=3) == [Window(10.0, 70.0, 6.0)]


def test_miss_windows_ignore_ticks_without_completions_and_equal_values() -> None:
    t_s = np.arange(4) * 5.0
    values = np.array([np.nan, 300.0, np.nan, 301.0])
    # 300 is not above a 300 target; NaN (nothing completed) is no evidence of a miss.
    assert miss_windows(t_s, values, 300.0, 5.0) == [Window(15.0, 20.0, 301.0)]


def test_when_is_always_hh_mm_ss() -> None:
    assert when(90.0, 23 * 3600 + 59 * 60) == "00:00:30"
    assert when(60.0, 23 * 3600 + 59 * 60) == "00:00:00"
    assert when(3725.0, None) == "+1:02:05"


@pytest.mark.parametrize(("value_ms", "text"), [
    (290.0, "290 ms"), (2100.0, "2.1 s"), (999.7, "1 s"), (1.5, "1.5 ms"), (45.3, "45 ms"),
])
def test_latency_format(value_ms: float, text: str) -> None:
    assert fmt_ms(value_ms) == text


@pytest.mark.parametrize(("fraction", "text"), [
    (1.05e-5, "0.001%"), (0.001, "0.1%"), (0.0123, "1.2%"), (0.0, "0%"),
])
def test_error_rate_format(fraction: float, text: str) -> None:
    assert fmt_pct(fraction) == text


def test_verdict_names_the_missed_service_and_window(tmp_path: Path) -> None:
    verdict = judge(load_run(write_synthetic_run(tmp_path / "run")))
    assert not verdict.met
    assert verdict.headline == "SLO missed: 1 of 2 services missed (browse)."
    browse, order = verdict.services
    assert browse.lines[0].ok is False
    assert browse.lines[0].text == (
        "browse missed its p99 SLO between 00:00:30 and 00:04:10: p99 reached 2.1 s against "
        "300 ms (whole run: 450 ms)")
    assert browse.lines[1].text == (
        "browse held its other objectives: error rate 0.04% against 0.1%")
    assert order.met and order.lines[0].text == (
        "order held its SLO: p99 250 ms against 800 ms; error rate 0% against 0.1%")


def test_a_met_objective_still_reports_per_tick_excursions(tmp_path: Path) -> None:
    summary = synthetic_summary()
    browse = summary["services"]["browse"]
    browse["slo"]["p99_ms"] = {"target": 300.0, "value": 280.0, "met": True}
    browse["slo_met"] = True
    verdict = judge(load_run(write_synthetic_run(tmp_path / "run", summary)))
    assert verdict.met and verdict.headline == "SLO met: all 2 services held their SLOs."
    assert verdict.services[0].lines[0].text == (
        "browse held its SLO: p99 280 ms against 300 ms; error rate 0.04% against 0.1% "
        "(per-tick p99 went above 300 ms between 00:00:30 and 00:04:10)")


def test_missed_error_rate_names_the_window_holding_the_losses(tmp_path: Path) -> None:
    summary = synthetic_summary()
    browse = summary["services"]["browse"]
    browse["slo"]["error_rate"] = {"target": 0.0001, "value": 0.0004, "met": False}
    verdict = judge(load_run(write_synthetic_run(tmp_path / "run", summary)))
    errors = verdict.services[0].objectives[1]
    # 3 timeouts in each 4,000-attempt tick from t = 90 to 300 (0.075%), plus 5 shed at 150.
    assert errors.windows == (Window(90.0, 310.0, 8 / 4000),)
    assert "between 00:00:30 and 00:04:10" in verdict.services[0].lines[1].text
    assert "48 attempts timed out, 5 shed, 0 failed" in verdict.services[0].lines[1].text


def test_capacity_estimated_from_utilization_matches_workers_over_service_time(
    tmp_path: Path,
) -> None:
    run = load_run(write_synthetic_run(tmp_path / "run"))
    per_instance_rps = BROWSE_WORKERS * 1000.0 / BROWSE_MEAN_MS  # 80 requests/s
    ready = run.series["browse"]["instances_ready"]
    estimated, exact = capacity_rps(run, "browse")
    assert not exact
    # Timed-out attempts occupied workers without completing: a 0.1% underestimate at most.
    assert estimated == pytest.approx(ready * per_instance_rps, rel=1e-3)
    summary = synthetic_summary()
    summary["services"]["browse"].update(workers=BROWSE_WORKERS, mean_service_ms=BROWSE_MEAN_MS)
    (run.run_dir / "summary.json").write_text(json.dumps(summary))
    given, exact = capacity_rps(load_run(run.run_dir), "browse")
    assert exact and given.tolist() == (ready * per_instance_rps).tolist()


def test_cumulative_cost_follows_instances_and_ends_at_the_summary_cost(tmp_path: Path) -> None:
    run = load_run(write_synthetic_run(tmp_path / "run"))
    spent = cumulative_cost(run, "browse")
    assert spent is not None
    # Instance-seconds per 10 s tick: 4 ready until t=90, then 4 ready + 4 booting until
    # t=120, then 8 ready: 9*40 + 3*80 + 48*80 = 4,440 in all.
    assert spent[-1] == pytest.approx(0.3)
    assert spent[8] == pytest.approx(0.3 * 360 / 4440)
    assert spent[11] == pytest.approx(0.3 * 600 / 4440)
    assert np.all(np.diff(spent) > 0)
