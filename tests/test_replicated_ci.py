"""What CI reads from replicated runs and sweeps: junit.xml decided on intervals, the report
rebuilt from a replicated directory alone, and the sweep's three-way gate.

Every expectation follows from queueing theory (Erlang C for M/M/c, as in test_replicate.py):
a p99 target at twice the theoretical p99 is met with confidence, at 0.6 times it missed with
confidence, and on it undecided.
"""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sim.cli import app
from sim.plan import mmc_response_quantile_s
from tests.test_replicate import P99_MS, mmc_yaml, write

_OUTCOMES = ("failure", "error", "skipped")
_REPORT_FILES = ("report.md", "junit.xml", "report.html", "bands.png")


def read_junit(path: Path) -> ET.Element:
    """Parse junit.xml as a JUnit consumer does, checking the counts it trusts."""
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    cases = root.findall("testsuite/testcase")
    for case in cases:  # at most one outcome per test case, each with a type and a message
        outcomes = [child for child in case if child.tag in _OUTCOMES]
        assert len(outcomes) <= 1
        for outcome in outcomes:
            assert outcome.get("type") and outcome.get("message")
    for element, scope in [(root, cases)] + [(s, s.findall("testcase"))
                                              for s in root.findall("testsuite")]:
        assert int(element.get("tests")) == len(scope)
        assert int(element.get("failures")) == sum(c.find("failure") is not None for c in scope)
        assert int(element.get("errors")) == sum(c.find("error") is not None for c in scope)
    return root


def names_of(root: ET.Element) -> set[tuple[str, str, str]]:
    """(suite, classname, name) of every test case: what a CI dashboard keys its history on."""
    return {(suite.get("name"), case.get("classname"), case.get("name"))
            for suite in root.findall("testsuite") for case in suite.findall("testcase")}


@pytest.mark.parametrize(("target_ms", "code", "outcome"), [
    (2.0 * P99_MS, 0, None),        # the theoretical p99 is half the target: a passed test
    (0.6 * P99_MS, 1, "failure"),   # ... 1.7 times the target: a failure, as for one run
    (P99_MS, 3, "error"),           # on the target: undecided, an errored test
])
def test_junit_of_a_replicated_run(runner: CliRunner, tmp_path: Path, target_ms: float,
                                   code: int, outcome: str | None) -> None:
    scenario = write(tmp_path, mmc_yaml(target_ms).replace(
        f"p99_ms: {target_ms}", f"p99_ms: {target_ms}, error_rate: 0.01"))
    out = tmp_path / "rep"
    result = runner.invoke(app, ["run", str(scenario), "--replications", "3", "--jobs", "1",
                                 "--gate", "--out", str(out)])
    assert result.exit_code == code, result.output
    root = read_junit(out / "junit.xml")
    cases = {c.get("name"): c for c in root.iter("testcase")}
    # no request fails in M/M/c without timeouts: the error rate is met with confidence
    assert cases["error_rate"].find("system-out") is not None
    p99 = cases["p99_ms"]
    objective = json.loads((out / "replications.json").read_text())[
        "services"]["browse"]["objectives"]["p99_ms"]
    low, high = objective["value"]["low"], objective["value"]["high"]
    if outcome is None:
        assert all(p99.find(tag) is None for tag in _OUTCOMES)
        assert "met with 95% confidence" in p99.find("system-out").text
        return
    element = p99.find(outcome)
    message = element.get("message")
    assert f"target {target_ms:.0f} ms" in message
    assert f"{low:.0f} ms" in message and f"{high:.0f} ms" in message  # the interval's ends
    if outcome == "failure":
        assert element.get("type") == "SLOMissed" and "above target" in message
    else:
        assert element.get("type") == "SLOUndecided"
        assert "undecided: interval [" in message and "straddles target" in message
        needed = objective["replications_needed"]
        assert needed is None or (needed > 3 and
                                  f"about {needed} replications would likely decide it" in message)
    # one line per replication, with its seed
    seeds = json.loads((out / "replications.json").read_text())["seeds"]
    assert [line.split(":")[0] for line in element.text.splitlines()[1:]] == \
        [f"seed {s}" for s in seeds]


def test_replicated_junit_keeps_the_single_run_names(runner: CliRunner, tmp_path: Path) -> None:
    scenario = write(tmp_path, mmc_yaml(2 * P99_MS))
    single, replicated = tmp_path / "one", tmp_path / "many"
    job_summary = tmp_path / "step-summary.md"
    assert runner.invoke(app, ["run", str(scenario), "--out", str(single)]).exit_code == 0
    assert runner.invoke(app, ["run", str(scenario), "--replications", "2", "--jobs", "1",
                               "--out", str(replicated)],
                         env={"GITHUB_STEP_SUMMARY": str(job_summary)}).exit_code == 0
    assert names_of(read_junit(replicated / "junit.xml")) == \
        names_of(read_junit(single / "junit.xml")) == {("peaksim.mmc", "browse", "p99_ms")}
    # in CI the replicated report.md goes to the job summary, as a single run's does
    assert job_summary.read_text() == (replicated / "report.md").read_text()


def test_report_rebuilds_a_replicated_run_as_written(runner: CliRunner, tmp_path: Path) -> None:
    scenario = write(tmp_path, mmc_yaml(P99_MS))
    out = tmp_path / "rep"
    first = runner.invoke(app, ["run", str(scenario), "--replications", "3", "--jobs", "2",
                                "--gate", "--out", str(out)])
    assert first.exit_code == 3, first.output
    written = {name: (out / name).read_bytes() for name in _REPORT_FILES}
    for name in _REPORT_FILES:
        (out / name).unlink()
    scenario.unlink()  # the directory alone is enough
    again = runner.invoke(app, ["report", str(out), "--gate"])
    assert again.exit_code == 3, again.output
    assert "UNDECIDED An interval straddles its SLO target after 3 replications" in again.output
    for name in _REPORT_FILES:
        assert (out / name).read_bytes() == written[name], name
    as_json = json.loads(runner.invoke(app, ["report", str(out), "--json"]).stdout)
    assert as_json["decision"] == "undecided" and as_json["exit_code"] == 3
    # a corrupt listing, then a replication gone: one line naming the file, exit 2
    listing = out / "replications.json"
    kept = listing.read_text()
    listing.write_text('{"seeds": "many"}')
    corrupt = runner.invoke(app, ["report", str(out)])
    assert corrupt.exit_code == 2 and corrupt.output.startswith(f"error: {listing}: expected")
    listing.write_text(kept)
    shutil.rmtree(next(out.glob("seed-*")))
    broken = runner.invoke(app, ["report", str(out)])
    assert broken.exit_code == 2
    assert broken.output.startswith("error: ") and "summary.json" in broken.output
    assert "Traceback" not in broken.output


# --- sweep --gate -------------------------------------------------------------------------

# browse: lambda 80/s, 100 ms exponential service, 5 workers per instance; the sweep sets the
# instances of the static variant: 1 instance (5 workers) is overloaded (rho 1.6), 2 (10
# workers) is the M/M/10 of Erlang C at rho 0.8, 3 instances are rho 0.53
_LAMBDA, _MU = 80.0, 10.0
_SWEEP_YAML = """
name: sweepy
seed: 3
duration_s: 300
tick_s: 10
traffic: {{kind: constant, rps: {{browse: 80}}}}
services:
  browse: {{service_time: {{dist: exponential, mean_ms: 100}}, workers: 5,
           instances: {{min: 1, max: 10}}, price_per_hour: 1.0}}
slo: {{browse: {{p99_ms: {target_ms:.1f}}}}}
autoscaling:
  variants:
    fixed: {{policy: static, instances: {{browse: 2}}}}
    one: {{policy: static, instances: {{browse: 1}}}}
    two: {{policy: static, instances: {{browse: 2}}}}
"""
P99_10_MS = 1000.0 * mmc_response_quantile_s(0.99, 10, _LAMBDA, _MU)


def test_replicated_comparison_junit_and_rebuild(runner: CliRunner, tmp_path: Path) -> None:
    # against a 1 s p99: one instance (rho 1.6) misses with confidence, two (Erlang C p99
    # ~495 ms) hold with confidence; a comparison of alternatives passes when one holds
    assert P99_10_MS < 0.6 * 1000
    scenario = tmp_path / "cmp.yaml"
    scenario.write_text(_SWEEP_YAML.format(target_ms=1000.0))
    out, single = tmp_path / "cmp", tmp_path / "single"
    for args in (["--replications", "2", "--out", str(out)], ["--out", str(single)]):
        result = runner.invoke(app, ["compare", str(scenario), "--policy", "one", "--policy",
                                     "two", "--jobs", "1", *args])
        assert result.exit_code == 0, result.output
    root = read_junit(out / "junit.xml")
    assert [s.get("name") for s in root.findall("testsuite")] == ["one", "two"]
    assert names_of(root) == names_of(read_junit(single / "junit.xml")) == \
        {("one", "one.browse", "p99_ms"), ("two", "two.browse", "p99_ms")}
    one, two = (s.find("testcase") for s in root.findall("testsuite"))
    assert one.find("failure").get("type") == "SLOMissed"
    assert "above target 1 s with 95% confidence" in one.find("failure").get("message")
    assert all(two.find(tag) is None for tag in _OUTCOMES)
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("2", "1", "0")
    written = {name: (out / name).read_bytes() for name in _REPORT_FILES}
    for name in _REPORT_FILES:
        (out / name).unlink()
    again = runner.invoke(app, ["report", str(out), "--gate"])
    assert again.exit_code == 0, again.output
    assert again.output.rstrip().splitlines()[-1].startswith("PASS 1 of 2 variants held")
    for name in _REPORT_FILES:
        assert (out / name).read_bytes() == written[name], name


def sweep(runner: CliRunner, tmp_path: Path, target_ms: float, instances: str
          ) -> tuple[int, str, dict]:
    scenario = tmp_path / f"sweep-{target_ms:.0f}-{instances}.yaml"
    scenario.write_text(_SWEEP_YAML.format(target_ms=target_ms))
    out = tmp_path / f"out-{target_ms:.0f}-{instances}"
    result = runner.invoke(app, ["sweep", str(scenario), "--policy", "fixed", "--set",
                                 f"autoscaling.variants.fixed.instances.browse={instances}",
                                 "--replications", "2", "--jobs", "1", "--gate",
                                 "--out", str(out)])
    return result.exit_code, result.output, json.loads((out / "sweep.json").read_text())


def test_sweep_gate_passes_when_a_point_holds(runner: CliRunner, tmp_path: Path) -> None:
    # 2 instances: Erlang C p99 ~495 ms, half a 1 s target; 1 instance is overloaded
    assert P99_10_MS < 0.6 * 1000
    code, output, data = sweep(runner, tmp_path, 1000.0, "1,2,3")
    assert code == 0, output
    assert "PASS Cheapest point that holds the SLO with 95% confidence: point 1" in output
    assert data["gate"] == {"decision": "pass", "exit_code": 0, "undecided": []}


def test_sweep_gate_fails_when_no_point_holds(runner: CliRunner, tmp_path: Path) -> None:
    # one instance at rho 1.6: the queue grows all run, the p99 goes far beyond 1 s
    code, output, data = sweep(runner, tmp_path, 1000.0, "1")
    assert code == 1, output
    assert "FAIL No point held the SLO with 95% confidence" in output
    assert data["gate"]["decision"] == "fail"


def test_sweep_gate_is_undecided_when_the_best_point_straddles(runner: CliRunner,
                                                               tmp_path: Path) -> None:
    # the target is the M/M/10 p99 itself: point 1's interval straddles it (two replications,
    # t = 12.7), point 0 is overloaded and misses with confidence
    code, output, data = sweep(runner, tmp_path, P99_10_MS, "1,2")
    assert code == 3, output
    assert [p["decision"] for p in data["points"]] == ["fail", "undecided"]
    assert data["gate"] == {"decision": "undecided", "exit_code": 3, "undecided": [1]}
    assert "UNDECIDED No point held the SLO with 95% confidence; 1 of 2 undecided: point 1" \
        in output.replace("\n", " ")
    needed = data["points"][1]["result"]["gate"]["replications_needed"]
    assert needed is None or f"about {needed} replications would likely decide it" in \
        output.replace("\n", " ")


@pytest.mark.parametrize(("target_ms", "most"), [(P99_MS, 4), (0.9 * P99_MS, 1)])
def test_a_replicated_plan_gives_ci_the_junit_its_exit_code_was_decided_on(
        runner: CliRunner, tmp_path: Path, target_ms: float, most: int) -> None:
    # at most one instance and a target below its p99: no count holds, the plan fails (1)
    scenario = write(tmp_path, mmc_yaml(target_ms).replace(
        "instances: {min: 1, max: 4}", f"instances: {{min: 1, max: {most}}}"))
    out = tmp_path / "plan"
    result = runner.invoke(app, ["plan", str(scenario), "--replications", "3", "--jobs", "1",
                                 "--out", str(out)])
    assert result.exit_code in ((0, 3) if most > 1 else (1,)), result.output
    root = read_junit(out / "junit.xml")
    failures, errors = int(root.get("failures")), int(root.get("errors"))
    # the file agrees with the exit code: never a green junit.xml beside a red or undecided plan
    assert (failures, errors) == (0, 0) if result.exit_code == 0 else (failures + errors) > 0
    if result.exit_code == 3:
        assert failures == 0 and errors > 0
    assert names_of(root) == {("peaksim.mmc", "browse", "p99_ms")}
