"""A finished run: per-tick series per service, totals, SLO verdicts, and its files.

``RunResult.summary()`` and ``RunResult.timeseries_rows()`` produce exactly the formats of
docs/formats.md; ``write(run_dir)`` writes ``summary.json`` and ``timeseries.csv`` atomically.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from sim import __version__
from sim.engine.plane import WAITING_CAP
from sim.engine.runtime import EngineState, ServiceRuntime
from sim.metrics import LatencyHistogram
from sim.model import Scenario, ServiceOutcome, judge_objectives, slo_percentiles
from sim.runio import atomic_write_csv, atomic_write_json

CLUSTER_FILE = "cluster.csv"
"""Per-tick cluster metrics of a colocation run (docs/formats.md)."""

TIMESERIES_COLUMNS = (
    "t_s", "service", "arrivals", "retries", "completed", "waited", "timed_out", "shed", "failed",
    "in_queue", "busy_workers", "instances_desired", "instances_booting", "instances_ready",
    "utilization", "offered_rps", "p50_ms", "p95_ms", "p99_ms",
)


@dataclass
class ServiceSeries:
    """Per-tick arrays (length n_ticks) and run totals of one service."""

    name: str
    workers: int
    mean_service_ms: float
    price_per_hour: float
    timeout_ms: float
    columns: dict[str, np.ndarray]
    hist: LatencyHistogram
    """Completed attempts (first attempts and retries)."""
    hist_first: LatencyHistogram
    """First attempts that completed successfully (the SLO's good events)."""
    final_failures: int
    instance_seconds: float
    scale_events: int
    capped_shed: int = 0
    """Attempts shed by the waiting cap of a service without ``max_queue`` (sim.engine.plane)."""


@dataclass
class RunResult:
    """Everything a report needs about one simulation run."""

    scenario: Scenario
    seed: int
    duration_s: float
    tick_s: float
    wall_s: float
    sim_requests: int
    services: dict[str, ServiceSeries]
    events: list[dict[str, Any]]
    rate_scale: float
    time_scale: float
    policy: str = "static"
    started_at: str = field(default_factory=lambda: datetime.now(UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"))
    extra: dict[str, Any] = field(default_factory=dict)
    cluster_table: tuple[list[str], list[list[Any]]] | None = None
    """Columns and one row per tick of the cluster (colocation runs only)."""
    curve_peaks: dict[str, tuple[float, float]] = field(default_factory=dict)
    """Per service, the traffic curve's (highest rate rps, time s): the one definition of
    "peak" that ``plan``, ``curve`` and the reports share."""

    @classmethod
    def from_simulation(cls, sim: EngineState) -> RunResult:
        services = {name: _series(sim, rt) for name, rt in sim.services.items()}
        return cls(
            scenario=sim.scenario, seed=sim.seed, duration_s=sim.duration_s, tick_s=sim.tick_s,
            wall_s=sim.wall_s, sim_requests=int(round(sum(rt.plane.attempts_total
                                                for rt in sim.services.values()))),
            services=services, events=sim.events, rate_scale=sim.traffic.rate_scale,
            time_scale=sim.traffic.time_scale,
            curve_peaks={name: sim.traffic.peak(name) for name in services},
        )

    # ------------------------------------------------------------------ summary
    def service_summary(self, s: ServiceSeries) -> dict[str, Any]:
        c = s.columns
        requests = int(c["arrivals"].sum())
        error_rate = s.final_failures / requests if requests else 0.0
        latency = {
            "mean": _round(s.hist.mean_ms), "p50": _round(s.hist.percentile(0.50)),
            "p90": _round(s.hist.percentile(0.90)), "p95": _round(s.hist.percentile(0.95)),
            "p99": _round(s.hist.percentile(0.99)),
            "max": _round(s.hist.max_ms) if s.hist.count else None,
        }
        running = c["instances_running"]
        outcome = ServiceOutcome(requests, s.hist_first.distribution(),
                                 error_rate, latency)
        slo = judge_objectives(self.scenario.slo.get(s.name), outcome)
        return {
            "requests": requests,
            "retries": int(c["retries"].sum()),
            "completed": int(c["completed"].sum()),
            "waited": int(c["waited"].sum()),
            "timed_out": int(c["timed_out"].sum()),
            "shed": int(c["shed"].sum()),
            "failed": int(c["failed"].sum()),
            "final_failures": s.final_failures,
            "error_rate": error_rate,
            "latency_ms": latency,
            "latency_slo_ms": slo_percentiles(outcome),
            **self._peaks(s),
            "instances": {"min": int(running.min()), "max": int(running.max()),
                          "mean": round(s.instance_seconds / self.duration_s, 3)},
            "instance_seconds": round(s.instance_seconds, 3),
            "cost": round(s.instance_seconds / 3600.0 * s.price_per_hour, 4),
            "scale_events": s.scale_events,
            "workers": s.workers,
            "mean_service_ms": s.mean_service_ms,
            "timeout_ms": s.timeout_ms,
            "price_per_hour": s.price_per_hour,
            "slo": slo,
            "slo_met": all(v["met"] for v in slo.values()),
            **({"queue_cap": {"max_waiting": WAITING_CAP, "shed": s.capped_shed}}
               if s.capped_shed else {}),
        }

    def _peaks(self, s: ServiceSeries) -> dict[str, Any]:
        """The curve's peak (rate and time) and the busiest tick (rate offered, tick start)."""
        offered = s.columns["offered_rps"]
        busiest = int(np.argmax(offered)) if offered.size else 0
        peaks: dict[str, Any] = {
            "offered_peak_rps": float(offered[busiest]) if offered.size else 0.0,
            "offered_peak_s": round(busiest * self.tick_s, 6),
        }
        if s.name in self.curve_peaks:
            rate_rps, at_s = self.curve_peaks[s.name]
            peaks |= {"curve_peak_rps": round(rate_rps, 6), "curve_peak_s": round(at_s, 6)}
        return peaks

    def summary(self) -> dict[str, Any]:
        """The content of summary.json (docs/formats.md)."""
        per_service = {name: self.service_summary(s) for name, s in self.services.items()}
        sc = self.scenario
        instance_cost = round(sum(v["cost"] for v in per_service.values()), 4)
        cluster = self.extra.get("cluster")
        cost = ({"total": round(cluster["cost"], 4), "instances": instance_cost,
                 "basis": "nodes", "currency": "USD"} if cluster is not None else
                {"total": instance_cost, "basis": "instances", "currency": "USD"})
        return {
            "peaksim_version": __version__,
            "kind": "simulation",
            "scenario": sc.name,
            "scenario_file": sc.source,
            "description": sc.description,
            "seed": self.seed,
            "duration_s": self.duration_s,
            "tick_s": self.tick_s,
            "start_clock": sc.start_clock if self.time_scale == 1.0 else None,
            "policy": self.policy,
            "traffic": {"kind": sc.traffic.kind, "rate_scale": self.rate_scale,
                        "time_scale": self.time_scale},
            "started_at": self.started_at,
            "wall_s": round(self.wall_s, 3),
            "sim_requests": self.sim_requests,
            "sim_requests_per_s": (round(self.sim_requests / self.wall_s, 1) if self.wall_s
                                   else None),
            "slo_met": all(v["slo_met"] for v in per_service.values()),
            "cost": cost,
            "services": per_service,
            "events": self.events,
            **self.extra,
        }

    def timeseries_rows(self) -> list[list[Any]]:
        """Rows of timeseries.csv: one per tick per service."""
        rows: list[list[Any]] = []
        n_ticks = len(next(iter(self.services.values())).columns["arrivals"])
        for tick in range(n_ticks):
            for name, s in self.services.items():
                c = s.columns
                row: list[Any] = [round(tick * self.tick_s, 6), name]
                for col in TIMESERIES_COLUMNS[2:]:
                    value = float(c[col][tick])
                    if col in ("arrivals", "retries", "completed", "waited", "timed_out", "shed",
                               "failed",
                               "instances_desired", "instances_booting"):
                        row.append(int(round(value)))
                    elif np.isnan(value):
                        row.append("")
                    else:
                        row.append(round(value, 4))
                rows.append(row)
        return rows

    def write(self, run_dir: Path) -> None:
        """Write summary.json and timeseries.csv into ``run_dir`` (atomically)."""
        atomic_write_csv(run_dir / "timeseries.csv", TIMESERIES_COLUMNS, self.timeseries_rows())
        if self.cluster_table is not None:
            atomic_write_csv(run_dir / CLUSTER_FILE, *self.cluster_table)
        atomic_write_json(run_dir / "summary.json", self.summary())


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)


def _series(sim: EngineState, rt: ServiceRuntime) -> ServiceSeries:
    acc = rt.plane.acc
    tick_s = sim.tick_s

    def ticks(per_bucket: np.ndarray) -> np.ndarray:
        return per_bucket.reshape(sim.n_ticks, -1).sum(axis=1)

    busy, capacity = ticks(acc.busy_ws), ticks(acc.capacity_ws)
    with np.errstate(invalid="ignore", divide="ignore"):
        utilization = np.where(capacity > 0, busy / capacity, 0.0)
    columns = {
        "arrivals": ticks(acc.arrivals), "retries": ticks(acc.retries),
        "completed": ticks(acc.completed), "waited": ticks(acc.waited),
        "timed_out": ticks(acc.timed_out),
        "shed": ticks(acc.shed), "failed": ticks(acc.failed),
        "in_queue": ticks(acc.queue_ws) / tick_s, "busy_workers": busy / tick_s,
        "instances_desired": rt.tick_desired, "instances_booting": rt.tick_booting,
        "instances_ready": rt.ready_instance_s / tick_s,
        "instances_running": np.round(rt.instance_s / tick_s, 6),
        "utilization": np.minimum(utilization, 1.0),
        "offered_rps": ticks(acc.arrivals) / tick_s,
        "p50_ms": acc.tick_percentiles_ms[:, 0], "p95_ms": acc.tick_percentiles_ms[:, 1],
        "p99_ms": acc.tick_percentiles_ms[:, 2],
    }
    spec = rt.spec
    return ServiceSeries(
        name=rt.name, workers=spec.workers, mean_service_ms=rt.plane.sampler.mean_ms,
        price_per_hour=spec.price_per_hour, timeout_ms=spec.timeout_ms, columns=columns,
        hist=rt.plane.hist, hist_first=rt.plane.hist_first,
        final_failures=int(round(acc.final_failures.sum())),
        instance_seconds=float(rt.instance_s.sum()), scale_events=rt.scale_events,
        capped_shed=rt.plane.capped_shed,
    )
