"""Simulation runs as the CLI starts them: ``peaksim run`` (one scenario), ``peaksim compare``
(one scenario and seed under several autoscaling or colocation variants) and ``peaksim plan``
(a capacity plan and its confirming run); each writes its run directory and report."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.engine import ProgressFn, simulate
from sim.errors import PeaksimError
from sim.model import Scenario
from sim.plan import DEFAULT_HEADROOM, DEFAULT_MARGIN_S, PLAN_FILE, Plan, make_plan
from sim.runio import atomic_write_json, new_run_dir

ProgressFactory = Callable[[str], Callable[[float], None] | None]

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
    """Write the report files of ``run_dir``; return the path of report.html."""
    from sim.report import write_report

    return write_report(run_dir).html


@dataclass(frozen=True)
class PlanOutcome:
    """A plan and where it was written."""

    plan: Plan
    run_dir: Path
    report_html: Path | None


def plan_scenario(
    scenario: Scenario, *, headroom: float = DEFAULT_HEADROOM,
    margin_s: float = DEFAULT_MARGIN_S, seed: int | None = None, out: Path | None = None,
    on_trial: Callable[[str], None] | None = None,
) -> PlanOutcome:
    """Plan ``scenario`` and write the run directory: the confirming whole-run simulation of the
    recommended counts (summary.json, timeseries.csv), plan.json and the report."""
    plan, result = make_plan(scenario, headroom=headroom, margin_s=margin_s, seed=seed,
                             on_trial=on_trial)
    run_dir = new_run_dir(scenario.name, out, kind="plan")
    result.write(run_dir)
    atomic_write_json(run_dir / PLAN_FILE, plan.to_json())
    return PlanOutcome(plan, run_dir, _write_report(run_dir))


@dataclass(frozen=True)
class CompareOutcome:
    """The comparison directory, each variant's run directory and summary."""

    out_dir: Path
    names: list[str]
    run_dirs: list[Path]
    summaries: list[dict[str, Any]]
    report_html: Path


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
    out: Path | None = None, progress: ProgressFactory | None = None,
) -> CompareOutcome:
    """Run ``scenario`` under every variant in ``names`` with the same seed; write one run
    directory per variant under the comparison directory, and the comparison report."""
    out_dir = new_run_dir(scenario.name, out, kind="compare")
    run_dirs, summaries = [], []
    for name in names:
        bar = progress(name) if progress is not None else None
        result = simulate(scenario, variant=name, seed=seed, progress=bar)
        run_dir = out_dir / name
        run_dir.mkdir(parents=True, exist_ok=True)
        result.write(run_dir)
        run_dirs.append(run_dir)
        summaries.append(result.summary())
    report_html = _write_reports(out_dir, run_dirs, list(names))
    return CompareOutcome(out_dir, list(names), run_dirs, summaries, report_html)


def _write_reports(out_dir: Path, run_dirs: list[Path], names: list[str]) -> Path:
    from sim.report import write_comparison_report, write_report

    for run_dir in run_dirs:
        write_report(run_dir)
    return write_comparison_report(out_dir, run_dirs, names).html


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
