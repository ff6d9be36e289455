"""The request data plane of one service: exact FCFS multi-worker queues, advanced in batches.

Between two control events (scaling, boots, failures, metric ticks) the set of workers is fixed,
so a FCFS queue can be computed exactly from arrival and service times with a heap of worker
free-times: request i starts at ``max(arrival_i, earliest free worker)``. A batch stops at the
control-event time ``t_end``: a request that would still be waiting then is *carried* to the next
batch, where it is decided against the workers as they are after the event. This gives the same
per-request results as a process-per-request simulation (tests/test_oracle.py checks it).

Outcome codes returned per attempt: a start time >= 0 (it got a worker), ``ABANDONED`` (still
queued at its deadline: timed out without using a worker) or ``SHED`` (refused at once: queue
full or no ready instance).
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

ABANDONED = -1.0
SHED = -2.0


@dataclass
class Queue:
    """One FCFS queue: the free times of its workers and the leave times of waiting requests."""

    free_s: list[float] = field(default_factory=list)
    """Heap of the times each active worker becomes free (booting ones: their ready time)."""
    waiting_leave_s: deque[float] = field(default_factory=deque)
    """Times at which the requests waiting in the queue leave it (start or deadline); only
    kept when the queue has a length limit."""


def serve_fast(
    queue: Queue,
    arrivals_s: list[float],
    service_s: list[float],
    starts: list[float],
    t_end_s: float,
    timeout_s: float,
    queue_limit: int | None,
) -> int:
    """Decide attempts in arrival order on one shared queue; return how many were decided.

    Writes each decided attempt's outcome into ``starts[i]``. Stops at the first attempt that
    would still be waiting at ``t_end_s`` (it and all later ones are carried). No retries here:
    callers with retries use ``serve_general``.
    """
    heap = queue.free_s
    waiting = queue.waiting_leave_s
    replace = heapq.heapreplace
    limited = queue_limit is not None
    limit = queue_limit if queue_limit is not None else 0
    has_timeout = timeout_s > 0
    for i in range(len(arrivals_s)):
        a = arrivals_s[i]
        f = heap[0]
        if f <= a:
            replace(heap, a + service_s[i])
            starts[i] = a
            continue
        if limited:
            while waiting and waiting[0] <= a:
                waiting.popleft()
            if len(waiting) >= limit:
                starts[i] = SHED
                continue
        if has_timeout:
            deadline = a + timeout_s
            if f >= deadline:
                if deadline > t_end_s:
                    return i  # a worker may still appear before the deadline: decide later
                starts[i] = ABANDONED
                if limited:
                    waiting.append(deadline)
                continue
        if f > t_end_s:
            return i
        replace(heap, f + service_s[i])
        starts[i] = f
        if limited:
            waiting.append(f)
    return len(arrivals_s)


class QueueChooser(Protocol):
    """Picks the queue an attempt joins; the choice advances only on ``commit``."""

    def pick(self, ready: list[int]) -> int: ...

    def commit(self) -> None: ...


@dataclass
class Attempt:
    """One request attempt waiting to be decided (used on the general path)."""

    arrival_s: float
    service_s: float
    attempt: int


@dataclass
class GeneralBatch:
    """What ``serve_general`` decided: parallel lists, one entry per attempt."""

    arrivals_s: list[float] = field(default_factory=list)
    service_s: list[float] = field(default_factory=list)
    attempts: list[int] = field(default_factory=list)
    starts: list[float] = field(default_factory=list)
    queues: list[int] = field(default_factory=list)


def serve_general(
    queues: list[Queue],
    ready: list[int],
    fresh: deque[Attempt],
    retries: list[tuple[float, int, Attempt]],
    t_end_s: float,
    timeout_s: float,
    queue_limit: int | None,
    chooser: QueueChooser,
    on_failure: Callable[[Attempt, float], None],
    out: GeneralBatch,
) -> None:
    """Decide attempts in time order across fresh arrivals and scheduled retries.

    ``queues[k]`` for k in ``ready`` take work; ``chooser.pick(ready)`` picks the queue for an
    attempt (shared mode: one queue, per-instance mode: round robin or random). A failure
    (shed, abandoned, timed out in service) calls ``on_failure(attempt, time_s)``, which may
    push a retry into ``retries`` (a heap of (time, seq, Attempt)); retries due before
    ``t_end_s`` are served in this batch. Undecided attempts stay at the front of ``fresh``
    (retries: in ``retries``) for the next batch.
    """
    while True:
        take_retry = bool(retries) and (not fresh or retries[0][0] < fresh[0].arrival_s)
        if take_retry:
            if retries[0][0] >= t_end_s:
                return
            item = retries[0][2]
        elif fresh:
            item = fresh[0]
            if item.arrival_s >= t_end_s:
                return
        else:
            return
        a = item.arrival_s
        if not ready:
            code, k = SHED, -1
        else:
            k = chooser.pick(ready)
            code = _decide(queues[k], item, t_end_s, timeout_s, queue_limit)
            if code is None:
                return  # still waiting at t_end: decide after the control event
            chooser.commit()
        if take_retry:
            heapq.heappop(retries)
        else:
            fresh.popleft()
        out.arrivals_s.append(a)
        out.service_s.append(item.service_s)
        out.attempts.append(item.attempt)
        out.starts.append(code)
        out.queues.append(k)
        if code == SHED:
            on_failure(item, a)
        elif code == ABANDONED or (timeout_s > 0 and code + item.service_s > a + timeout_s):
            on_failure(item, a + timeout_s)


def _decide(
    queue: Queue, item: Attempt, t_end_s: float, timeout_s: float, queue_limit: int | None
) -> float | None:
    """Outcome of one attempt on ``queue`` (committing it), or None to carry it."""
    a = item.arrival_s
    heap = queue.free_s
    if not heap:
        return SHED
    f = heap[0]
    if f <= a:
        heapq.heapreplace(heap, a + item.service_s)
        return a
    waiting = queue.waiting_leave_s
    if queue_limit is not None:
        while waiting and waiting[0] <= a:
            waiting.popleft()
        if len(waiting) >= queue_limit:
            return SHED
    if timeout_s > 0 and f >= a + timeout_s:
        if a + timeout_s > t_end_s:
            return None
        if queue_limit is not None:
            waiting.append(a + timeout_s)
        return ABANDONED
    if f > t_end_s:
        return None
    heapq.heapreplace(heap, f + item.service_s)
    if queue_limit is not None:
        waiting.append(f)
    return f
