"""Sim vs real: simulate what a load test ran, and say how close the model came.

The simulator runs on the same scaled scenario (same ``rate_scale``, ``time_scale`` and measured
span) with the semantics of the reference shop, which emulates the scenario's capacity **in
real time**:

- Service times and timeouts are real milliseconds in both (the simulator never scales them).
- Boot times: the simulator divides ``boot_s`` by the time scale (a compressed run compresses
  its control plane too); the shop boots in real seconds. The simulated scenario's ``boot_s``
  is multiplied by the time scale, so both boot in the same real seconds.
- Instances: the shop runs each service at its ``initial`` count unless something scales it, so
  the simulation uses fixed instances at ``initial`` (no autoscaler, policy ``fixed``).
- Faults: the shop does not inject the scenario's faults, so the simulation has none.
- Client retries follow the scenario in both (the locustfile retries like the simulator's
  clients). Ticks are the load test's windows, so the series line up.

The simulation is written to ``sim/`` inside the load test's run directory (its own
``summary.json`` and ``timeseries.csv``), and the comparison to ``summary.json`` under
``sim_vs_real``: per service and metric (p50, p95, p99 of the corrected latency, error rate)
the predicted and measured values and the relative error ``(measured - predicted) /
predicted``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sim.engine import simulate
from sim.model import Scenario, TrafficModel
from sim.report import fmt_ms, fmt_pct
from sim.termtable import TextTable

SIM_DIR = "sim"
METRICS = (("p50", "p50"), ("p95", "p95"), ("p99", "p99"), ("error_rate", None))


def shop_like_scenario(scenario: Scenario, traffic: TrafficModel, span_s: float,
                       window_s: float) -> Scenario:
    """``scenario`` as the reference shop serves it under a load test (see the module doc)."""
    services = {
        name: spec.model_copy(update={"boot_s": float(spec.boot_s) * traffic.time_scale})
        for name, spec in scenario.services.items()
    }
    copy = scenario.model_copy(update={
        "services": services, "faults": (), "autoscaling": None,
        "duration_s": span_s * traffic.time_scale, "tick_s": window_s,
    })
    copy._base_dir = scenario.base_dir
    copy._source = scenario.source
    return copy


def simulate_load_test(
    scenario: Scenario, rate_scale: float, time_scale: float, span_s: float, window_s: float,
    run_dir: Path, seed: int | None = None,
) -> dict[str, Any]:
    """Simulate the load test's scenario; write ``run_dir/sim/`` and return its summary."""
    traffic = TrafficModel(scenario, rate_scale=rate_scale, time_scale=time_scale)
    adjusted = shop_like_scenario(scenario, traffic, span_s, window_s)
    fixed = {name: spec.instances.start for name, spec in adjusted.services.items()}
    result = simulate(adjusted, seed=seed, instances=fixed, rate_scale=rate_scale,
                      time_scale=time_scale)
    result.write(run_dir / SIM_DIR)
    return result.summary()


def relative_error(predicted: float | None, measured: float | None) -> float | None:
    """``(measured - predicted) / predicted``; None when either is missing or predicted is 0."""
    if predicted is None or measured is None or predicted == 0:
        return None
    return (measured - predicted) / predicted


def compare(sim_summary: dict[str, Any], load_summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows ``{service, metric, predicted, measured, relative_error}`` for every service both
    runs have, in the load test's order."""
    rows = []
    for name, measured in load_summary["services"].items():
        predicted = sim_summary["services"].get(name)
        if predicted is None:
            continue
        for metric, key in METRICS:
            if key is None:
                p, m = predicted.get("error_rate"), measured.get("error_rate")
            else:
                p, m = predicted["latency_ms"].get(key), measured["latency_ms"].get(key)
            error = relative_error(p, m)
            rows.append({"service": name, "metric": metric, "predicted": p, "measured": m,
                         "relative_error": None if error is None else round(error, 4)})
    return rows


def sim_table(rows: list[dict[str, Any]]) -> TextTable:
    """Predicted vs measured per service and metric, with the relative error."""
    cells = []
    for row in rows:
        fmt = fmt_pct if row["metric"] == "error_rate" else fmt_ms
        error = row["relative_error"]
        cells.append((row["service"], row["metric"], fmt(row["predicted"]),
                      fmt(row["measured"]), "-" if error is None else f"{100 * error:+.1f}%"))
    return TextTable.of("simulator vs load test",
                        ("service", "metric", "simulator", "load test", "relative error"),
                        "llrrr", cells, keys=2)
