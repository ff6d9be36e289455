"""The report files of one run: opened and checked as a browser, a CI system and a Markdown
renderer would read them."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
from test_report_rundir import (
    embedded_pngs,
    html_tables,
    markdown_tables,
    synthetic_summary,
    write_synthetic_run,
)
from typer.testing import CliRunner

from sim.cli import app
from sim.report import RUN_PLOTS, ReportPlot, RunData, has_columns, new_figure, to_png, write_report

MISSED_P99 = "browse missed its p99 SLO between 00:00:30 and 00:04:10: p99 reached 2.1 s"


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = write_synthetic_run(tmp_path_factory.mktemp("report") / "run")
    write_report(run_dir)
    return run_dir


def test_html_is_self_contained_and_every_image_is_a_valid_png(report_dir: Path) -> None:
    html_text = (report_dir / "report.html").read_text()
    pngs = embedded_pngs(html_text)
    # The synthetic run has no colocation columns and is too short for a peak zoom.
    expected = ["traffic", "instances", "latency", "errors", "utilization", "cost"]
    assert len(pngs) == len(expected)
    for name, data in zip(expected, pngs, strict=True):
        assert (report_dir / f"{name}.png").read_bytes() == data
    assert "http://" not in html_text and "https://" not in html_text
    assert "@media print" in html_text


def test_html_reads_verdict_then_scenario_then_plots_then_tables(report_dir: Path) -> None:
    html_text = (report_dir / "report.html").read_text()
    order = [html_text.index(marker) for marker in (
        MISSED_P99, "order held its SLO", 'id="summary"', "400 requests/s", "<img", "<table>")]
    assert order == sorted(order)
    assert html_text.index("<table>") > html_text.rindex("<img")


def test_junit_fails_exactly_the_missed_objective(report_dir: Path) -> None:
    root = ET.parse(report_dir / "junit.xml").getroot()
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    cases = suite.findall("testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("browse", "p99_ms"), ("browse", "error_rate"), ("order", "p99_ms"),
        ("order", "error_rate")]
    failed = [(c.get("classname"), c.get("name")) for c in cases if c.find("failure") is not None]
    assert failed == [("browse", "p99_ms")]
    failure = cases[0].find("failure")
    assert failure is not None and "300 ms" in (failure.get("message") or "")
    assert "00:00:30 to 00:04:10" in (failure.text or "")
    for element in (root, suite):
        assert element.get("tests") == "4" and element.get("failures") == "1"
        assert element.get("errors") == "0"


def test_markdown_has_the_verdict_and_well_formed_tables(report_dir: Path) -> None:
    text = (report_dir / "report.md").read_text()
    assert MISSED_P99 in text
    tables = markdown_tables(text)
    headers = [t[0][:2] for t in tables]
    assert ["service", "SLO"] in headers and ["service", "objective"] in headers
    slo = next(t for t in tables if t[0][:2] == ["service", "objective"])
    assert [row[5] for row in slo[1:]] == ["❌ MISSED", "✅ met", "✅ met", "✅ met"]
    events = next(t for t in tables if t[0][0] == "time")
    assert events[1] == ["00:00:30", "browse", "scale", "4", "8",
                         "utilization 100% above target 60%"]


def test_regenerating_gives_identical_markdown_and_tables(tmp_path: Path) -> None:
    run_dir = write_synthetic_run(tmp_path / "run")
    first = write_report(run_dir)
    md, html_text = first.markdown.read_text(), first.html.read_text()
    second = write_report(run_dir)
    assert second.markdown.read_text() == md
    assert html_tables(second.html.read_text()) == html_tables(html_text)
    assert len(html_tables(html_text)) == 4


def test_a_run_that_holds_every_slo_has_no_failures(tmp_path: Path) -> None:
    summary = synthetic_summary()
    browse = summary["services"]["browse"]
    browse["slo"]["p99_ms"] = {"target": 300.0, "value": 150.0, "met": True}
    browse["slo_met"] = summary["slo_met"] = True
    files = write_report(write_synthetic_run(tmp_path / "run", summary, browse_p99_scale=0.1))
    assert files.met is True and files.terminal_lines == ()
    root = ET.parse(files.junit).getroot()
    assert root.get("tests") == "4" and root.get("failures") == "0"
    assert root.find(".//failure") is None
    assert "SLO met: all 2 services held their SLOs." in files.markdown.read_text()


def test_a_run_without_objectives_says_so(tmp_path: Path) -> None:
    summary = synthetic_summary()
    for service in summary["services"].values():
        service["slo"] = {}
        service["slo_met"] = True
    files = write_report(write_synthetic_run(tmp_path / "run", summary))
    assert files.met is None
    assert ET.parse(files.junit).getroot().get("tests") == "0"
    assert "No SLO objectives are set for this scenario." in files.html.read_text()


def _batch_cores_plot(run: RunData) -> bytes:
    fig, axes = new_figure(1)
    for name in run.services:
        axes[0].plot(run.series[name].t_s, run.series[name]["cores_batch"])
    return to_png(fig)


def test_a_registered_plot_appears_only_when_its_columns_exist(tmp_path: Path) -> None:
    plots = {**RUN_PLOTS, "batch": ReportPlot("batch.png", "Batch cores", "Cores lent to batch.",
                                              has_columns("cores_batch"), _batch_cores_plot)}
    run_dir = write_synthetic_run(tmp_path / "run")
    assert len(embedded_pngs(write_report(run_dir, plots).html.read_text())) == 6
    csv_path = run_dir / "timeseries.csv"
    lines = csv_path.read_text().splitlines()
    csv_path.write_text("\n".join([lines[0] + ",cores_batch",
                                   *[f"{line},{i % 7}" for i, line in enumerate(lines[1:])]]))
    files = write_report(run_dir, plots)
    assert len(embedded_pngs(files.html.read_text())) == 7
    assert run_dir / "batch.png" in files.plots and "Batch cores" in files.html.read_text()
    plt.close("all")


def test_cli_report_prints_verdict_table_and_path(tmp_path: Path) -> None:
    run_dir = write_synthetic_run(tmp_path / "run")
    result = CliRunner().invoke(app, ["report", str(run_dir)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "FAIL SLO missed: 1 of 2 services missed (browse)." in result.output
    assert MISSED_P99 in result.output
    assert f"report: {run_dir / 'report.html'}" in result.output
    assert len(result.output.splitlines()) < 15
    gated = CliRunner().invoke(app, ["report", str(run_dir), "--gate"])
    assert gated.exit_code == 1
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary == synthetic_summary()  # the report never rewrites its inputs
