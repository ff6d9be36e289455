"""The bench's reference: a bare Locust ``FastHttpUser`` with no wait, closed loop.

    PEAKSIM_BENCH_OUT=out.json locust -f loadtests/bench/bare.py --headless -u 32 ...

It counts requests from Locust's own statistics between the end of a warm-up and the end of
the test (no per-request hook, so nothing is added to what it measures) and writes
``{"requests": n, "seconds": s, "total": all requests}`` to ``PEAKSIM_BENCH_OUT``.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import gevent
from locust import FastHttpUser, constant, events, task

WARMUP_S = 1.0


class Bare(FastHttpUser):
    """One GET after another, as fast as the answers come."""

    wait_time = constant(0)

    @task
    def get(self) -> None:
        self.client.get("/items/1")


@events.test_start.add_listener
def _start(environment: Any, **_kw: Any) -> None:
    def mark() -> None:
        gevent.sleep(WARMUP_S)
        environment.peaksim_mark = (time.perf_counter(), environment.stats.total.num_requests)

    gevent.spawn(mark)


@events.test_stop.add_listener
def _stop(environment: Any, **_kw: Any) -> None:
    mark = getattr(environment, "peaksim_mark", None)
    out = os.environ.get("PEAKSIM_BENCH_OUT")
    if mark is None or not out:
        return
    started, count = mark
    total = environment.stats.total.num_requests
    data = {"requests": total - count, "seconds": time.perf_counter() - started,
            "total": total}
    with open(out, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
