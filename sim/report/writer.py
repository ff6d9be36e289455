"""Report files of a run directory, rebuilt from ``summary.json`` and ``timeseries.csv`` alone.

``write_report(run_dir)`` writes ``report.html`` (self-contained), ``report.md`` (CI job
summary), ``junit.xml`` (one test per SLO objective) and the plots as PNG files, atomically;
with ``draw_plots=False`` every table and verdict without the plots (no matplotlib at all), the
report saying where they would be how to draw them later (``peaksim report``).
Parts of peaksim outside ``sim/`` (the load tester) add their plots, sections and JUnit suites
through ``ReportExtension`` objects passed in; this module knows none of them.
``write_comparison_report`` does the same for several runs of policy variants side by side and
records them in ``comparison.json`` so that ``peaksim report`` can rebuild it too.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Protocol

from sim.errors import RunDirError
from sim.report.ci import Suite, render_junit, render_markdown
from sim.report.cluster import cluster_section, cluster_verdict_lines
from sim.report.compare import build_comparison
from sim.report.data import SUMMARY_FILE, RunData, load_run
from sim.report.document import DocSection, ReportDoc, ReportFigure, Table, VerdictLine, fmt_num
from sim.report.html import render_html
from sim.report.plan_section import with_plan_section
from sim.report.plots import CLUSTER_SECTION, RUN_PLOTS, ReportPlot
from sim.report.schedule_section import with_schedule_section
from sim.report.tables import (
    events_table,
    instances_table,
    results_table,
    scenario_facts,
    slo_table,
    terminal_table,
)
from sim.report.verdict import RunVerdict, judge
from sim.runio import atomic_write_bytes, atomic_write_json, atomic_write_text
from sim.units import format_duration

HTML_FILE = "report.html"
MARKDOWN_FILE = "report.md"
JUNIT_FILE = "junit.xml"
COMPARISON_FILE = "comparison.json"


@dataclass(frozen=True)
class ReportFiles:
    """What a report wrote, and the verdict for the terminal (``met`` is None without SLOs)."""

    html: Path
    markdown: Path
    junit: Path
    plots: tuple[Path, ...]
    met: bool | None
    headline: str
    verdict: tuple[VerdictLine, ...]
    table: Table
    terminal_lines: tuple[str, ...] = ()
    """The few sentences a terminal shows under the headline (what was missed, per service)."""


class ReportExtension(Protocol):
    """Adds to the report of the runs it applies to (e.g. the load tester's, for its runs).

    Each method gets the run as read from its directory; none writes files.
    """

    def applies(self, run: RunData) -> bool:
        """Whether this extension shapes the report of ``run``."""

    def plots(self, run: RunData, plots: Mapping[str, ReportPlot]) -> Mapping[str, ReportPlot]:
        """The plot registry to draw ``run``'s report from (``plots`` is the default one)."""

    def sections(self, doc: ReportDoc, run: RunData) -> ReportDoc:
        """``doc`` with this extension's sections added."""

    def junit(self, junit_xml: str, run: RunData) -> str:
        """``junit_xml`` with this extension's test suites added."""


def write_report(run_dir: Path, plots: Mapping[str, ReportPlot] = RUN_PLOTS,
                 extensions: Sequence[ReportExtension] = (), *,
                 draw_plots: bool = True) -> ReportFiles:
    """Rebuild every report file of ``run_dir`` from its summary.json and timeseries.csv.

    Raises ``RunDirError`` when either file is missing or unreadable. ``plots`` is the plot
    registry to draw from (each plot decides whether it applies to this run); the first of
    ``extensions`` that applies to the run adds its plots, sections and JUnit suites. With
    ``draw_plots`` False no plot is drawn and the report says how to draw them.
    """
    run = load_run(run_dir)
    verdict = judge(run)
    junit_extra: Callable[[str], str] | None = None
    extension = next((e for e in extensions if e.applies(run)), None)
    if extension is not None:
        registry = extension.plots(run, plots) if draw_plots else {}
        doc = extension.sections(build_run_doc(run, verdict, registry), run)
        junit_extra = partial(extension.junit, run=run)
    else:
        doc = build_run_doc(run, verdict, plots if draw_plots else {})
    if not draw_plots:
        doc = replace(doc, plots_note=plots_note(run_dir))
    doc = with_plan_section(doc, run_dir)  # a `peaksim plan` run: its capacity plan table
    doc = with_schedule_section(doc, run_dir)  # a `plan --schedule` run: the schedule
    s = run.summary
    props = tuple((k, v) for k, v in (
        ("scenario", s.scenario), ("policy", s.policy),
        ("seed", "" if s.seed is None else str(s.seed)), ("kind", s.kind),
    ) if v)
    suite = Suite(f"peaksim.{s.scenario}", verdict, run.start_clock_s, props,
                  timestamp=s.started_at)
    met = verdict.met if verdict.objectives else None
    missed = tuple(line.text for line in doc.verdict if line.ok is False)
    machines = tuple(line.text for line in cluster_verdict_lines(run))
    return _write(run_dir, doc, [suite], met, terminal_table(run, verdict), missed + machines,
                  junit_extra)


def build_run_doc(
    run: RunData, verdict: RunVerdict, plots: Mapping[str, ReportPlot] = RUN_PLOTS,
) -> ReportDoc:
    """The report of one run as a document (verdict, scenario, plots, tables)."""
    s = run.summary
    lines = (*(line for v in verdict.services for line in v.lines), *cluster_verdict_lines(run))
    drawn = [(plot.section, ReportFigure(plot.filename, plot.title, plot.caption,
                                         plot.render(run)))
             for plot in plots.values() if plot.applies(run)]
    figures = tuple(f for section, f in drawn if not section)
    seed = "" if s.seed is None else f" · seed {s.seed}"
    autoscaling = f" · autoscaling {s.autoscaling_policy}" if s.autoscaling_policy else ""
    subtitle = (f"{s.kind} · policy {s.policy}{autoscaling}{seed} · "
                f"{format_duration(s.duration_s)}"
                + (f" from {s.start_clock}" if s.start_clock else ""))
    return ReportDoc(
        title=f"peaksim report: {s.scenario}",
        subtitle=subtitle,
        met=verdict.met if verdict.objectives else None,
        headline=verdict.headline,
        verdict=lines,
        facts=scenario_facts(run),
        figures=figures,
        tables=(results_table(run, verdict), slo_table(run, verdict), instances_table(run),
                events_table(run)),
        footer=_footer(run),
        sections=_sections(run, drawn),
    )


def _sections(run: RunData, drawn: list[tuple[str, ReportFigure]]) -> tuple[DocSection, ...]:
    """The titled parts after the main plots: the cluster of a colocation run, then any part a
    plot registry names (with its plots only)."""
    names = list(dict.fromkeys(section for section, _ in drawn if section))
    cluster = cluster_section(run, [f for sec, f in drawn if sec == CLUSTER_SECTION])
    others = tuple(DocSection(name.replace("_", " ").capitalize(), name, "", (),
                              tuple(f for sec, f in drawn if sec == name))
                   for name in names if name != CLUSTER_SECTION)
    return ((cluster,) if cluster is not None else ()) + others


def _footer(run: RunData) -> str:
    s = run.summary
    sources = (f"{SUMMARY_FILE}, timeseries.csv and cluster.csv" if run.cluster is not None
               else f"{SUMMARY_FILE} and timeseries.csv")
    text = f"Generated by peaksim {s.peaksim_version or ''} from {sources}."
    wall = []
    if s.started_at:
        wall.append(f"run started {s.started_at}")
    if s.wall_s is not None:
        wall.append(f"took {fmt_num(s.wall_s)} s of wall-clock time")
    if s.sim_requests_per_s:
        wall.append(f"{fmt_num(s.sim_requests_per_s)} simulated attempts/s")
    text += " The " + ", ".join(wall) + "." if wall else ""
    # Last, with no full stop after it, so that it can be copied as it is.
    return f"{text} To rebuild it, run: {rebuild_command(run.run_dir)}"


def plots_note(directory: Path) -> str:
    """What a report written without its plots says where they would be."""
    return (f"Plots not drawn (--no-plots). To draw them into this report, run: "
            f"{rebuild_command(directory)}")


def rebuild_command(directory: Path) -> str:
    """``peaksim report DIR`` as it works from the directory the report is written from: the
    path relative to it when the run is below it, else absolute; quoted for a POSIX shell."""
    path = directory.resolve()
    try:
        shown = str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        shown = str(path)
    return f"peaksim report {shlex.quote(shown)}"


def write_comparison_report(
    out_dir: Path, run_dirs: Sequence[Path], names: Sequence[str], *, draw_plots: bool = True,
) -> ReportFiles:
    """Compare runs of policy variants (``names[i]`` labels ``run_dirs[i]``) side by side.

    Writes the html/md/junit trio and overlay plots (unless ``draw_plots`` is False) into
    ``out_dir`` and lists the runs in ``comparison.json`` (paths relative to ``out_dir`` when
    possible).
    """
    if len(run_dirs) != len(names) or not names:
        raise ValueError("give one name per run directory, and at least one run")
    if len(set(names)) != len(names):
        raise ValueError(f"variant names must be distinct, got {list(names)}")
    runs = [load_run(Path(d)) for d in run_dirs]
    where = [_relative(Path(d), out_dir) for d in run_dirs]
    comparison = build_comparison(runs, list(names), where, rebuild_command(out_dir),
                                  draw_plots=draw_plots)
    doc = comparison.doc if draw_plots else replace(comparison.doc,
                                                     plots_note=plots_note(out_dir))
    out_dir.mkdir(parents=True, exist_ok=True)
    listing = {"kind": "comparison", "runs": [
        {"name": n, "run_dir": w} for n, w in zip(names, where, strict=True)
    ]}
    atomic_write_json(out_dir / COMPARISON_FILE, listing)
    return _write(out_dir, doc, comparison.suites, doc.met, comparison.table)


def regenerate(directory: Path, extensions: Sequence[ReportExtension] = ()) -> ReportFiles:
    """``peaksim report``: a run directory, or a comparison directory (``comparison.json``)."""
    if (directory / SUMMARY_FILE).exists() or not (directory / COMPARISON_FILE).exists():
        return write_report(directory, extensions=extensions)
    path = directory / COMPARISON_FILE
    try:
        listing = json.loads(path.read_text(encoding="utf-8"))
        entries = [(str(r["name"]), directory / str(r["run_dir"])) for r in listing["runs"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RunDirError(f"{path}: expected {{\"runs\": [{{\"name\": ..., \"run_dir\": ...}}]}}"
                          f" ({exc})") from None
    if not entries:
        raise RunDirError(f"{path}: lists no runs")
    return write_comparison_report(directory, [d for _, d in entries], [n for n, _ in entries])


def _relative(path: Path, base: Path) -> str:
    """``path`` as seen from ``base`` (so a comparison directory can move with its runs)."""
    try:
        return os.path.relpath(path.resolve(), base.resolve())
    except ValueError:  # another drive on Windows: keep it absolute
        return str(path.resolve())


def _write(out_dir: Path, doc: ReportDoc, suites: list[Suite], met: bool | None,
           table: Table, terminal_lines: tuple[str, ...] = (),
           junit_extra: Callable[[str], str] | None = None) -> ReportFiles:
    plots = []
    for figure in (*doc.figures, *(f for s in doc.sections for f in s.figures)):
        atomic_write_bytes(out_dir / figure.filename, figure.png)
        plots.append(out_dir / figure.filename)
    html, markdown, junit = out_dir / HTML_FILE, out_dir / MARKDOWN_FILE, out_dir / JUNIT_FILE
    junit_xml = render_junit(suites)
    atomic_write_text(junit, junit_extra(junit_xml) if junit_extra else junit_xml)
    atomic_write_text(markdown, render_markdown(doc))
    # The HTML last: its presence means the whole report is there.
    atomic_write_text(html, render_html(doc))
    return ReportFiles(html, markdown, junit, tuple(plots), met, doc.headline, doc.verdict,
                       table, terminal_lines)
