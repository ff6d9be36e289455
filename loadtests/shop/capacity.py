"""Capacity emulation: one scenario service as ``instances x workers`` slots, in real time.

``ServicePool`` gives the reference shop the simulator's semantics (``sim.model.scenario.Service``):

- A request takes a free worker slot at once if no one is waiting, otherwise it joins a FCFS
  queue. Balancer ``least_outstanding`` keeps one shared queue for the whole service (a free slot
  goes to the ready instance with the fewest busy workers); ``random`` and ``round_robin`` pick a
  ready instance per request and queue there.
- Shedding: with no ready instance, or with ``max_queue`` (per instance) waiters already queued
  (``max_queue x ready instances`` in the shared queue), the request is refused at once (503).
- Timeouts (``timeout_ms``, from arrival; 0 = none): a request still queued at its deadline
  leaves the queue without using a worker; one that got a slot but whose drawn service time
  would end past its deadline is answered at the deadline (504) while its worker stays busy for
  the whole service time, as a server that does not notice its client left. Such a request
  does no business work.
- The service time is drawn when the slot is granted and counted from that moment: the shop's
  own work (the SQLite write) happens inside it, and only the remainder is slept.
- Scaling up adds instances that take work after ``boot_s``; scaling down first cancels booting
  instances (newest first), then removes the ready ones with the least outstanding work.
  ``on_remove: drain`` (default) lets a removed instance finish its in-flight work (and, with a
  per-instance queue, the requests queued on it) before it goes; ``fail`` fails them at once.

All methods must be called from the event loop's thread; timers come from the running loop.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TypeVar

import numpy as np

from loadtests.shop.instances import (
    Instance,
    Phase,
    ServiceTimes,
    SlotAccounts,
    Waiter,
    resolve,
)
from loadtests.shop.outcomes import (
    InstanceState,
    Outcome,
    PoolState,
    ScaleError,
    Served,
)
from sim.model import Sampler, Service

T = TypeVar("T")

class ServicePool:
    """The worker slots and queue of one service; see the module docstring for the semantics.

    ``rng`` draws service times (via ``sampler``), ``balance_rng`` picks instances for the
    ``random`` balancer; both are seeded by the caller.
    """

    def __init__(
        self,
        name: str,
        service: Service,
        sampler: Sampler,
        rng: np.random.Generator,
        balance_rng: np.random.Generator,
    ) -> None:
        self.name = name
        self.workers = service.workers
        self.min_instances = service.instances.min
        self.max_instances = service.instances.max
        self.boot_s = float(service.boot_s)
        self.timeout_s = service.timeout_ms / 1000.0 if service.timeout_ms > 0 else None
        self.max_queue = service.max_queue
        self.balancer = service.balancer
        self.fail_on_remove = service.on_remove == "fail"
        self._service_times = ServiceTimes(sampler, rng)
        self._balance_rng = balance_rng
        self._instances: list[Instance] = []
        self._queue: deque[Waiter] = deque()
        self._queued = 0
        self._busy = 0
        self._ready = 0
        self._booting = 0
        self._draining = 0
        self._created = 0
        self._round_robin = 0
        self._changed: asyncio.Event | None = None
        self._accounts = SlotAccounts(time.monotonic())
        for _ in range(service.instances.start):
            self._add_instance(Phase.READY)

    @classmethod
    def for_service(cls, name: str, service: Service, sampler: Sampler, seed: int) -> ServicePool:
        """A pool whose random streams derive from the scenario ``seed`` and the service name
        (so adding a service does not change another one's draws)."""
        key = zlib.crc32(f"shop:{name}".encode())
        return cls(
            name,
            service,
            sampler,
            np.random.default_rng([seed, key, 1]),
            np.random.default_rng([seed, key, 2]),
        )

    # ------------------------------------------------------------------ requests

    async def run(self, arrival_s: float, work: Callable[[], Awaitable[T]]) -> Served[T]:
        """Serve one request that arrived at loop time ``arrival_s``: wait for a slot, run
        ``work`` inside the drawn service time, hold the slot for the rest of it."""
        loop = asyncio.get_running_loop()
        deadline_s = arrival_s + self.timeout_s if self.timeout_s is not None else None
        admitted = self._admit(deadline_s)
        if isinstance(admitted, str):
            return Served(Outcome.SHED, reason=admitted)
        if isinstance(admitted, Waiter):
            granted = await self._wait(admitted)
            if granted is None:
                return Served(Outcome.TIMED_OUT, wait_ms=(loop.time() - arrival_s) * 1000.0)
            if granted.state is Phase.GONE:
                return Served(Outcome.FAILED, reason="instance_removed", instance=granted.index)
            instance = granted
        else:
            instance = admitted
        granted_s = loop.time()
        wait_ms = (granted_s - arrival_s) * 1000.0
        service_s = self._service_times.next_s()
        end_s = granted_s + service_s
        if deadline_s is not None and end_s > deadline_s:
            loop.call_at(end_s, self._release, instance)
            await asyncio.sleep(max(0.0, deadline_s - loop.time()))
            return Served(Outcome.TIMED_OUT, None, wait_ms, service_s * 1000.0,
                          instance=instance.index)
        try:
            value = await work()
            removed = await self._hold(instance, end_s)
        finally:
            self._release(instance)
        outcome = Outcome.FAILED if removed else Outcome.COMPLETED
        return Served(outcome, value, wait_ms, service_s * 1000.0,
                      "instance_removed" if removed else "", instance.index)

    def _admit(self, deadline_s: float | None) -> Instance | Waiter | str:
        self._account()
        if self._ready == 0:
            return "no_ready_instance"
        if self.balancer == "least_outstanding":
            if self._queued == 0:
                free = self._least_busy_free()
                if free is not None:
                    return self._grant(free)
            limit = None if self.max_queue is None else self.max_queue * self._ready
            return self._enqueue(None, self._queue, limit, deadline_s)
        instance = self._pick()
        if instance.queued == 0 and instance.busy < self.workers:
            return self._grant(instance)
        return self._enqueue(instance, instance.queue, self.max_queue, deadline_s)

    def _grant(self, instance: Instance) -> Instance:
        instance.busy += 1
        self._busy += 1
        self._notify()
        return instance

    def _enqueue(
        self,
        instance: Instance | None,
        queue: deque[Waiter],
        limit: int | None,
        deadline_s: float | None,
    ) -> Waiter | str:
        waiting = self._queued if instance is None else instance.queued
        if limit is not None and waiting >= limit:
            return "queue_full"
        loop = asyncio.get_running_loop()
        waiter = Waiter(loop.create_future(), instance)
        if deadline_s is not None:
            waiter.timer = loop.call_at(deadline_s, self._expire, waiter)
        queue.append(waiter)
        self._queued += 1
        if instance is not None:
            instance.queued += 1
        self._notify()
        return waiter

    async def _wait(self, waiter: Waiter) -> Instance | None:
        try:
            return await waiter.future
        except asyncio.CancelledError:
            # The handler was cancelled (shutdown): give back whatever the waiter holds.
            if waiter.future.cancelled():
                self._leave(waiter)
            elif (granted := waiter.future.result()) is not None:
                self._release(granted)
            raise

    def _leave(self, waiter: Waiter) -> None:
        """Bookkeeping for a waiter that leaves its queue without a slot."""
        self._account()
        if waiter.timer is not None:
            waiter.timer.cancel()
        self._queued -= 1
        instance = waiter.instance
        queue = self._queue if instance is None else instance.queue
        while queue and queue[0].future.done():
            queue.popleft()  # deadlines are FIFO-ordered, so the dead ones sit at the head
        if instance is not None:
            instance.queued -= 1
            self._retire_if_drained(instance)
        self._notify()

    def _expire(self, waiter: Waiter) -> None:
        if not waiter.future.done():
            waiter.future.set_result(None)
            self._leave(waiter)

    async def _hold(self, instance: Instance, end_s: float) -> bool:
        """Keep the slot until ``end_s``; True when the instance was removed under us."""
        loop = asyncio.get_running_loop()
        if not self.fail_on_remove:
            remaining_s = end_s - loop.time()
            if remaining_s > 0:
                await asyncio.sleep(remaining_s)
            return False
        if instance.state is Phase.GONE:
            return True
        done: asyncio.Future[bool] = loop.create_future()
        timer = loop.call_at(end_s, resolve, done, False)
        instance.holders.add(done)
        try:
            return await done
        finally:
            timer.cancel()
            instance.holders.discard(done)

    def _release(self, instance: Instance) -> None:
        if instance.state is Phase.GONE:
            return  # its slots were already given back when it was removed
        self._account()
        instance.busy -= 1
        self._busy -= 1
        self._dispatch(instance)
        self._notify()

    def _dispatch(self, instance: Instance) -> None:
        """Give ``instance``'s free slots to waiting requests; retire it when drained."""
        if instance.state is Phase.READY and self.balancer == "least_outstanding":
            queue = self._queue
        elif self.balancer != "least_outstanding":
            queue = instance.queue
        else:
            queue = None  # a draining instance takes nothing from the shared queue
        while queue and instance.busy < self.workers:
            waiter = queue.popleft()
            if waiter.future.done():
                continue
            if waiter.timer is not None:
                waiter.timer.cancel()
            self._queued -= 1
            if waiter.instance is not None:
                waiter.instance.queued -= 1
            self._grant(instance)
            waiter.future.set_result(instance)
        self._retire_if_drained(instance)

    def _least_busy_free(self) -> Instance | None:
        best: Instance | None = None
        for instance in self._instances:
            if instance.state is not Phase.READY or instance.busy >= self.workers:
                continue
            if best is None or instance.busy < best.busy:
                best = instance
                if instance.busy == 0:
                    break
        return best

    def _pick(self) -> Instance:
        ready = [i for i in self._instances if i.state is Phase.READY]
        if self.balancer == "random":
            return ready[int(self._balance_rng.integers(len(ready)))]
        self._round_robin = (self._round_robin + 1) % len(ready)
        return ready[self._round_robin]

    # ------------------------------------------------------------------ scaling

    def scale(self, instances: int) -> PoolState:
        """Set the desired instance count (ready + booting); returns the state right after.

        Raises ``ScaleError`` outside ``[0, max_instances]``.
        """
        if isinstance(instances, bool) or not 0 <= instances <= self.max_instances:
            raise ScaleError(
                f"service {self.name!r}: instances must be within 0..{self.max_instances}, "
                f"got {instances!r}"
            )
        self._account()
        desired = self._ready + self._booting
        for _ in range(instances - desired):
            self._add_instance(Phase.BOOTING if self.boot_s > 0 else Phase.READY)
        surplus = desired - instances
        booting = [i for i in reversed(self._instances) if i.state is Phase.BOOTING]
        for instance in booting[: max(0, surplus)]:
            self._remove(instance)
            surplus -= 1
        if surplus > 0:
            ready = [i for i in reversed(self._instances) if i.state is Phase.READY]
            ready.sort(key=lambda i: i.busy + i.queued)  # stable: newest first among equals
            for instance in ready[:surplus]:
                self._remove(instance)
        self._notify()
        return self.state()

    def _add_instance(self, state: Phase) -> None:
        instance = Instance(self._created, state)
        self._created += 1
        self._instances.append(instance)
        if state is Phase.READY:
            self._ready += 1
            if self._queue:
                self._dispatch(instance)  # an instance ready at once serves the shared queue
        else:
            self._booting += 1
            loop = asyncio.get_running_loop()
            instance.boot_timer = loop.call_later(self.boot_s, self._booted, instance)

    def _booted(self, instance: Instance) -> None:
        self._account()
        instance.boot_timer = None
        instance.state = Phase.READY
        self._booting -= 1
        self._ready += 1
        self._dispatch(instance)
        self._notify()

    def _remove(self, instance: Instance) -> None:
        if instance.state is Phase.BOOTING:
            assert instance.boot_timer is not None
            instance.boot_timer.cancel()
            self._booting -= 1
            self._gone(instance)
            return
        self._ready -= 1
        if not self.fail_on_remove:
            instance.state = Phase.DRAINING
            self._draining += 1
            self._retire_if_drained(instance)
            return
        self._busy -= instance.busy
        instance.busy = 0
        self._gone(instance)
        for done in list(instance.holders):
            resolve(done, True)
        while instance.queue:
            waiter = instance.queue.popleft()
            if not waiter.future.done():
                if waiter.timer is not None:
                    waiter.timer.cancel()
                self._queued -= 1
                waiter.future.set_result(instance)  # a GONE instance: the request fails
        instance.queued = 0

    def _retire_if_drained(self, instance: Instance) -> None:
        if instance.state is Phase.DRAINING and instance.busy == 0 and instance.queued == 0:
            self._draining -= 1
            self._gone(instance)
            self._notify()

    def _gone(self, instance: Instance) -> None:
        instance.state = Phase.GONE
        self._instances.remove(instance)

    def close(self) -> None:
        """Cancel pending boots (at shutdown)."""
        for instance in self._instances:
            if instance.boot_timer is not None:
                instance.boot_timer.cancel()

    # ------------------------------------------------------------------ observing

    def _account(self) -> None:
        """Integrate the counts up to now; called before any of them changes."""
        self._accounts.advance(time.monotonic(), self._busy, self._queued,
                               self._ready * self.workers)

    def state(self) -> PoolState:
        """Counts right now (instances by state, busy workers, queued requests) and the time
        integrals up to now."""
        self._account()
        now_s = self._accounts.last_s
        accounts = self._accounts
        return PoolState(
            service=self.name,
            workers_per_instance=self.workers,
            min_instances=self.min_instances,
            max_instances=self.max_instances,
            desired=self._ready + self._booting,
            ready=self._ready,
            booting=self._booting,
            draining=self._draining,
            busy_workers=self._busy,
            queued=self._queued,
            busy_worker_s=accounts.busy_worker_s,
            queued_request_s=accounts.queued_request_s,
            ready_worker_s=accounts.ready_worker_s,
            instances=tuple(
                InstanceState(i.index, i.state is Phase.READY, i.state is Phase.DRAINING,
                              now_s - i.started_s)
                for i in self._instances
            ),
        )

    async def wait_until(self, predicate: Callable[[PoolState], bool]) -> PoolState:
        """Wait (without polling) until ``predicate(state)`` holds; re-checked whenever a slot,
        the queue or an instance changes. Callers bound it with ``asyncio.wait_for``."""
        while not predicate(current := self.state()):
            if self._changed is None:
                self._changed = asyncio.Event()
            await self._changed.wait()
        return current

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None

