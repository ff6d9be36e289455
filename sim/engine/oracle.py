"""The obviously-correct reference model: one SimPy process per request.

It is slow (about 100,000 requests per wall-second) and only models one shared FCFS pool with
timeouts and a queue limit, which is exactly why it is trustworthy. The tests check the batched
engine against it request by request, and ``peaksim bench`` measures the engine's speed
against it.
"""

from __future__ import annotations

from collections.abc import Sequence

import simpy

SHED_CODE = -2.0
ABANDONED_CODE = -1.0


def simulate_oracle(
    arrivals_s: Sequence[float], service_s: Sequence[float], workers: int,
    timeout_s: float = 0.0, max_queue: int | None = None,
) -> list[float]:
    """Start time of every request (or ``ABANDONED_CODE`` / ``SHED_CODE``).

    ``workers`` serve one FCFS queue; a request still queued at ``arrival + timeout_s`` leaves;
    one arriving when all workers are busy and ``max_queue`` are waiting is refused.
    """
    env = simpy.Environment()
    pool = simpy.Resource(env, capacity=workers)
    starts = [SHED_CODE] * len(arrivals_s)

    def request(i: int, arrival: float, service: float):  # type: ignore[no-untyped-def]
        yield env.timeout(arrival)
        if max_queue is not None and pool.count >= workers and len(pool.queue) >= max_queue:
            return  # shed
        with pool.request() as grant:
            if timeout_s > 0:
                fired = yield grant | env.timeout(timeout_s)
                if grant not in fired:
                    starts[i] = ABANDONED_CODE
                    return
            else:
                yield grant
            starts[i] = env.now
            yield env.timeout(service)

    for i, (a, s) in enumerate(zip(arrivals_s, service_s, strict=True)):
        env.process(request(i, a, s))
    env.run()
    return starts
