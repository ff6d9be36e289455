"""``peaksim plan --schedule`` end to end: plan, write the run directory, the variant, the
plot, the emitted manifests, and (optionally) compare the variant with the shipped ones.

The run directory (``reports/<scenario>/<run-id>-schedule/``) holds the confirming run
(summary.json, timeseries.csv, report), ``schedule.json``, ``schedule.png``, ``variant.yaml``
(the variant ready to paste); with ``write_variant`` the scenario with the variant added is
written beside the scenario file as ``<stem>-<variant>.yaml``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.engine import simulate
from sim.errors import PeaksimError
from sim.plan import PlanError
from sim.plan_schedule import ScheduleOptions, SchedulePlan, plan_schedule
from sim.plan_schedule_out import (
    PLOT_FILE,
    SCHEDULE_FILE,
    VARIANT_FILE,
    hpa_variant,
    plot_schedule,
    scenario_with_variant,
    schedule_json,
    variant_yaml,
)
from sim.runio import atomic_write_bytes, atomic_write_json, atomic_write_text, new_run_dir
from sim.scenario import Scenario

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


def run_schedule_plan(
    scenario: Scenario, options: ScheduleOptions, *, out: Path | None = None,
    write_variant: str | None = None, emit: tuple[str, Path] | None = None,
    compare: bool = False, on_trial: Callable[[str], None] | None = None,
) -> ScheduleOutcome:
    """Plan ``scenario``'s schedule and write everything (see the module docstring)."""
    if emit is not None and emit[0] not in EMIT_FORMATS:
        raise PeaksimError(f"--emit {emit[0]}: expected one of {', '.join(EMIT_FORMATS)}")
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
        hpa = (hpa_name, simulate(scenario, variant=hpa_name, seed=options.seed))
    atomic_write_bytes(run_dir / PLOT_FILE, plot_schedule(plan, hpa))
    if copy_text is not None and write_variant is not None:
        outcome.scenario_copy = _write_copy(scenario, write_variant, copy_text)
    if emit is not None:
        outcome.emitted = _emit(plan, data, emit)
    if compare and copy_text is not None:
        _compare(outcome, scenario, copy_text, options.seed)
    try:
        from sim.report import write_report
    except ImportError:  # the report modules are optional for the plan itself
        return outcome
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
        from sim.k8s_emit import emit_k8s

        return emit_k8s(plan, out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / SCHEDULE_FILE
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")
    return [path]


def _compare(outcome: ScheduleOutcome, scenario: Scenario, copy_text: str,
             seed: int | None) -> None:
    from sim.loader import parse_scenario
    from sim.runs import compare_variants, comparison_rows, variant_names

    copy = parse_scenario(copy_text, scenario.source, base_dir=scenario.base_dir)
    names = variant_names(copy, [])
    result = compare_variants(copy, names, seed=seed, out=outcome.run_dir / "compare")
    outcome.compare_rows = comparison_rows(result.names, result.summaries)
    outcome.compare_html = result.report_html


def schedule_rows(data: dict[str, Any]) -> list[list[str]]:
    """Terminal table rows: per service, the planned segments and the cost."""
    rows = []
    for name, s in data["services"].items():
        shown = ", ".join(f"{seg['from']} {seg['instances']}" for seg in s["segments"])
        peak = max(s["planned"])
        rows.append([name, str(min(s["planned"])), str(peak), shown,
                     f"${s['cost']:.2f}", "held" if s["held"] else f"NOT HELD {s['note']}"])
    return rows


SCHEDULE_HEADER = ("service", "min", "peak", "schedule (from: instances)", "cost", "SLO")


def verdict(data: dict[str, Any]) -> str:
    """One line: held or not, and the cost of the whole run."""
    cost = data["cost"]["total"]
    if data["held"]:
        return (f"The schedule holds the SLO in every {data['step_s']:g}-s step and over the "
                f"whole run at ${cost:.2f}.")
    missed = [n for n, s in data["services"].items() if not s["held"]]
    return f"The schedule does not hold for {', '.join(missed)} (cost ${cost:.2f})."

