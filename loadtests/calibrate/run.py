"""The ``peaksim calibrate`` command: staircase (or files) -> fits -> scenario and report."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from loadtests.calibrate.fit import ServiceCalibration, calibrate_service
from loadtests.calibrate.measure import StatusFn, Target, probe_rtt_ms, read_raw
from loadtests.calibrate.output import write_json, write_scenario
from loadtests.calibrate.report import write_report
from loadtests.calibrate.sources import read_steps
from loadtests.calibrate.staircase import StaircasePlan, StepFn, climb
from loadtests.hosts import check_target, tls_context
from loadtests.procs import check_reachable
from sim.errors import CalibrationError
from sim.model import load_scenario
from sim.runio import new_run_dir

MAX_INSTANCES = 10_000


@dataclass(frozen=True)
class CalibrateConfig:
    """What ``peaksim calibrate`` was asked to do.

    Exactly one of ``host`` (send a staircase) or ``from_paths`` (read measurements) is set.
    ``instances`` is the size of the measured deployment; ``rtt_ms`` None means: measure it on
    ``rtt_path`` (with ``host``), 0 (with ``from_paths``).
    """

    scenario_path: Path
    services: tuple[str, ...]
    host: str | None = None
    from_paths: tuple[Path, ...] = ()
    instances: int = 1
    out: Path | None = None
    report_dir: Path | None = None
    plan: StaircasePlan = field(default_factory=StaircasePlan)
    rtt_path: str = "/healthz"
    rtt_ms: float | None = None
    seed: int = 0
    allow_remote: bool = False
    insecure: bool = False
    ca_bundle: Path | None = None
    locustfile: Path | None = None


@dataclass(frozen=True)
class CalibrationOutcome:
    fits: tuple[ServiceCalibration, ...]
    scenario_out: Path
    report_md: Path
    run_dir: Path


def run_calibration(config: CalibrateConfig, status: StatusFn | None = None,
                    on_step: StepFn | None = None) -> CalibrationOutcome:
    """Calibrate every service of ``config``; raise ``CalibrationError`` / ``LoadTestError``."""
    say = status or (lambda _text: None)
    if (config.host is None) == (not config.from_paths):
        raise CalibrationError("give exactly one of --host URL (send a staircase) or --from "
                               "FILE (fit measurements already taken)")
    if not config.services:
        raise CalibrationError("name at least one --service to calibrate")
    if not 1 <= config.instances <= MAX_INSTANCES:
        raise CalibrationError(f"--instances must be 1..{MAX_INSTANCES}, got "
                               f"{config.instances}")
    scenario = load_scenario(config.scenario_path)
    for name in config.services:
        if name not in scenario.services:
            raise CalibrationError(f"{config.scenario_path}: services.{name}: no such service "
                                   f"(it has: {', '.join(scenario.services)})")
    config.plan.check()
    raw = read_raw(config.scenario_path)
    for path in config.from_paths:
        if not path.is_file():
            raise CalibrationError(f"{path}: no such file (expected results.jsonl or a Locust "
                                   f"*_stats.csv)")
    target: Target | None = None
    context: ssl.SSLContext | None = None
    if config.host is not None:
        context = tls_context(config.insecure, config.ca_bundle)
        target = Target(check_target(config.host, config.allow_remote), config.allow_remote,
                        config.insecure, config.ca_bundle, config.locustfile)
        check_reachable(target.url, context=context)
    run_dir = new_run_dir(scenario.name, config.report_dir, kind="calibrate")
    rng = np.random.default_rng(config.seed)
    fits = []
    if target is not None:
        rtt_ms = config.rtt_ms
        if rtt_ms is None:
            say(f"measuring the round trip on {config.rtt_path}")
            rtt_ms = probe_rtt_ms(target.url, config.rtt_path, context=context)
        source = f"a staircase against {target.url} ({config.instances} instance(s))"
        for name in config.services:
            climbed = climb(config.scenario_path, target, name, config.plan, run_dir,
                            config.seed, say, on_step)
            say(f"{name}: fitting ({climbed.stopped_because})")
            fits.append(calibrate_service(name, climbed.steps, rtt_ms, config.instances,
                                          scenario.services[name].workers, rng))
    else:
        rtt_ms = config.rtt_ms or 0.0
        source = ", ".join(str(p) for p in config.from_paths)
        for name in config.services:
            steps, exact = read_steps(config.from_paths, name, config.plan.settle_s)
            for step in steps:
                if on_step is not None:
                    on_step(name, step)
            fits.append(calibrate_service(name, steps, rtt_ms, config.instances,
                                          scenario.services[name].workers, rng, exact))
    scenario_out = config.out or run_dir / "calibrated.yaml"
    write_scenario(scenario_out, raw, fits, source)
    load_scenario(scenario_out)  # what we wrote must be a valid scenario
    write_json(run_dir / "calibration.json", fits, source)
    report_md = write_report(run_dir, fits, scenario_out, source)
    return CalibrationOutcome(tuple(fits), scenario_out, report_md, run_dir)
