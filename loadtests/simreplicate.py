"""``peaksim loadtest --compare-sim --replications N``: the load test against N simulations.

The shop-like scenario of loadtests/simcompare.py is simulated under N seeds derived from the
scenario's seed (sim/study/replicate.py), in parallel where ``--jobs``/``--cluster`` say. Each
measured figure is judged against the simulator's 95% *prediction* interval for one run,
``mean ± t(0.975, n-1) · s · sqrt(1 + 1/n)`` (Student t): a load test is one run, so it is
compared with the spread of single runs, not with the interval of their mean. The replications
are written to ``sim/replications/seed-<seed>/`` inside the load test's run directory, and the
first of them to ``sim/`` too (the report's per-window overlay draws it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loadtests.simcompare import METRICS, SIM_DIR, relative_error, shop_like_scenario
from sim.intervals import prediction_interval
from sim.model import Scenario, TrafficModel
from sim.parallel import Where, map_jobs
from sim.report import fmt_ms, fmt_pct
from sim.runs import SimJob, run_sim_job
from sim.study import replication_seeds
from sim.termtable import TextTable

REPLICATIONS_DIR = "replications"


def simulate_replicated(
    scenario: Scenario, rate_scale: float, time_scale: float, span_s: float, window_s: float,
    run_dir: Path, n: int, place: Where, seed: int | None = None,
) -> list[dict[str, Any]]:
    """Simulate the load test's scenario under ``n`` seeds; write ``run_dir/sim/seed-*/`` and
    return the summaries."""
    traffic = TrafficModel(scenario, rate_scale=rate_scale, time_scale=time_scale)
    adjusted = shop_like_scenario(scenario, traffic, span_s, window_s)
    fixed = {name: spec.instances.start for name, spec in adjusted.services.items()}
    seeds = replication_seeds(scenario.seed if seed is None else seed, n)
    jobs = [SimJob(adjusted, None, s, instances=fixed, rate_scale=rate_scale,
                   time_scale=time_scale) for s in seeds]
    outputs = map_jobs(run_sim_job, jobs, place)
    # sim/ itself holds the first replication: the per-window overlay of the report draws it
    outputs[0].write(run_dir / SIM_DIR)
    for s, output in zip(seeds, outputs, strict=True):
        output.write(run_dir / SIM_DIR / REPLICATIONS_DIR / f"seed-{s}")
    return [o.summary for o in outputs]


def compare_replicated(sim_summaries: list[dict[str, Any]],
                       load_summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows ``{service, metric, predicted, predicted_low, predicted_high, measured,
    relative_error, within}`` for every service the simulations and the load test have."""
    rows = []
    for name, measured in load_summary["services"].items():
        if name not in sim_summaries[0]["services"]:
            continue
        for metric, key in METRICS:
            values = [_value(s["services"][name], key) for s in sim_summaries]
            m = _value(measured, key)
            interval = prediction_interval(values)
            p = interval.mean if interval is not None else None
            error = relative_error(p, m)
            rows.append({
                "service": name, "metric": metric, "predicted": p,
                "predicted_low": interval.low if interval is not None else None,
                "predicted_high": interval.high if interval is not None else None,
                "replications": len(sim_summaries), "measured": m,
                "relative_error": None if error is None else round(error, 4),
                "within": (None if interval is None or m is None
                           else interval.low <= m <= interval.high),
            })
    return rows


def _value(service: dict[str, Any], key: str | None) -> float | None:
    return service.get("error_rate") if key is None else service["latency_ms"].get(key)


def sim_interval_table(rows: list[dict[str, Any]]) -> TextTable:
    """Measured against the simulator's 95% prediction interval for one run."""
    n = rows[0]["replications"] if rows else 0
    cells = []
    for row in rows:
        fmt = fmt_pct if row["metric"] == "error_rate" else fmt_ms
        error = row["relative_error"]
        span = ("-" if row["predicted_low"] is None else
                f"{fmt(row['predicted'])} ({fmt(max(row['predicted_low'], 0.0))}–"
                f"{fmt(row['predicted_high'])})")
        within = {True: "yes", False: "NO", None: "-"}[row["within"]]
        cells.append((row["service"], row["metric"], span, fmt(row["measured"]),
                      "-" if error is None else f"{100 * error:+.1f}%", within))
    return TextTable.of(f"simulator ({n} replications, 95% of single runs) vs load test",
                        ("service", "metric", "simulator", "load test", "relative error",
                         "within"), ("l", "l", "r", "r", "r", "l"), cells, keys=2)
