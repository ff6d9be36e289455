"""``peaksim bench --loadgen``: peaksim's replay against bare Locust, same machine, same run.

Both drive the same minimal aiohttp server (``loadtests.bench.server``) on loopback:

1. **bare**: Locust ``FastHttpUser`` with no wait, closed loop (``loadtests.bench.bare``): its
   requests per second after a warm-up are the reference, the most one process sends here;
2. **replay**: ``peaksim``'s open-model replay of a constant rate, with templates, a capture
   chain and a JSON check on (two services: ``item`` reads ``/items/{{ zipf(..) }}`` and
   captures an id; ``buy`` posts it with a uuid, a random quantity and an API key from the
   environment), at ``fraction`` of the bare rate measured just before (times the worker
   count). Its figure is the share of intended sends on time (at most ``lag_threshold_ms``
   late) in its worst window, and the rate it sent.

Rounds alternate bare and replay so that both see the same background load; the ratio of a
round is replay rate / bare rate. Each run's CPU time per request in its steady state (the
generator process's user + system time from ``/proc`` between a third and the end of the run,
over the requests its measured rate sends in that time; with ``workers``, the workers' time
summed; the server excluded) is reported too: on a shared machine it varies far less than
rates do. With two or more CPUs and one generator
process, the server and the generator are pinned to different CPUs. ``PEAKSIM_BENCH_KEEP=DIR``
keeps the runs' files there (each replay's ``on_time.json`` lists its windows' on-time shares).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from loadtests.collector import RESULTS_FILE
from loadtests.procs import check_reachable, free_port, stop
from loadtests.results import merge_results
from loadtests.runner import LoadTestConfig, locust_args, plan_run
from sim.errors import LoadTestError

BARE_USERS = 32
ON_TIME_GOAL = 0.98
"""Share of sends on time that every window of a replay run must hold to count."""
KEY_VARIABLE = "PEAKSIM_BENCH_KEY"
_SCENARIO = """
name: loadgen-bench
seed: 1
duration_s: {duration_s}
traffic: {{kind: constant, rps: {{item: {item_rps}, buy: {buy_rps}}}}}
services:
  item: {{service_time: {{dist: constant, mean_ms: 1}}, workers: 1000, instances: 1}}
  buy: {{service_time: {{dist: constant, mean_ms: 1}}, workers: 1000, instances: 1}}
loadtest:
  headers: {{X-Api-Key: "{{{{ env.{key} }}}}"}}
  requests:
    item:
      path: "/items/{{{{ zipf(10000, 1.1) }}}}"
      capture: {{id: id}}
    buy:
      method: POST
      path: /orders
      headers: {{Idempotency-Key: "{{{{ uuid() }}}}"}}
      json: {{item: "{{{{ item.id }}}}", qty: "{{{{ randint(1, 3) }}}}"}}
      reuse: true
      expect: {{json: "status == 'ok'"}}
"""


@dataclass(frozen=True)
class Round:
    """One bare run and one replay run (rates in requests per second)."""

    bare_rps: float
    target_rps: float
    replay_rps: float
    worst_on_time: float
    """Smallest share, over windows, of intended sends sent at most the lag threshold late."""
    ratio: float
    bare_cpu_us: float
    """CPU microseconds per request of the bare run (its whole process, start-up included)."""
    replay_cpu_us: float


@dataclass(frozen=True)
class LoadgenBench:
    rounds: tuple[Round, ...]
    workers: int
    fraction: float
    duration_s: float
    pinned: bool

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _pin(cpu: int | None) -> dict[str, object]:
    if cpu is None or not hasattr(os, "sched_setaffinity"):
        return {}
    return {"preexec_fn": lambda: os.sched_setaffinity(0, {cpu})}


def _start_server(port: int, cpu: int | None) -> subprocess.Popen[bytes]:
    server = subprocess.Popen([sys.executable, "-m", "loadtests.bench.server", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              stdin=subprocess.DEVNULL, start_new_session=True, **_pin(cpu))
    deadline = time.monotonic() + 20.0
    while True:
        try:
            check_reachable(f"http://127.0.0.1:{port}", timeout_s=1.0)
            return server
        except LoadTestError:
            if time.monotonic() > deadline or server.poll() is not None:
                stop(server)
                raise LoadTestError("the bench server did not start") from None
            time.sleep(0.2)


def _cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` so far (None where /proc is missing)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _run(command: list[str], log: Path, bound_s: float, cpu: int | None,
         env: dict[str, str] | None = None, steady_s: tuple[float, float] | None = None,
         measured: list[int] | None = None) -> float | None:
    """Run ``command`` to its end (at most ``bound_s``); the CPU seconds it used per wall
    second between ``steady_s`` = (start, end) seconds after launch, if asked and known —
    those of the processes ``measured`` instead of its own when given (Locust workers)."""
    with log.open("ab") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True,
                                   env=env, **_pin(cpu))
    launched = time.monotonic()
    share = None
    pids = measured if measured else [process.pid]
    try:
        if steady_s is not None:
            samples = []
            for at in steady_s:
                time.sleep(max(0.0, launched + at - time.monotonic()))
                cpus = [_cpu_s(pid) for pid in pids]
                total = None if None in cpus else sum(c for c in cpus if c is not None)
                samples.append((time.monotonic(), total))
            (t1, c1), (t2, c2) = samples
            if c1 is not None and c2 is not None and t2 > t1:
                share = (c2 - c1) / (t2 - t1)
        process.wait(timeout=max(1.0, bound_s - (time.monotonic() - launched)))
    except subprocess.TimeoutExpired:
        pass
    finally:
        stop(process)
    return share


def measure_bare(url: str, duration_s: float, work: Path,
                 cpu: int | None) -> tuple[float, float]:
    """(requests per second after the warm-up, CPU µs per request) of bare ``FastHttpUser``
    (closed loop)."""
    out = work / "bare.json"
    out.unlink(missing_ok=True)
    bare = Path(__file__).resolve().parent / "bare.py"
    command = [sys.executable, "-m", "locust", "-f", str(bare), "--headless", "-u",
               str(BARE_USERS), "-r", str(BARE_USERS), "-t", f"{duration_s:g}s", "--host", url,
               "--only-summary", "--loglevel", "WARNING"]
    share = _run(command, work / "bare.log", duration_s + 60.0, cpu,
                 env={**os.environ, "PEAKSIM_BENCH_OUT": str(out)},
                 steady_s=_steady(duration_s))
    if not out.exists():
        raise LoadTestError(f"the bare Locust run wrote no figures (see {work / 'bare.log'})")
    data = json.loads(out.read_text(encoding="utf-8"))
    rate = float(data["requests"]) / max(1e-9, float(data["seconds"]))
    return rate, _per_request_us(share, rate)


def _steady(duration_s: float) -> tuple[float, float]:
    """Seconds after launch between which a run is in its steady state (Locust starts in 2-4
    s on a busy machine; the last second may already be the drain)."""
    return 4.0 + duration_s / 3.0, 3.0 + duration_s


def _per_request_us(cpu_share: float | None, rate_rps: float) -> float:
    return float("nan") if cpu_share is None or rate_rps <= 0 else 1e6 * cpu_share / rate_rps


def measure_replay(url: str, rate_rps: float, duration_s: float, workers: int, work: Path,
                   cpu: int | None, index: int) -> tuple[float, float, float]:
    """(sent per second, worst window's on-time share, CPU µs per request) of the replay of
    ``rate_rps``."""
    scenario = work / f"replay-{index}.yaml"
    scenario.write_text(_SCENARIO.format(duration_s=duration_s, item_rps=0.7 * rate_rps,
                                         buy_rps=0.3 * rate_rps, key=KEY_VARIABLE),
                        encoding="utf-8")
    run_dir = work / f"replay-{index}"
    run_dir.mkdir(parents=True, exist_ok=True)
    config = LoadTestConfig(scenario, host=url, workers=workers, arrivals="paced",
                            window_s=2.0, max_requests=50_000_000)
    env = {**os.environ, KEY_VARIABLE: "bench-key"}
    os.environ.setdefault(KEY_VARIABLE, "bench-key")  # plan_run checks the template's secrets
    plan = plan_run(config)
    shared = locust_args(config, plan, url, run_dir)
    base = [sys.executable, "-m", "locust", "-f",
            str(Path(__file__).resolve().parents[1] / "locustfile.py")]
    bound_s = duration_s + 60.0
    share = None
    if workers == 0:
        share = _run(base + ["--headless", *shared, "--loglevel", "WARNING"],
                     run_dir / "locust.log", bound_s, cpu, env, steady_s=_steady(duration_s))
    else:
        port = free_port()
        master = [*base, "--headless", *shared, "--master", "--expect-workers", str(workers),
                  "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port)]
        worker_cmd = [*base, "--worker", "--master-host", "127.0.0.1", "--master-port",
                      str(port), *shared]
        with (run_dir / "workers.log").open("ab") as log:
            children = [subprocess.Popen(worker_cmd, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True,
                                         env=env) for _ in range(workers)]
        try:
            share = _run(master, run_dir / "locust.log", bound_s, None, env,
                         steady_s=_steady(duration_s), measured=[c.pid for c in children])
        finally:
            for child in children:
                stop(child)
    if not (run_dir / RESULTS_FILE).exists():
        log = (run_dir / "locust.log").read_text(encoding="utf-8", errors="replace")
        tail = " | ".join(log.strip().splitlines()[-3:])
        raise LoadTestError(f"the replay run wrote no results: {tail}")
    merged = merge_results(run_dir / RESULTS_FILE, plan.span_s)
    sent = sum(s.total("sent") + s.total("retries") for s in merged.services.values())
    worst = 1.0
    shares = []
    for w in range(merged.n_windows):
        intended = sum(int(s.counts["intended"][w]) for s in merged.services.values())
        bad = sum(int(s.counts["late"][w] + s.counts["dropped"][w])
                  for s in merged.services.values())
        if intended:
            worst = min(worst, 1.0 - bad / intended)
            shares.append(round(1.0 - bad / intended, 3))
    (run_dir / "on_time.json").write_text(json.dumps(shares), encoding="utf-8")
    rate = sent / plan.span_s
    return rate, worst, _per_request_us(share, rate)


def run_loadgen_bench(duration_s: float = 15.0, rounds: int = 2, fraction: float = 0.9,
                      workers: int = 0) -> LoadgenBench:
    """Alternate bare and replay runs ``rounds`` times; see the module docstring."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    pinned = workers == 0 and len(cpus) >= 2
    server_cpu = cpus[-1] if pinned else None
    generator_cpu = cpus[0] if pinned else None
    port = free_port()
    results = []
    with tempfile.TemporaryDirectory(prefix="peaksim-loadgen-") as tmp:
        work = Path(os.environ.get("PEAKSIM_BENCH_KEEP") or tmp)
        try:
            work.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LoadTestError(f"PEAKSIM_BENCH_KEEP: cannot use {work} as a directory "
                                f"({exc.strerror})") from None
        server = _start_server(port, server_cpu)
        url = f"http://127.0.0.1:{port}"
        try:
            for index in range(rounds):
                bare, bare_cpu = measure_bare(url, duration_s, work, generator_cpu)
                target = fraction * bare * max(1, workers)
                rate, worst, cpu_us = measure_replay(url, target, duration_s, workers, work,
                                                     generator_cpu, index)
                results.append(Round(round(bare, 1), round(target, 1), round(rate, 1),
                                     round(worst, 4), round(rate / bare, 3),
                                     round(bare_cpu, 1), round(cpu_us, 1)))
        finally:
            stop(server)
    return LoadgenBench(tuple(results), workers, fraction, duration_s, pinned)


def loadgen_lines(bench: LoadgenBench) -> list[str]:
    """The bench as plain lines of at most 80 columns: two per round, then the verdict."""
    where = ("generator and server pinned to separate CPUs" if bench.pinned
             else f"{bench.workers or 1} generator process(es), unpinned")
    lines = ["bare FastHttpUser vs peaksim replay (templates, captures, checks on),",
             f"{bench.duration_s:g} s runs, replay at {bench.fraction:.0%} of bare; {where}"]
    for i, r in enumerate(bench.rounds, 1):
        lines.append(f"round {i}: ratio {r.ratio:.2f}; bare {r.bare_rps:,.0f}/s "
                     f"({r.bare_cpu_us:.0f} us CPU each)")
        lines.append(f"  replay {r.replay_rps:,.0f}/s of {r.target_rps:,.0f} "
                     f"({r.replay_cpu_us:.0f} us each), worst window "
                     f"{r.worst_on_time:.1%} on time")
    held = [r for r in bench.rounds if r.worst_on_time >= ON_TIME_GOAL]
    best = max((r.ratio for r in held), default=None)
    if best is None:
        lines += [f"replay / bare: no round held {ON_TIME_GOAL:.0%} of sends on time in every "
                  "window", "(lower --fraction to find the sustained rate)"]
    else:
        lines.append(f"replay / bare: {best:.2f}x with >= {ON_TIME_GOAL:.0%} of sends on time "
                     f"in every window")
    return lines
