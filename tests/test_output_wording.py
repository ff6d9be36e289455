"""Verdicts and messages that explain themselves: the load-test table's SLO column agrees with
the gate, HPA reasons show the numbers they used and the limit that won, bad JSON is named
whole, policy aliases are suggested by meaning, counts agree in number, the report footer's
command works as written, and "peak" means one thing."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
from test_loadtest_units import _summary
from test_policy_hpa import desired, hpa, observe, service
from test_report_rundir import write_synthetic_run
from typer.testing import CliRunner

from loadtests.gate import EXIT_INCONCLUSIVE, evaluate_gate, load_table
from sim.cli import app
from sim.errors import RunDirError
from sim.report import load_run, plural, write_report
from sim.schema import suggest

ROOT = Path(__file__).resolve().parent.parent


def table_summary(kept_up: bool, p99: float, interrupted: bool = False) -> dict[str, Any]:
    summary = _summary(kept_up=kept_up, p99=p99)
    summary["generator"]["interrupted"] = interrupted
    browse = summary["services"]["browse"]
    browse["load"] |= {"target_rps": 100.0, "achieved_rps": 96.0}
    browse |= {"latency_ms": {"p50": 10.0, "p95": 50.0, "p99": p99},
               "latency_raw_ms": {"p99": 20.0}, "error_rate": 0.0}
    return summary


@pytest.mark.parametrize(("kept_up", "interrupted", "slo_cell"), [
    (True, False, "MISSED p99_ms"), (False, False, "not judged"), (True, True, "not judged")])
def test_load_table_judges_slos_only_when_the_gate_does(
    kept_up: bool, interrupted: bool, slo_cell: str
) -> None:
    summary = table_summary(kept_up, p99=900.0, interrupted=interrupted)
    (row,) = load_table(summary, "load test").to_json()["rows"]
    assert row["SLO"] == slo_cell
    gate = evaluate_gate(summary)
    assert ("not judged" in gate.headline) == (slo_cell == "not judged")


def test_an_interrupted_load_test_says_so_instead_of_blaming_the_generator() -> None:
    gate = evaluate_gate(table_summary(kept_up=False, p99=900.0, interrupted=True))
    assert gate.exit_code == EXIT_INCONCLUSIVE
    assert "interrupted" in gate.headline and "--workers" not in gate.headline


def test_hpa_reason_shows_whole_percent_and_the_limit_that_clipped() -> None:
    # 4 pods at 66.9%: the controller uses 66% (int32 truncation): 66/60 = 1.100, in band.
    policy = hpa(target=0.6)
    assert desired(policy, observe(0, service([0.669] * 4))) == 4
    reason = policy.explain("order")
    assert "utilization 66% (mean 66.9%, truncated to whole percent) / target 60% = 1.100" \
        in reason
    # 2 pods at 100% vs 20%: ratio 5 -> proposal 10; the legacy limit max(2 x 2, 4) = 4 wins.
    clipped = hpa(target=0.2)
    assert desired(clipped, observe(0, service([1.0] * 2))) == 4
    assert "proposal 10 -> 4 (scale-up limit max(2 x 2, 4) = 4 per sync)" in \
        clipped.explain("order")
    # With a behavior block the named limit is its scale-up policies.
    behaving = hpa(target=0.2, behavior={"scale_up": {"policies": [
        {"type": "Pods", "value": 1, "period_s": 60}]}})
    assert desired(behaving, observe(0, service([1.0] * 2))) == 3
    assert "proposal 10 -> 3 (scale-up policies (Pods 1 per 60 s, select Max) allow 3)" in \
        behaving.explain("order")


def test_bad_summary_json_message_is_whole(tmp_path: Path) -> None:
    run_dir = write_synthetic_run(tmp_path / "run")
    (run_dir / "summary.json").write_text('{"scenario": "a\tb"}')
    with pytest.raises(RunDirError) as info:
        load_run(run_dir)
    assert str(info.value).endswith("summary.json:1: not valid JSON: invalid control "
                                    "character at column 16")  # the tab, 1-based


@pytest.mark.parametrize(("word", "meant"), [
    ("hpa", "target_tracking"), ("KEDA", "target_tracking"), ("aws", "target_tracking"),
    ("step-scaling", "step"), ("cron", "scheduled"), ("statc", "static")])
def test_policy_names_are_suggested_by_meaning_and_spelling(word: str, meant: str) -> None:
    from sim.policies.autoscaling import POLICIES, POLICY_ALIASES

    assert suggest(word, sorted(POLICIES), POLICY_ALIASES) == f" (did you mean '{meant}'?)"


def test_unknown_policy_hpa_suggests_target_tracking(runner: CliRunner) -> None:
    result = runner.invoke(app, ["run", str(ROOT / "scenarios" / "mmc-check.yaml"),
                                 "--policy", "hpa"])
    assert result.exit_code == 2
    assert "(did you mean 'target_tracking'?)" in result.output


def test_counts_agree_in_number(runner: CliRunner) -> None:
    assert plural(1, "service") == "1 service" and plural(3, "service") == "3 services"
    assert plural(2, "policy", "policies") == "2 policies"
    result = runner.invoke(app, ["validate", str(ROOT / "scenarios" / "mmc-check.yaml")])
    assert result.exit_code == 0 and result.stdout.strip().endswith("(mmc-check, 1 service)")


def test_report_footer_command_works_as_written(tmp_path: Path) -> None:
    run_dir = write_synthetic_run(tmp_path / "nested" / "run")
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        markdown = write_report(run_dir).markdown.read_text(encoding="utf-8")
    finally:
        os.chdir(cwd)
    command = markdown.split("To rebuild it, run: ", 1)[1].split("<", 1)[0].strip()
    assert command == "peaksim report nested/run"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    rebuilt = subprocess.run(
        ["python", "-c", "from sim.cli import app; app()", *shlex.split(command)[1:]],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert rebuilt.returncode == 0, rebuilt.stderr


def test_peak_is_the_curve_and_the_busiest_tick_is_named_apart(
    runner: CliRunner, tmp_path: Path
) -> None:
    # M/M/10 at a constant 80/s: the curve's peak is 80; a 1-s tick holds more by chance.
    result = runner.invoke(app, ["run", str(ROOT / "scenarios" / "mmc-check.yaml"), "--out",
                                 str(tmp_path / "run"), "--json"])
    assert result.exit_code == 0, result.output
    browse = json.loads(result.stdout)["services"]["browse"]
    assert browse["curve_peak_rps"] == 80.0 and browse["offered_peak_rps"] > 80.0
    facts = (tmp_path / "run" / "report.md").read_text(encoding="utf-8")
    assert "80 requests/s at +0:00:00 (the traffic curve's highest rate); busiest tick " \
           f"{browse['offered_peak_rps']:.0f} requests/s offered, from +" in facts
    curve = runner.invoke(app, ["curve", str(ROOT / "scenarios" / "mmc-check.yaml"), "--out",
                                str(tmp_path / "curve"), "--json"])
    assert json.loads(curve.stdout)["services"]["browse"]["peak_rps"] == 80.0


def test_report_slo_table_of_an_unjudged_load_test_says_not_judged() -> None:
    from loadtests.report import _not_judged
    from sim.report import Table

    table = Table("SLO objectives", ("service", "objective", "target", "result"),
                  (("browse", "p99", "300 ms", "MISSED: 2% of requests failed"),
                   ("order", "p95", "400 ms", "met")), ("l", "l", "r", "l"), anchor="slo")
    marked = _not_judged(table)
    assert [row[3] for row in marked.rows] == ["not judged", "not judged"]
    assert [row[:3] for row in marked.rows] == [row[:3] for row in table.rows]
