"""``peaksim loadtest``: run Locust against a host, then merge, report and gate.

This module never imports Locust or gevent: Locust runs as child processes (a local runner, or
a master plus ``workers`` worker processes on this machine), each in its own session. The run:

1. checks the input and the bounds (scaled duration, expected request count), and that the
   host answers HTTP (exit 2 with a clear message otherwise);
2. starts the reference shop for ``--local-shop`` (an ephemeral loopback port, its database in
   the run directory) and a ``/healthz`` poller for the pool columns;
3. runs Locust headless with the locustfile, waits for it within a wall-clock bound (the
   scaled duration + the drain time + a start-up allowance; then SIGTERM, then SIGKILL); on
   Ctrl-C stops it the same way and still writes what was measured;
4. merges ``results.jsonl`` into ``summary.json`` and ``timeseries.csv`` (the simulator's
   formats), optionally simulates the same scaled scenario (``--compare-sim``), writes the
   report and Locust's own CSV/HTML, and evaluates the gate;
5. points ``reports/<scenario>/latest`` at the run directory, only once its report is written.

Ctrl-C at any moment after the plan is checked: every child started so far is stopped (a second
Ctrl-C kills them), then what was measured is written as a report marked interrupted (without
``--compare-sim``) and the outcome says ``interrupted``; when nothing was measured yet,
``KeyboardInterrupt`` is raised after the clean-up and ``latest`` is left as it was. Ctrl-C
while the report is being written lets it finish (the outcome then says ``interrupted``); a
second one stops at once, leaving ``latest`` as it was.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from loadtests.collector import RESULTS_FILE
from loadtests.declared import effective_loadtest, environment_values
from loadtests.gate import GateResult, evaluate_gate
from loadtests.hosts import check_target, custom_services, tls_context
from loadtests.pools import PoolPoller, pool_columns
from loadtests.procs import (
    LOCUSTFILE,
    ShopProcess,
    check_reachable,
    free_port,
    sigint_deferred,
    sigint_postponed,
    spawn,
    stop,
    stop_all,
)
from loadtests.report import write_loadtest_report
from loadtests.results import merge_results
from loadtests.schedule import ARRIVALS
from loadtests.summary import TIMESERIES_COLUMNS, RunFacts, build_summary, timeseries_rows
from sim.errors import LoadTestError
from sim.interrupts import quit_on_sigint
from sim.model import Scenario, TrafficModel, load_scenario, sampler_for
from sim.parallel import Where
from sim.report import ReportFiles
from sim.runio import atomic_write_csv, atomic_write_json, new_run_dir, point_latest

MAX_SPAN_S = 6 * 3600.0
"""Longest load test (scaled seconds); longer replays are refused."""
STARTUP_ALLOWANCE_S = 60.0
"""Wall-clock time allowed on top of the run for Locust (and its workers) to start and stop."""
MAX_WORKERS = 64

StatusFn = Callable[[str], None]


@dataclass(frozen=True)
class LoadTestConfig:
    """What ``peaksim loadtest`` was asked to do (None: the scenario's ``loadtest`` default)."""

    scenario_path: Path
    host: str | None = None
    local_shop: bool = False
    time_scale: float | None = None
    rate_scale: float | None = None
    duration_s: float | None = None
    workers: int = 0
    out: Path | None = None
    compare_sim: bool = False
    arrivals: str = "poisson"
    lag_threshold_ms: float = 50.0
    lag_tolerance: float = 0.01
    window_s: float | None = None
    request_timeout_s: float = 30.0
    max_users: int = 2000
    max_requests: int = 5_000_000
    seed: int | None = None
    locustfile: Path | None = None
    """The user's own Locust classes (``peaksim_service = NAME``) for those services."""
    insecure: bool = False
    ca_bundle: Path | None = None
    allow_remote: bool = False
    sim_replications: int | None = None
    """With ``compare_sim``: simulate this many seeds and judge against their spread."""
    sim_place: Where = Where()
    """Where the replicated simulations run (``--jobs``/``--cluster``)."""


@dataclass(frozen=True)
class LoadTestOutcome:
    """A finished (or interrupted) load test."""

    run_dir: Path
    summary: dict[str, Any]
    gate: GateResult
    report: ReportFiles
    interrupted: bool


@dataclass(frozen=True)
class _Plan:
    scenario: Scenario
    traffic: TrafficModel
    time_scale: float
    """The load test's own factors (the scenario's traffic section multiplies them)."""
    rate_scale: float
    span_s: float
    window_s: float
    expected_requests: float
    host: str | None
    """The target's base URL (None: the reference shop, started for the run)."""
    services: tuple[str, ...]


def plan_run(config: LoadTestConfig) -> _Plan:
    """Validate ``config`` against its scenario and the bounds; raise ``LoadTestError``."""
    if config.host is not None and config.local_shop:
        raise LoadTestError("give --host URL or --local-shop, not both")
    if not 0 <= config.workers <= MAX_WORKERS:
        raise LoadTestError(f"--workers must be 0..{MAX_WORKERS}, got {config.workers}")
    if config.arrivals not in ARRIVALS:
        raise LoadTestError(f"--arrivals must be one of {', '.join(ARRIVALS)}")
    scenario = load_scenario(config.scenario_path)
    host = None
    if not config.local_shop:
        host = config.host or scenario.loadtest.host
        if host is None:
            raise LoadTestError(f"{config.scenario_path}: no target: give --host URL or "
                                f"--local-shop (or loadtest.host in the scenario)")
        host = check_target(host, config.allow_remote)
    declared = effective_loadtest(scenario)
    environment_values(declared, str(config.scenario_path))  # missing secrets: now, not later
    custom = custom_services(config.locustfile) if config.locustfile else set()
    replayed = [s for s in scenario.services if s in declared.requests or s in custom]
    if not replayed:
        raise LoadTestError(f"{config.scenario_path}: no service has a request: declare them "
                            f"under loadtest.requests (docs/loadtests.md) or give --locustfile")
    loadtest = scenario.loadtest
    time_scale = config.time_scale or loadtest.time_scale
    rate_scale = config.rate_scale or loadtest.rate_scale
    traffic = TrafficModel(scenario, rate_scale=rate_scale, time_scale=time_scale)
    span_s = traffic.duration_s
    if config.duration_s is not None:
        span_s = min(span_s, config.duration_s)
    if span_s > MAX_SPAN_S:
        raise LoadTestError(f"the scaled run lasts {span_s:,.0f} s, more than the "
                            f"{MAX_SPAN_S:,.0f} s a load test may take: raise --time-scale or "
                            f"give --duration")
    expected = sum(traffic.expected_count(s, 0.0, span_s, step_s=0.05) for s in replayed)
    if expected > config.max_requests:
        raise LoadTestError(f"the run would send about {expected:,.0f} requests, more than "
                            f"--max-requests {config.max_requests:,}: lower --rate-scale or "
                            f"--duration, or raise --max-requests")
    window_s = config.window_s or min(10.0, loadtest.window_s)
    return _Plan(scenario, traffic, time_scale, rate_scale, span_s, window_s, expected, host,
                 tuple(replayed))


def locust_args(config: LoadTestConfig, plan: _Plan, host: str, run_dir: Path) -> list[str]:
    """The locustfile's own options plus Locust's output options (shared by every process)."""
    args = [
        "--host", host, "--scenario", str(Path(config.scenario_path).resolve()),
        "--time-scale", repr(plan.time_scale), "--rate-scale", repr(plan.rate_scale),
        "--duration", repr(plan.span_s), "--arrivals", config.arrivals,
        "--lag-threshold-ms", repr(config.lag_threshold_ms),
        "--lag-tolerance", repr(config.lag_tolerance), "--window", repr(plan.window_s),
        "--request-timeout", repr(config.request_timeout_s), "--results-dir", str(run_dir),
        "--max-users", str(config.max_users),
    ]
    if config.seed is not None:
        args += ["--replay-seed", str(config.seed)]
    if config.locustfile is not None:
        args += ["--peaksim-locustfile", str(Path(config.locustfile).resolve())]
    if config.insecure:
        args += ["--insecure"]
    if config.ca_bundle is not None:
        args += ["--ca-bundle", str(Path(config.ca_bundle).resolve())]
    return args


def run_loadtest(config: LoadTestConfig, status: StatusFn | None = None,
                 announce: StatusFn | None = None) -> LoadTestOutcome:
    """Run the load test of ``config``; see the module docstring. Raises ``LoadTestError``.
    ``status`` gets passing progress lines; ``announce`` the lines to keep (the target, said
    before the first request is sent)."""
    with quit_on_sigint():  # checks only, nothing to clean up: Ctrl-C exits 130 at once
        plan = plan_run(config)
        host = plan.host
        context = tls_context(config.insecure, config.ca_bundle)
        if host is not None:
            check_reachable(host, context=context)
    run_dir = new_run_dir(plan.scenario.name, config.out, kind="loadtest", point=False)
    say = status or (lambda _text: None)
    started_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    wall_start = time.monotonic()
    shop: ShopProcess | None = None
    poller: PoolPoller | None = None
    interrupted = False
    try:
        if config.local_shop:
            say("starting the reference shop")
            with sigint_deferred():  # the handle is kept, so the clean-up below can stop it
                shop = ShopProcess(Path(config.scenario_path), run_dir / "shop.db",
                                   run_dir / "shop.log", wait=False)
            host = shop.wait_ready()
            check_reachable(host)
        assert host is not None
        if announce is not None:
            announce(f"target: {host} ({', '.join(plan.services)})")
        poller = PoolPoller(host)
        poller.start()
        interrupted = _run_locust(config, plan, host, run_dir, say)
    except KeyboardInterrupt:
        interrupted = True
        say("interrupted: stopping the load test and writing what was measured")
    finally:
        if stop_all([poller.stop if poller is not None else _nothing,
                     shop.stop if shop is not None else _nothing],
                    lambda: [shop.process] if shop is not None else []):
            interrupted = True
    if interrupted and not _measured(run_dir / RESULTS_FILE):
        raise KeyboardInterrupt  # nothing to report; the run directory keeps the logs
    say("merging results")
    assert host is not None
    with sigint_postponed() as pressed:  # the report of what was measured is worth finishing
        outcome = _finish(config, plan, run_dir, host, poller, started_at,
                          time.monotonic() - wall_start, interrupted)
        if config.out is None:
            point_latest(run_dir.parent, run_dir)
    return replace(outcome, interrupted=True) if pressed else outcome


def _nothing() -> None:
    """A stopping step for a child that was never started."""


def _measured(path: Path) -> bool:
    """Whether Locust got as far as writing its results (a first line with the meta)."""
    try:
        with path.open("rb") as handle:
            return handle.readline().endswith(b"\n")
    except OSError:
        return False


def _run_locust(config: LoadTestConfig, plan: _Plan, host: str, run_dir: Path,
                say: StatusFn) -> bool:
    """Run Locust to completion within the time bound; True when interrupted by Ctrl-C."""
    base = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE)]
    shared = locust_args(config, plan, host, run_dir)
    master_cmd = base + ["--headless", *shared, "--csv", str(run_dir / "locust"),
                         "--html", str(run_dir / "locust.html"), "--only-summary"]
    workers: list[subprocess.Popen[bytes]] = []
    port = 0
    if config.workers:
        port = free_port()
        master_cmd += ["--master", "--expect-workers", str(config.workers),
                       "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port)]
    bound_s = STARTUP_ALLOWANCE_S + plan.span_s + config.request_timeout_s + 1.0
    master: subprocess.Popen[bytes] | None = None
    interrupted = False
    try:
        with sigint_deferred():  # every child's handle is kept for the clean-up
            master = spawn(master_cmd, run_dir / "locust.log")
            for index in range(config.workers):
                workers.append(spawn(
                    base + ["--worker", "--master-host", "127.0.0.1", "--master-port",
                            str(port), *shared], run_dir / f"locust-worker-{index}.log"))
        deadline = time.monotonic() + bound_s
        started = time.monotonic()
        while master.poll() is None:
            if time.monotonic() > deadline:
                say(f"time bound of {bound_s:,.0f} s reached: stopping Locust")
                break
            say(f"load test running: {time.monotonic() - started:,.0f} s "
                f"(run {plan.span_s:,.0f} s + drain)")
            try:
                master.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                continue
    except KeyboardInterrupt:
        interrupted = True
        say("interrupted: stopping Locust and writing what was measured")
    finally:
        children = [p for p in (master, *workers) if p is not None]
        if stop_all([partial(stop, p, signum=signal.SIGINT if p is master else signal.SIGTERM)
                     for p in children], lambda: children):
            interrupted = True
    return interrupted


def _finish(config: LoadTestConfig, plan: _Plan, run_dir: Path, host: str,
            poller: PoolPoller | None, started_at: str, wall_s: float,
            interrupted: bool) -> LoadTestOutcome:
    merged = merge_results(run_dir / RESULTS_FILE, plan.span_s)
    if not merged.sources and not interrupted:
        tail = _tail(run_dir / "locust.log")
        raise LoadTestError(f"Locust sent nothing (see {run_dir / 'locust.log'}): {tail}")
    scenario = plan.scenario
    workers = {n: s.workers for n, s in scenario.services.items()}
    pools = {}
    if poller is not None and poller.supported and "t0_unix" in merged.meta:
        pools = pool_columns(poller.samples, float(merged.meta["t0_unix"]), merged.window_s,
                             merged.n_windows, workers)
    facts = RunFacts(scenario, plan.traffic, "local shop" if config.local_shop else host,
                     config.workers, config.arrivals, config.lag_threshold_ms,
                     config.lag_tolerance, started_at, wall_s, interrupted)
    summary = build_summary(merged, facts, pools)
    for name, service in summary["services"].items():
        if name in pools:
            spec = scenario.services[name]
            service["mean_service_ms"] = sampler_for(spec.service_time,
                                                     scenario.base_dir).mean_ms
    if config.compare_sim and not interrupted and config.sim_replications is not None:
        from loadtests.simreplicate import compare_replicated, simulate_replicated

        summaries = simulate_replicated(scenario, plan.rate_scale, plan.time_scale, plan.span_s,
                                        merged.window_s, run_dir, config.sim_replications,
                                        config.sim_place, seed=config.seed)
        summary["sim_vs_real"] = compare_replicated(summaries, summary)
    elif config.compare_sim and not interrupted:
        from loadtests.simcompare import compare, simulate_load_test

        sim_summary = simulate_load_test(scenario, plan.rate_scale, plan.time_scale,
                                         plan.span_s, merged.window_s, run_dir,
                                         seed=config.seed)
        summary["sim_vs_real"] = compare(sim_summary, summary)
    gate = evaluate_gate(summary)
    summary["gate"] = {"exit_code": gate.exit_code, "headline": gate.headline,
                       "reasons": list(gate.reasons)}
    atomic_write_csv(run_dir / "timeseries.csv", TIMESERIES_COLUMNS,
                     timeseries_rows(merged, facts, pools))
    atomic_write_json(run_dir / "summary.json", summary)
    report = write_loadtest_report(run_dir)
    return LoadTestOutcome(run_dir, summary, gate, report, interrupted)


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return " | ".join(text.strip().splitlines()[-lines:])
