"""The engines: one SimPy control plane and two data planes behind it (exact: batched FCFS,
request by request; fluid: flows per time step, ``fluid_*.py``), metrics, run result.

Owns ``simulate(scenario) -> RunResult``: arrivals, service pools, the autoscaler loop (which
asks ``sim.policies``), faults, the cluster link, per-tick histograms; and the per-request
SimPy oracle it is tested against. May import the foundation modules, ``sim.model``,
``sim.policies`` and ``sim.cluster``; never ``sim.plan``, ``sim.report`` or ``loadtests``.
"""

from sim.engine.check import LOST_FLOOR, TOLERANCES, ServiceErrors, compare_engines, scale_fleet
from sim.engine.control import Controller, MetricWindow, Sample, build_controller, make_sample
from sim.engine.engines import (
    ENGINE_NAMES,
    PLANES,
    DataPlane,
    EngineChoice,
    EngineError,
    choose_engine,
    expected_requests,
    with_engine,
)
from sim.engine.oracle import simulate_oracle
from sim.engine.plane_state import Chooser
from sim.engine.pool import GeneralBatch, Queue, serve_fast, serve_general
from sim.engine.result import CLUSTER_FILE, TIMESERIES_COLUMNS, RunResult
from sim.engine.runsize import RunLimits, check_run_size, check_scenario_size, estimate_run
from sim.engine.simulation import ProgressFn, Simulation, simulate

__all__ = [
    "CLUSTER_FILE",
    "TIMESERIES_COLUMNS",
    "ENGINE_NAMES",
    "LOST_FLOOR",
    "PLANES",
    "TOLERANCES",
    "DataPlane",
    "EngineChoice",
    "EngineError",
    "ServiceErrors",
    "choose_engine",
    "compare_engines",
    "expected_requests",
    "scale_fleet",
    "with_engine",
    "Chooser",
    "Controller",
    "GeneralBatch",
    "MetricWindow",
    "ProgressFn",
    "Queue",
    "RunLimits",
    "RunResult",
    "Sample",
    "Simulation",
    "build_controller",
    "check_run_size",
    "check_scenario_size",
    "estimate_run",
    "make_sample",
    "serve_fast",
    "serve_general",
    "simulate",
    "simulate_oracle",
]
