"""``peaksim run``: simulate one scenario and write its run directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.engine import ProgressFn, simulate
from sim.runio import new_run_dir
from sim.scenario import Scenario


@dataclass(frozen=True)
class RunOutcome:
    """Where a run was written and what it found."""

    run_dir: Path
    summary: dict[str, Any]
    main_file: Path


def run_scenario(
    scenario: Scenario, *, seed: int | None = None, out: Path | None = None,
    variant: str | None = None, progress: ProgressFn | None = None,
) -> RunOutcome:
    """Simulate ``scenario`` and write summary.json, timeseries.csv and the report files."""
    result = simulate(scenario, variant=variant, seed=seed, progress=progress)
    run_dir = new_run_dir(scenario.name, out)
    result.write(run_dir)
    return RunOutcome(run_dir, result.summary(), _write_report(run_dir))


def _write_report(run_dir: Path) -> Path:
    """The report files, when the report module is available; else the summary."""
    try:
        from sim.report import write_report
    except ImportError:
        return run_dir / "summary.json"
    return write_report(run_dir).html
