"""Batch workloads: jobs read from an Alibaba v2018 ``batch_task`` CSV or drawn from a generator.

The v2018 trace (github.com/alibaba/clusterdata, ``cluster-trace-v2018/schema.md``) lists
``batch_task`` rows with the columns, in this order::

    task_name, instance_num, job_name, task_type, status, start_time, end_time, plan_cpu, plan_mem

Times are seconds, ``plan_cpu`` is per instance with 100 = one core, ``plan_mem`` is memory
normalised to one machine (0..100). A row becomes one ``BatchJob``: ``instance_num`` containers
of ``plan_cpu / 100`` cores and ``plan_mem / 100 * machine_memory_gb`` GB, each running
``end_time - start_time`` seconds at full speed, submitted at ``start_time - offset``. The
real files have no header row; a header naming these columns is accepted too. The DAG encoded in
task names is not modelled: the trace's start times already reflect it.

Randomness comes only from the numpy ``Generator`` passed in.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sim.errors import Problem, ScenarioError
from sim.model.batch_config import BatchGenerator, BatchWorkload, Dist
from sim.model.inputfiles import read_csv_rows

MAX_BATCH_JOBS = 1_000_000
"""Batch jobs a generator may draw for one run (they are all held in memory)."""

BATCH_TASK_COLUMNS = (
    "task_name", "instance_num", "job_name", "task_type", "status",
    "start_time", "end_time", "plan_cpu", "plan_mem",
)
MAX_REPORTED_ROWS = 10
MIN_DURATION_S = 1.0
"""Generated durations are at least this long (the trace's time resolution is one second)."""


@dataclass(frozen=True)
class BatchJob:
    """``instances`` identical containers of ``cores`` cores and ``memory_gb`` GB, each needing
    ``duration_s`` seconds at full speed, submitted at ``submit_s`` (seconds from t=0)."""

    name: str
    submit_s: float
    instances: int
    cores: float
    memory_gb: float
    duration_s: float
    priority: int = 0

    @property
    def work_core_s(self) -> float:
        """Core-seconds of work the whole job asks for."""
        return self.instances * self.cores * self.duration_s


@dataclass(frozen=True)
class Workload:
    """Jobs in submission order, and what was left out of a CSV (rows of other statuses or
    outside the run's window, sampled out, or bad rows skipped)."""

    jobs: tuple[BatchJob, ...]
    source: str
    rows_filtered: int = 0
    rows_skipped: int = 0

    @property
    def work_core_s(self) -> float:
        return sum(job.work_core_s for job in self.jobs)


def load_workload(
    spec: BatchWorkload, base_dir: str, duration_s: float, rng: np.random.Generator
) -> Workload:
    """The jobs of a scenario's batch section submitted within ``[0, duration_s)``.

    Raises ``ScenarioError`` (one problem per bad row, with its line) for an unusable CSV.
    """
    if spec.generator is not None:
        return Workload(generate_jobs(spec.generator, duration_s, rng), "generator")
    assert spec.csv is not None
    return read_batch_task_csv(
        Path(base_dir) / spec.csv, duration_s=duration_s, rng=rng,
        machine_memory_gb=spec.machine_memory_gb, offset_s=spec.offset_s,
        statuses=spec.statuses, sample_fraction=spec.sample_fraction,
        on_bad_row=spec.on_bad_row, priority=spec.priority,
    )


# ----------------------------------------------------------------------------- CSV
def read_batch_task_csv(
    path: Path, *, duration_s: float, rng: np.random.Generator, machine_memory_gb: float = 100.0,
    offset_s: float | None = None, statuses: tuple[str, ...] = ("Terminated",),
    sample_fraction: float = 1.0, on_bad_row: str = "error", priority: int = 0,
) -> Workload:
    """Jobs from a v2018 ``batch_task`` file whose submission falls in the run's window."""
    file = str(path)
    if offset_s is None:
        offset_s = _earliest_start(path, statuses)
    jobs: list[BatchJob] = []
    problems: list[Problem] = []
    filtered = 0
    for line, row in _rows(path):
        if len(row) != len(BATCH_TASK_COLUMNS) or row[4].strip() not in statuses:
            if len(row) != len(BATCH_TASK_COLUMNS):
                problems.append(Problem(file, "", f"expected {len(BATCH_TASK_COLUMNS)} columns "
                                        f"({', '.join(BATCH_TASK_COLUMNS)}), got {len(row)}", line))
            else:
                filtered += 1
            continue
        try:
            job = _parse_row(row, offset_s, machine_memory_gb, priority)
        except _BadCell as bad:
            problems.append(Problem(file, bad.column, bad.message, line))
            continue
        if not 0.0 <= job.submit_s < duration_s or (
            sample_fraction < 1.0 and rng.random() >= sample_fraction
        ):
            filtered += 1
            continue
        jobs.append(job)
    if problems and on_bad_row == "error":
        shown = problems[:MAX_REPORTED_ROWS]
        if len(problems) > len(shown):
            shown.append(Problem(file, "", f"... and {len(problems) - len(shown)} more bad rows "
                                 "(on_bad_row: skip leaves them out)"))
        raise ScenarioError(shown)
    skipped = len(problems)
    jobs.sort(key=lambda j: j.submit_s)  # stable: file order among equal times
    return Workload(tuple(jobs), file, filtered, skipped)


class _BadCell(Exception):
    def __init__(self, column: str, message: str) -> None:
        super().__init__(message)
        self.column = column
        self.message = message


def _rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(1-based line, cells) of every non-blank row, header row left out."""
    if not path.exists():
        raise ScenarioError([Problem(str(path), "", "batch CSV not found")])
    try:
        rows = read_csv_rows(path, "batch CSV", show_path=False)
    except ValueError as exc:
        raise ScenarioError([Problem(str(path), "", str(exc))]) from None
    # Rows are numbered as lines (a quoted cell never spans lines in this schema).
    for line, row in enumerate(rows, start=1):
        if not row or all(not cell.strip() for cell in row):
            continue
        if line == 1 and row[0].strip() == BATCH_TASK_COLUMNS[0]:
            continue
        yield line, row


def _number(row: list[str], column: str) -> float:
    cell = row[BATCH_TASK_COLUMNS.index(column)].strip()
    try:
        value = float(cell)
    except ValueError:
        raise _BadCell(column, f"expected a number, got {cell!r}") from None
    if not math.isfinite(value):
        raise _BadCell(column, f"expected a finite number, got {cell!r}")
    return value


def _earliest_start(path: Path, statuses: tuple[str, ...]) -> float:
    earliest = math.inf
    for _, row in _rows(path):
        if len(row) == len(BATCH_TASK_COLUMNS) and row[4].strip() in statuses:
            try:
                earliest = min(earliest, _number(row, "start_time"))
            except _BadCell:
                continue  # reported with its line by the main pass
    if math.isinf(earliest):
        wanted = ", ".join(statuses)
        raise ScenarioError([Problem(str(path), "", f"no task rows with status {wanted}")])
    return earliest


def _parse_row(row: list[str], offset_s: float, machine_memory_gb: float,
               priority: int) -> BatchJob:
    instances = _number(row, "instance_num")
    if instances < 1 or instances != int(instances):
        raise _BadCell("instance_num", f"expected a whole number >= 1, got {row[1].strip()!r}")
    start, end = _number(row, "start_time"), _number(row, "end_time")
    if start < 0:
        raise _BadCell("start_time", f"expected seconds >= 0, got {row[5].strip()!r}")
    if end <= start:
        raise _BadCell("end_time", f"end_time ({end:g}) must be after start_time ({start:g})")
    plan_cpu, plan_mem = _number(row, "plan_cpu"), _number(row, "plan_mem")
    if plan_cpu <= 0:
        raise _BadCell("plan_cpu", f"expected 1/100 cores > 0, got {row[7].strip()!r}")
    if not 0 <= plan_mem <= 100:
        raise _BadCell("plan_mem", f"expected normalised memory 0..100, got {row[8].strip()!r}")
    name = f"{row[2].strip()}/{row[0].strip()}"
    return BatchJob(name, start - offset_s, int(instances), plan_cpu / 100.0,
                    plan_mem / 100.0 * machine_memory_gb, end - start, priority)


# ----------------------------------------------------------------------------- generator
def draw(dist: Dist, rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` draws from ``dist`` (exponential and lognormal draws capped at ``max``)."""
    if dist.dist == "constant":
        assert dist.value is not None
        return np.full(n, dist.value)
    if dist.dist == "uniform":
        return rng.uniform(dist.min, dist.max, n)
    if dist.dist == "choice":
        assert dist.values is not None
        weights = np.asarray(dist.weights or [1.0] * len(dist.values), dtype=float)
        return rng.choice(np.asarray(dist.values), size=n, p=weights / weights.sum())
    assert dist.mean is not None
    if dist.dist == "exponential":
        values = rng.exponential(dist.mean, n)
    else:
        assert dist.sigma is not None
        values = rng.lognormal(math.log(dist.mean) - dist.sigma**2 / 2.0, dist.sigma, n)
    return values if dist.max is None else np.minimum(values, dist.max)


def arrival_times_s(
    spec: BatchGenerator, duration_s: float, rng: np.random.Generator
) -> np.ndarray:
    """Poisson arrivals in ``[0, duration_s)`` at ``rate_per_min`` (by thinning)."""
    at = np.asarray([p.at for p in spec.rate_per_min])
    per_min = np.asarray([p.per_min for p in spec.rate_per_min])
    peak_per_s = float(per_min.max()) / 60.0
    if peak_per_s <= 0:
        return np.zeros(0)
    if peak_per_s * duration_s + spec.backlog_jobs > MAX_BATCH_JOBS:
        raise ScenarioError([Problem(
            "<scenario>", "cluster.batch.generator.rate_per_min",
            f"the run would draw about {peak_per_s * duration_s:,.0f} batch jobs, above the "
            f"limit of {MAX_BATCH_JOBS:,}; lower rate_per_min or the duration")])
    count = rng.poisson(peak_per_s * duration_s)
    times = np.sort(rng.uniform(0.0, duration_s, count))
    keep = rng.random(count) * peak_per_s < np.interp(times, at, per_min) / 60.0
    return times[keep]


def generate_jobs(
    spec: BatchGenerator, duration_s: float, rng: np.random.Generator
) -> tuple[BatchJob, ...]:
    """``backlog_jobs`` jobs at t=0, then Poisson arrivals; sizes drawn per job."""
    times = np.concatenate([np.zeros(spec.backlog_jobs), arrival_times_s(spec, duration_s, rng)])
    n = len(times)
    instances = np.maximum(1, np.rint(draw(spec.instances, rng, n))).astype(int)
    cores = np.maximum(0.001, np.round(draw(spec.cores, rng, n), 3))
    durations = np.maximum(MIN_DURATION_S, draw(spec.duration_s, rng, n))
    levels = sorted(spec.priorities)
    weights = np.asarray([spec.priorities[level] for level in levels], dtype=float)
    priorities = rng.choice(np.asarray(levels), size=n, p=weights / weights.sum())
    return tuple(
        BatchJob(f"gen-{i}", float(times[i]), int(instances[i]), float(cores[i]),
                 float(cores[i]) * spec.memory_gb_per_core, float(durations[i]),
                 int(priorities[i]))
        for i in range(n)
    )
