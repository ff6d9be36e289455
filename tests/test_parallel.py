"""Where jobs run: order kept in a process pool, option checks, and a local Dask cluster."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sim.cli import app
from sim.errors import PeaksimError
from sim.parallel import Where, map_jobs, scheduler_address, where

_YAML = """
name: tiny
seed: 11
duration_s: 120
tick_s: 10
traffic: {kind: constant, rps: {browse: 40}}
services:
  browse: {service_time: {dist: exponential, mean_ms: 100}, workers: 6, instances: 1}
slo: {browse: {p99_ms: 800}}
"""


def square(x: int) -> int:
    return x * x


def test_pool_returns_results_in_job_order() -> None:
    done: list[tuple[int, int]] = []
    assert map_jobs(square, list(range(7)), Where(jobs=2), lambda d, t: done.append((d, t))) \
        == [x * x for x in range(7)]
    assert done[-1] == (7, 7) and len(done) == 7


def test_options_are_checked() -> None:
    assert scheduler_address("dask://10.0.0.5:8786") == "tcp://10.0.0.5:8786"
    for bad in ("ray://x:1", "dask://", "tcp://h:1", "dask://host"):
        with pytest.raises(PeaksimError, match="dask://HOST:PORT"):
            where(None, bad)
    with pytest.raises(PeaksimError):
        where(0, None)
    assert where(3, None) == Where(jobs=3)


def test_unreachable_scheduler_is_a_one_line_error(runner: CliRunner, tmp_path: Path) -> None:
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(_YAML)
    # port 9 (discard) on loopback: nothing listens there
    result = runner.invoke(app, ["run", str(scenario), "--replications", "2", "--cluster",
                                 "dask://127.0.0.1:9"])
    assert result.exit_code == 2
    assert "cannot reach the Dask scheduler" in result.output


@pytest.mark.slow
def test_replications_on_a_local_dask_cluster_equal_the_local_ones(
        runner: CliRunner, tmp_path: Path) -> None:
    from distributed import LocalCluster

    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(_YAML)
    local = runner.invoke(app, ["run", str(scenario), "--replications", "3", "--jobs", "1",
                                "--out", str(tmp_path / "local")])
    assert local.exit_code == 0, local.output
    with LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                      dashboard_address=None, processes=True) as cluster:
        address = cluster.scheduler_address.removeprefix("tcp://")
        remote = runner.invoke(app, ["run", str(scenario), "--replications", "3", "--cluster",
                                     f"dask://{address}", "--out", str(tmp_path / "dask")])
        assert remote.exit_code == 0, remote.output
        workers = cluster.scheduler_info["workers"]
        assert len(workers) == 2
    a = (tmp_path / "local" / "replications.json").read_bytes()
    b = (tmp_path / "dask" / "replications.json").read_bytes()
    assert a == b
    seeds = json.loads(a)["seeds"]
    assert all((tmp_path / "dask" / f"seed-{s}" / "timeseries.csv").exists() for s in seeds)
