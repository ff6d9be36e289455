"""The simulation engine: SimPy owns the clock and the control events; each service's data
plane is advanced in exact batches up to every event.

Control events are metric ticks, instance boots, scheduled faults, metric scrapes and the
autoscaler's decisions. Before an event touches a service, that service's plane is advanced to
the event time, so every request is decided against the workers that exist when it is served.

Entry point: ``simulate(scenario, ...) -> RunResult``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Generator, Mapping
from itertools import islice
from typing import Any

import numpy as np
import simpy

from sim.engine.cluster import ClusterLink
from sim.engine.control import Controller
from sim.engine.engines import PLANES
from sim.engine.plane import WAITING_CAP, PlaneConfig
from sim.engine.result import RunResult
from sim.engine.runsize import RunLimits, check_run_size, estimate_run
from sim.engine.runtime import Instance, ServiceRuntime
from sim.metrics import add_overlap, interval_overlap_s
from sim.model import Fault, Scenario, TrafficModel, sampler_for

_BATCH_ARRIVALS = 50_000  # arrivals per batch: large enough to amortise numpy overheads
_MAX_BATCH_S = 300.0
_FLUID_BATCH_S = 60.0  # the fluid planes' cost does not grow with the batch: few, long ones

ProgressFn = Callable[[float], None]
"""Called with the simulated fraction of the run (0..1) as it advances."""


class Simulation:
    """One run of a scenario. Build it, then call ``run()`` once.

    ``instances`` overrides the initial (and, without an autoscaler, fixed) instance count per
    service; ``controller`` is the autoscaling control loop (``sim.engine.control``), or None for
    fixed instances; ``workload`` replaces the random arrivals and service times of the named
    services by pre-drawn ones (sorted arrival times s, service times s).
    """

    def __init__(
        self, scenario: Scenario, *, seed: int | None = None,
        instances: Mapping[str, int] | None = None, rate_scale: float = 1.0,
        time_scale: float = 1.0, progress: ProgressFn | None = None,
        controller: Controller | None = None,
        workload: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
        cluster_variant: str | None = None, engine: str = "exact",
    ) -> None:
        self.scenario = scenario
        self.seed = scenario.seed if seed is None else seed
        self.traffic = TrafficModel(scenario, rate_scale=rate_scale, time_scale=time_scale)
        self.duration_s = self.traffic.duration_s
        self.tick_s = min(scenario.tick_s, self.duration_s)
        self.n_ticks = int(math.ceil(self.duration_s / self.tick_s - 1e-9))
        per_tick = int(math.ceil(self.tick_s / 1.0 - 1e-9))
        self.bucket_s = self.tick_s / per_tick
        self.n_buckets = self.n_ticks * per_tick
        self.progress = progress
        self.controller = controller
        self.env = simpy.Environment()
        self.events: list[dict[str, Any]] = []
        self.engine = engine
        self._boot_groups: dict[tuple[str, float], list[Instance]] = {}
        config = PlaneConfig(self.bucket_s, self.n_buckets, self.tick_s, self.n_ticks, self.seed)
        self.services: dict[str, ServiceRuntime] = {}
        self.cluster: ClusterLink | None = None
        if scenario.cluster is not None:
            self.cluster = ClusterLink(self, cluster_variant)
        for name, spec in scenario.services.items():
            plane = PLANES[engine](name, spec,
                                   sampler_for(spec.service_time, scenario.base_dir),
                                   self.traffic, config)
            start = (instances or {}).get(name, spec.instances.start)
            if workload is not None and name in workload:
                plane.workload = workload[name]
            rt = ServiceRuntime(name, spec, plane, desired=start)
            rt.tick_desired = np.zeros(self.n_ticks)
            rt.tick_booting = np.zeros(self.n_ticks)
            rt.instance_s = np.zeros(self.n_ticks)
            rt.ready_instance_s = np.zeros(self.n_ticks)
            self.services[name] = rt
            self._start_instances(rt, start, boot_s=0.0)
            self._readiness_changed(rt)
        self.wall_s = 0.0

    # ------------------------------------------------------------------ instances
    def _start_instance(self, rt: ServiceRuntime, boot_s: float | None = None) -> Instance:
        """Start an instance now: it boots at once, or (with a cluster) once it is placed."""
        now = self.env.now
        inst = Instance(rt.next_id, now, math.inf, -1, pending=True)
        rt.next_id += 1
        rt.instances.append(inst)
        rt.not_ready[id(inst)] = inst
        if self.cluster is None or self.cluster.request(rt, inst):
            self._boot_now(rt, inst, boot_s)
        return inst

    def _start_instances(self, rt: ServiceRuntime, count: int,
                         boot_s: float | None = None) -> None:
        """``count`` x ``_start_instance``; with a cluster, placed in runs (the same order)."""
        if self.cluster is None:
            for _ in range(count):
                self._start_instance(rt, boot_s)
            return
        now = self.env.now
        insts = [Instance(rt.next_id + i, now, math.inf, -1, pending=True) for i in range(count)]
        rt.next_id += count
        for inst in insts:
            rt.instances.append(inst)
            rt.not_ready[id(inst)] = inst
        self.cluster.request_many(rt, insts, lambda inst: self._boot_now(rt, inst, boot_s))

    def _boot_now(self, rt: ServiceRuntime, inst: Instance, boot_s: float | None = None) -> None:
        now = self.env.now
        boot = rt.spec.boot_s / self.traffic.time_scale if boot_s is None else boot_s
        inst.pending = False
        inst.ready_s = now + boot
        inst.queue_id = rt.plane.add_instance(now + boot, rt.spec.workers)
        inst.ready = boot <= 0
        if inst.ready:
            rt.n_ready += 1
            del rt.not_ready[id(inst)]
            if self.cluster is not None:
                self.cluster.ready([inst])
        else:
            # instances started together become ready together: one process per group
            key = (rt.name, inst.ready_s)
            group = self._boot_groups.get(key)
            if group is None:
                self._boot_groups[key] = [inst]
                self.env.process(self._boot(rt, key))
            else:
                group.append(inst)

    def boot_placed(self, rt: ServiceRuntime, inst: Instance) -> None:
        """A pending instance got a node: it boots from now (called by the cluster link)."""
        rt.plane.advance_to(self.env.now)
        self._boot_now(rt, inst)
        if inst.ready:
            self._readiness_changed(rt)

    def _boot(self, rt: ServiceRuntime,
              key: tuple[str, float]) -> Generator[simpy.Event, None, None]:
        yield self.env.timeout(key[1] - self.env.now)
        group = self._boot_groups.pop(key)
        alive = [inst for inst in group if not inst.removed]
        if alive:
            rt.plane.advance_to(self.env.now)
            for inst in alive:
                inst.ready = True
                del rt.not_ready[id(inst)]
            rt.n_ready += len(alive)
            if self.cluster is not None:
                self.cluster.ready(alive)
            self._readiness_changed(rt)

    def _remove_instances(self, rt: ServiceRuntime, count: int, mode: str,
                          booting_first: bool = True) -> int:
        """Remove ``count`` instances at now: booting ones first (youngest first), then ready
        ones; in-flight work drains or fails per ``mode``. Returns how many were removed."""
        now = self.env.now
        rt.plane.advance_to(now)
        # pending ones first (they hold no node), then booting, youngest first
        booting = sorted(rt.not_ready.values(), key=lambda i: (not i.pending, -i.started_s))
        if booting_first:
            victims = booting[:count]
            if len(victims) < count:  # then the oldest ready ones, without a full scan
                wanted = count - len(victims)
                victims += list(islice((i for i in rt.instances if i.ready), wanted))
        else:
            ready = [i for i in rt.instances if i.ready]
            ready = [ready[int(k)] for k in rt.plane.rng_faults.permutation(len(ready))]
            victims = ready[:count]
        for inst in victims:
            rt.instances.remove(inst)
            inst.removed = True
            if inst.ready:
                rt.n_ready -= 1
            else:
                del rt.not_ready[id(inst)]
            if not inst.pending:
                draining = rt.plane.remove_instance(now, inst.queue_id, rt.spec.workers,
                                                    None if inst.ready else inst.ready_s, mode)
                self._book_draining(rt, now, draining)
            if self.cluster is not None:
                self.cluster.release(inst)
        if victims:
            self._readiness_changed(rt)
        return len(victims)

    def _book_draining(self, rt: ServiceRuntime, now: float, finishes: list[float]) -> None:
        """Draining workers still serve until their last attempt finishes: count them as
        capacity until then, so utilization never exceeds 1."""
        if not finishes:
            return
        add_overlap(rt.plane.acc.capacity_ws, np.full(len(finishes), now), np.asarray(finishes),
                    self.bucket_s)

    def _readiness_changed(self, rt: ServiceRuntime) -> None:
        """Book capacity up to now, then tell the plane which instances take work."""
        self.book_capacity(rt)
        rt.ready_workers = rt.n_ready * rt.spec.workers
        rt.running = len(rt.instances)
        ids = ([i.queue_id for i in rt.instances if i.ready] if rt.plane.wants_ready_ids
               else [])
        rt.plane.set_ready(ids, rt.n_ready)

    def book_capacity(self, rt: ServiceRuntime) -> None:
        now = self.env.now
        if now > rt.last_change_s:
            # only the ticks the interval touches (a day has 86,400 buckets)
            per = self.n_buckets // self.n_ticks
            first = min(int(rt.last_change_s / self.tick_s), self.n_ticks - 1)
            last = min(int(now / self.tick_s) + 1, self.n_ticks)
            span = interval_overlap_s(rt.last_change_s, now, self.bucket_s, self.n_buckets,
                                      first * per, last * per)
            rt.plane.acc.capacity_ws[first * per:last * per] += span * rt.ready_workers
            per_tick = span.reshape(last - first, per).sum(axis=1)
            rt.instance_s[first:last] += per_tick * rt.running
            rt.ready_instance_s[first:last] += per_tick * (rt.ready_workers // rt.spec.workers)
        rt.last_change_s = now

    def scale_to(self, rt: ServiceRuntime, desired: int, reason: str) -> None:
        """Start or stop instances so that ``desired`` run (booting + ready)."""
        desired = max(rt.spec.instances.min, min(rt.spec.instances.max, desired))
        current = len(rt.instances)
        rt.desired = desired
        if desired == current:
            return
        self.book_capacity(rt)
        if desired > current:
            rt.plane.advance_to(self.env.now)
            self._start_instances(rt, desired - current)
            self._readiness_changed(rt)
        else:
            self._remove_instances(rt, current - desired, rt.spec.on_remove)
        rt.scale_events += 1
        self.events.append({"t_s": round(self.env.now, 3), "service": rt.name, "kind": "scale",
                            "from": current, "to": desired, "reason": reason})

    # ------------------------------------------------------------------ processes
    def _ticker(self) -> Generator[simpy.Event, None, None]:
        """Sample the control state at the end of every tick (requests are accounted exactly
        per bucket by the planes, whenever they are advanced)."""
        for tick in range(self.n_ticks):
            end = min((tick + 1) * self.tick_s, self.duration_s)
            yield self.env.timeout(end - self.env.now)
            for rt in self.services.values():
                rt.tick_desired[tick] = rt.desired
                rt.tick_booting[tick] = rt.booting_count
            if self.cluster is not None and tick < self.n_ticks - 1:
                self.cluster.on_tick(tick, end)

    def _batch_span_s(self) -> float:
        """How far the planes advance at once when no control event intervenes: about
        ``_BATCH_ARRIVALS`` arrivals, whole ticks, at most ``_MAX_BATCH_S``."""
        if self.engine != "exact":
            ticks = max(1, int(_FLUID_BATCH_S / self.tick_s))
            return ticks * self.tick_s
        grid = np.linspace(0.0, self.duration_s, 512)
        mean_rps = sum(float(self.traffic.rates_rps(name, grid).mean()) for name in self.services)
        span = _BATCH_ARRIVALS / max(mean_rps, 1e-9)
        ticks = max(1, int(min(span, _MAX_BATCH_S) / self.tick_s))
        return ticks * self.tick_s

    def _flusher(self) -> Generator[simpy.Event, None, None]:
        """Advance every plane in batches, close finished ticks and report progress."""
        span = self._batch_span_s()
        t = 0.0
        while t < self.duration_s:
            t = min(t + span, self.duration_s)
            yield self.env.timeout(t - self.env.now)
            for rt in self.services.values():
                rt.plane.advance_to(t)
                rt.plane.acc.close_ticks(t, self.tick_s)
            if self.progress is not None:
                self.progress(t / self.duration_s)

    def _fault(self, fault: Fault) -> Generator[simpy.Event, None, None]:
        at = fault.at / self.traffic.time_scale
        if at >= self.duration_s:
            return
        yield self.env.timeout(at)
        rt = self.services[fault.service]
        ready = rt.ready_count
        count = fault.count(ready)
        self.book_capacity(rt)
        removed = self._remove_instances(rt, count, fault.mode, booting_first=False)
        self.events.append({"t_s": round(self.env.now, 3), "service": rt.name, "kind": "fault",
                            "from": ready, "to": ready - removed,
                            "reason": f"killed {removed} ready instance(s), in-flight work "
                                      f"{'failed' if fault.mode == 'fail' else 'drained'}"})
        if not fault.replace:
            return
        if fault.replace_after_s:
            yield self.env.timeout(fault.replace_after_s / self.traffic.time_scale)
        # A Deployment keeps its replica count: it starts what is missing from the desired
        # count (an autoscaler may have changed it meanwhile), never more than were killed.
        missing = min(removed, rt.desired - len(rt.instances))
        if missing <= 0:
            return
        rt.plane.advance_to(self.env.now)
        self._start_instances(rt, missing)
        self._readiness_changed(rt)
        self.events.append({"t_s": round(self.env.now, 3), "service": rt.name,
                            "kind": "replace", "from": len(rt.instances) - missing,
                            "to": len(rt.instances),
                            "reason": f"{missing} replacement(s) started, ready after "
                                      f"boot_s {rt.spec.boot_s:g} s"})

    # ------------------------------------------------------------------ run
    def run(self) -> RunResult:
        """Simulate the whole scenario and return its result."""
        from sim.engine.result import RunResult

        started = time.perf_counter()
        self.env.process(self._ticker())
        self.env.process(self._flusher())
        for fault in self.scenario.faults:
            self.env.process(self._fault(fault))
        if self.controller is not None:
            self.controller.start(self)
        if self.cluster is not None:
            self.cluster.start()
        self.env.run(until=self.duration_s)
        if self.cluster is not None:
            self.cluster.on_tick(self.n_ticks - 1, self.duration_s)
        for rt in self.services.values():
            # env.run(until=...) stops before the events due at the very end: sample the
            # last tick's control state here
            rt.tick_desired[-1] = rt.desired
            rt.tick_booting[-1] = rt.booting_count
            self.book_capacity(rt)
            rt.plane.advance_to(self.duration_s)
            rt.plane.drain()
            rt.plane.acc.close_ticks(self.duration_s, self.tick_s, final=True)
            if rt.plane.capped_shed:
                self.events.append({
                    "t_s": round(self.duration_s, 3), "service": rt.name, "kind": "queue_cap",
                    "reason": f"{rt.plane.capped_shed:,} attempts shed: more than "
                              f"{WAITING_CAP:,} requests waited at once and the service has "
                              f"no max_queue (peaksim caps such queues)"})
        self.wall_s = time.perf_counter() - started
        return RunResult.from_simulation(self)


def simulate(
    scenario: Scenario, *, variant: str | None = None, seed: int | None = None,
    instances: Mapping[str, int] | None = None, rate_scale: float = 1.0,
    time_scale: float = 1.0, progress: ProgressFn | None = None, engine: str | None = None,
    limits: RunLimits | None = None,
) -> RunResult:
    """Run ``scenario`` once. ``variant`` names a variant of the scenario's ``cluster`` or
    ``autoscaling`` section, or a policy (None: the scenario's defaults); ``instances`` fixes
    instance counts (no autoscaler); ``engine`` is exact, fluid or auto (None: the scenario's
    ``engine``), resolved by ``sim.engine.engines.choose_engine`` and recorded in the summary.
    A run larger than ``limits`` (default ``RunLimits()``) is refused before it starts
    (``sim.engine.runsize``)."""
    from sim.engine.control import build_controller
    from sim.engine.engines import choose_engine

    choice = choose_engine(scenario, engine, rate_scale, time_scale)

    traffic = TrafficModel(scenario, rate_scale=rate_scale, time_scale=time_scale)
    check_run_size(scenario, estimate_run(scenario, traffic, min(scenario.tick_s,
                                                                  traffic.duration_s)),
                   limits or RunLimits(), choice.name)

    cluster_variant = None
    if (variant is not None and scenario.cluster is not None
            and variant in scenario.cluster.variants):
        cluster_variant, variant = variant, None
    controller, policy_name = build_controller(scenario, variant, instances is not None,
                                               rate_scale, time_scale)
    if controller is not None:
        instances = controller.initial_counts() or instances
    sim = Simulation(scenario, seed=seed, instances=instances, rate_scale=rate_scale,
                     time_scale=time_scale, progress=progress, controller=controller,
                     cluster_variant=cluster_variant, engine=choice.name)
    result = sim.run()
    result.extra["engine"] = choice.as_dict()
    result.policy = cluster_variant or policy_name
    if sim.cluster is not None:
        result.extra["cluster"] = sim.cluster.summary()
        result.extra["autoscaling_policy"] = policy_name
        result.cluster_table = (sim.cluster.columns(), sim.cluster.table())
    return result

