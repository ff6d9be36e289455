"""The comparison report of policy variants: verdict, junit, tables, plots, regeneration."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

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
from sim.report import write_comparison_report


def _held_summary() -> dict:
    """The synthetic run with twice the browse instances: p99 within its SLO, costing more."""
    summary = synthetic_summary(policy="target_tracking")
    browse = summary["services"]["browse"]
    browse["slo"]["p99_ms"] = {"target": 300.0, "value": 150.0, "met": True}
    browse["latency_ms"]["p99"] = 150.0
    browse["slo_met"] = summary["slo_met"] = True
    browse["cost"], browse["instance_seconds"] = 0.6, 8400.0
    summary["cost"]["total"] = 0.8
    return summary


@pytest.fixture(scope="module")
def compared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("compare")
    static = write_synthetic_run(base / "runs" / "static")
    hpa = write_synthetic_run(base / "runs" / "hpa", _held_summary(), browse_p99_scale=0.1)
    write_comparison_report(base / "cmp", [static, hpa], ["static", "hpa"])
    return base / "cmp"


def test_verdict_names_the_variant_that_held(compared: Path) -> None:
    text = (compared / "report.md").read_text()
    assert "hpa is the only variant that held every SLO (cost 0.8 USD)." in text
    assert "static missed 1 objective (browse p99 450 ms against 300 ms)" in text
    assert "hpa (policy target\\_tracking) held every SLO" in text


def test_side_by_side_tables_are_well_formed(compared: Path) -> None:
    tables = markdown_tables((compared / "report.md").read_text())
    overview = next(t for t in tables if t[0][0] == "variant" and t[0][1] == "policy")
    assert [(row[0], row[2], row[4]) for row in overview[1:]] == [
        ("static", "❌ MISSED", "0.5 USD"), ("hpa", "✅ met", "0.8 USD")]
    browse = [t for t in tables if t[0][:4] == ["variant", "SLO", "p95", "p99"]][0]
    assert [(row[0], row[3]) for row in browse[1:]] == [("static", "450 ms"), ("hpa", "150 ms")]
    assert len(tables) == 3  # overview + one per service


def test_junit_has_one_suite_per_variant_and_one_failure(compared: Path) -> None:
    root = ET.parse(compared / "junit.xml").getroot()
    assert root.get("tests") == "8" and root.get("failures") == "1"
    assert [s.get("name") for s in root.findall("testsuite")] == ["static", "hpa"]
    failed = [(c.get("classname"), c.get("name")) for c in root.iter("testcase")
              if c.find("failure") is not None]
    assert failed == [("static.browse", "p99_ms")]


def test_overlay_plots_are_embedded(compared: Path) -> None:
    pngs = embedded_pngs((compared / "report.html").read_text())
    names = ["compare_instances", "compare_p99", "compare_errors", "compare_cost"]
    assert [(compared / f"{n}.png").read_bytes() for n in names] == pngs


def test_peaksim_report_rebuilds_a_comparison_identically(compared: Path) -> None:
    listing = json.loads((compared / "comparison.json").read_text())
    assert listing["runs"] == [{"name": "static", "run_dir": "../runs/static"},
                               {"name": "hpa", "run_dir": "../runs/hpa"}]
    md, html_text = (compared / "report.md").read_text(), (compared / "report.html").read_text()
    result = CliRunner().invoke(app, ["report", str(compared)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "hpa is the only variant that held every SLO" in result.output
    assert (compared / "report.md").read_text() == md
    assert html_tables((compared / "report.html").read_text()) == html_tables(html_text)


def test_names_must_match_the_runs(tmp_path: Path) -> None:
    run = write_synthetic_run(tmp_path / "run")
    with pytest.raises(ValueError, match="one name per run"):
        write_comparison_report(tmp_path / "cmp", [run, run], ["only-one"])
    with pytest.raises(ValueError, match="distinct"):
        write_comparison_report(tmp_path / "cmp", [run, run], ["a", "a"])
