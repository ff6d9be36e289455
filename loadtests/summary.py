"""A load test's ``summary.json`` and ``timeseries.csv``, in the simulator's formats.

Same per-service keys as a simulation (docs/formats.md) with ``"kind": "loadtest"``; latency
percentiles are the coordinated-omission corrected ones (from the intended send time), the raw
ones are in ``latency_raw_ms``. Extra per-service keys: ``load`` (target vs achieved rate,
generator lag) and ``unfinished`` (attempts sent but never answered before the run stopped,
counted as failures). Extra top-level keys: ``generator`` (did it keep up), ``loadtest`` (how
the run was made). The series has the simulator's columns per window (``tick_s`` = the window)
plus ``target_rps``, ``intended``, ``late``, ``dropped``, ``lag_max_ms``, ``final_failures``
and ``raw_p50_ms``/``raw_p95_ms``/``raw_p99_ms``. Pool columns (instances, busy workers,
queue) come from the target's ``/healthz`` when it reports them, else they are 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from loadtests.pools import POOL_COLUMNS
from loadtests.replay import lag_verdict
from loadtests.results import MergedResults, ServiceResults
from sim import __version__
from sim.model import (
    Scenario,
    ServiceOutcome,
    TrafficModel,
    judge_objectives,
    slo_percentiles,
)

TIMESERIES_COLUMNS = (
    "t_s", "service", "arrivals", "retries", "completed", "waited", "timed_out", "shed", "failed",
    "in_queue", "busy_workers", "instances_desired", "instances_booting", "instances_ready",
    "utilization", "offered_rps", "p50_ms", "p95_ms", "p99_ms",
    "target_rps", "intended", "late", "dropped", "lag_max_ms", "final_failures",
    "raw_p50_ms", "raw_p95_ms", "raw_p99_ms", "no_data",
)


@dataclass(frozen=True)
class RunFacts:
    """How the load test was run (for the summary; not measured)."""

    scenario: Scenario
    traffic: TrafficModel
    target: str
    """"local shop" or the host URL."""
    workers: int
    arrivals: str
    lag_threshold_ms: float
    lag_tolerance: float
    started_at: str
    wall_s: float
    interrupted: bool = False


def _curve_peak(facts: RunFacts, service: str, span_s: float) -> dict[str, float]:
    """The replayed curve's highest rate and when, on a 1-s grid of scenario time (the peak
    definition the simulator's reports use), within the ``span_s`` that was replayed."""
    step = 1.0 / facts.traffic.time_scale
    grid = np.arange(0.0, span_s + step / 2, step)
    rates = facts.traffic.rates_rps(service, grid)
    i = int(np.argmax(rates))
    return {"curve_peak_rps": round(float(rates[i]), 6), "curve_peak_s": round(float(grid[i]), 6)}


def rate_tolerance(expected: float, arrivals: str) -> float:
    """How far the achieved count may be from the expected one (a fraction) before the target
    counts as missed: 5%, or three Poisson standard deviations when that is wider (a Poisson
    schedule's own count varies by sqrt(n))."""
    if expected <= 0:
        return 0.05
    if arrivals == "paced":
        return max(0.05, 1.0 / expected)
    return max(0.05, 3.0 / math.sqrt(expected))


def service_summary(
    results: ServiceResults, facts: RunFacts, span_s: float, window_s: float,
    pools: Mapping[str, np.ndarray] | None,
) -> dict[str, Any]:
    c = {name: results.total(name) for name in results.counts}
    sent = c["sent"]
    answered = c["completed"] + c["timed_out"] + c["shed"] + c["failed"]
    unfinished = max(0, sent + c["retries"] - answered)
    # A send that could not go for want of a captured value is a bad event of its service:
    # the flow it stands for failed before its request (never silently left out).
    no_data = c["no_data"]
    tried = sent + no_data
    bad = c["final_failures"] + unfinished + no_data
    error_rate = min(1.0, bad / tried) if tried else None
    latency = ServiceResults.latency(results.corrected_total)
    outcome = ServiceOutcome(sent, results.first_total.distribution(), error_rate, latency)
    slo = judge_objectives(facts.scenario.slo.get(results.name), outcome)
    target = facts.traffic.expected_count(results.name, 0.0, span_s, step_s=0.01)
    tolerance = rate_tolerance(target, facts.arrivals)
    kept_up = lag_verdict(c["intended"], c["late"], c["dropped"], facts.lag_tolerance)
    rate_ok = target <= 0 or abs(tried / target - 1.0) <= tolerance
    offered = results.counts["sent"] / window_s
    lag_sum = float(results.lag_ms_sum.sum())
    spec = facts.scenario.services[results.name]
    summary: dict[str, Any] = {
        "requests": sent, "retries": c["retries"], "completed": c["completed"],
        "timed_out": c["timed_out"], "shed": c["shed"], "failed": c["failed"],
        "unfinished": unfinished, "no_data": no_data,
        "final_failures": c["final_failures"] + unfinished + no_data,
        "failure_reasons": dict(sorted(results.reasons.items(), key=lambda kv: -kv[1])[:20]),
        "error_rate": error_rate, "latency_ms": latency,
        "latency_slo_ms": slo_percentiles(outcome),
        "latency_raw_ms": ServiceResults.latency(results.raw_total),
        "offered_peak_rps": float(offered.max()) if offered.size else 0.0,
        "offered_peak_s": round(float(np.argmax(offered)) * window_s, 6) if offered.size else 0.0,
        **_curve_peak(facts, results.name, span_s),
        "load": {
            "target_requests": round(target, 1), "intended": c["intended"], "sent": sent,
            "late": c["late"], "dropped": c["dropped"], "no_data": no_data,
            "target_rps": round(target / span_s, 4), "achieved_rps": round(sent / span_s, 4),
            "achieved_ratio": round(sent / target, 4) if target > 0 else None,
            "rate_tolerance": round(tolerance, 4),
            "lag_mean_ms": round(lag_sum / sent, 3) if sent else None,
            "lag_max_ms": round(float(results.lag_ms_max.max()), 3),
            "kept_up": kept_up, "rate_ok": rate_ok,
        },
        "timeout_ms": spec.timeout_ms,
        "slo": slo,
        "slo_met": all(v["met"] for v in slo.values()),
    }
    if pools is not None:
        ready = pools["instances_ready"]
        summary["instances"] = {"min": float(ready.min()), "max": float(ready.max()),
                                "mean": round(float(ready.mean()), 3)}
        summary["workers"] = spec.workers
    return summary


def build_summary(
    merged: MergedResults, facts: RunFacts, pools: Mapping[str, Mapping[str, np.ndarray]],
) -> dict[str, Any]:
    """The content of ``summary.json`` for a load test."""
    span_s = float(merged.meta["until_s"])
    services = {
        name: service_summary(results, facts, span_s, merged.window_s, pools.get(name))
        for name, results in merged.services.items()
    }
    behind = [name for name, s in services.items()
              if not (s["load"]["kept_up"] and s["load"]["rate_ok"])]
    scenario = facts.scenario
    time_scale = facts.traffic.time_scale
    return {
        "peaksim_version": __version__,
        "kind": "loadtest",
        "scenario": scenario.name,
        "scenario_file": scenario.source,
        "description": scenario.description,
        "seed": merged.meta.get("seed"),
        "duration_s": span_s,
        "tick_s": merged.window_s,
        "start_clock": scenario.start_clock if time_scale == 1.0 else None,
        "policy": "static" if facts.target == "local shop" else "unknown",
        "traffic": {"kind": scenario.traffic.kind, "rate_scale": facts.traffic.rate_scale,
                    "time_scale": time_scale, "arrivals": facts.arrivals},
        "started_at": facts.started_at,
        "wall_s": round(facts.wall_s, 3),
        "sim_requests": None,
        "slo_met": all(s["slo_met"] for s in services.values()),
        "services": services,
        "events": _behind_events(merged, facts),
        "generator": {
            "kept_up": not behind, "behind": behind, "processes": len(merged.sources),
            "workers": facts.workers, "lag_threshold_ms": facts.lag_threshold_ms,
            "lag_tolerance": facts.lag_tolerance, "interrupted": facts.interrupted,
        },
        "loadtest": {"target": facts.target, "window_s": merged.window_s,
                     "skipped_services": list(merged.meta.get("skipped", []))},
    }


def _behind_events(merged: MergedResults, facts: RunFacts) -> list[dict[str, Any]]:
    """One event per window in which the generator fell behind (shown in the report)."""
    events = []
    for name, results in merged.services.items():
        counts = results.counts
        for w in range(merged.n_windows):
            intended = int(counts["intended"][w])
            bad = int(counts["late"][w] + counts["dropped"][w])
            if intended and not lag_verdict(intended, int(counts["late"][w]),
                                            int(counts["dropped"][w]), facts.lag_tolerance):
                events.append({
                    "t_s": w * merged.window_s, "service": name, "kind": "generator_behind",
                    "reason": f"{bad} of {intended} sends late (> {facts.lag_threshold_ms:g} ms) "
                              f"or never sent; worst lag {results.lag_ms_max[w]:,.0f} ms"})
    return events


def timeseries_rows(
    merged: MergedResults, facts: RunFacts, pools: Mapping[str, Mapping[str, np.ndarray]],
) -> list[list[Any]]:
    """Rows of ``timeseries.csv``: one per window per service, ordered by time."""
    span_s = float(merged.meta["until_s"])
    w_s = merged.window_s
    per_service = {}
    for name, results in merged.services.items():
        corrected, raw = results.window_percentiles(), results.window_percentiles(raw=True)
        per_service[name] = (results, corrected, raw, pools.get(name))
    rows: list[list[Any]] = []
    for w in range(merged.n_windows):
        start = w * w_s
        width = max(1e-9, min(w_s, span_s - start)) if start < span_s else w_s
        for name, (results, corrected, raw, pool) in per_service.items():
            c = {k: int(v[w]) for k, v in results.counts.items()}
            target = facts.traffic.expected_count(name, start, start + width, step_s=0.01)
            row: list[Any] = [round(start, 6), name, c["sent"], c["retries"], c["completed"], "",
                              c["timed_out"], c["shed"], c["failed"]]
            row += [round(float(pool[col][w]), 4) if pool is not None else 0
                    for col in POOL_COLUMNS]
            row += [round(c["sent"] / width, 4)]
            row += [_cell(corrected[q][w]) for q in ("p50", "p95", "p99")]
            row += [round(target / width, 4), c["intended"], c["late"], c["dropped"],
                    round(float(results.lag_ms_max[w]), 3), c["final_failures"]]
            row += [_cell(raw[q][w]) for q in ("p50", "p95", "p99")]
            row += [c["no_data"]]
            rows.append(row)
    return rows


def _cell(value: float) -> Any:
    return "" if np.isnan(value) else round(float(value), 4)
