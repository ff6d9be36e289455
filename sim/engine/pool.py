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
    pos: int,
    starts: list[float],
    t_end_s: float,
    timeout_s: float,
    queue_limit: int | None,
) -> int:
    """Decide attempts ``pos, pos+1, ...`` in arrival order on one shared queue; return the
    index of the first one not decided.

    Appends each decided attempt's outcome to ``starts``. Stops at the first attempt that
    would still be waiting at ``t_end_s`` (it and all later ones are carried: the caller keeps
    them in place and passes the returned index next time, so a long carried queue costs
    nothing per batch). No retries here: callers with retries use ``serve_general``.
    """
    heap = queue.free_s
    waiting = queue.waiting_leave_s
    replace = heapq.heapreplace
    limited = queue_limit is not None
    limit = queue_limit if queue_limit is not None else 0
    has_timeout = timeout_s > 0
    out = starts.append
    for i in range(pos, len(arrivals_s)):
        a = arrivals_s[i]
        f = heap[0]
        if f <= a:
            replace(heap, a + service_s[i])
            out(a)
            continue
        if limited:
            while waiting and waiting[0] <= a:
                waiting.popleft()
            if len(waiting) >= limit:
                out(SHED)
                continue
        if has_timeout:
            deadline = a + timeout_s
            if f >= deadline:
                if deadline > t_end_s:
                    return i  # a worker may still appear before the deadline: decide later
                out(ABANDONED)
                if limited:
                    waiting.append(deadline)
                continue
        if f > t_end_s:
            return i
        replace(heap, f + service_s[i])
        out(f)
        if limited:
            waiting.append(f)
    return len(arrivals_s)


class QueueChooser(Protocol):
    """Picks the queue an attempt joins; the choice advances only on ``commit``."""

    def pick(self, ready: list[int]) -> int: ...

    def commit(self) -> None: ...


Retry = tuple[float, int, float, int]
"""A scheduled retry: (arrival_s, sequence number, service_s, attempt number >= 1)."""


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
    fresh_s: list[float],
    fresh_service_s: list[float],
    pos: int,
    retries: list[Retry],
    t_end_s: float,
    timeout_s: float,
    queue_limit: int | None,
    chooser: QueueChooser | None,
    on_failure: Callable[[float, float, int], None],
    out: GeneralBatch,
) -> int:
    """Decide attempts in time order across fresh arrivals and scheduled retries.

    Fresh arrivals are ``fresh_s[pos:]`` (sorted) with their service times; retries is a heap
    of ``Retry``. ``queues[k]`` for k in ``ready`` take work; with ``chooser`` None there is
    one shared queue (``queues[0]``), otherwise ``chooser.pick(ready)`` picks a per-instance
    queue. A failure (shed, abandoned, timed out in service) calls
    ``on_failure(arrival_s, fail_time_s, attempt)``, which may push a retry; retries due before
    ``t_end_s`` are served in this batch. Returns the new ``pos``: attempts not decided stay
    (fresh ones from ``pos`` on, retries in the heap) for the next batch.
    """
    n = len(fresh_s)
    shared = chooser is None
    heappop = heapq.heappop
    replace = heapq.heapreplace
    limited = queue_limit is not None
    limit = queue_limit if queue_limit is not None else 0
    has_timeout = timeout_s > 0
    o_arr, o_svc, o_att = out.arrivals_s.append, out.service_s.append, out.attempts.append
    o_start, o_queue = out.starts.append, out.queues.append
    while True:
        if retries and (pos >= n or retries[0][0] < fresh_s[pos]):
            a, _seq, service, attempt = retries[0]
            from_retry = True
        elif pos < n:
            a, service, attempt = fresh_s[pos], fresh_service_s[pos], 0
            from_retry = False
        else:
            return pos
        if a >= t_end_s:
            return pos
        k = 0
        if not ready:
            code = SHED
        elif shared:
            queue = queues[0]
            heap = queue.free_s
            f = heap[0]
            if f <= a:
                replace(heap, a + service)
                code = a
            else:
                code = -3.0  # not decided yet
                if limited:
                    waiting = queue.waiting_leave_s
                    while waiting and waiting[0] <= a:
                        waiting.popleft()
                    if len(waiting) >= limit:
                        code = SHED
                if code == -3.0 and has_timeout and f >= a + timeout_s:
                    if a + timeout_s > t_end_s:
                        return pos
                    code = ABANDONED
                    if limited:
                        queue.waiting_leave_s.append(a + timeout_s)
                if code == -3.0:
                    if f > t_end_s:
                        return pos
                    replace(heap, f + service)
                    code = f
                    if limited:
                        queue.waiting_leave_s.append(f)
        else:
            assert chooser is not None
            k = chooser.pick(ready)
            decided = _decide(queues[k], a, service, t_end_s, timeout_s, queue_limit)
            if decided is None:
                return pos  # still waiting at t_end: decide after the control event
            code = decided
            chooser.commit()
        if from_retry:
            heappop(retries)
        else:
            pos += 1
        o_arr(a)
        o_svc(service)
        o_att(attempt)
        o_start(code)
        o_queue(k)
        if code == SHED:
            on_failure(a, a, attempt)
        elif code == ABANDONED or (has_timeout and code + service > a + timeout_s):
            on_failure(a, a + timeout_s, attempt)


def _decide(
    queue: Queue, a: float, service_s: float, t_end_s: float, timeout_s: float,
    queue_limit: int | None,
) -> float | None:
    """Outcome of one attempt arriving at ``a`` on ``queue`` (committing it), or None to
    carry it."""
    heap = queue.free_s
    if not heap:
        return SHED
    f = heap[0]
    if f <= a:
        heapq.heapreplace(heap, a + service_s)
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
    heapq.heapreplace(heap, f + service_s)
    if queue_limit is not None:
        waiting.append(f)
    return f
