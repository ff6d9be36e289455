"""Run independent jobs (variants, replications, sweep points) in parallel.

Two back ends, one contract: ``map_jobs(fn, jobs, where)`` returns ``[fn(job) for job in jobs]``
in the order of ``jobs``, whatever order they finish in, so that a parallel run is identical
to a serial one.

- local: a ``concurrent.futures`` process pool over this machine's cores (``--jobs N``);
  ``N = 1`` runs in this process, one job after the other.
- cluster: an existing Dask distributed scheduler (``--cluster dask://HOST:PORT``). Dask is
  pure Python, needs nothing but ``pip install distributed`` on each machine, and its
  ``Client.map``/``gather`` is exactly this contract; workers need peaksim installed (the same
  version) and read nothing from this machine's disk: jobs carry the validated scenario.

``fn`` must be a module-level function and jobs and results picklable.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, TypeVar

from sim.errors import PeaksimError

JobT = TypeVar("JobT")
ResultT = TypeVar("ResultT")
DoneFn = Callable[[int, int], None]
"""Called with (jobs finished, jobs in total) as jobs finish."""
ResultFn = Callable[[int, Any], None]
"""Called in this process with (job index, result) as each job finishes, in finishing order:
where results are written as they come, an interrupted command keeps the finished ones."""

CLUSTER_SCHEME = "dask://"
_CONNECT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Where:
    """Where jobs run: ``jobs`` local processes, or the Dask scheduler at ``cluster``."""

    jobs: int = 1
    cluster: str | None = None

    @property
    def local(self) -> bool:
        """True when jobs run on this machine (so they may write its files)."""
        return self.cluster is None

    def describe(self) -> str:
        """'2 local processes' / 'Dask cluster tcp://...' for progress lines and reports."""
        if self.cluster is not None:
            return f"Dask cluster {scheduler_address(self.cluster)}"
        return "1 process" if self.jobs == 1 else f"{self.jobs} local processes"


def default_jobs() -> int:
    """The number of cores this process may use (the default of ``--jobs``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def where(jobs: int | None, cluster: str | None) -> Where:
    """Resolve the ``--jobs``/``--cluster`` options; raise ``PeaksimError`` on a bad value."""
    if jobs is not None and jobs < 1:
        raise PeaksimError(f"--jobs must be at least 1, got {jobs}")
    if cluster is not None:
        scheduler_address(cluster)
        return Where(jobs=jobs or 1, cluster=cluster)
    return Where(jobs=jobs or default_jobs())


def scheduler_address(cluster: str) -> str:
    """``dask://HOST:PORT`` -> ``tcp://HOST:PORT`` (the scheduler's own address form)."""
    if not cluster.startswith(CLUSTER_SCHEME) or ":" not in cluster[len(CLUSTER_SCHEME):]:
        raise PeaksimError(f"--cluster: expected dask://HOST:PORT (a Dask distributed "
                           f"scheduler), got {cluster!r}")
    return "tcp://" + cluster[len(CLUSTER_SCHEME):]


def map_jobs(
    fn: Callable[[JobT], ResultT], jobs: Sequence[JobT], place: Where,
    on_done: DoneFn | None = None, on_result: ResultFn | None = None,
) -> list[ResultT]:
    """``[fn(job) for job in jobs]``, computed where ``place`` says, in the order of ``jobs``."""
    if not jobs:
        return []

    def finished(index: int, result: Any, done: int) -> None:
        if on_result is not None:
            on_result(index, result)
        if on_done is not None:
            on_done(done, len(jobs))

    if place.cluster is not None:
        return _on_cluster(fn, jobs, place.cluster, finished)
    workers = min(place.jobs, len(jobs))
    if workers == 1:
        results = []
        for index, job in enumerate(jobs):
            results.append(fn(job))
            finished(index, results[-1], index + 1)
        return results
    return _in_pool(fn, jobs, workers, finished)


_Finished = Callable[[int, Any, int], None]


def _in_pool(fn: Callable[[JobT], ResultT], jobs: Sequence[JobT], workers: int,
             finished: _Finished) -> list[ResultT]:
    # spawn, not fork: the parent may hold threads (progress bars, a Dask client) that a
    # forked child would inherit mid-lock
    context = multiprocessing.get_context("spawn")
    results: list[Any] = [None] * len(jobs)
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
    try:
        futures: dict[Future[ResultT], int] = {pool.submit(fn, job): i
                                               for i, job in enumerate(jobs)}
        for done, future in enumerate(as_completed(futures), start=1):
            results[futures[future]] = future.result()
            finished(futures[future], results[futures[future]], done)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return results


def _on_cluster(fn: Callable[[JobT], ResultT], jobs: Sequence[JobT], cluster: str,
                finished: _Finished) -> list[ResultT]:
    address = scheduler_address(cluster)
    _reachable(address)
    from distributed import Client
    from distributed import as_completed as dask_completed

    try:
        client = Client(address, timeout=_CONNECT_TIMEOUT_S)
    except OSError as exc:
        raise PeaksimError(f"--cluster: cannot reach the Dask scheduler at {address}: "
                           f"{exc}") from None
    with client:
        # pure=False: two equal jobs are still two runs (Dask would otherwise deduplicate)
        futures = client.map(fn, list(jobs), pure=False)
        index = {future.key: i for i, future in enumerate(futures)}
        results: list[Any] = [None] * len(jobs)
        try:
            for done, future in enumerate(dask_completed(futures), start=1):
                results[index[future.key]] = future.result()
                finished(index[future.key], results[index[future.key]], done)
        except BaseException:
            client.cancel(futures)
            raise
    return results


def _reachable(address: str) -> None:
    """Fail at once on a refused connection (Dask's client would retry until its timeout)."""
    host, _, port = address.removeprefix("tcp://").rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), _CONNECT_TIMEOUT_S):
            pass
    except (OSError, ValueError) as exc:
        raise PeaksimError(f"--cluster: cannot reach the Dask scheduler at {address}: "
                           f"{exc}") from None
