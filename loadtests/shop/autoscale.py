"""Live autoscaling of the reference shop with the simulator's own policy classes.

``peaksim shop --autoscale POLICY`` runs the scenario's autoscaling variant (or a policy name)
against the shop's own metrics: every ``scrape_s`` it takes a snapshot of each service pool and
turns the difference to the previous one into a sample exactly as the simulator's scrape does
(utilization = busy worker-seconds / ready worker-seconds, queue and concurrency per ready
instance, arrival rate, p95/p99); the samples go into the same ``MetricWindow``; every
``interval_s`` the policy decides on an ``Observation`` and its counts go through
``Shop.scale``, the path of ``POST /admin/scale``. Times are seconds since the shop started;
the wall clock of the observation is the scenario's ``start_clock`` plus that time, so
scheduled policies see the same clock as in a simulation.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

from loadtests.shop.app import Shop
from loadtests.shop.metrics import ServiceSnapshot
from sim.engine import Controller, MetricWindow, Sample, make_sample
from sim.model import Scenario, sampler_for
from sim.policies.autoscaling import InstanceView, Observation, ServiceView

LOG = logging.getLogger("peaksim.shop.autoscale")

Log = Callable[[str], None]


def sample_between(before: ServiceSnapshot, after: ServiceSnapshot) -> Sample:
    """A scrape sample over the time between two snapshots of one service."""
    span_s = after.t_s - before.t_s
    if span_s <= 0:
        return {}
    return make_sample(
        after.busy_worker_s - before.busy_worker_s,
        after.queued_request_s - before.queued_request_s,
        after.ready_worker_s - before.ready_worker_s,
        after.arrivals_total - before.arrivals_total,
        span_s, after.ready, after.p95_ms, after.p99_ms,
    )


class LiveAutoscaler:
    """Drives ``Shop.scale`` from a policy (see the module docstring)."""

    def __init__(self, scenario: Scenario, controller: Controller, log: Log | None = None):
        self.scenario = scenario
        self.controller = controller
        self.policy = controller.policy
        self.section = controller.section
        self.window = MetricWindow(list(scenario.services), self.section.window_s)
        self.mean_service_ms = {
            name: sampler_for(spec.service_time, scenario.base_dir).mean_ms
            for name, spec in scenario.services.items()
        }
        self.log = log or LOG.info
        self._ready_since: dict[tuple[str, int], float] = {}

    async def run(self, shop: Shop) -> None:
        """Scrape and decide until cancelled (the shop cancels it at shutdown)."""
        for name, count in self.controller.initial_counts().items():
            shop.scale(name, count)
            self.log(f"autoscale: {name} -> {count} (initial counts of {self.policy.name})")
        loop = asyncio.get_running_loop()
        start = loop.time()
        previous = shop.observe(window_s=self.section.scrape_s)
        next_scrape = self.section.scrape_s
        next_decision = self.section.interval_s
        while True:
            wake = min(next_scrape, next_decision)
            await asyncio.sleep(max(0.0, start + wake - loop.time()))
            now = loop.time() - start
            if now + 1e-6 >= next_scrape:
                current = shop.observe(window_s=self.section.scrape_s)
                for name, snap in current.items():
                    self.window.add(name, now, sample_between(previous[name], snap))
                    self._track_readiness(name, snap, now)
                previous = current
                next_scrape += self.section.scrape_s
            if now + 1e-6 >= next_decision:
                self.decide(shop, previous, now)
                next_decision += self.section.interval_s

    def decide(self, shop: Shop, snapshots: Mapping[str, ServiceSnapshot], now: float) -> None:
        """Ask the policy and apply its counts (clamped to the service's bounds)."""
        decision = self.policy.decide(self.observe(snapshots, now))
        for name, desired in decision.items():
            spec = self.scenario.services.get(name)
            if spec is None:
                continue
            count = max(spec.instances.min, min(spec.instances.max, int(desired)))
            if count != snapshots[name].desired:
                shop.scale(name, count)
                reason = self.policy.explain(name) or f"{self.policy.name} decision"
                self.log(f"autoscale: {name} {snapshots[name].desired} -> {count} ({reason})")

    def observe(self, snapshots: Mapping[str, ServiceSnapshot], now: float) -> Observation:
        views = {}
        for name, snap in snapshots.items():
            live = [i for i in snap.instances if not i.draining]
            instances = tuple(
                InstanceView(ready=i.ready, age_s=i.age_s, metric=self.window.instance_metric(
                    self.policy, name, i.ready, self._ready_since.get((name, i.index), now)))
                for i in live
            )
            spec = self.scenario.services[name]
            views[name] = ServiceView(
                name=name, current=len(live), ready=snap.ready, booting=snap.booting,
                min=spec.instances.min, max=spec.instances.max, workers=spec.workers,
                boot_s=spec.boot_s, mean_service_ms=self.mean_service_ms[name],
                metrics=self.window.average(name), instances=instances,
            )
        start_clock = self.scenario.start_clock_s
        clock = None if start_clock is None else (start_clock + now) % 86400.0
        history = {name: tuple(h) for name, h in self.window.history.items()}
        return Observation(t_s=now, clock_s=clock, services=views, history=history)

    def _track_readiness(self, name: str, snap: ServiceSnapshot, now: float) -> None:
        for inst in snap.instances:
            if inst.ready:
                self._ready_since.setdefault((name, inst.index), now)
