"""``peaksim bench``: the engine's speed against the naive per-request SimPy model.

Both run in this process on the same pre-drawn workload (arrival and service times of a
three-service scenario with timeouts and fixed instances), so the ratio is measured on this
machine in this run. Peak memory is measured in fresh child processes for 1x and 10x the
duration: it should grow with the number of ticks, not of requests. So is the cost of a small
run's report, with and without plots, against its simulation: what a CI job running many
small scenarios pays per run.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from sim.engine import Simulation, scale_fleet, simulate, simulate_oracle
from sim.model import Scenario, TrafficModel, load_scenario, parse_scenario, sampler_for

_BENCH_YAML = """
name: bench
seed: 42
duration_s: {duration_s}
tick_s: {tick_s}
traffic: {{kind: constant, rps: {{browse: 3000, order: 400, payment: 300}}}}
services:
  browse: {{service_time: {{dist: lognormal, mean_ms: 30, p99_ms: 150}}, workers: 16,
           instances: 8, timeout_ms: 1000}}
  order: {{service_time: {{dist: lognormal, mean_ms: 60, p99_ms: 300}}, workers: 8,
          instances: 5, timeout_ms: 2000}}
  payment: {{service_time: {{dist: lognormal, mean_ms: 80, p99_ms: 400}}, workers: 8,
            instances: 5, timeout_ms: 3000}}
"""


@dataclass(frozen=True)
class BenchResult:
    """Simulated requests per wall-second of each model and the memory figures."""

    requests: int
    engine_wall_s: float
    engine_rps: float
    naive_requests: int
    naive_wall_s: float
    naive_rps: float
    ratio: float
    end_to_end_rps: float
    rss_1x_mb: float | None
    rss_10x_mb: float | None
    duration_s: float
    report: ReportCost | None = None

    def as_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


def bench_scenario(duration_s: float, tick_s: float = 5.0) -> Scenario:
    return parse_scenario(_BENCH_YAML.format(duration_s=duration_s, tick_s=tick_s), "<bench>")


def predraw(scenario: Scenario, seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Poisson arrivals and service times (seconds) for every service of ``scenario``."""
    traffic = TrafficModel(scenario)
    rng = np.random.default_rng(seed)
    out = {}
    for name, spec in scenario.services.items():
        rate = traffic.rate_rps(name, 0.0)
        n = int(rng.poisson(rate * scenario.duration_s))
        arrivals = np.sort(rng.uniform(0.0, scenario.duration_s, n))
        service = sampler_for(spec.service_time).sample_ms(rng, n) / 1000.0
        out[name] = (arrivals, service)
    return out


def run_bench(duration_s: float = 300.0, naive_share: float = 0.25,
              measure_memory: bool = True) -> BenchResult:
    """Engine vs naive model on one pre-drawn workload of ``duration_s``; the naive model
    gets the first ``naive_share`` of each service's arrivals (it is slow)."""
    scenario = bench_scenario(duration_s)
    workload = predraw(scenario, seed=7)
    requests = sum(a.size for a, _ in workload.values())
    started = time.perf_counter()
    Simulation(scenario, workload=workload).run()
    engine_wall = time.perf_counter() - started
    naive_requests, started = 0, time.perf_counter()
    for name, (arrivals, service) in workload.items():
        spec = scenario.services[name]
        cut = int(arrivals.size * naive_share)
        simulate_oracle(arrivals[:cut].tolist(), service[:cut].tolist(),
                        spec.workers * spec.instances.start, spec.timeout_ms / 1000.0)
        naive_requests += cut
    naive_wall = time.perf_counter() - started
    started = time.perf_counter()
    full = Simulation(scenario).run()
    end_to_end_rps = full.sim_requests / (time.perf_counter() - started)
    rss_1x = _child_rss_mb(duration_s) if measure_memory else None
    rss_10x = _child_rss_mb(10 * duration_s) if measure_memory else None
    engine_rps = requests / engine_wall
    naive_rps = naive_requests / naive_wall
    return BenchResult(requests, engine_wall, engine_rps, naive_requests, naive_wall,
                       naive_rps, engine_rps / naive_rps, end_to_end_rps, rss_1x, rss_10x,
                       duration_s, _child_report_cost())


REPORT_RUN_S = 10.0
"""Simulated seconds of the small run whose report cost ``peaksim bench`` measures."""


@dataclass(frozen=True)
class ReportCost:
    """Wall seconds of a small run in a fresh process: simulating it, and writing its report
    without plots and then with them (the first figure pays matplotlib's import, as in a
    ``peaksim run``)."""

    duration_s: float
    simulation_s: float
    no_plots_s: float
    plots_s: float

    @property
    def plots_ratio(self) -> float:
        """The report with plots over the simulation."""
        return self.plots_s / self.simulation_s

    @property
    def no_plots_ratio(self) -> float:
        """The report without plots over the simulation."""
        return self.no_plots_s / self.simulation_s


def measure_report_cost(duration_s: float = REPORT_RUN_S) -> ReportCost:
    """Simulate the bench scenario for ``duration_s`` (1-s ticks), then write its report
    without plots and with them, timing each in this process."""
    from sim.report import write_report

    scenario = bench_scenario(duration_s, tick_s=1.0)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        simulate(scenario).write(Path(tmp))
        simulated = time.perf_counter()
        write_report(Path(tmp), draw_plots=False)
        unplotted = time.perf_counter()
        write_report(Path(tmp))
        plotted = time.perf_counter()
    return ReportCost(duration_s, simulated - started, unplotted - simulated,
                      plotted - unplotted)


def _child_report_cost() -> ReportCost:
    """``measure_report_cost`` in a fresh process, where matplotlib is not imported yet."""
    code = ("import json; from dataclasses import asdict; "
            "from sim.bench import measure_report_cost; "
            "print(json.dumps(asdict(measure_report_cost())))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    return ReportCost(**json.loads(done.stdout.strip().splitlines()[-1]))


def _child_rss_mb(duration_s: float) -> float:
    """Peak RSS (MB) of a fresh process that simulates the bench scenario end to end."""
    code = ("from sim.bench import bench_scenario, peak_rss_mb; "
            "from sim.engine.simulation import Simulation; "
            f"Simulation(bench_scenario({duration_s})).run(); "
            "print(peak_rss_mb())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    return float(done.stdout.strip().splitlines()[-1])


def peak_rss_mb() -> float:
    """This process's peak resident memory (MB). VmHWM is reset by exec, unlike ru_maxrss,
    which a child inherits from the process that forked it."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def to_json(result: BenchResult | FluidBench) -> str:
    return json.dumps(result.as_dict(), indent=2)


# ---------------------------------------------------------------- bench --engine fluid
# The fluid engine at the real 11.11 rates against the exact engine at 1/1000 of them, in the
# same run: simulated requests per wall-second of each, and their ratio; the wall-times of the
# real-scale runs (the scenario's two hours and a whole 24-hour day) are what a user waits for.
#
# The ratio compares the data planes like for like, both without the scenario's cluster: at
# 1/1000 its machines would round to a handful of nodes under a batch workload that is not
# scaled, a cluster that means nothing. The wall-times are of the scenario as `peaksim run`
# runs it, cluster included; the two-hour fluid run without the cluster shows the cluster's
# share.

DEFAULT_SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / \
    "singles-day-full.yaml"
DAY_S = 86_400.0


@dataclass(frozen=True)
class FluidBench:
    """Wall-times and simulated requests per wall-second of both engines. ``ratio`` is
    fluid over exact without the cluster; ``fluid_*`` and ``day_*`` are with it (when the
    scenario has one, ``cluster`` is True)."""

    scenario: str
    cluster: bool
    exact_requests: int
    exact_wall_s: float
    exact_rps: float
    plane_requests: int
    plane_wall_s: float
    plane_rps: float
    fluid_requests: int
    fluid_wall_s: float
    fluid_rps: float
    day_requests: int
    day_wall_s: float
    day_rps: float
    ratio: float

    def as_dict(self) -> dict[str, float | int | str | bool]:
        return asdict(self)


def run_fluid_bench(path: Path = DEFAULT_SCENARIO, scale: float = 0.001) -> FluidBench:
    """Exact at ``scale`` x the rates and fleet and fluid at 1x, both without the cluster (the
    ratio); then fluid at 1x with it, over the run and over a day."""
    scenario = load_scenario(path)
    bare = scenario.model_copy(update={"cluster": None})
    exact = _timed(scale_fleet(bare, scale), "exact")
    plane = _timed(bare, "fluid")
    fluid = _timed(scenario, "fluid")
    day = _timed(scenario.model_copy(update={"duration_s": DAY_S}), "fluid")
    return FluidBench(
        scenario=scenario.name, cluster=scenario.cluster is not None,
        exact_requests=exact[0], exact_wall_s=exact[1], exact_rps=exact[0] / exact[1],
        plane_requests=plane[0], plane_wall_s=plane[1], plane_rps=plane[0] / plane[1],
        fluid_requests=fluid[0], fluid_wall_s=fluid[1], fluid_rps=fluid[0] / fluid[1],
        day_requests=day[0], day_wall_s=day[1], day_rps=day[0] / day[1],
        ratio=(plane[0] / plane[1]) / (exact[0] / exact[1]))


def _timed(scenario: Scenario, engine: str) -> tuple[int, float]:
    started = time.perf_counter()
    result = simulate(scenario, engine=engine)
    return result.sim_requests, time.perf_counter() - started


