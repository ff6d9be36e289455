"""The v2018 ``batch_task`` CSV reader: the shipped sample, conversions, and bad files."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sim.errors import ScenarioError
from sim.model import (
    BATCH_TASK_COLUMNS,
    BatchWorkload,
    Workload,
    load_workload,
    read_batch_task_csv,
)

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "scenarios" / "data" / "batch-sample.csv"
HEADER = ",".join(BATCH_TASK_COLUMNS)


def read(path: Path, duration_s: float = 1e9, **options: Any) -> Workload:
    return read_batch_task_csv(path, duration_s=duration_s, rng=np.random.default_rng(0),
                               **options)


def write(tmp_path: Path, *rows: str, header: bool = True) -> Path:
    path = tmp_path / "tasks.csv"
    path.write_text("\n".join(([HEADER] if header else []) + list(rows)) + "\n", encoding="utf-8")
    return path


def test_column_order_is_the_v2018_schema() -> None:
    # cluster-trace-v2018/schema.md, section 1.5 Batch Task.
    assert BATCH_TASK_COLUMNS == ("task_name", "instance_num", "job_name", "task_type", "status",
                                  "start_time", "end_time", "plan_cpu", "plan_mem")


def test_a_row_becomes_a_job_in_cores_gb_and_seconds(tmp_path: Path) -> None:
    path = write(tmp_path, "M1,12,j_7,1,Terminated,1000,1090,250,0.5",
                 "R2_1,3,j_7,2,Terminated,1100,1130,100,2", header=False)
    workload = read(path, machine_memory_gb=200.0)
    first, second = workload.jobs
    assert (first.name, first.submit_s, first.instances) == ("j_7/M1", 0.0, 12)
    assert (first.cores, first.memory_gb, first.duration_s) == (2.5, 1.0, 90.0)
    assert first.work_core_s == 12 * 2.5 * 90
    assert (second.submit_s, second.cores, second.memory_gb) == (100.0, 1.0, 4.0)


def test_status_window_and_offset_filters(tmp_path: Path) -> None:
    path = write(tmp_path,
                 "M1,1,j_1,1,Failed,10,20,100,1",
                 "M1,1,j_2,1,Running,15,0,100,1",   # end_time 0: fine, it is filtered out
                 "M1,1,j_3,1,Terminated,50,60,100,1",
                 "M1,1,j_4,1,Terminated,150,160,100,1",
                 "M1,1,j_5,1,Terminated,250,260,100,1")
    workload = read(path, duration_s=150.0)
    assert [j.name for j in workload.jobs] == ["j_3/M1", "j_4/M1"]
    assert workload.rows_filtered == 3
    # Offset 100: the Failed row (10) and j_3 (50) fall before t=0, j_5 (250) at the end.
    shifted = read(path, duration_s=150.0, offset_s=100.0, statuses=("Terminated", "Failed"))
    assert [(j.name, j.submit_s) for j in shifted.jobs] == [("j_4/M1", 50.0)]


def test_sample_fraction_keeps_about_that_share(tmp_path: Path) -> None:
    rows = [f"M1,1,j_{i},1,Terminated,{i},{i + 10},100,1" for i in range(2000)]
    workload = read(write(tmp_path, *rows), sample_fraction=0.25)
    # Binomial(2000, 0.25): mean 500, sd 19.4 -> a 5-sigma band.
    assert 403 <= len(workload.jobs) <= 597


def test_shipped_sample_loads() -> None:
    workload = read(SAMPLE)
    jobs = workload.jobs
    assert 3000 <= len(jobs) <= 10000
    assert workload.rows_skipped == 0 and workload.rows_filtered > 0
    assert jobs[0].submit_s == 0.0
    assert all(b.submit_s >= a.submit_s for a, b in zip(jobs, jobs[1:], strict=False))
    assert {j.cores for j in jobs} <= {0.5, 1.0, 2.0, 4.0}
    assert all(j.instances >= 1 and j.duration_s >= 1 for j in jobs)


def test_shipped_sample_is_what_the_script_writes(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("make_batch_sample",
                                                  ROOT / "scripts" / "make_batch_sample.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "again.csv"
    assert module.main(["--out", str(out)]) == 0
    assert out.read_bytes() == SAMPLE.read_bytes()


def test_load_workload_resolves_the_path_from_the_scenario_dir() -> None:
    spec = BatchWorkload(csv="data/batch-sample.csv")
    workload = load_workload(spec, str(ROOT / "scenarios"), 3600.0, np.random.default_rng(1))
    assert workload.jobs and all(j.submit_s < 3600.0 for j in workload.jobs)


@pytest.mark.parametrize(("row", "column", "message"), [
    ("M1,1,j_1,1,Terminated,10,20,abc,1", "plan_cpu", "expected a number, got 'abc'"),
    ("M1,1,j_1,1,Terminated,10,20,,1", "plan_cpu", "expected a number, got ''"),
    ("M1,1,j_1,1,Terminated,10,20,0,1", "plan_cpu", "expected 1/100 cores > 0"),
    ("M1,0,j_1,1,Terminated,10,20,100,1", "instance_num", "whole number >= 1"),
    ("M1,2.5,j_1,1,Terminated,10,20,100,1", "instance_num", "whole number >= 1"),
    ("M1,1,j_1,1,Terminated,20,20,100,1", "end_time", "end_time (20) must be after start_time"),
    ("M1,1,j_1,1,Terminated,10,20,100,150", "plan_mem", "normalised memory 0..100"),
    ("M1,1,j_1,1,Terminated,10,nan,100,1", "end_time", "finite"),
])
def test_bad_row_names_line_column_and_problem(
    tmp_path: Path, row: str, column: str, message: str
) -> None:
    path = write(tmp_path, "M1,1,j_0,1,Terminated,5,9,100,1", row)
    with pytest.raises(ScenarioError) as info:
        read(path)
    [problem] = info.value.problems
    assert (problem.file, problem.line, problem.path) == (str(path), 3, column)
    assert message in problem.message


def test_wrong_column_count(tmp_path: Path) -> None:
    path = write(tmp_path, "M1,1,j_0,1,Terminated,5,9,100,1", "M1,1,j_1,Terminated,5,9,100,1")
    with pytest.raises(ScenarioError) as info:
        read(path)
    [problem] = info.value.problems
    assert problem.line == 3 and "expected 9 columns (task_name, instance_num" in problem.message
    assert "got 8" in problem.message


def test_many_bad_rows_are_summarised_or_skipped(tmp_path: Path) -> None:
    rows = ["M1,1,j_0,1,Terminated,5,9,100,1"] + [f"M1,1,j_{i},1,Terminated,5,9,x,1"
                                                  for i in range(1, 26)]
    path = write(tmp_path, *rows)
    with pytest.raises(ScenarioError) as info:
        read(path)
    assert len(info.value.problems) == 11
    assert "and 15 more bad rows" in info.value.problems[-1].message
    workload = read(path, on_bad_row="skip")
    assert len(workload.jobs) == 1 and workload.rows_skipped == 25


def test_missing_file_and_no_usable_rows(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="batch CSV not found"):
        read(tmp_path / "nope.csv")
    with pytest.raises(ScenarioError, match="no task rows with status Terminated"):
        read(write(tmp_path, "M1,1,j_1,1,Failed,10,20,100,1"))
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ScenarioError, match="cannot read batch CSV"):
        read(binary)
