"""Live autoscaling of the reference shop with the simulator's policy classes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from loadtests.shop import running_shop
from loadtests.shop.autoscale import LiveAutoscaler, sample_between
from loadtests.shop.metrics import ServiceSnapshot
from sim.engine import build_controller
from sim.model import parse_scenario

SCENARIO = """
name: live
seed: 5
duration_s: 60
traffic: {kind: constant, rps: {browse: 1}}
services:
  browse:
    service_time: {dist: constant, mean_ms: 50}
    workers: 2
    instances: {min: 1, max: 6, initial: 1}
    boot_s: 0.2
autoscaling:
  interval_s: 0.5
  scrape_s: 0.25
  window_s: 0.5
  variants:
    hpa:
      policy: target_tracking
      metric: utilization
      target: 0.5
      behavior:
        scale_down:
          stabilization_window_s: 0
          policies: [{type: percent, value: 100, period_s: 1}]
"""


def snapshot(t_s: float, busy_s: float, queued_s: float, ready_s: float, arrivals: int,
             ready: int) -> ServiceSnapshot:
    return ServiceSnapshot(
        service="browse", t_s=t_s, window_s=1.0, desired=ready, ready=ready, booting=0,
        draining=0, min_instances=1, max_instances=6, workers_per_instance=2, busy_workers=0,
        queued=0, utilization=0.0, arrival_rate_rps=0.0, completed_rps=0.0, shed=0, timed_out=0,
        failed=0, p50_ms=None, p95_ms=80.0, p99_ms=120.0, arrivals_total=arrivals,
        completed_total=arrivals, busy_worker_s=busy_s, queued_request_s=queued_s,
        ready_worker_s=ready_s)


def test_sample_between_two_snapshots_matches_the_simulator_definitions() -> None:
    # over 2 s: 3 busy worker-seconds of 4 ready worker-seconds, 1 queued request-second,
    # 40 arrivals, 1 ready instance
    sample = sample_between(snapshot(10, 5, 2, 10, 100, 1), snapshot(12, 8, 3, 14, 140, 1))
    assert sample["utilization"] == 3 / 4
    assert sample["queue"] == 0.5
    assert sample["concurrency"] == (3 + 1) / 2
    assert sample["arrival_rps"] == 20.0
    assert sample["rps"] == 20.0
    assert sample["p99_ms"] == 120.0


def test_hpa_scales_the_live_shop_out_under_load_and_back_in(tmp_path: Path) -> None:
    scenario = parse_scenario(SCENARIO, base_dir=str(tmp_path))
    controller, _ = build_controller(scenario, "hpa", fixed=False)
    assert controller is not None
    lines: list[str] = []
    autoscaler = LiveAutoscaler(scenario, controller, lines.append)

    async def main() -> tuple[int, int]:
        async with running_shop(scenario, tmp_path / "shop.db") as handle:
            task = asyncio.create_task(autoscaler.run(handle.shop))
            loop = asyncio.get_running_loop()
            async with aiohttp.ClientSession() as session:
                # ~80 requests/s of 50 ms against 2 workers: 4 busy workers' worth of load;
                # bounded: 2.5 s of load, at most 400 requests
                async def one(i: int) -> None:
                    async with session.get(f"{handle.url}/browse/{i}") as response:
                        await response.read()

                pending = []
                start = loop.time()
                for i in range(400):
                    if loop.time() - start > 2.5:
                        break
                    pending.append(asyncio.create_task(one(i)))
                    await asyncio.sleep(1 / 80)
                await asyncio.gather(*pending)
            peak = handle.shop.observe()["browse"].desired
            # idle: the HPA scales back in (no stabilization window in this variant)
            deadline = loop.time() + 10.0
            while handle.shop.observe()["browse"].desired > 1 and loop.time() < deadline:
                await asyncio.sleep(0.1)
            task.cancel()
            return peak, handle.shop.observe()["browse"].desired

    peak, after = asyncio.run(main())
    # 4 busy workers at target 0.5 per 2-worker instance: the HPA wants about 4 instances
    assert peak >= 3
    assert after == 1
    assert any("browse 1 ->" in line for line in lines)
