"""Terminal output of replicated runs, comparisons, plans and sweeps (the CLI's rich side).

Each function runs the domain call with a progress bar over finished runs, prints what a user
reads (tables of already formatted cells, one line per objective, the gate's verdict) and
returns what the CLI needs for its exit code.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from sim.console import ci_mode, comparison_table, progress_bar, show_table
from sim.intervals import best_of
from sim.model import Scenario
from sim.parallel import DoneFn, Where
from sim.report import Table as ModelTable
from sim.runs import PlanOutcome
from sim.study.compare import differences, replicated_rows, rows_json
from sim.study.plan import confirm_plan
from sim.study.rebuild import RebuiltStudy, StudyKind, rebuild_study
from sim.study.replicate import Replicated
from sim.study.replicated import compare_replications, run_replications
from sim.study.report import (
    ReplicatedFiles,
    comparison_headline,
    differences_table,
    figures_table,
    headline,
    verdict_lines,
)
from sim.study.sweep import Setting
from sim.study.sweep_report import SweepFiles, sweep_table, sweep_verdict
from sim.study.sweep_runs import SweepOutcome
from sim.termtable import TextTable

_GATE_WORDS = {"pass": ("green", "PASS"), "fail": ("red", "FAIL"),
               "undecided": ("yellow", "UNDECIDED")}


def done_fraction(bar: Callable[[float], None] | None) -> DoneFn | None:
    """A progress bar fed with finished jobs out of all jobs."""
    if bar is None:
        return None
    return lambda done, total: bar(done / total)


def model_table(model: ModelTable) -> TextTable:
    """A report table (already formatted cells) as a terminal table."""
    return TextTable.from_table(model)


def gate_line(console: Console, decision: str, text: str) -> None:
    """``PASS``/``FAIL``/``UNDECIDED`` in colour, then ``text``."""
    colour, word = _GATE_WORDS[decision]
    console.print(f"[bold {colour}]{word}[/] {escape(text)}")


@dataclass(frozen=True)
class StudyExit:
    """What the CLI needs after a replicated command: the gate's exit code (0, 1 or 3) and
    the report.md to append to a CI job summary."""

    exit_code: int
    markdown: Path


def run_replicated(console: Console, scenario: Scenario, n: int, place: Where, *,
                   seed: int | None, out: Path | None, variant: str | None,
                   as_json: bool) -> StudyExit:
    """``peaksim run --replications``: run, write, print the figures and the gate."""
    with progress_bar(console, f"{n} replications on {place.describe()}",
                      console.is_terminal and not ci_mode()) as bar:
        outcome = run_replications(scenario, n, place, seed=seed, variant=variant, out=out,
                                   on_done=done_fraction(bar))
    rep = outcome.replicated
    if as_json:
        sys.stdout.write(json.dumps(rep.to_json(), indent=2) + "\n")
    else:
        _print_run(console, rep, outcome.report)
    return StudyExit(rep.exit_code, outcome.report.markdown)


def compare_replicated(console: Console, scenario: Scenario, names: Sequence[str], n: int,
                       place: Where, *, seed: int | None, out: Path | None,
                       as_json: bool) -> StudyExit:
    """``peaksim compare --replications``: the table with intervals and the significant
    differences against the first variant."""
    label = f"{len(names)} variants x {n} replications on {place.describe()}"
    with progress_bar(console, label, console.is_terminal and not ci_mode()) as bar:
        outcome = compare_replications(scenario, names, n, place, seed=seed, out=out,
                                       on_done=done_fraction(bar))
    rows = replicated_rows(names, outcome.variants)
    diffs = differences(names, outcome.variants, base_index=0)
    if as_json:
        sys.stdout.write(json.dumps({"scenario": scenario.name, "replications": n,
                                     "seeds": list(outcome.variants[0].seeds),
                                     "rows": rows_json(rows),
                                     "differences": [d.to_json() for d in diffs]},
                                    indent=2) + "\n")
    else:
        _print_comparison(console, names, outcome.variants, outcome.out_dir, outcome.report)
    return StudyExit(0, outcome.report.markdown)


def report_replicated(console: Console, directory: Path, *, as_json: bool) -> StudyExit:
    """``peaksim report`` on a replicated run or comparison: rebuild its report, print what
    the command that ran it printed; the exit code is the gate's (sim/study/rebuild.py)."""
    rebuilt = rebuild_study(directory)
    if as_json:
        sys.stdout.write(json.dumps(_report_json(rebuilt), indent=2) + "\n")
    elif rebuilt.kind is StudyKind.RUN:
        _print_run(console, rebuilt.variants[0], rebuilt.files)
    else:
        _print_comparison(console, rebuilt.names, rebuilt.variants, directory, rebuilt.files)
    return StudyExit(rebuilt.exit_code, rebuilt.files.markdown)


def _print_run(console: Console, rep: Replicated, files: ReplicatedFiles) -> None:
    n = len(rep.seeds)
    show_table(console, model_table(figures_table([rep.policy], [rep])))
    for line in verdict_lines("", rep):
        console.print(f"  - {line.text}", markup=False)
    console.print(f"report: {files.html}", markup=False)
    gate_line(console, str(rep.decision), headline(rep.decision, rep.replications_needed, n))


def _print_comparison(console: Console, names: Sequence[str], variants: Sequence[Replicated],
                      out_dir: Path, files: ReplicatedFiles) -> None:
    n = len(variants[0].seeds)
    rows = replicated_rows(names, variants)
    diffs = differences(names, variants, base_index=0)
    show_table(console, comparison_table(rows, f"{variants[0].scenario.name}: {len(names)} "
                                         f"policies, {n} replications, mean ± 95% half-width "
                                         f"(Student t)"))
    significant = [d for d in diffs if d.significant]
    show_table(console, model_table(differences_table(significant)))
    console.print(f"{len(significant)} of {len(diffs)} differences against {names[0]} are "
                  f"significant (paired by seed); all pairs: "
                  f"{out_dir / 'differences.json'}", markup=False)
    console.print(f"report: {files.html}", markup=False)
    # the verdict of alternatives: passes when one variant holds every SLO with confidence
    gate_line(console, str(best_of([v.decision for v in variants])),
              comparison_headline(names, variants)[0])


def _report_json(rebuilt: RebuiltStudy) -> dict[str, object]:
    """``peaksim report --json`` of a replicated directory: the gate and every variant's
    replications.json content."""
    doc = rebuilt.files.doc
    return {"kind": str(rebuilt.kind), "decision": str(rebuilt.decision),
            "exit_code": rebuilt.exit_code, "headline": doc.headline,
            "verdict": [{"ok": line.ok, "text": line.text} for line in doc.verdict],
            "variants": {name: v.to_json() for name, v in zip(rebuilt.names, rebuilt.variants,
                                                              strict=True)},
            "report": str(rebuilt.files.html)}


def confirm_plan_on_intervals(console: Console, scenario: Scenario, outcome: PlanOutcome,
                              n: int, place: Where, *, seed: int | None) -> int:
    """``peaksim plan --replications``: confirm the counts; returns the exit code (0, 1, 3)."""
    with progress_bar(console, f"confirming the plan over {n} replications",
                      console.is_terminal and not ci_mode()) as bar:
        rep = confirm_plan(scenario, outcome.plan, n, place, outcome.run_dir, seed=seed,
                           on_done=done_fraction(bar))
    for line in verdict_lines("", rep):
        console.print(f"  - {line.text}", markup=False)
    gate_line(console, str(rep.decision), "recommended counts over the whole run: "
              + headline(rep.decision, rep.replications_needed, n))
    return rep.exit_code


def print_sweep(console: Console, outcome: SweepOutcome, settings: Sequence[Setting],
                files: SweepFiles) -> None:
    """The sweep's table, where the files are, and its verdict: the cheapest point that holds
    the SLO, or why none does."""
    show_table(console, model_table(sweep_table(outcome, settings)))
    console.print(f"wrote {files.csv}, {files.json.name}, {files.markdown.name} and "
                  f"{files.plot.name}", markup=False)
    gate_line(console, str(outcome.decision), sweep_verdict(outcome))
