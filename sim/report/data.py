"""Read a run directory (``summary.json`` + ``timeseries.csv``, see docs/formats.md) into typed
objects for the reports.

Unknown keys and columns are kept (later features add them, and plots decide from the columns
whether they apply). A missing or unreadable file raises ``RunDirError`` naming the file and
what was expected.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sim.errors import RunDirError
from sim.report.cluster_data import (
    CLUSTER_FILE,
    ClusterRunSummary,
    ClusterSeries,
    read_cluster_csv,
)
from sim.report.document import ColumnSeries, read_csv_records
from sim.units import parse_clock_s

SUMMARY_FILE = "summary.json"
TIMESERIES_FILE = "timeseries.csv"

REQUIRED_COLUMNS = (
    "t_s", "service", "arrivals", "retries", "completed", "timed_out", "shed", "failed",
    "in_queue", "busy_workers", "instances_desired", "instances_booting", "instances_ready",
    "utilization", "offered_rps", "p50_ms", "p95_ms", "p99_ms",
)
"""The columns docs/formats.md promises; percentiles may be empty (no completions in a tick)."""
_MAY_BE_EMPTY = frozenset({"p50_ms", "p95_ms", "p99_ms"})


class _Open(BaseModel):
    """Summary sections keep keys added by later features (``extra="allow"``)."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)


class LatencySummary(_Open):
    mean: float | None = None
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    max: float | None = None


class InstancesSummary(_Open):
    min: float | None = None
    max: float | None = None
    mean: float | None = None


class ObjectiveSummary(_Open):
    """One SLO objective: ``target`` and ``value`` in ms (over completed attempts), or as a
    fraction for error_rate; ``reason`` says why it was missed; percentile objectives carry
    ``slo_value`` (over all requests, failures counting as infinitely slow; None when beyond
    every target) and ``good_fraction`` (see ``sim.model.slo``)."""

    target: float
    value: float | None = None
    met: bool
    reason: str | None = None
    slo_value: float | None = None
    good_fraction: float | None = None


class ServiceSummary(_Open):
    """Whole-run figures of one service. ``workers``, ``mean_service_ms`` and
    ``price_per_hour`` are optional; with them capacity and cost need no estimation."""

    requests: int = Field(ge=0)
    retries: int = 0
    completed: int = 0
    timed_out: int = 0
    shed: int = 0
    failed: int = 0
    final_failures: int = 0
    error_rate: float | None = None
    latency_ms: LatencySummary = LatencySummary()
    offered_peak_rps: float | None = None
    offered_peak_s: float | None = None
    curve_peak_rps: float | None = None
    curve_peak_s: float | None = None
    instances: InstancesSummary | None = None
    instance_seconds: float | None = None
    cost: float | None = None
    scale_events: int | None = None
    slo: dict[str, ObjectiveSummary] = Field(default_factory=dict)
    slo_met: bool = True
    workers: int | None = Field(default=None, ge=1)
    mean_service_ms: float | None = Field(default=None, ge=0)
    price_per_hour: float | None = Field(default=None, ge=0)


class EventSummary(_Open):
    """A scale decision, a fault or any later event kind; ``from``/``to`` are instance counts."""

    t_s: float
    kind: str
    service: str | None = None
    from_count: float | None = Field(default=None, alias="from")
    to_count: float | None = Field(default=None, alias="to")
    reason: str = ""


class CostSummary(_Open):
    """The run's cost. ``basis`` says what ``total`` bills: ``"instances"`` (instance-hours x
    each service's price) or ``"nodes"`` (the cluster's machines, whatever runs on them; then
    ``instances`` holds the instance cost for reference)."""

    total: float
    currency: str = "USD"
    basis: str = "instances"
    instances: float | None = None


class RunSummary(_Open):
    """``summary.json`` (docs/formats.md); wall-clock fields are optional."""

    peaksim_version: str = ""
    kind: str = "simulation"
    scenario: str
    scenario_file: str | None = None
    description: str = ""
    seed: int | None = None
    duration_s: float = Field(gt=0)
    tick_s: float = Field(gt=0)
    start_clock: str | None = None
    policy: str = "static"
    traffic: dict[str, Any] = Field(default_factory=dict)
    started_at: str | None = None
    wall_s: float | None = None
    sim_requests: int | None = None
    sim_requests_per_s: float | None = None
    slo_met: bool | None = None
    cost: CostSummary | None = None
    services: dict[str, ServiceSummary] = Field(min_length=1)
    events: list[EventSummary] = Field(default_factory=list)
    cluster: ClusterRunSummary | None = None
    autoscaling_policy: str | None = None
    """With a cluster, ``policy`` names the cluster policy and this the autoscaling one."""


class ServiceSeries(ColumnSeries):
    """Per-tick columns of one service from timeseries.csv."""


@dataclass(frozen=True)
class RunData:
    """A run directory as read: the summary, one series per service, the CSV's column names,
    and the per-tick cluster metrics of a colocation run (None without ``cluster.csv``)."""

    run_dir: Path
    summary: RunSummary
    series: Mapping[str, ServiceSeries]
    columns: frozenset[str]
    cluster: ClusterSeries | None = None

    @property
    def services(self) -> list[str]:
        """Service names in the summary's order."""
        return list(self.summary.services)

    @property
    def start_clock_s(self) -> float | None:
        """Seconds after midnight at t=0, or None when the run has no wall clock."""
        clock = self.summary.start_clock
        return parse_clock_s(clock) if clock else None

    @property
    def currency(self) -> str:
        return self.summary.cost.currency if self.summary.cost else "USD"


def load_run(run_dir: Path) -> RunData:
    """Read and check ``summary.json`` and ``timeseries.csv`` of ``run_dir``."""
    if not run_dir.is_dir():
        raise RunDirError(f"{run_dir}: not a directory (expected a run directory holding "
                          f"{SUMMARY_FILE} and {TIMESERIES_FILE})")
    summary = read_summary(run_dir / SUMMARY_FILE)
    series, columns = read_timeseries(run_dir / TIMESERIES_FILE)
    path = run_dir / TIMESERIES_FILE
    for name in summary.services:
        if name not in series:
            raise RunDirError(f"{path}: no rows for service '{name}' listed in {SUMMARY_FILE}")
    for name in series:
        if name not in summary.services:
            raise RunDirError(f"{path}: rows for service '{name}', which {SUMMARY_FILE} does "
                              f"not list ({', '.join(summary.services)})")
    cluster_path = run_dir / CLUSTER_FILE
    cluster = read_cluster_csv(cluster_path) if cluster_path.exists() else None
    return RunData(run_dir, summary, series, columns, cluster)


def json_problem(exc: json.JSONDecodeError) -> str:
    """What is wrong, as a whole sentence: the decoder's message ends in "at" (its position
    comes separately), e.g. "invalid control character at column 9"."""
    message = exc.msg[0].lower() + exc.msg[1:] if exc.msg else "cannot parse"
    if message.endswith(" at"):
        message = message[: -len(" at")]
    return f"{message} at column {exc.colno}"


def read_summary(path: Path) -> RunSummary:
    """Parse ``summary.json``; a missing file, bad JSON or a wrong field is a ``RunDirError``."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RunDirError(f"{path}: missing (expected the run's summary, written by "
                          f"'peaksim run')") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RunDirError(f"{path}: cannot read ({exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RunDirError(f"{path}:{exc.lineno}: not valid JSON: {json_problem(exc)}") from None
    if not isinstance(data, dict):
        raise RunDirError(f"{path}: expected a JSON object, got {type(data).__name__}")
    try:
        return RunSummary.model_validate(data)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
            for err in exc.errors()
        ]
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise RunDirError(f"{path}: {'; '.join(problems[:3])}{more}") from None


def read_timeseries(path: Path) -> tuple[dict[str, ServiceSeries], frozenset[str]]:
    """Parse ``timeseries.csv`` into one ``ServiceSeries`` per service."""
    header, records = read_csv_records(
        path, REQUIRED_COLUMNS, "expected the per-tick series, written by 'peaksim run'")
    if not records:
        raise RunDirError(f"{path}: no data rows (expected one row per tick per service)")
    numeric = [c for c in header if c != "service"]
    values: dict[str, dict[str, list[float]]] = {}
    service_at = header.index("service")
    for line_no, row in records:
        cells = dict(zip(header, row, strict=True))
        service = row[service_at].strip()
        if not service:
            raise RunDirError(f"{path}:{line_no}: column service: expected a service name")
        target = values.setdefault(service, {c: [] for c in numeric})
        for column in numeric:
            target[column].append(_cell(path, line_no, column, cells[column]))
    series = {name: _series(path, name, cols) for name, cols in values.items()}
    return series, frozenset(header)


def _cell(path: Path, line_no: int, column: str, text: str) -> float:
    text = text.strip()
    if text == "":
        if column in REQUIRED_COLUMNS and column not in _MAY_BE_EMPTY:
            raise RunDirError(f"{path}:{line_no}: column {column}: expected a number, got nothing")
        return math.nan
    try:
        value = float(text)
    except ValueError:
        if column in REQUIRED_COLUMNS:
            raise RunDirError(
                f"{path}:{line_no}: column {column}: expected a number, got {text!r}"
            ) from None
        return math.nan  # a later feature's text column: plots that need it parse it themselves
    if column in REQUIRED_COLUMNS and not math.isfinite(value):
        raise RunDirError(f"{path}:{line_no}: column {column}: expected a finite number")
    return value


def _series(path: Path, service: str, cols: dict[str, list[float]]) -> ServiceSeries:
    arrays = {c: np.asarray(v, dtype=float) for c, v in cols.items()}
    t_s = arrays["t_s"]
    if np.any(np.diff(t_s) <= 0):
        raise RunDirError(f"{path}: rows of service '{service}' are not in increasing t_s "
                          f"order (expected one row per tick, ordered by t_s)")
    return ServiceSeries(t_s, arrays)
