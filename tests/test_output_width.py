"""Terminal output fits 60, 80 and 120 columns and pipes without cutting a value or a name;
CI mode prints no control characters and appends report.md to the job summary."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.cells import cell_len
from rich.console import Console
from typer.testing import CliRunner

from sim.cli import app
from sim.termtable import Column, TextTable, layout, render

WIDTHS = (60, 80, 120)
ROOT = Path(__file__).resolve().parent.parent

# Long variant and service names: at 60 and 80 columns the comparison cannot fit whole.
LONG = """
name: long-names
seed: 4
duration_s: 120
tick_s: 5
traffic: {kind: constant, rps: {browse-catalogue: 30, payment-gateway: 10}}
services:
  browse-catalogue: {service_time: {dist: exponential, mean_ms: 100}, workers: 4,
                     instances: {min: 1, max: 4, initial: 2}, timeout_ms: 1000}
  payment-gateway: {service_time: {dist: exponential, mean_ms: 100}, workers: 4,
                    instances: {min: 1, max: 4, initial: 2}, timeout_ms: 1000}
slo: {browse-catalogue: {p99_ms: 900, error_rate: 0.01}, payment-gateway: {p99_ms: 50}}
autoscaling:
  variants:
    static-two-instances-all-evening: {policy: static,
                                       instances: {browse-catalogue: 2, payment-gateway: 2}}
    one: {policy: static, instances: {browse-catalogue: 1, payment-gateway: 1}}
"""

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def lines_of(text: str) -> list[str]:
    return [line.rstrip() for line in text.splitlines()]


def assert_fits(text: str, width: int) -> None:
    """Every line within ``width``, except a file path alone on its line (it cannot break)."""
    too_wide = [line for line in lines_of(text)
                if cell_len(line) > width and " " in line.strip()]
    assert not too_wide, f"lines wider than {width}: {too_wide}"
    assert "…" not in text


def printed(table: TextTable, width: int) -> str:
    console = Console(width=width, force_terminal=False, color_system=None)
    with console.capture() as capture:
        console.print(render(table, width))
    return capture.get()


def wide_table() -> TextTable:
    columns = (Column("policy", "l", key=True), Column("service", "l", key=True),
               *(Column(f"figure {i}") for i in range(9)), Column("SLO", "l"))
    rows = tuple((policy, service, *(f"{i * 1111.11 + n:,.2f}" for i in range(9)),
                  "MISSED p99_ms, error_rate" if n else "met")
                 for n, (policy, service) in enumerate([
                     ("predictive-learned", "browse"), ("predictive-learned", "payment"),
                     ("static-peak", "browse"), ("大促-预热", "支付")]))
    return TextTable("variants", columns, rows, blank_repeats=True)


@pytest.mark.parametrize("width", (40, *WIDTHS))
def test_every_cell_is_printed_whole_within_the_width(width: int) -> None:
    table = wide_table()
    text = printed(table, width)
    assert_fits(text, width)
    for row in table.rows:
        for cell in row:
            assert cell in text, f"{cell!r} cut at {width} columns"


def test_a_table_that_fits_is_one_part_and_a_wide_one_repeats_its_keys() -> None:
    table = wide_table()
    whole = layout(table, 200)
    assert whole is not None and len(whole[0]) == 1
    split = layout(table, 80)
    assert split is not None and len(split[0]) > 1
    for part in split[0]:
        assert part[:2] == [0, 1]  # policy and service start every part
    covered = sorted({i for part in split[0] for i in part})
    assert covered == list(range(len(table.columns)))
    # Too narrow for the keys and one column: one block per row, headed by its keys.
    assert layout(table, 30) is None
    stacked = printed(table, 30)
    assert "predictive-learned · payment" in stacked and "static-peak · browse" in stacked


def test_json_of_a_table_has_every_cell_by_header() -> None:
    table = wide_table()
    data = table.to_json()
    assert data["columns"][0] == "policy" and len(data["rows"]) == 4
    assert data["rows"][1]["SLO"] == "MISSED p99_ms, error_rate"
    assert data["rows"][1]["policy"] == "predictive-learned"  # not blanked like on screen


@pytest.fixture(scope="module")
def long_scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("long") / "long.yaml"
    path.write_text(LONG, encoding="utf-8")
    return path


@pytest.mark.parametrize("width", WIDTHS)
def test_run_and_compare_fit_the_terminal_width(
    width: int, long_scenario: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    env = {"COLUMNS": str(width), "CI": "", "GITHUB_STEP_SUMMARY": ""}
    run = runner.invoke(app, ["run", str(long_scenario), "--out", str(tmp_path / "r")], env=env)
    assert run.exit_code == 0, run.output
    assert_fits(run.stdout, width)
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    for name, s in summary["services"].items():
        assert name in run.stdout and f"{s['requests']:,}" in run.stdout
    # The verdict comes last; with its reason it may wrap onto the following lines.
    tail = lines_of(run.stdout)
    start = max(i for i, line in enumerate(tail) if line.startswith("FAIL SLO missed by:"))
    assert " ".join(tail[start:]).startswith("FAIL SLO missed by: payment-gateway")
    assert len(tail) - start <= 4
    if width == 120:
        return  # compare at 120 columns: the piped test below

    compare = runner.invoke(app, ["compare", str(long_scenario), "--out",
                                  str(tmp_path / "c")], env=env)
    assert compare.exit_code == 0, compare.output
    assert_fits(compare.stdout, width)
    for variant in ("static-two-instances-all-evening", "one"):
        cost = json.loads((tmp_path / "c" / variant / "summary.json").read_text())
        assert variant in compare.stdout
        assert f"${cost['services']['browse-catalogue']['cost']:,.2f}" in compare.stdout
    # The comparison's verdict closes the output, as in the report.
    last = " ".join(lines_of(compare.stdout)[-3:])
    assert "FAIL No variant held every SLO" in last


def test_piped_output_is_120_columns_and_ci_mode_has_no_control_characters(
    long_scenario: Path, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items()
           if k not in ("COLUMNS", "LINES", "CI", "GITHUB_STEP_SUMMARY", "FORCE_COLOR")}
    env["PYTHONPATH"] = str(ROOT)
    peaksim = [sys.executable, "-c", "from sim.cli import app; app()"]
    piped = subprocess.run(
        [*peaksim, "compare", str(long_scenario), "--out", str(tmp_path / "piped")],
        capture_output=True, text=True, env=env, timeout=120, check=False)
    assert piped.returncode == 0, piped.stderr
    assert_fits(piped.stdout, 120)
    assert "static-two-instances-all-evening" in piped.stdout
    # In a CI job: no colours or cursor moves, and report.md goes to the job summary.
    job_summary = tmp_path / "step-summary.md"
    job_summary.write_text("# earlier step\n", encoding="utf-8")
    env |= {"CI": "true", "GITHUB_STEP_SUMMARY": str(job_summary), "FORCE_COLOR": "1"}
    ci = subprocess.run([*peaksim, "run", str(long_scenario), "--out", str(tmp_path / "ci")],
                        capture_output=True, text=True, env=env, timeout=120, check=False)
    assert ci.returncode == 0, ci.stderr
    assert not CONTROL.search(ci.stdout) and not CONTROL.search(ci.stderr)
    report = (tmp_path / "ci" / "report.md").read_text(encoding="utf-8")
    assert job_summary.read_text(encoding="utf-8") == "# earlier step\n" + report


def test_version_and_help_show_no_bool_type(runner: CliRunner) -> None:
    from sim import __version__

    version = runner.invoke(app, ["--version"])
    assert version.exit_code == 0 and version.stdout.strip() == f"peaksim {__version__}"
    for command in ("run", "compare", "plan", "report", "curve", "bench", "loadtest", "shop"):
        text = runner.invoke(app, [command, "--help"], env={"COLUMNS": "120"}).stdout
        assert "--json" in text or "--gate" in text or "--local-shop" in text
        assert "<bool>" not in text, command
