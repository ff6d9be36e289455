"""Capacity emulation of the reference shop: slots, FCFS queue, shedding, timeouts, scaling.

Each expectation is derived by hand from the simulator's semantics (sim.model.Service):
with constant service times every request's fate is fixed by its arrival order.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from test_shop_support import BOUND_S, run

from loadtests.shop.capacity import ServicePool
from loadtests.shop.outcomes import Outcome, ScaleError, Served
from sim.model import Service, sampler_for


def make_pool(seed: int = 1, **fields: Any) -> ServicePool:
    spec = {"service_time": {"dist": "constant", "mean_ms": 400.0}, "workers": 1,
            "instances": 1, **fields}
    svc = Service.model_validate(spec)
    return ServicePool.for_service("svc", svc, sampler_for(svc.service_time), seed)


async def burst(pool: ServicePool, n: int, log: list[int] | None = None) -> list[Served[int]]:
    """``n`` requests arriving at the same instant; ``log`` records whose work ran, in order."""
    arrival_s = asyncio.get_running_loop().time()

    def work_for(i: int) -> Any:
        async def work() -> int:
            if log is not None:
                log.append(i)
            return i
        return work

    return list(await asyncio.gather(*(pool.run(arrival_s, work_for(i)) for i in range(n))))


def outcomes(results: list[Served[int]]) -> list[Outcome]:
    return [r.outcome for r in results]


def test_one_slot_queue_of_one_sheds_the_rest() -> None:
    # 1 instance x 1 worker, max_queue 1, five at once: #0 is served, #1 queues, #2-#4 shed.
    async def main() -> None:
        pool = make_pool(max_queue=1)
        results = await burst(pool, 5)
        assert outcomes(results) == [Outcome.COMPLETED, Outcome.COMPLETED] + [Outcome.SHED] * 3
        assert {r.reason for r in results[2:]} == {"queue_full"}
        # #1 waited for #0's 400 ms service; nothing can make it wait less.
        assert results[0].wait_ms < results[1].wait_ms
        assert results[1].wait_ms >= 400.0 - 1.0
        assert pool.state().busy_workers == 0 and pool.state().queued == 0

    run(main)


def test_fcfs_order_without_queue_limit() -> None:
    async def main() -> None:
        pool = make_pool(service_time={"dist": "constant", "mean_ms": 5.0})
        log: list[int] = []
        results = await burst(pool, 6, log)
        assert outcomes(results) == [Outcome.COMPLETED] * 6
        assert log == list(range(6))

    run(main)


def test_timeouts_in_queue_and_in_service() -> None:
    # Service 400 ms, timeout 600 ms, three at once on one worker:
    # #0 ends at 400 (ok); #1 gets the slot at 400 but would end at 800 > 600: answered 504 at
    # 600 without doing its work, while the worker stays busy until 800; #2 is still queued at
    # its 600 ms deadline and leaves the queue without ever using the worker.
    async def main() -> None:
        pool = make_pool(timeout_ms=600, max_queue=10)
        log: list[int] = []
        results = await burst(pool, 3, log)
        assert outcomes(results) == [Outcome.COMPLETED, Outcome.TIMED_OUT, Outcome.TIMED_OUT]
        assert log == [0]
        assert results[1].service_ms == 400.0 and results[2].service_ms == 0.0
        state = pool.state()
        assert state.queued == 0
        assert state.busy_workers == 1  # #1's worker is held until 800 ms

    run(main)


def test_no_ready_instance_sheds() -> None:
    async def main() -> None:
        pool = make_pool(instances={"min": 0, "max": 2, "initial": 0}, max_queue=5)
        results = await burst(pool, 2)
        assert outcomes(results) == [Outcome.SHED, Outcome.SHED]
        assert {r.reason for r in results} == {"no_ready_instance"}

    run(main)


def test_scale_up_adds_slots_only_after_boot() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        pool = make_pool(instances={"min": 1, "max": 4}, max_queue=0, boot_s=0.3,
                         service_time={"dist": "constant", "mean_ms": 200.0})
        scaled_at = loop.time()
        state = pool.scale(2)
        assert (state.desired, state.ready, state.booting) == (2, 1, 1)
        # While the second instance boots there is still one slot and no queue.
        assert outcomes(await burst(pool, 2)) == [Outcome.COMPLETED, Outcome.SHED]
        state = await asyncio.wait_for(pool.wait_until(lambda s: s.ready == 2), BOUND_S)
        assert loop.time() - scaled_at >= 0.3 - 1e-3
        assert (state.ready, state.booting) == (2, 0)
        assert outcomes(await burst(pool, 3)) == [Outcome.COMPLETED] * 2 + [Outcome.SHED]

    run(main)


def test_scale_down_drains_in_flight_work() -> None:
    async def main() -> None:
        pool = make_pool(instances={"min": 1, "max": 2, "initial": 2})
        log: list[int] = []
        running = asyncio.ensure_future(burst(pool, 2, log))
        await asyncio.wait_for(pool.wait_until(lambda s: s.busy_workers == 2), BOUND_S)
        state = pool.scale(1)
        assert (state.desired, state.ready, state.draining) == (1, 1, 1)
        results = await asyncio.wait_for(running, BOUND_S)
        assert outcomes(results) == [Outcome.COMPLETED, Outcome.COMPLETED]
        state = await asyncio.wait_for(pool.wait_until(lambda s: s.draining == 0), BOUND_S)
        assert (state.ready, state.busy_workers) == (1, 0)

    run(main)


def test_scale_down_with_on_remove_fail_fails_in_flight_work() -> None:
    # Two idle instances: #0 lands on instance 0, #1 on instance 1 (least outstanding). Both
    # are equally loaded, so scaling to 1 removes the newest, instance 1, failing #1.
    async def main() -> None:
        pool = make_pool(instances={"min": 1, "max": 2, "initial": 2}, on_remove="fail")
        running = asyncio.ensure_future(burst(pool, 2))
        await asyncio.wait_for(pool.wait_until(lambda s: s.busy_workers == 2), BOUND_S)
        state = pool.scale(1)
        assert (state.ready, state.draining, state.busy_workers) == (1, 0, 1)
        results = await asyncio.wait_for(running, BOUND_S)
        assert outcomes(results) == [Outcome.COMPLETED, Outcome.FAILED]
        assert [r.instance for r in results] == [0, 1]

    run(main)


def test_scale_down_cancels_booting_instances_first() -> None:
    async def main() -> None:
        pool = make_pool(instances={"min": 0, "max": 5, "initial": 1}, boot_s=30)
        pool.scale(4)
        state = pool.scale(2)
        assert (state.desired, state.ready, state.booting, state.draining) == (2, 1, 1, 0)
        pool.close()

    run(main)


def test_per_instance_queue_is_drained_by_its_instance() -> None:
    # round_robin, 2 x 1 worker: #0 -> instance 1, #1 -> instance 0, #2 queues on 1, #3 on 0.
    # Scaling to 1 drains the newest equally loaded instance (1); it still serves #2, which was
    # queued on it. With the shared queue, the remaining instance would serve everything left.
    async def main() -> None:
        pool = make_pool(instances={"min": 1, "max": 2, "initial": 2}, balancer="round_robin",
                         service_time={"dist": "constant", "mean_ms": 200.0})
        running = asyncio.ensure_future(burst(pool, 4))
        await asyncio.wait_for(pool.wait_until(lambda s: s.queued == 2), BOUND_S)
        pool.scale(1)
        results = await asyncio.wait_for(running, BOUND_S)
        assert outcomes(results) == [Outcome.COMPLETED] * 4
        assert [r.instance for r in results] == [1, 0, 1, 0]

        shared = make_pool(instances={"min": 1, "max": 2, "initial": 2},
                           service_time={"dist": "constant", "mean_ms": 200.0})
        running = asyncio.ensure_future(burst(shared, 4))
        await asyncio.wait_for(shared.wait_until(lambda s: s.queued == 2), BOUND_S)
        shared.scale(1)
        results = await asyncio.wait_for(running, BOUND_S)
        assert [r.instance for r in results] == [0, 1, 0, 0]

    run(main)


@pytest.mark.parametrize("bad", [-1, 4])
def test_scale_rejects_counts_outside_bounds(bad: int) -> None:
    async def main() -> None:
        pool = make_pool(instances={"min": 1, "max": 3})
        with pytest.raises(ScaleError, match="0..3"):
            pool.scale(bad)
        assert pool.state().desired == 1

    run(main)


def test_service_times_follow_the_seed() -> None:
    def draws(seed: int) -> list[float]:
        async def main() -> list[float]:
            pool = make_pool(seed, service_time={"dist": "exponential", "mean_ms": 0.5},
                             workers=8)
            return [r.service_ms for r in await burst(pool, 40)]

        return run(main)

    first = draws(1)
    assert draws(1) == first and len(set(first)) == 40
    assert draws(2) != first


def test_time_integrals_of_slot_use() -> None:
    # One worker, 200 ms each, three at once: the worker is busy for 600 ms without a gap;
    # #1 queues for 200 ms and #2 for 400 ms, so 600 request-ms of queueing in all.
    async def main() -> None:
        pool = make_pool(service_time={"dist": "constant", "mean_ms": 200.0})
        before = pool.state()
        await burst(pool, 3)
        after = pool.state()
        busy_s = after.busy_worker_s - before.busy_worker_s
        queued_s = after.queued_request_s - before.queued_request_s
        ready_s = after.ready_worker_s - before.ready_worker_s
        assert busy_s >= 0.6 - 1e-3 and queued_s >= 0.6 - 1e-3
        assert busy_s <= ready_s + 1e-9 and busy_s / ready_s > 0.95
        assert [(i.index, i.ready, i.draining) for i in after.instances] == [(0, True, False)]
        assert after.instances[0].age_s >= ready_s

    run(main)
