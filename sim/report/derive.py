"""Quantities the reports derive from a run's per-tick series: capacity, served rate, per-tick
error fraction, cumulative cost, and the time windows in which an SLO was missed.

Everything here is a pure function of ``RunData`` (no files, no plotting).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.report.data import RunData, ServiceSeries


@dataclass(frozen=True)
class Window:
    """Ticks ``[start_s, end_s)`` in which a per-tick value exceeded its target; ``worst`` is
    the highest value seen in them (ms, or a fraction for error rates)."""

    start_s: float
    end_s: float
    worst: float


def miss_windows(
    t_s: np.ndarray, values: np.ndarray, target: float, tick_s: float, merge_gap_ticks: int = 2,
) -> list[Window]:
    """Maximal runs of ticks whose value is above ``target``.

    Runs separated by at most ``merge_gap_ticks`` compliant ticks are merged, so a tail that
    flaps around its target reads as one window. NaN (no completions in the tick) is not a miss.
    A window ends where its last missing tick ends.
    """
    above = np.nan_to_num(values, nan=-np.inf) > target
    idx = np.flatnonzero(above)
    if idx.size == 0:
        return []
    groups: list[list[int]] = [[int(idx[0])]]
    for i in idx[1:]:
        if t_s[i] - t_s[groups[-1][-1]] <= (merge_gap_ticks + 1) * tick_s + 1e-9:
            groups[-1].append(int(i))
        else:
            groups.append([int(i)])
    return [
        Window(float(t_s[g[0]]), float(t_s[g[-1]]) + tick_s, float(np.max(values[g])))
        for g in groups
    ]


def served_rps(series: ServiceSeries, tick_s: float) -> np.ndarray:
    """Attempts completed within their timeout, per second."""
    return series["completed"] / tick_s


def attempts(series: ServiceSeries) -> np.ndarray:
    """Attempts arriving per tick (first attempts and retries)."""
    return series["arrivals"] + series["retries"]


def errors(series: ServiceSeries) -> np.ndarray:
    """Attempts lost per tick: timed out, shed or failed under a failing instance."""
    return series["timed_out"] + series["shed"] + series["failed"]


def error_fraction(series: ServiceSeries) -> np.ndarray:
    """Lost attempts / arriving attempts per tick (NaN in a tick without arrivals).

    This is per attempt, so with client retries it overstates the final error rate (a first
    attempt that fails and then succeeds on retry counts once here); it locates *when* errors
    happened, the run's ``error_rate`` says how many requests finally failed.
    """
    offered = attempts(series)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(offered > 0, errors(series) / np.where(offered > 0, offered, 1), np.nan)


def capacity_rps(run: RunData, service: str) -> tuple[np.ndarray, bool]:
    """Requests per second the ready instances can serve at full utilization, per tick, and
    whether it is exact (True) or estimated from the series (False).

    With ``workers`` and ``mean_service_ms`` in the summary: ``ready x workers x 1000 / mean``.
    Otherwise both are estimated from the series: workers per ready instance from
    ``busy_workers / utilization / instances_ready`` (median over busy ticks), and the service
    rate per worker from completions per busy worker-second over the run (timed-out work also
    occupied workers, so this slightly underestimates capacity in overloaded runs).
    """
    series = run.series[service]
    info = run.summary.services[service]
    ready = series["instances_ready"]
    if info.workers is not None and info.mean_service_ms is not None:
        if info.mean_service_ms <= 0:  # zero service times: no finite capacity to draw
            return np.full_like(ready, np.nan), True
        return ready * info.workers * 1000.0 / info.mean_service_ms, True
    busy, util = series["busy_workers"], series["utilization"]
    ok = (util > 1e-6) & (ready > 1e-6)
    busy_worker_s = float(np.sum(busy) * run.summary.tick_s)
    if not np.any(ok) or busy_worker_s <= 0:
        return np.full_like(ready, np.nan), False
    workers = info.workers or float(np.median(busy[ok] / util[ok] / ready[ok]))
    rate_per_worker = float(np.sum(series["completed"])) / busy_worker_s
    return ready * workers * rate_per_worker, False


def price_per_hour(run: RunData, service: str) -> float | None:
    """The service's price per instance-hour: from the summary, else cost / instance-hours."""
    info = run.summary.services[service]
    if info.price_per_hour is not None:
        return info.price_per_hour
    if info.cost is not None and info.instance_seconds:
        return info.cost / (info.instance_seconds / 3600.0)
    return None


def instance_seconds_per_tick(run: RunData, service: str) -> np.ndarray:
    """Instance-seconds paid per tick: ready instances (mean over the tick) plus booting ones
    (booting machines are billed too)."""
    series = run.series[service]
    return (series["instances_ready"] + series["instances_booting"]) * run.summary.tick_s


def cumulative_cost(run: RunData, service: str) -> np.ndarray | None:
    """Cost accumulated by the end of each tick, in the run's currency, or None without prices.

    The curve's shape comes from the per-tick instance counts; it is scaled so that it ends at
    the summary's cost (the engine integrates instance time exactly, ticks only approximate it).
    """
    info = run.summary.services[service]
    price = price_per_hour(run, service)
    if price is None:
        return None
    spent = np.cumsum(instance_seconds_per_tick(run, service)) / 3600.0 * price
    final = info.cost if info.cost is not None else (
        info.instance_seconds / 3600.0 * price if info.instance_seconds is not None else None
    )
    if final is not None and spent.size and spent[-1] > 0:
        spent = spent * (final / spent[-1])
    return spent


def peak_at(series: ServiceSeries, column: str) -> tuple[float, float]:
    """(highest value, tick start of its first occurrence) of ``column``."""
    values = np.nan_to_num(series[column], nan=-np.inf)
    i = int(np.argmax(values))
    return float(series[column][i]), float(series.t_s[i])
