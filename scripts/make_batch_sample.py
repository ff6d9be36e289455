"""Write a synthetic batch workload in the Alibaba cluster-trace v2018 ``batch_task`` schema.

    python scripts/make_batch_sample.py [--seed 2018] [--jobs 2000] [--span 3h] [--out PATH]

Every number is drawn here from a seeded numpy generator (nothing is copied from the real
trace); the same arguments always write the same bytes. The shape follows what the trace's
public schema describes: jobs made of a few map/reduce tasks (``M1``, ``R2_1`` = reduce task 2
after task 1), each task a number of identical instances with ``plan_cpu`` in 1/100 cores and
``plan_mem`` normalised to one machine (0..100), times in seconds. A reduce task starts when
the tasks it depends on have ended. A few rows are ``Failed`` or still ``Running``
(``end_time`` 0), as in the real files, to exercise status filtering.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sim.model import BATCH_TASK_COLUMNS  # noqa: E402  (after the path set-up)
from sim.units import parse_duration_s  # noqa: E402

DEFAULT_OUT = ROOT / "scenarios" / "data" / "batch-sample.csv"
TRACE_START_S = 3 * 86400 + 22 * 3600  # day 3, 22:00 of the trace clock: any origin works
PLAN_CPU = np.array([50, 100, 100, 100, 200, 200, 400])  # per instance, 100 = one core
MAX_INSTANCES = 200
MAX_DURATION_S = 3600


def task_rows(rng: np.random.Generator, job: int, submit_s: int) -> list[list[str | int | float]]:
    """The tasks of one job: one to three map tasks, then up to two reduce stages."""
    maps = int(rng.integers(1, 4))
    reduces = int(rng.choice([0, 1, 1, 2]))
    rows: list[list[str | int | float]] = []
    ends: list[int] = []
    for m in range(1, maps + 1):
        row, end = _task(rng, f"M{m}", job, submit_s + int(rng.integers(0, 30)))
        rows.append(row)
        ends.append(end)
    for r in range(maps + 1, maps + reduces + 1):
        row, end = _task(rng, f"R{r}_{r - 1}", job, max(ends) + int(rng.integers(1, 20)))
        rows.append(row)
        ends = [end]
    return rows


def _task(
    rng: np.random.Generator, name: str, job: int, start_s: int
) -> tuple[list[str | int | float], int]:
    """One task row and the time it really ends (a Running row shows end_time 0)."""
    instances = int(min(MAX_INSTANCES, 1 + np.floor(rng.lognormal(1.0, 1.0))))
    end_s = start_s + int(min(MAX_DURATION_S, max(1.0, rng.lognormal(np.log(90.0), 0.9))))
    plan_cpu = int(rng.choice(PLAN_CPU))
    plan_mem = round(float(rng.uniform(0.1, 0.6)) * plan_cpu / 100.0, 2)
    status = str(rng.choice(["Terminated", "Failed", "Running"], p=[0.96, 0.03, 0.01]))
    shown_end = 0 if status == "Running" else end_s
    task_type = int(rng.integers(1, 13))  # the trace has 12 task types
    row = [name, instances, f"j_{job}", task_type, status, start_s, shown_end, plan_cpu, plan_mem]
    return row, end_s


def make_sample(seed: int, jobs: int, span_s: float) -> list[list[str | int | float]]:
    """Rows of ``jobs`` jobs submitted as a Poisson process over ``span_s`` seconds."""
    rng = np.random.default_rng(seed)
    submits = np.sort(rng.uniform(0.0, span_s, jobs)).astype(int) + TRACE_START_S
    rows: list[list[str | int | float]] = []
    for job, submit in enumerate(submits.tolist(), start=1):
        rows += task_rows(rng, job, submit)
    rows.sort(key=lambda row: (int(row[5]), str(row[2]), str(row[0])))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=2018)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--span", default="3h", help="submission window (e.g. 3h, 5400)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--no-header", action="store_true",
                        help="omit the header row, like the real trace files")
    args = parser.parse_args(argv)
    rows = make_sample(args.seed, args.jobs, parse_duration_s(args.span))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(args.out.suffix + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        if not args.no_header:
            writer.writerow(BATCH_TASK_COLUMNS)
        writer.writerows(rows)
    tmp.replace(args.out)
    print(f"wrote {len(rows)} task rows of {args.jobs} jobs to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
