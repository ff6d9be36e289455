"""The one path from a rate profile to measurements: ``measure_profile``.

Calibration never talks to Locust itself. It hands ``measure_profile`` a service, a staircase
of constant-rate steps and the user's scenario; that function replays the staircase for that
one service with ``loadtests.profile.replay_profile`` (the load test as a function: the same
open-model replay, corrected latencies and declared requests, ``loadtest.requests``, as
``peaksim loadtest``) and returns the merged per-window measurements of the service. Whatever
the load tester learns to send, calibration sends too.

``probe_rtt_ms`` measures the network round trip of a trivial request (``/healthz`` by
default), subtracted from light-load latencies to estimate service times.
"""

from __future__ import annotations

import http.client
import ssl
import statistics
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from loadtests.collector import RESULTS_FILE
from loadtests.profile import replay_profile
from loadtests.results import ServiceResults, merge_results
from sim.errors import CalibrationError

StatusFn = Callable[[str], None]
MAX_STEP_RATE_RPS = 20_000.0
"""Highest step rate calibration sends (one generator process tops out near 3,000/s here)."""


@dataclass(frozen=True)
class Step:
    """One constant-rate step of a staircase."""

    rate_rps: float
    duration_s: float


@dataclass(frozen=True)
class Target:
    """The system calibration measures, and how the load tester may reach it (the options of
    ``peaksim loadtest``: a non-loopback host needs ``allow_remote``; TLS verification;
    the user's own Locust classes for some services)."""

    url: str
    allow_remote: bool = False
    insecure: bool = False
    ca_bundle: Path | None = None
    locustfile: Path | None = None


@dataclass(frozen=True)
class Measured:
    """What one replay of a profile measured for its service."""

    results: ServiceResults
    window_s: float
    run_dir: Path


MeasureFn = Callable[
    [Path, Target, str, Sequence[Step], Path, float, float, int | None, StatusFn | None],
    Measured,
]
"""The signature of ``measure_profile`` (scenario, target, service, steps, out_dir, window_s,
request_timeout_s, seed, status)."""


def step_bounds(steps: Sequence[Step]) -> list[tuple[float, float]]:
    """``(start_s, end_s)`` of every step in run time."""
    bounds, t = [], 0.0
    for step in steps:
        bounds.append((t, t + step.duration_s))
        t += step.duration_s
    return bounds


def check_steps(steps: Sequence[Step], window_s: float) -> None:
    """Raise ``CalibrationError`` unless every step is a positive rate lasting whole windows."""
    if not steps:
        raise CalibrationError("a staircase needs at least one step")
    for index, step in enumerate(steps):
        if not 0 < step.rate_rps <= MAX_STEP_RATE_RPS:
            raise CalibrationError(f"step {index + 1}: rate must be in (0, "
                                   f"{MAX_STEP_RATE_RPS:g}] rps, got {step.rate_rps:g}")
        windows = step.duration_s / window_s
        if step.duration_s < 2 * window_s or abs(windows - round(windows)) > 1e-6:
            raise CalibrationError(f"step {index + 1}: duration must be a whole number (>= 2) "
                                   f"of {window_s:g}-s windows, got {step.duration_s:g} s")


def step_profile(service: str, steps: Sequence[Step]) -> dict[str, list[tuple[float, float]]]:
    """``steps`` as the load tester's rate profile: ``{service: [(start_s, rate_rps), ...]}``."""
    return {service: [(start_s, step.rate_rps)
                      for (start_s, _end_s), step in zip(step_bounds(steps), steps, strict=True)]}


def read_raw(path: Path) -> dict[str, Any]:
    """The scenario file as a plain mapping (it must also load as a scenario)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CalibrationError(f"{path}: cannot read the scenario: {exc}") from None
    if not isinstance(data, dict):
        raise CalibrationError(f"{path}: expected a mapping at the top of the scenario")
    return data


def measure_profile(
    scenario_path: Path, target: Target, service: str, steps: Sequence[Step], out_dir: Path,
    window_s: float = 1.0, request_timeout_s: float = 5.0, seed: int | None = None,
    status: StatusFn | None = None,
) -> Measured:
    """Replay ``steps`` against ``service`` of ``target``; return its per-window measurements.

    ``out_dir`` receives the load test's run directory (with the staircase scenario it
    replayed). Raises ``CalibrationError`` for a bad plan, ``LoadTestError`` /
    ``ScenarioError`` when the replay cannot run.
    """
    check_steps(steps, window_s)
    bounds = step_bounds(steps)
    outcome = replay_profile(
        scenario_path, step_profile(service, steps), bounds[-1][1], host=target.url,
        out=out_dir / f"loadtest-{service}", window_s=window_s,
        request_timeout_s=request_timeout_s, locustfile=target.locustfile,
        insecure=target.insecure, ca_bundle=target.ca_bundle,
        allow_remote=target.allow_remote, seed=seed, status=status)
    if outcome.interrupted:
        # Ctrl-C reached Locust first; the run directory keeps what it measured.
        raise KeyboardInterrupt
    # Answers that arrive after the last step (the drain) get windows of their own, so they
    # are not counted in the last step's served rate.
    drain_s = request_timeout_s + 1.0
    merged = merge_results(outcome.run_dir / RESULTS_FILE, bounds[-1][1] + drain_s)
    if service not in merged.services:
        raise CalibrationError(f"the replay measured nothing for {service!r} (does the "
                               f"scenario declare requests for it? see {outcome.run_dir})")
    return Measured(merged.services[service], merged.window_s, outcome.run_dir)


def probe_rtt_ms(host: str, path: str = "/healthz", count: int = 50,
                 timeout_s: float = 2.0, context: ssl.SSLContext | None = None) -> float:
    """Median round trip (ms) of ``count`` sequential ``GET path`` on one keep-alive
    connection (any HTTP status counts: it is the network and server overhead we want)."""
    parts = urllib.parse.urlsplit(host)
    hostname = parts.hostname or "127.0.0.1"
    connection: http.client.HTTPConnection = (
        http.client.HTTPSConnection(hostname, parts.port, timeout=timeout_s, context=context)
        if parts.scheme == "https"
        else http.client.HTTPConnection(hostname, parts.port, timeout=timeout_s))
    samples = []
    try:
        for _ in range(count):
            started = time.perf_counter()
            connection.request("GET", path)
            connection.getresponse().read()
            samples.append((time.perf_counter() - started) * 1000.0)
    except (OSError, http.client.HTTPException) as exc:
        raise CalibrationError(f"cannot measure the round trip to {host}{path}: {exc}") from None
    finally:
        connection.close()
    return statistics.median(samples)
