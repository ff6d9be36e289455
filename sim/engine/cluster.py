"""The engine's side of colocation: instances placed on nodes, pending ones, interference.

With a ``cluster:`` section an instance boots only once the scheduler has placed it on a node
(``sim.cluster.simulation.ClusterSim``); until then it is *pending*. A SimPy process wakes at every
cluster event (batch arrivals and completions, nodes becoming ready, refills) and whenever the
engine has changed the cluster, so pending instances start booting at the exact moment room
appears. Every tick the link reports each online instance's busy share to the cluster, records
the cluster's tick row, and refreshes the service-time inflation of the ready instances from
their nodes' CPU utilization.

The exact engine reports shares and reads inflation per instance (its data plane draws a
factor per request). The fluid engine, whose fleets reach tens of thousands of instances,
tells the cluster which instances serve as they become ready and reports one share per
service; its plane needs only each service's mean factor, which the cluster computes from
every node at once (``ClusterSim.service_inflation``). The shares are the same either way:
the tick's busy worker-seconds spread evenly over the instances ready at its end.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Callable, Generator
from typing import Any

import numpy as np
import simpy

from sim.cluster import ClusterSim, ClusterTick, InstancePlacement
from sim.engine.runtime import EngineState, Instance, ServiceRuntime


class ClusterLink:
    """Connects one ``Simulation`` to its ``ClusterSim`` (see the module docstring)."""

    def __init__(self, sim: EngineState, variant: str | None) -> None:
        self.sim = sim
        self.variant = variant
        rng = np.random.default_rng([sim.seed, zlib.crc32(b"batch")])
        self.cs = ClusterSim.from_scenario(sim.scenario, rng, variant=variant)
        self.rows: list[ClusterTick] = []
        self._by_cluster_id: dict[int, tuple[ServiceRuntime, Instance]] = {}
        self._process: simpy.Process | None = None
        self._poked = False

    # ------------------------------------------------------------------ instances
    def request(self, rt: ServiceRuntime, inst: Instance) -> bool:
        """Ask for a node for ``inst``; True when it was placed at once (boot may start)."""
        placement = self.cs.request_instance(rt.name, self.sim.env.now)
        inst.cluster_id = placement.instance_id
        self._by_cluster_id[placement.instance_id] = (rt, inst)
        self._changed()
        return placement.node_id is not None

    def request_many(self, rt: ServiceRuntime, insts: list[Instance],
                     boot: Callable[[Instance], None]) -> None:
        """``request`` for each of ``insts`` in order, calling ``boot`` for each placed at
        once, in the order the one-by-one calls would have: the cluster places a run of them
        in one call, and each run ends where placing one had effects the engine must see
        (pending instances placed meanwhile boot before it does)."""
        done = 0
        while done < len(insts):
            placements = self.cs.request_instances(rt.name, len(insts) - done,
                                                   self.sim.env.now)
            if not placements:  # catching up placed pending instances: they boot first
                self._changed()
                continue
            run = insts[done:done + len(placements)]
            for placement, inst in zip(placements, run, strict=True):
                inst.cluster_id = placement.instance_id
                self._by_cluster_id[placement.instance_id] = (rt, inst)
            self._poke()
            for inst in run[:-1]:
                boot(inst)  # placed at once: only the last of a run may have waited
            self._absorb_placed()
            if placements[-1].node_id is not None:
                boot(run[-1])
            done += len(placements)

    def release(self, inst: Instance) -> None:
        """``inst`` is gone (scaled in or failed): its room is free from now."""
        if inst.cluster_id is None:
            return
        self.cs.stop_instance(inst.cluster_id, self.sim.env.now)
        self._by_cluster_id.pop(inst.cluster_id, None)
        self._changed()

    def ready(self, insts: list[Instance]) -> None:
        """``insts`` (placed by the cluster) became ready: they serve from now on."""
        if self.sim.engine != "exact":
            self.cs.mark_ready([i.cluster_id for i in insts if i.cluster_id is not None])

    def _absorb_placed(self) -> None:
        """Start booting the pending instances the scheduler has just placed."""
        placed: list[InstancePlacement] = self.cs.take_placed()
        for placement in placed:
            entry = self._by_cluster_id.get(placement.instance_id)
            if entry is None:
                continue
            rt, inst = entry
            if inst in rt.instances and inst.pending:
                self.sim.boot_placed(rt, inst)

    def _changed(self) -> None:
        """The engine changed the cluster: placements may follow, and the next cluster event
        may be earlier than the loop is waiting for."""
        self._absorb_placed()
        self._poke()

    def _poke(self) -> None:
        """Wake the loop: the next cluster event may be earlier than it is waiting for."""
        process = self._process
        if (process is not None and process.is_alive and not self._poked
                and self.sim.env.active_process is not process):
            self._poked = True
            process.interrupt()

    # ------------------------------------------------------------------ processes
    def start(self) -> None:
        self._process = self.sim.env.process(self._loop())

    def _loop(self) -> Generator[simpy.Event, None, None]:
        env, end = self.sim.env, self.sim.duration_s
        while True:
            self._poked = False
            upcoming = self.cs.next_event_s()
            wake = min(upcoming, end) if upcoming is not None else end
            try:
                yield env.timeout(max(0.0, wake - env.now))
            except simpy.Interrupt:
                continue
            self.cs.advance(env.now)
            self._absorb_placed()
            if env.now >= end:
                return

    def on_tick(self, tick: int, end_s: float) -> None:
        """Report the tick to the cluster and refresh interference (called by the ticker)."""
        sim = self.sim
        per_instance = sim.engine == "exact"
        busy: dict[int, float] = {}
        shares: dict[str, float] = {}
        for rt in sim.services.values():
            rt.plane.advance_to(end_s)
            sim.book_capacity(rt)  # capacity is otherwise booked only at changes and scrapes
            acc = rt.plane.acc
            per_tick = len(acc.busy_ws) // sim.n_ticks
            busy_ws = float(acc.busy_ws[tick * per_tick:(tick + 1) * per_tick].sum())
            if not rt.n_ready:
                continue
            # the tick's busy worker-seconds spread over the instances ready at its end, so
            # the cluster counts exactly the busy cores the services had in the tick
            tick_len_s = end_s - tick * sim.tick_s
            share = busy_ws / (rt.n_ready * rt.spec.workers * tick_len_s)
            if not per_instance:
                shares[rt.name] = share
                continue
            for inst in rt.instances:
                if inst.ready and inst.cluster_id is not None:
                    busy[inst.cluster_id] = share
        self.rows.append(self.cs.tick(end_s, busy, shares))
        self._absorb_placed()
        if not per_instance:
            for name, factor in self.cs.service_inflation().items():
                sim.services[name].plane.inflation = np.asarray([factor])
            return
        for rt in sim.services.values():
            factors = [self.cs.inflation_factor(i.cluster_id) for i in rt.instances
                       if i.ready and i.cluster_id is not None]
            if factors:
                rt.plane.inflation = np.asarray(factors)

    # ------------------------------------------------------------------ results
    def summary(self) -> dict[str, Any]:
        """The cluster part of summary.json."""
        out = dataclasses.asdict(self.cs.summary())
        out["variant"] = self.variant
        return out

    def columns(self) -> list[str]:
        return ClusterTick.columns()

    def table(self) -> list[list[Any]]:
        return [[getattr(row, c) for c in ClusterTick.columns()] for row in self.rows]
