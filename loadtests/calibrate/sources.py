"""Measurements already taken, read as staircase steps (``peaksim calibrate --from``).

- ``results.jsonl`` of a ``peaksim loadtest`` (or of a calibration's own staircase): the
  per-window measurements of the service, cut into steps where the offered rate changes
  (``steps.detect_steps``), each step's first ``settle_s`` left out.
- Locust's ``*_stats.csv`` (``locust --csv``): one file is one load level. The row named
  after the service (else ``Aggregated``) gives the rate, failures and percentiles; the
  latency distribution is rebuilt from those percentiles (piecewise-linear quantile function),
  so no goodness-of-fit p-value is valid for it (Locust also rounds percentiles to two
  significant figures and counts failed requests in them).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from loadtests.calibrate.distfit import pseudo_samples
from loadtests.calibrate.steps import StepStats, detect_steps, histogram_stats, step_stats
from loadtests.collector import iter_results
from loadtests.results import merge_results
from sim.errors import CalibrationError, LoadTestError, PeaksimError
from sim.metrics import latency_bins
from sim.model import TrafficModel, load_scenario

LOCUST_QUANTILES = {"50%": 0.5, "66%": 0.66, "75%": 0.75, "80%": 0.8, "90%": 0.9, "95%": 0.95,
                    "98%": 0.98, "99%": 0.99, "99.9%": 0.999, "99.99%": 0.9999}
PSEUDO_SAMPLES = 1000


def is_locust_csv(path: Path) -> bool:
    return path.suffix == ".csv"


def steps_from_results(path: Path, service: str, settle_s: float) -> list[StepStats]:
    """Steps of ``service`` in a ``results.jsonl``: where the replayed scenario's target rate
    changes when its file is still readable, else where the offered rate changes."""
    meta = _meta(path)
    # Answers after the last send (the drain) get windows of their own past the run.
    drain_s = float(meta.get("request_timeout_s", 30.0)) + 1.0
    try:
        merged = merge_results(path, float(meta["until_s"]) + drain_s)
    except (LoadTestError, KeyError, ValueError, TypeError) as exc:
        raise CalibrationError(f"{path}: not a load test's results file: {exc}") from None
    results = merged.services.get(service)
    if results is None:
        known = ", ".join(sorted(merged.services)) or "none"
        raise CalibrationError(f"{path}: no measurements of service {service!r} (it has: "
                               f"{known})")
    until_s = float(meta["until_s"])
    cuts = _target_steps(meta, service, merged.window_s, until_s)
    if cuts is None:
        cuts = [(a, min(b, until_s)) for a, b in detect_steps(results, merged.window_s)
                if a < until_s]
    return step_stats(results, merged.window_s, cuts, settle_s)


def _meta(path: Path) -> dict[str, Any]:
    try:
        first = next(iter_results(path), {})
    except (OSError, ValueError) as exc:
        raise CalibrationError(f"{path}: cannot read: {exc}") from None
    meta = first.get("meta") if isinstance(first, dict) else None
    if not isinstance(meta, dict) or "until_s" not in meta or "window_s" not in meta:
        raise CalibrationError(f"{path}: expected a first line {{\"meta\": {{..., "
                               f"\"until_s\", \"window_s\"}}}} (a load test's results.jsonl)")
    return meta


def _target_steps(meta: dict[str, Any], service: str, window_s: float,
                  until_s: float) -> list[tuple[float, float]] | None:
    """Stretches of windows at one target rate of the replayed scenario (None: unknown)."""
    try:
        scenario = load_scenario(Path(str(meta["scenario_file"])))
        traffic = TrafficModel(scenario, rate_scale=float(meta["rate_scale"]),
                               time_scale=float(meta["time_scale"]))
    except (KeyError, ValueError, TypeError, PeaksimError):
        return None
    if service not in traffic.services:
        return None
    n = int(math.ceil(until_s / window_s - 1e-9))
    rates = traffic.rates_rps(service, (np.arange(n) + 0.5) * window_s)
    bounds, start = [], 0
    for i in range(1, n + 1):
        if i == n or abs(rates[i] - rates[start]) > 0.01 * max(rates[start], 1e-9):
            if rates[start] > 0:
                bounds.append((start * window_s, i * window_s))
            start = i
    return bounds


def step_from_locust_csv(path: Path, service: str, index: int) -> StepStats:
    """One step from a Locust ``*_stats.csv`` (see the module docstring)."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CalibrationError(f"{path}: cannot read the Locust CSV: {exc}") from None
    chosen = ([r for r in rows if r.get("Name") == service]
              or [r for r in rows if r.get("Name") == "Aggregated"])
    if not chosen:
        raise CalibrationError(f"{path}: no row named {service!r} or 'Aggregated' (is this "
                               f"Locust's --csv *_stats.csv?)")
    row = chosen[0]
    try:
        count = int(row["Request Count"])
        failures = int(row["Failure Count"])
        rate = float(row["Requests/s"])
        average_ms = float(row["Average Response Time"])
        quantiles = {q: float(row[k]) for k, q in LOCUST_QUANTILES.items()
                     if row.get(k) not in (None, "", "N/A")}
    except (KeyError, ValueError) as exc:
        raise CalibrationError(f"{path}: row {row.get('Name')!r}: expected Locust's columns "
                               f"(Request Count, Failure Count, Requests/s, Average Response Time, "
                               f"50%..99.99%): "
                               f"{exc}") from None
    if count <= 0 or rate <= 0 or not quantiles:
        raise CalibrationError(f"{path}: row {row.get('Name')!r} has no requests")
    span_s = count / rate
    samples = pseudo_samples(quantiles, PSEUDO_SAMPLES)
    bins_index, bins_count = np.unique(latency_bins(samples), return_counts=True)
    # Pseudo-samples carry the distribution's shape; their number stands for the real count.
    bins = {int(i): max(1, int(round(c * (count - failures) / PSEUDO_SAMPLES)))
            for i, c in zip(bins_index, bins_count, strict=True)}
    served = (count - failures) / span_s
    return StepStats(
        index=index, start_s=0.0, end_s=span_s, span_s=span_s, offered_rps=rate,
        served_rps=served, served_rps_windows=(served,) * max(1, int(math.floor(span_s))),
        completed=count - failures, timed_out=0, shed=0, failed=failures, late=0,
        intended=count, histogram=bins,
        # The exact mean Locust reports, not the interpolated percentiles' (which miss the tail).
        latency_ms={**histogram_stats(bins), "mean": average_ms},
        max_latency_ms=float(row.get("Max Response Time") or math.nan),
    )


def read_steps(paths: Sequence[Path], service: str, settle_s: float) -> tuple[list[StepStats],
                                                                            bool]:
    """Steps of ``service`` from every file of ``paths``, and whether they hold exact samples
    (False as soon as one is a Locust CSV)."""
    steps: list[StepStats] = []
    exact = True
    for path in paths:
        if not path.is_file():
            raise CalibrationError(f"{path}: no such file (expected results.jsonl or a Locust "
                                   f"*_stats.csv)")
        if is_locust_csv(path):
            steps.append(step_from_locust_csv(path, service, len(steps)))
            exact = False
        else:
            for step in steps_from_results(path, service, settle_s):
                steps.append(_reindexed(step, len(steps)))
    if not steps:
        raise CalibrationError(f"no steps of {service!r} found in "
                               f"{', '.join(map(str, paths))}")
    return steps, exact


def _reindexed(step: StepStats, index: int) -> StepStats:
    return replace(step, index=index)
