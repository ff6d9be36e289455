"""The cluster part of a colocation run directory, as the reports read it.

A run with a ``cluster:`` section has, besides ``summary.json`` and ``timeseries.csv``:

- ``cluster.csv``: one row per tick with the columns of ``sim.cluster.metrics.ClusterTick``
  (docs/colocation.md, "Metrics"): cores are means over the tick, counts are at its end,
  ``batch_preempted`` and ``batch_jobs_completed`` are events in the tick, and the core-seconds
  and ``cost`` columns are cumulative;
- a ``"cluster"`` object in ``summary.json``: ``dataclasses.asdict`` of
  ``sim.cluster.metrics.ClusterSummary`` plus the variant name.

Everything here is read-only and pure (no plotting); a bad file raises ``RunDirError`` naming
the file, the line and the column.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from sim.errors import RunDirError
from sim.report.document import NO_VALUE, ColumnSeries, read_csv_records

CLUSTER_FILE = "cluster.csv"
"""Per-tick cluster metrics of a colocation run (the engine's ``sim.engine.CLUSTER_FILE``)."""

CLUSTER_COLUMNS = (
    "t_s", "nodes", "nodes_ready", "nodes_in_use", "online_cores", "batch_cores", "idle_cores",
    "cpu_utilization", "pending_instances", "batch_running", "batch_queued", "batch_throttled",
    "batch_preempted", "batch_jobs_completed", "batch_core_s_done", "batch_core_s_lost", "cost",
)
"""The columns the cluster plots read; all of them are ``ClusterTick`` fields."""

SECONDS_PER_HOUR = 3600.0


class _Open(BaseModel):
    """Keeps keys that later versions add (``extra="allow"``)."""

    model_config = ConfigDict(extra="allow", frozen=True)


class BatchLedger(_Open):
    """Batch work in core-seconds (``BatchAccounting``): done + running + remaining =
    submitted, and done + running + lost = executed."""

    submitted_core_s: float = Field(ge=0)
    done_core_s: float = Field(ge=0)
    running_core_s: float = Field(default=0.0, ge=0)
    remaining_core_s: float = Field(default=0.0, ge=0)
    lost_core_s: float = Field(default=0.0, ge=0)
    executed_core_s: float = Field(default=0.0, ge=0)


class ClusterRunSummary(_Open):
    """The ``"cluster"`` object of ``summary.json``: the machines a run needed, how busy they
    were, what they cost, and what happened to the batch work. Utilization is a fraction
    (0.81 = 81%); slowdown is (completion - submission) / duration of a job (1 = no wait)."""

    policy: str
    variant: str | None = None
    duration_s: float | None = None
    nodes_max: int = Field(ge=0)
    nodes_mean: float = Field(ge=0)
    node_hours: float = Field(ge=0)
    cost: float = Field(ge=0)
    mean_cpu_utilization: float = Field(ge=0)
    online_cores_mean: float = 0.0
    batch_cores_mean: float = 0.0
    pending_instance_s: float = Field(default=0.0, ge=0)
    pending_max: int = Field(default=0, ge=0)
    batch_jobs_submitted: int = Field(default=0, ge=0)
    batch_jobs_completed: int = Field(default=0, ge=0)
    batch_jobs_rejected: int = Field(default=0, ge=0)
    batch_preemptions: int = Field(default=0, ge=0)
    batch_core_s_per_s: float = 0.0
    batch_slowdown_mean: float | None = None
    batch_slowdown_p95: float | None = None
    batch: BatchLedger

    @property
    def done_core_h(self) -> float:
        return self.batch.done_core_s / SECONDS_PER_HOUR

    @property
    def lost_core_h(self) -> float:
        return self.batch.lost_core_s / SECONDS_PER_HOUR

    @property
    def price_per_node_hour(self) -> float | None:
        """The mean price of a node-hour (the run may mix node types)."""
        return self.cost / self.node_hours if self.node_hours > 0 else None


@dataclass(frozen=True)
class ClusterSeries(ColumnSeries):
    """The columns of ``cluster.csv`` as float arrays aligned with ``t_s`` (tick starts)."""

    @property
    def ready_cores(self) -> np.ndarray:
        """Cores of the ready nodes, mean over each tick (allocated + idle)."""
        return self["online_cores"] + self["batch_cores"] + self["idle_cores"]


def read_cluster_csv(path: Path) -> ClusterSeries:
    """Parse ``cluster.csv``; a missing column, a non-number or unordered ticks is a
    ``RunDirError`` naming the file (and the line and column)."""
    header, records = read_csv_records(path, CLUSTER_COLUMNS)
    values: dict[str, list[float]] = {c: [] for c in header}
    for line_no, row in records:
        for column, text in zip(header, row, strict=True):
            values[column].append(_number(path, line_no, column, text))
    if not values["t_s"]:
        raise RunDirError(f"{path}: no data rows (expected one row per tick)")
    arrays = {c: np.asarray(v, dtype=float) for c, v in values.items()}
    if np.any(np.diff(arrays["t_s"]) <= 0):
        raise RunDirError(f"{path}: rows are not in increasing t_s order (expected one row "
                          f"per tick, ordered by t_s)")
    return ClusterSeries(arrays["t_s"], arrays)


def _number(path: Path, line_no: int, column: str, text: str) -> float:
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        if column in CLUSTER_COLUMNS:
            raise RunDirError(f"{path}:{line_no}: column {column}: expected a number, got "
                              f"{text!r}") from None
        return math.nan  # a later version's text column: nothing here reads it
    if column in CLUSTER_COLUMNS and not math.isfinite(value):
        raise RunDirError(f"{path}:{line_no}: column {column}: expected a finite number")
    return value


def fmt_share(fraction: float | None) -> str:
    """A utilization with one decimal (``"81.1%"``): colocation moves it by a few points, which
    two significant digits would hide."""
    if fraction is None or math.isnan(fraction):
        return NO_VALUE
    return f"{fraction * 100.0:.1f}%"


def fmt_core_hours(core_h: float | None) -> str:
    """Core-hours: one decimal from 1 up (``"491.9"``), two significant digits below
    (``"0.12"``), so that a small loss is not shown as zero."""
    if core_h is None or math.isnan(core_h):
        return NO_VALUE
    if core_h == 0:
        return "0"
    if abs(core_h) >= 1.0:
        return f"{core_h:,.1f}"
    return str(np.format_float_positional(core_h, precision=2, unique=True, fractional=False,
                                          trim="-"))


def fmt_slowdown(slowdown: float | None) -> str:
    """A job slowdown factor with two decimals (``"2.66"``)."""
    if slowdown is None or math.isnan(slowdown):
        return NO_VALUE
    return f"{slowdown:.2f}"
