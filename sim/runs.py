"""Simulation runs as the CLI starts them: ``peaksim run`` (one scenario), ``peaksim compare``
(one scenario and seed under several autoscaling or colocation variants, run in parallel by
sim/parallel.py) and ``peaksim plan`` (a capacity plan and its confirming run; with
``--schedule`` the planned schedule, its variant, plot and manifests); each writes its run
directory and report (``plots=False``: the report without its plots, ``--no-plots``).
Replicated runs and sweeps (``--replications``, ``peaksim sweep``) are in sim/study/."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sim.engine import CLUSTER_FILE, TIMESERIES_COLUMNS, ProgressFn, RunLimits, simulate
from sim.errors import PeaksimError
from sim.model import Scenario, parse_scenario
from sim.parallel import DoneFn, ResultFn, Where, map_jobs
from sim.plan import (
    DEFAULT_HEADROOM,
    DEFAULT_MARGIN_S,
    PLAN_FILE,
    SCHEDULE_FILE,
    VARIANT_FILE,
    Plan,
    PlanError,
    ScheduleOptions,
    SchedulePlan,
    emit_k8s,
    hpa_variant,
    make_plan,
    plan_schedule,
    scenario_with_variant,
    schedule_json,
    variant_yaml,
)
from sim.runio import (
    atomic_write_bytes,
    atomic_write_csv,
    atomic_write_json,
    atomic_write_text,
    new_run_dir,
)

if TYPE_CHECKING:
    from sim.report import ReportFiles


@dataclass(frozen=True)
class RunOutcome:
    """Where a run was written and what it found."""

    run_dir: Path
    summary: dict[str, Any]
    main_file: Path


def run_scenario(
    scenario: Scenario, *, seed: int | None = None, out: Path | None = None,
    variant: str | None = None, progress: ProgressFn | None = None, engine: str | None = None,
    limits: RunLimits | None = None, plots: bool = True,
) -> RunOutcome:
    """Simulate ``scenario`` and write summary.json, timeseries.csv and the report files (with
    its plots unless ``plots`` is False); ``engine`` is exact, fluid or auto (None: the
    scenario's ``engine`` key); a run larger than ``limits`` is refused before it starts."""
    result = simulate(scenario, variant=variant, seed=seed, progress=progress, engine=engine,
                      limits=limits)
    if progress is not None:
        progress(1.0)  # simulated; what follows is writing the files
    run_dir = new_run_dir(scenario.name, out)
    result.write(run_dir)
    return RunOutcome(run_dir, result.summary(), _write_report(run_dir, plots))


def _write_report(run_dir: Path, plots: bool = True) -> Path:
    """Write the report of ``run_dir`` (``plots``: with its plots); return report.html's path."""
    from sim.report import write_report

    return write_report(run_dir, draw_plots=plots).html


@dataclass(frozen=True)
class PlanOutcome:
    """A plan and where it was written."""

    plan: Plan
    run_dir: Path
    report_html: Path | None


def plan_scenario(
    scenario: Scenario, *, headroom: float = DEFAULT_HEADROOM,
    margin_s: float = DEFAULT_MARGIN_S, seed: int | None = None, out: Path | None = None,
    on_trial: Callable[[str], None] | None = None, limits: RunLimits | None = None,
    plots: bool = True,
) -> PlanOutcome:
    """Plan ``scenario`` and write the run directory: the confirming whole-run simulation of the
    recommended counts (summary.json, timeseries.csv), plan.json and the report."""
    plan, result = make_plan(scenario, headroom=headroom, margin_s=margin_s, seed=seed,
                             on_trial=on_trial, limits=limits)
    if on_trial is not None:
        on_trial("writing report")
    run_dir = new_run_dir(scenario.name, out, kind="plan")
    result.write(run_dir)
    atomic_write_json(run_dir / PLAN_FILE, plan.to_json())
    return PlanOutcome(plan, run_dir, _write_report(run_dir, plots))


@dataclass(frozen=True)
class CompareOutcome:
    """The comparison directory, each variant's run directory and summary."""

    out_dir: Path
    names: list[str]
    run_dirs: list[Path]
    summaries: list[dict[str, Any]]
    report: ReportFiles

    @property
    def report_html(self) -> Path:
        return self.report.html


def variant_names(scenario: Scenario, asked: Sequence[str]) -> list[str]:
    """The variants to compare: those asked for, else every cluster variant of the scenario
    (a colocation study), else every autoscaling variant."""
    if asked:
        if len(set(asked)) != len(asked):
            raise PeaksimError(f"each --policy may be given once, got {', '.join(asked)}")
        return list(asked)
    if scenario.cluster is not None and scenario.cluster.variants:
        return list(scenario.cluster.variants)
    section = scenario.autoscaling
    names = list(section.variants) if section is not None else []
    if not names:
        raise PeaksimError(f"{scenario.source}: the scenario defines no autoscaling variants; "
                           "name policies with --policy (e.g. --policy static "
                           "--policy target_tracking)")
    return names


def compare_variants(
    scenario: Scenario, names: Sequence[str], *, seed: int | None = None,
    out: Path | None = None, place: Where | None = None, on_done: DoneFn | None = None,
    limits: RunLimits | None = None, plots: bool = True,
) -> CompareOutcome:
    """Run ``scenario`` under every variant in ``names`` with the same seed, in parallel where
    ``place`` says (default: one after the other here); write one run directory per variant
    under the comparison directory, and the comparison report (``plots``: with plots)."""
    place = place or Where()
    run_seed = scenario.seed if seed is None else seed
    out_dir = new_run_dir(scenario.name, out, kind="compare")
    run_dirs = [out_dir / name for name in names]
    # each variant's report is drawn by the process that simulated it, so a pool draws
    # reports while other variants still simulate
    jobs = [placed_job(SimJob(scenario, name, run_seed, limits=limits, plots=plots), run_dir,
                       place, report=True) for name, run_dir in zip(names, run_dirs, strict=True)]
    outputs = map_jobs(run_sim_job, jobs, place, on_done,
                       job_writer(run_dirs, place, report=True, plots=plots))
    from sim.report import write_comparison_report

    report = write_comparison_report(out_dir, run_dirs, list(names), draw_plots=plots)
    return CompareOutcome(out_dir, list(names), run_dirs, [o.summary for o in outputs], report)


def comparison_rows(names: Sequence[str], summaries: Sequence[dict[str, Any]]) -> list[dict]:
    """One row per variant and service with the figures the comparison table shows."""
    rows = []
    for name, summary in zip(names, summaries, strict=True):
        for service, s in summary["services"].items():
            rows.append({**_cluster_columns(summary), **{
                "policy": name, "service": service, "slo_met": s["slo_met"],
                "p95_ms": s["latency_ms"]["p95"], "p99_ms": s["latency_ms"]["p99"],
                "error_rate": s["error_rate"], "timed_out": s["timed_out"], "shed": s["shed"],
                "instance_seconds": s["instance_seconds"], "peak_instances": s["instances"]["max"],
                "scale_events": s["scale_events"], "cost": s["cost"],
            }})
    return rows


def _cluster_columns(summary: dict[str, Any]) -> dict[str, Any]:
    """Machine-level figures of a colocation run (empty without a cluster)."""
    cluster = summary.get("cluster")
    if cluster is None:
        return {}
    batch = cluster["batch"]
    return {
        "machines": cluster["nodes_max"], "mean_cpu_utilization": cluster["mean_cpu_utilization"],
        "cluster_cost": cluster["cost"], "batch_core_s_done": batch["done_core_s"],
        "batch_core_s_lost": batch["lost_core_s"], "batch_slowdown_mean":
        cluster["batch_slowdown_mean"], "batch_preemptions": cluster["batch_preemptions"],
        "pending_max": cluster["pending_max"],
    }


# ---------------------------------------------------------------- peaksim plan --schedule


EMIT_FORMATS = ("k8s", "json")


@dataclass
class ScheduleOutcome:
    """A schedule plan and the files written for it."""

    plan: SchedulePlan
    data: dict[str, Any]
    run_dir: Path
    variant_name: str
    variant_text: str
    scenario_copy: Path | None = None
    emitted: list[Path] = field(default_factory=list)
    compare_rows: list[dict[str, Any]] = field(default_factory=list)
    compare_html: Path | None = None
    report_html: Path | None = None


def schedule_scenario(
    scenario: Scenario, options: ScheduleOptions, *, out: Path | None = None,
    write_variant: str | None = None, emit: tuple[str, Path] | None = None,
    compare: bool = False, on_trial: Callable[[str], None] | None = None,
) -> ScheduleOutcome:
    """Plan ``scenario``'s schedule and write everything (see the module docstring)."""
    if emit is not None and emit[0] not in EMIT_FORMATS:
        raise PeaksimError(f"--emit {emit[0]}: expected one of {', '.join(EMIT_FORMATS)}")
    if emit is not None and emit[0] == "k8s" and scenario.start_time is None:
        raise PlanError("--emit k8s needs the scenario's start_clock (and timezone, start_date) "
                        "to write cron triggers")
    if (write_variant is not None or compare) and scenario.source == "<memory>":
        raise PlanError("--write-variant and --compare need a scenario read from a file")
    plan = plan_schedule(scenario, options, on_trial)
    name = write_variant or "scheduled-plan"
    copy_text = scenario_with_variant(plan, name) if (write_variant or compare) else None
    run_dir = new_run_dir(scenario.name, out, kind="schedule")
    plan.confirm.policy = name
    plan.confirm.write(run_dir)
    data = schedule_json(plan)
    data["variant"] = name
    atomic_write_json(run_dir / SCHEDULE_FILE, data)
    text = variant_yaml(plan, name)
    atomic_write_text(run_dir / VARIANT_FILE, text)
    outcome = ScheduleOutcome(plan, data, run_dir, name, text)
    hpa_name = hpa_variant(scenario)
    hpa = None
    if hpa_name is not None:
        if on_trial is not None:
            on_trial(f"the {hpa_name} variant for the plot")
        run = simulate(scenario, variant=hpa_name, seed=options.seed)
        hpa = (hpa_name, {n: s.columns["instances_running"] for n, s in run.services.items()},
               run.tick_s)
    from sim.report import SCHEDULE_PLOT_FILE, plot_schedule, write_report

    atomic_write_bytes(run_dir / SCHEDULE_PLOT_FILE, plot_schedule(plan, hpa))
    if copy_text is not None and write_variant is not None:
        outcome.scenario_copy = _write_copy(scenario, write_variant, copy_text)
    if emit is not None:
        outcome.emitted = _emit(plan, data, emit)
    if compare and copy_text is not None:
        _compare(outcome, scenario, copy_text, options.seed)
    outcome.report_html = write_report(run_dir).html
    return outcome


COPY_HEADER = "# written by peaksim plan --schedule --write-variant"


def _write_copy(scenario: Scenario, name: str, text: str) -> Path:
    """The copy goes beside the scenario (so that files it refers to resolve the same way);
    an existing file is replaced only if a previous ``--write-variant`` wrote it."""
    source = Path(scenario.source)
    path = source.with_name(f"{source.stem}-{name}{source.suffix}")
    if path.exists():
        first = path.read_text(encoding="utf-8").split("\n", 1)[0]
        if not first.startswith(COPY_HEADER):
            raise PlanError(f"--write-variant {name}: {path} exists and was not written by "
                            "peaksim; move it away or choose another name")
    atomic_write_text(path, f"{COPY_HEADER} {name} (from {source.name})\n{text}")
    return path


def _emit(plan: SchedulePlan, data: dict[str, Any], emit: tuple[str, Path]) -> list[Path]:
    kind, out_dir = emit
    if kind == "k8s":
        return emit_k8s(plan, out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / SCHEDULE_FILE
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")
    return [path]


def _compare(outcome: ScheduleOutcome, scenario: Scenario, copy_text: str,
             seed: int | None) -> None:
    copy = parse_scenario(copy_text, scenario.source, base_dir=scenario.base_dir)
    names = variant_names(copy, [])
    result = compare_variants(copy, names, seed=seed, out=outcome.run_dir / "compare")
    outcome.compare_rows = comparison_rows(result.names, result.summaries)
    outcome.compare_html = result.report_html


# --- one simulation as a job (for process pools and Dask workers) ----------------------

WALL_CLOCK_FIELDS = ("wall_s", "started_at", "sim_requests_per_s")
"""summary.json fields that depend on when and how fast a run ran, not on what it simulated:
a run's summary is reproducible from scenario, variant and seed with these left aside."""


@dataclass(frozen=True)
class SimJob:
    """Simulate ``scenario`` under ``variant`` (None: its default) with ``seed``."""

    scenario: Scenario
    variant: str | None
    seed: int
    rows: bool = True
    """Also return timeseries.csv's rows (a run directory is to be written)."""
    instances: dict[str, int] | None = None
    """Fixed instance counts (no autoscaler), as ``simulate`` takes them."""
    rate_scale: float = 1.0
    time_scale: float = 1.0
    limits: RunLimits | None = None
    """Run-size limits (``sim.engine.runsize``; None: the defaults)."""
    write_dir: Path | None = None
    """Write the run directory here, in the worker, as soon as the run ends (a local pool: the
    files are written while other workers still simulate); its rows are then not returned."""
    report: bool = False
    """With ``write_dir``: also draw the run's report there (and its plots, with ``plots``)."""
    plots: bool = True


@dataclass(frozen=True)
class SimOutput:
    """What a job found: summary.json's content, and the per-tick rows asked for."""

    summary: dict[str, Any]
    rows: list[list[Any]] | None = None
    cluster_table: tuple[list[str], list[list[Any]]] | None = None

    def write(self, run_dir: Path) -> None:
        """Write summary.json, timeseries.csv (and cluster.csv) into ``run_dir``, atomically."""
        run_dir.mkdir(parents=True, exist_ok=True)
        if self.rows is not None:
            atomic_write_csv(run_dir / "timeseries.csv", TIMESERIES_COLUMNS, self.rows)
        if self.cluster_table is not None:
            atomic_write_csv(run_dir / CLUSTER_FILE, *self.cluster_table)
        atomic_write_json(run_dir / "summary.json", self.summary)


def run_sim_job(job: SimJob) -> SimOutput:
    """Run one job (module-level, so that process pools and Dask can ship it)."""
    result = simulate(job.scenario, variant=job.variant, seed=job.seed, instances=job.instances,
                      rate_scale=job.rate_scale, time_scale=job.time_scale, limits=job.limits)
    output = SimOutput(
        summary=result.summary(),
        rows=result.timeseries_rows() if job.rows else None,
        cluster_table=result.cluster_table if job.rows else None,
    )
    if job.write_dir is None:
        return output
    output.write(job.write_dir)
    if job.report:
        _write_report(job.write_dir, job.plots)
    return replace(output, rows=None, cluster_table=None)


def job_writer(run_dirs: Sequence[Path], place: Where, *, report: bool = False,
               plots: bool = True) -> ResultFn:
    """The ``map_jobs`` result callback writing each run directory (and with ``report`` its
    report) as its job finishes, so that Ctrl-C keeps finished runs. Jobs placed on this
    machine have written their own (``SimJob.write_dir``); this writes those run elsewhere."""

    def write(index: int, output: SimOutput) -> None:
        if place.local:
            return
        output.write(run_dirs[index])
        if report:
            _write_report(run_dirs[index], plots)

    return write


def placed_job(job: SimJob, run_dir: Path, place: Where, *, report: bool = False) -> SimJob:
    """``job`` writing ``run_dir`` itself when it runs on this machine."""
    return replace(job, write_dir=run_dir, report=report) if place.local else job


def reproducible(summary: dict[str, Any]) -> dict[str, Any]:
    """``summary`` without its wall-clock fields (two runs of one job give equal dicts)."""
    return {key: value for key, value in summary.items() if key not in WALL_CLOCK_FIELDS}
