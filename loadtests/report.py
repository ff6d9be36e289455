"""The report of a load test: the simulator's run report plus the load test's own sections.

``sim.report.writer.write_report`` recognises a load test's run directory by its summary (``kind:
loadtest``) and builds its report from ``summary.json``, ``timeseries.csv`` (and ``sim/`` when
``--compare-sim`` ran) with what this module adds:

- the generator's verdict at the top, loud when it fell behind (the SLO verdict then says
  *inconclusive*, not pass or fail);
- *Load generation*: target vs achieved rate, late and never-sent requests, lag, per service,
  and a plot of target vs sent per window;
- *Coordinated omission*: corrected vs raw percentiles, table and plot;
- *Simulator vs load test* (with ``--compare-sim``): predicted vs measured p50/p95/p99 and
  error rate with the relative error, and overlay plots;
- a second JUnit suite ``peaksim.<scenario>.generator`` with one test per service that fails
  when the generator did not offer the target load.

Plots of the pool (instances, utilization, cost) are left out when the target did not report
its pools (a host without the shop's ``/healthz``).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import numpy as np

from loadtests.gate import evaluate_gate, generator_problems, interrupted
from loadtests.report_plots import (
    plot_corrected_vs_raw,
    plot_generator,
    plot_sim_overlay,
)
from loadtests.simcompare import SIM_DIR
from sim.errors import RunDirError
from sim.report import (
    NO_VALUE,
    RUN_PLOTS,
    DocSection,
    ReportDoc,
    ReportFigure,
    ReportFiles,
    ReportPlot,
    RunData,
    Table,
    VerdictLine,
    fmt_count,
    fmt_ms,
    fmt_num,
    fmt_pct,
    load_run,
    write_report,
)

POOL_PLOTS = ("instances", "utilization", "cost")
"""Plots that need the target's pool counts (from /healthz)."""


def has_pools(run: RunData) -> bool:
    """Whether the target reported its pools (some ready instance was seen)."""
    return any(np.nanmax(run.series[n]["instances_ready"], initial=0.0) > 0 for n in run.services)


def with_loadtest_sections(doc: ReportDoc, run: RunData) -> ReportDoc:
    """``doc`` (a run report of a load test) with the generator verdict first and the load
    test's sections; unchanged for other runs."""
    s = run.summary
    if s.kind != "loadtest":
        return doc
    summary = s.model_dump(by_alias=True)
    problems = generator_problems(summary)
    lines = [VerdictLine(False, f"GENERATOR BEHIND — {p}") for p in problems]
    headline, met = doc.headline, doc.met
    if problems or interrupted(summary):  # the gate did not judge the SLOs: say why
        headline = evaluate_gate(summary).headline + "."
        met = False
    generator = summary.get("generator", {})
    if generator.get("interrupted"):
        lines.append(VerdictLine(None, "The run was interrupted (Ctrl-C): figures cover what "
                                       "was measured until then."))
    sections = [_load_section(run), _co_section(run)]
    sim_section = _sim_section(run)
    if sim_section is not None:
        sections.append(sim_section)
    tables = doc.tables if has_pools(run) else tuple(
        t for t in doc.tables if t.anchor != "instances")
    if problems or interrupted(summary):
        tables = tuple(_not_judged(t) if t.anchor == "slo" else t for t in tables)
    return replace(doc, headline=headline, met=met, verdict=(*lines, *doc.verdict),
                   sections=(*doc.sections, *sections), tables=tables)


def _not_judged(table: Table) -> Table:
    """The SLO table of a load test whose SLOs the gate did not judge: every result cell
    reads "not judged", as the verdict says (the measured values stay)."""
    column = table.header.index("result")
    rows = tuple((*row[:column], "not judged", *row[column + 1:]) for row in table.rows)
    return replace(table, rows=rows)


def _load_section(run: RunData) -> DocSection:
    rows = []
    for name in run.services:
        load = (run.summary.services[name].model_extra or {}).get("load", {})
        ratio = load.get("achieved_ratio")
        rows.append((
            name, fmt_num(load.get("target_rps")), fmt_num(load.get("achieved_rps")),
            NO_VALUE if ratio is None else f"{100 * ratio:.1f}%",
            fmt_count(load.get("intended")), fmt_count(load.get("sent")),
            fmt_count(load.get("late")), fmt_count(load.get("dropped")),
            fmt_ms(load.get("lag_mean_ms")), fmt_ms(load.get("lag_max_ms")),
            "yes" if load.get("kept_up") and load.get("rate_ok") else "BEHIND",
        ))
    generator = (run.summary.model_extra or {}).get("generator", {})
    table = Table(
        "Target vs achieved load",
        ("service", "target rps", "achieved rps", "achieved", "intended", "sent", "late",
         "never sent", "mean lag", "worst lag", "kept up"),
        tuple(rows), ("l", *("r",) * 9, "l"),
        note=f"Target: the scaled curve's mean rate over the run; intended: sends the schedule "
             f"called for; late: sent more than {fmt_ms(generator.get('lag_threshold_ms'))} "
             f"after their intended time; never sent: intended times that passed with no "
             f"free user. The generator kept up when at most "
             f"{fmt_pct(generator.get('lag_tolerance'))} of sends were late or never sent and "
             f"the count is within the rate tolerance.",
        anchor="load-table")
    figure = ReportFigure(
        "generator.png", "Target vs sent, and generator lag",
        "Per service: the curve's rate (dashed), requests sent per second (solid) and sends "
        "late or never sent per second (red). Red means the generator, not the target, was "
        "the bottleneck in that window.", plot_generator(run))
    return DocSection("Load generation", "load", _LOAD_INTRO, (table,), (figure,))


_LOAD_INTRO = (
    "Open model: every request had an intended send time drawn from the scenario's curve "
    "(after time and rate scaling), independent of how fast the target answered. Locust users "
    "only carry the requests; their number follows Little's law on the observed latency.")


def _co_section(run: RunData) -> DocSection:
    rows = []
    for name in run.services:
        info = run.summary.services[name]
        raw = (info.model_extra or {}).get("latency_raw_ms", {})
        c = info.latency_ms
        hidden = (c.p99 / raw["p99"]) if c.p99 and raw.get("p99") else None
        rows.append((name, fmt_ms(c.p50), fmt_ms(c.p95), fmt_ms(c.p99), fmt_ms(c.max),
                     fmt_ms(raw.get("p50")), fmt_ms(raw.get("p95")), fmt_ms(raw.get("p99")),
                     fmt_ms(raw.get("max")), NO_VALUE if hidden is None else f"{hidden:.2f}x"))
    table = Table(
        "Corrected vs raw latency",
        ("service", "p50", "p95", "p99", "max", "raw p50", "raw p95", "raw p99", "raw max",
         "p99 corrected / raw"),
        tuple(rows), ("l", *("r",) * 9),
        note="Corrected: from the intended send time (what a user arriving on schedule waits). "
             "Raw: from the moment the request actually left, as Locust reports it. SLOs are "
             "judged on the corrected values.", anchor="co-table")
    figure = ReportFigure(
        "corrected_vs_raw.png", "p99 per window: corrected vs raw",
        "Where the target stalls, requests due during the stall wait for a free user; raw "
        "latency starts the clock only when they leave, so it hides the stall. The gap "
        "between the lines is coordinated omission.", plot_corrected_vs_raw(run))
    return DocSection("Coordinated omission", "co", _CO_INTRO, (table,), (figure,))


_CO_INTRO = (
    "A closed-loop generator waits for slow answers before it sends again, and so sends less "
    "exactly when the target is slow. peaksim measures latency from the intended send time of "
    "the schedule (as wrk2 does) as well as from the actual send.")


def _sim_section(run: RunData) -> DocSection | None:
    rows_data = (run.summary.model_extra or {}).get("sim_vs_real")
    sim_dir = run.run_dir / SIM_DIR
    if not rows_data or not sim_dir.is_dir():
        return None
    try:
        sim_run = load_run(sim_dir)
    except RunDirError:
        return None
    rows = []
    for row in rows_data:
        fmt = fmt_pct if row["metric"] == "error_rate" else fmt_ms
        error = row.get("relative_error")
        predicted = fmt(row["predicted"])
        if row.get("predicted_low") is not None:  # --replications: 95% of single runs
            predicted += f" ({fmt(max(row['predicted_low'], 0.0))}–{fmt(row['predicted_high'])})"
        rows.append((row["service"], row["metric"].replace("_", " "), predicted,
                     fmt(row["measured"]), NO_VALUE if error is None else f"{100 * error:+.1f}%"))
    table = Table(
        "Predicted vs measured", ("service", "metric", "simulator", "load test",
                                  "relative error"),
        tuple(rows), ("l", "l", "r", "r", "r"),
        note="Relative error: (measured - predicted) / predicted. Latencies are corrected "
             "percentiles over completed requests in both.", anchor="sim-table")
    figure = ReportFigure(
        "sim_vs_real.png", "Simulator vs load test per window",
        "p95 and p99 per window: the load test (solid) and the simulator on the same scaled "
        "scenario (dashed).", plot_sim_overlay(run, sim_run))
    return DocSection("Simulator vs load test", "sim-vs-real", _SIM_INTRO, (table,), (figure,))


_SIM_INTRO = (
    "The simulator ran the same scaled scenario with the reference shop's semantics: fixed "
    "instances at their initial count, real-time service and boot times, no faults, the same "
    "client retries. The closer the columns, the more the model can be trusted at the peak.")


def plots_for(run: RunData, plots: Mapping[str, ReportPlot] = RUN_PLOTS
              ) -> Mapping[str, ReportPlot]:
    """The plots of a load-test report: without pool data from the target, not those drawn
    from it (instances, busy workers, queue)."""
    if has_pools(run):
        return plots
    return {k: v for k, v in plots.items() if k not in POOL_PLOTS}


def generator_junit(junit_xml: str, run: RunData) -> str:
    """``junit_xml`` with a ``peaksim.<scenario>.generator`` suite: one test per service,
    failed (type ``GeneratorBehind``) when the target load was not offered."""
    root = ET.fromstring(junit_xml.split("?>", 1)[-1])
    summary = run.summary.model_dump(by_alias=True)
    problems = {p.split(":", 1)[0]: p for p in generator_problems(summary)}
    suite = ET.SubElement(root, "testsuite", name=f"peaksim.{run.summary.scenario}.generator",
                          tests=str(len(run.services)), failures=str(len(problems)),
                          errors="0", skipped="0", time="0")
    for name in run.services:
        case = ET.SubElement(suite, "testcase", classname=name, name="target_load", time="0")
        if name in problems:
            failure = ET.SubElement(case, "failure", type="GeneratorBehind",
                                    message=problems[name])
            failure.text = ("The load generator did not offer the target load; the SLO "
                            "results of this run are inconclusive.")
    root.set("tests", str(int(root.get("tests", "0")) + len(run.services)))
    root.set("failures", str(int(root.get("failures", "0")) + len(problems)))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


class LoadTestReport:
    """The load tester's ``sim.report.ReportExtension``: for runs of kind ``loadtest``, the
    plots that apply without pool data, the load/generator, coordinated-omission and
    sim-vs-real sections, and the generator JUnit suite."""

    def applies(self, run: RunData) -> bool:
        return run.summary.kind == "loadtest"

    def plots(self, run: RunData, plots: Mapping[str, ReportPlot]) -> Mapping[str, ReportPlot]:
        return plots_for(run, plots)

    def sections(self, doc: ReportDoc, run: RunData) -> ReportDoc:
        return with_loadtest_sections(doc, run)

    def junit(self, junit_xml: str, run: RunData) -> str:
        return generator_junit(junit_xml, run)


REPORT_EXTENSIONS: tuple[LoadTestReport, ...] = (LoadTestReport(),)
"""What ``sim.report.write_report``/``regenerate`` are given to report load tests."""


def write_loadtest_report(run_dir: Path) -> ReportFiles:
    """Rebuild the report files of a load test's run directory."""
    return write_report(run_dir, extensions=REPORT_EXTENSIONS)
