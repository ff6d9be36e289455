"""``peaksim run/compare --replications N``: the jobs, their run directories and summaries.

A replicated run directory holds one sub-directory per seed (``seed-<seed>/``: summary.json and
timeseries.csv, a run directory of its own that ``peaksim report`` turns into a report) and,
at its top, ``replications.json`` (every figure as mean and interval, the gate), the band plot,
``junit.xml`` and ``report.html``/``report.md``. A replicated comparison holds one such
directory per variant and, beside them, ``differences.json`` (the paired differences between
variants, and the variants' names and directories from which ``peaksim report`` rebuilds the
comparison) and the comparison's report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sim.errors import PeaksimError
from sim.model import Scenario
from sim.parallel import DoneFn, Where, map_jobs
from sim.report import load_run
from sim.runio import atomic_write_json, new_run_dir
from sim.runs import SimJob, SimOutput, job_writer, placed_job, run_sim_job
from sim.study.replicate import Replicated, replication_seeds, summarise

if TYPE_CHECKING:
    from sim.study.report import ReplicatedFiles

REPLICATIONS_FILE = "replications.json"
DIFFERENCES_FILE = "differences.json"
MIN_REPLICATIONS = 2


@dataclass(frozen=True)
class ReplicatedOutcome:
    """A replicated run: its directory, the summary of its replications and its report."""

    run_dir: Path
    replicated: Replicated
    report: ReplicatedFiles

    @property
    def report_html(self) -> Path:
        return self.report.html


@dataclass(frozen=True)
class ReplicatedComparison:
    """Every variant's replicated run, and the comparison directory holding them."""

    out_dir: Path
    names: list[str]
    variants: list[Replicated]
    report: ReplicatedFiles

    @property
    def report_html(self) -> Path:
        return self.report.html


def check_replications(n: int) -> None:
    """Refuse a number of replications that cannot give an interval."""
    if n < MIN_REPLICATIONS:
        raise PeaksimError(f"--replications must be at least {MIN_REPLICATIONS} (an interval "
                           f"needs two runs), got {n}")


def run_replications(
    scenario: Scenario, n: int, place: Where, *, seed: int | None = None,
    variant: str | None = None, out: Path | None = None, on_done: DoneFn | None = None,
) -> ReplicatedOutcome:
    """Simulate ``scenario`` under ``n`` seeds derived from ``seed`` (default: the scenario's),
    write the run directory and its report."""
    check_replications(n)
    base_seed = scenario.seed if seed is None else seed
    seeds = replication_seeds(base_seed, n)
    run_dir = new_run_dir(scenario.name, out)
    run_dirs = [run_dir / f"seed-{s}" for s in seeds]
    jobs = [placed_job(SimJob(scenario, variant, s), d, place)
            for s, d in zip(seeds, run_dirs, strict=True)]
    outputs = map_jobs(run_sim_job, jobs, place, on_done, job_writer(run_dirs, place))
    replicated = _summarise(run_dir, scenario, base_seed, seeds, outputs)
    from sim.study.report import write_replicated_report

    runs = [[load_run(d) for d in run_dirs]]
    return ReplicatedOutcome(run_dir, replicated,
                             write_replicated_report(run_dir, [replicated], runs))


def compare_replications(
    scenario: Scenario, names: Sequence[str], n: int, place: Where, *,
    seed: int | None = None, out: Path | None = None, on_done: DoneFn | None = None,
) -> ReplicatedComparison:
    """Every variant in ``names`` under the same ``n`` seeds (common random numbers); one
    replicated run directory per variant, the paired differences and the report."""
    check_replications(n)
    base_seed = scenario.seed if seed is None else seed
    seeds = replication_seeds(base_seed, n)
    out_dir = new_run_dir(scenario.name, out, kind="compare")
    pairs = [(name, s) for name in names for s in seeds]
    run_dirs = [out_dir / name / f"seed-{s}" for name, s in pairs]
    jobs = [placed_job(SimJob(scenario, name, s), d, place)
            for (name, s), d in zip(pairs, run_dirs, strict=True)]
    outputs = map_jobs(run_sim_job, jobs, place, on_done, job_writer(run_dirs, place))
    variants = [_summarise(out_dir / name, scenario, base_seed, seeds,
                           outputs[i * n:(i + 1) * n]) for i, name in enumerate(names)]
    from sim.study.compare import differences_json
    from sim.study.report import write_replicated_report

    listing = differences_json(list(names), variants)
    listing["variants"] = [{"name": name, "run_dir": name} for name in names]
    atomic_write_json(out_dir / DIFFERENCES_FILE, listing)
    runs = [[load_run(d) for d in run_dirs[i * n:(i + 1) * n]] for i in range(len(names))]
    report = write_replicated_report(out_dir, variants, runs, list(names))
    return ReplicatedComparison(out_dir, list(names), variants, report)


def _summarise(run_dir: Path, scenario: Scenario, base_seed: int, seeds: Sequence[int],
               outputs: Sequence[SimOutput]) -> Replicated:
    replicated = summarise(scenario, base_seed, seeds, [o.summary for o in outputs])
    atomic_write_json(run_dir / REPLICATIONS_FILE, replicated.to_json())
    return replicated
