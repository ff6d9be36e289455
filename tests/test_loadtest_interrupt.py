"""Ctrl-C at any moment of ``peaksim loadtest --local-shop``: exit 130, no process left behind,
what was measured kept (a report marked interrupted; during the report, the report finished),
and ``latest`` never pointing at a run without its report.

A run goes through four phases, told apart from outside by its processes: its imports and
checks, the shop starting (the shop process exists), Locust running (the Locust process
exists), then the merge and the report (Locust has exited). One uninterrupted run measures how
long each lasts (a whole run takes about 12-30 s on a shared 2-core machine); then twenty runs
are each sent SIGINT at one of five moments spread evenly over one phase, (j - 0.5) / 5 of its
measured length after it began (or as soon as the next phase shows it is over). Anchoring the
moments to the phases keeps them spread over the whole run whatever the machine's load; the
runs go four at a time. Moments count from the end of Python's own start-up (``site`` and the
.pth hooks of installed packages, where no peaksim code runs yet and a SIGINT is Python's: a
traceback, exit 1), taken as twice the time ``python -c pass`` takes right before each run.
Every process the command started is recorded while it runs (psutil), and after the exit none
may be alive, nor any process whose command line names the run's directory, nor a socket
listening on the shop's port. A run of the last phase that is slower to reach its moment than
to finish (at most two) must then have finished cleanly (exit 0).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.slow

SCENARIO = """
name: interrupt-me
seed: 3
duration_s: 3
traffic: {kind: constant, rps: {browse: 20, order: 5}}
services:
  browse: {service_time: {dist: exponential, mean_ms: 2}, workers: 8, instances: 1}
  order: {service_time: {dist: exponential, mean_ms: 2}, workers: 8, instances: 1}
"""
PARALLEL = 4
EXIT_BOUND_S = 60.0
"""The longest a run may take to exit after its SIGINT (the children's stop grace is 15 s)."""
ROOT = Path(__file__).resolve().parents[1]


PHASES = ("imports and checks", "shop starting", "Locust running", "merge and report")
"""Phase i begins at milestone i: the command's own code starts (after Python's start-up), the
shop process appears, the Locust process appears, Locust exits. The last ends with the command."""
PER_PHASE = 5


@dataclass
class Watched:
    """What was seen of one run: its descendants (pid -> create time), the times of the
    milestones (s from the end of Python's start-up; None: not reached) and the exit."""

    seen: dict[int, float]
    milestones_s: list[float | None]
    exit_code: int | None = None
    stderr: str = ""
    signalled_s: float | None = None
    exited_s: float = 0.0


def command(scenario: Path) -> list[str]:
    return [sys.executable, "-m", "sim", "loadtest", str(scenario), "--local-shop",
            "--lag-threshold-ms", "500"]


ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def python_start_s() -> float:
    """How long Python's own start-up takes right now (``python -c pass``)."""
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", "pass"], env=ENV, check=True)
    return time.monotonic() - started


def watch(scenario: Path, cwd: Path, phase: int | None = None,
          after_s: float = 0.0) -> Watched:
    """Run the command; with ``phase``, send SIGINT ``after_s`` into that phase (or as soon
    as a later milestone shows the phase is over)."""
    origin = time.monotonic() + 2.0 * python_start_s()  # with a margin: the load varies
    process = subprocess.Popen(command(scenario), cwd=cwd, env=ENV, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    me = psutil.Process(process.pid)
    got = Watched({}, [0.0, None, None, None])
    locust_pid = None
    deadline = time.monotonic() + 300.0
    while process.poll() is None and time.monotonic() < deadline:
        now_s = time.monotonic() - origin
        try:
            for child in me.children(recursive=True):
                got.seen.setdefault(child.pid, child.create_time())
                line = " ".join(child.cmdline())
                if got.milestones_s[1] is None and " shop " in line:
                    got.milestones_s[1] = now_s
                if got.milestones_s[2] is None and " locust " in line:
                    got.milestones_s[2], locust_pid = now_s, child.pid
        except psutil.Error:
            pass  # a child that ended between listing and reading
        if locust_pid is not None and got.milestones_s[3] is None and not _alive(locust_pid):
            got.milestones_s[3] = now_s
        if phase is not None and got.signalled_s is None:
            start = got.milestones_s[phase]
            later = any(m is not None for m in got.milestones_s[phase + 1:])
            if (start is not None and now_s >= start + after_s) or later:
                process.send_signal(signal.SIGINT)
                got.signalled_s = now_s
        time.sleep(0.02)
    got.exited_s = time.monotonic() - origin
    try:
        _, err = process.communicate(timeout=EXIT_BOUND_S)
        got.exit_code = process.returncode
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
    got.stderr = err.decode(errors="replace")
    return got


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@dataclass
class Interrupted:
    phase: int
    after_s: float
    watched: Watched
    cwd: Path

    @property
    def exit_code(self) -> int | None:
        return self.watched.exit_code

    @property
    def seen(self) -> dict[int, float]:
        return self.watched.seen

    @property
    def stderr(self) -> str:
        return self.watched.stderr


def interrupt(phase: int, after_s: float, cwd: Path, scenario: Path) -> Interrupted:
    return Interrupted(phase, after_s, watch(scenario, cwd, phase, after_s), cwd)


def survivors(run: Interrupted) -> list[str]:
    """Processes of this run still alive after it exited (killed here once found)."""
    alive = []
    for pid, created in run.seen.items():
        try:
            process = psutil.Process(pid)
            if process.create_time() == created and process.status() != psutil.STATUS_ZOMBIE:
                alive.append(" ".join(process.cmdline()[:8]))
                process.kill()
        except psutil.NoSuchProcess:
            continue
    for process in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if str(run.cwd) in cmdline and process.pid != os.getpid():
            alive.append(cmdline[:200])
            process.kill()
    return alive


def shop_listening(run: Interrupted) -> bool:
    logs = list(run.cwd.glob("reports/*/*/shop.log"))
    for log in logs:
        match = re.search(r"http://127\.0\.0\.1:(\d+)", log.read_text(errors="replace"))
        if match is None:
            continue
        port = int(match.group(1))
        if any(c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN
               for c in psutil.net_connections(kind="tcp")):
            return True
    return False


@pytest.fixture
def sigint_reaches_children() -> Iterator[None]:
    """Children inherit an ignored SIGINT (pytest started as a background job): handle it here
    so that they start with the default disposition."""
    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.usefixtures("sigint_reaches_children")
def test_ctrl_c_at_any_moment_exits_130_and_leaves_nothing_behind(tmp_path: Path) -> None:
    scenario = tmp_path / "interrupt.yaml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    (tmp_path / "whole").mkdir()
    whole = watch(scenario, tmp_path / "whole")
    assert whole.exit_code == 0, whole.stderr[-500:]
    marks = [m for m in whole.milestones_s if m is not None]
    assert len(marks) == len(PHASES), whole.milestones_s
    ends = [*marks[1:], whole.exited_s]
    plan = [(phase, (j - 0.5) / PER_PHASE * (ends[phase] - marks[phase]))
            for phase in range(len(PHASES)) for j in range(1, PER_PHASE + 1)]
    cwds = []
    for index in range(len(plan)):
        cwd = tmp_path / f"run-{index:02d}"
        cwd.mkdir()
        cwds.append(cwd)
    with ThreadPoolExecutor(PARALLEL) as pool:
        runs = list(pool.map(lambda args: interrupt(*args[0], args[1], scenario),
                             zip(plan, cwds, strict=True)))
    problems = []
    finished_first = [run for run in runs if run.watched.signalled_s is None]
    assert len(finished_first) <= 2 and all(
        run.phase == len(PHASES) - 1 and run.exit_code == 0 for run in finished_first), [
        (run.phase, run.after_s, run.exit_code, run.stderr[-300:]) for run in finished_first]
    for run in runs:
        orphans = survivors(run)
        if run in finished_first:
            assert not orphans and not shop_listening(run)
            continue
        # A shell reports a death by SIGINT as $? = 130 too; CPython ends that way, rarely,
        # when the Ctrl-C lands while it finalizes after the report (what was measured is
        # written by then, and the orphan and port checks still apply).
        if run.exit_code not in (130, -signal.SIGINT) or orphans or shop_listening(run):
            problems.append((PHASES[run.phase], run.after_s, run.exit_code, orphans,
                             run.stderr[-300:]))
        if "Traceback" in run.stderr:
            problems.append((PHASES[run.phase], run.after_s, "traceback", run.stderr[-600:]))
        latest = run.cwd / "reports" / "interrupt-me" / "latest"
        if latest.exists():  # only a run with its report is ever pointed at
            summary = json.loads((latest / "summary.json").read_text())
            assert (latest / "report.html").exists() and (latest / "report.md").exists()
            if run.phase < len(PHASES) - 1:  # cut before Locust was done: marked partial
                assert summary["generator"]["interrupted"], (run.phase, run.after_s)
                assert "interrupted" in (latest / "report.md").read_text()
    assert not problems, problems
