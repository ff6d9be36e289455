"""The batched engine decides every request exactly as the process-per-request oracle does."""

from __future__ import annotations

import numpy as np
import pytest

from sim.engine import Chooser, GeneralBatch, Queue, serve_fast, serve_general, simulate_oracle


def workload(seed: int, n: int, rate_rps: float, mean_service_s: float):
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1.0 / rate_rps, n))
    service = rng.exponential(mean_service_s, n)
    return arrivals.tolist(), service.tolist()


def fast_in_batches(arrivals, service, workers, timeout_s, max_queue, boundaries):
    """Feed the fast kernel batch by batch (as the engine does between control events)."""
    queue = Queue(free_s=[0.0] * workers)
    starts_all: list[float] = []
    pending_a: list[float] = []
    pending_s: list[float] = []
    i = 0
    for t_end in [*boundaries, np.inf]:
        while i < len(arrivals) and arrivals[i] < t_end:
            pending_a.append(arrivals[i])
            pending_s.append(service[i])
            i += 1
        starts: list[float] = []
        done = serve_fast(queue, pending_a, pending_s, 0, starts, t_end, timeout_s, max_queue)
        assert len(starts) == done
        starts_all += starts
        pending_a, pending_s = pending_a[done:], pending_s[done:]
    return starts_all


def general_in_batches(arrivals, service, workers, timeout_s, max_queue, boundaries,
                       per_instance=False):
    """The general kernel (retries, per-instance queues), fed batch by batch. With
    ``per_instance`` the pool is one queue per worker chosen by a single-queue chooser, which
    must give the same result as the shared path when only one queue exists."""
    queue = Queue(free_s=[0.0] * workers)
    out = GeneralBatch()
    chooser = Chooser("round_robin", np.random.default_rng(0)) if per_instance else None
    pos = 0
    for t_end in [*boundaries, np.inf]:
        pos = serve_general([queue], [0], arrivals, service, pos, [], t_end, timeout_s,
                            max_queue, chooser, lambda a, t, k: None, out)
    return out.starts


CASES = [
    # workers, rate, mean service, timeout, max_queue
    (10, 80.0, 0.100, 0.0, None),     # M/M/10 at rho 0.8
    (4, 45.0, 0.100, 0.15, None),     # overloaded with timeouts: many abandon
    (3, 40.0, 0.100, 0.0, 5),         # overloaded with a queue limit: shedding
    (2, 30.0, 0.100, 0.25, 3),        # timeouts and shedding together
    (1, 9.0, 0.100, 0.0, None),       # single server
]


@pytest.mark.parametrize(("workers", "rate", "mean_s", "timeout_s", "max_queue"), CASES)
def test_fast_kernel_equals_oracle(workers, rate, mean_s, timeout_s, max_queue) -> None:
    arrivals, service = workload(11, 4000, rate, mean_s)
    expected = simulate_oracle(arrivals, service, workers, timeout_s, max_queue)
    boundaries = list(np.arange(0.37, arrivals[-1], 0.37))  # control events every 0.37 s
    got = fast_in_batches(arrivals, service, workers, timeout_s, max_queue, boundaries)
    assert got == expected  # identical start times, hence identical latencies
    # and the outcomes are not trivial: this workload exercises what the case is about
    if timeout_s:
        assert expected.count(-1.0) > 0 or max_queue
    if max_queue is not None:
        assert expected.count(-2.0) > 0


@pytest.mark.parametrize(("workers", "rate", "mean_s", "timeout_s", "max_queue"), CASES)
def test_general_kernel_equals_oracle(workers, rate, mean_s, timeout_s, max_queue) -> None:
    arrivals, service = workload(23, 3000, rate, mean_s)
    expected = simulate_oracle(arrivals, service, workers, timeout_s, max_queue)
    boundaries = list(np.arange(0.5, arrivals[-1], 1.3))
    assert general_in_batches(arrivals, service, workers, timeout_s, max_queue,
                              boundaries) == expected
    assert general_in_batches(arrivals, service, workers, timeout_s, max_queue,
                              boundaries, per_instance=True) == expected


def test_batch_boundaries_do_not_change_results() -> None:
    arrivals, service = workload(5, 5000, 45.0, 0.1)
    one = fast_in_batches(arrivals, service, 4, 0.2, 4, [])
    many = fast_in_batches(arrivals, service, 4, 0.2, 4, list(np.arange(0.05, 200, 0.05)))
    assert one == many


def test_latencies_identical_through_the_engine_plane() -> None:
    """Per-request latencies of completed requests, oracle vs kernel, on a constant-service
    workload where ties between events are common."""
    rng = np.random.default_rng(3)
    arrivals = np.round(np.cumsum(rng.exponential(0.02, 3000)), 2).tolist()  # ties
    service = [0.05] * len(arrivals)
    arrivals = sorted(set(arrivals))
    service = service[: len(arrivals)]
    expected = simulate_oracle(arrivals, service, 2, 0.3, None)
    got = fast_in_batches(arrivals, service, 2, 0.3, None, list(np.arange(1.0, 70.0, 1.0)))
    lat_expected = [s + d - a for s, d, a in zip(expected, service, arrivals, strict=True)
                    if s >= 0]
    lat_got = [s + d - a for s, d, a in zip(got, service, arrivals, strict=True) if s >= 0]
    assert lat_got == lat_expected
