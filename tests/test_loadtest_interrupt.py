"""Ctrl-C at any moment of ``peaksim loadtest --local-shop``: exit 130, no process left behind,
what was measured kept, and ``latest`` never pointing at a run without its report.

Twenty runs of a small scenario, each sent SIGINT at one of twenty moments spread evenly over
0.25-9.75 s after Python's own start-up (``site`` and the .pth hooks of installed packages,
where no peaksim code runs yet and a SIGINT is Python's: a traceback, exit 1). That start-up is
measured right before each run as the time ``python -c pass`` takes then, because under load it
alone can last over a second. The moments cover the imports, the shop starting, Locust
starting, the replay, the drain and the report (a run lasts about 12-20 s on a shared 2-core
machine). They run four at a time. Every process the command started is recorded while it
runs (psutil), and after the exit none may be alive, nor any process whose command line names
the run's directory, nor a socket listening on the shop's port.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.slow

SCENARIO = """
name: interrupt-me
seed: 3
duration_s: 4
traffic: {kind: constant, rps: {browse: 20, order: 5}}
services:
  browse: {service_time: {dist: exponential, mean_ms: 2}, workers: 8, instances: 1}
  order: {service_time: {dist: exponential, mean_ms: 2}, workers: 8, instances: 1}
"""
MOMENTS_S = [0.25 + 0.5 * i for i in range(20)]
PARALLEL = 4
EXIT_BOUND_S = 60.0
"""The longest a run may take to exit after its SIGINT (the children's stop grace is 15 s)."""
ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Interrupted:
    moment_s: float
    exit_code: int | None
    stderr: str
    seen: dict[int, float]
    """Every descendant seen while it ran: pid -> create time."""
    cwd: Path


def interrupt_at(moment_s: float, cwd: Path, scenario: Path) -> Interrupted:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)
    python_start_s = time.monotonic() - started
    process = subprocess.Popen(
        [sys.executable, "-m", "sim", "loadtest", str(scenario), "--local-shop",
         "--lag-threshold-ms", "500"],
        cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE)
    me = psutil.Process(process.pid)
    seen: dict[int, float] = {}
    end = time.monotonic() + python_start_s + moment_s
    while time.monotonic() < end:
        try:
            for child in me.children(recursive=True):
                seen[child.pid] = child.create_time()
        except psutil.Error:
            pass  # a child that ended between listing and reading
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    try:
        _, err = process.communicate(timeout=EXIT_BOUND_S)
        code: int | None = process.returncode
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
        code = None
    return Interrupted(moment_s, code, err.decode(errors="replace"), seen, cwd)


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


def test_ctrl_c_at_any_moment_exits_130_and_leaves_nothing_behind(tmp_path: Path) -> None:
    scenario = tmp_path / "interrupt.yaml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    cwds = []
    for index in range(len(MOMENTS_S)):
        cwd = tmp_path / f"run-{index:02d}"
        cwd.mkdir()
        cwds.append(cwd)
    with ThreadPoolExecutor(PARALLEL) as pool:
        runs = list(pool.map(lambda args: interrupt_at(*args, scenario),
                             zip(MOMENTS_S, cwds, strict=True)))
    problems = []
    for run in runs:
        orphans = survivors(run)
        if run.exit_code != 130 or orphans or shop_listening(run):
            problems.append((run.moment_s, run.exit_code, orphans, run.stderr[-300:]))
        if "Traceback" in run.stderr:
            problems.append((run.moment_s, "traceback", run.stderr[-600:]))
        latest = run.cwd / "reports" / "interrupt-me" / "latest"
        if latest.exists():  # only a run with its report is ever pointed at
            summary = json.loads((latest / "summary.json").read_text())
            assert (latest / "report.html").exists() and (latest / "report.md").exists()
            assert summary["generator"]["interrupted"], run.moment_s
            assert "interrupted" in (latest / "report.md").read_text()
    assert not problems, problems
