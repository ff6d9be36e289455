"""The autoscaling control loop: what the autoscaler sees, and acting on what it decides.

Lag is what breaks reactive scaling, so the view is realistic: every ``scrape_s`` the
controller samples each service's metrics over the last scrape interval (exactly, from the
data plane's per-bucket accounts), and the policy sees the average of the samples within the
last ``window_s``. Every ``interval_s`` the policy gets an ``Observation`` and returns desired
counts, which the engine clamps to ``[min, max]`` and applies (boot, drain).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from typing import overload

import numpy as np
import simpy

from sim.engine.runtime import EngineState, ServiceRuntime
from sim.model import AutoscalingSection, Scenario
from sim.policies.autoscaling import (
    AutoscalingPolicy,
    InstanceView,
    Observation,
    PolicyContext,
    ScheduledParams,
    ServiceInfo,
    ServiceView,
    StaticParams,
    build_policy,
)

Sample = dict[str, float | None]


class MetricWindow:
    """Scrape samples per service, averaged over the last ``window_s`` as an autoscaler sees
    them, and the observed arrival-rate history. Shared by the simulator's controller and the
    live autoscaler of the reference shop; times are seconds on the caller's clock."""

    def __init__(self, services: list[str], window_s: float) -> None:
        self.window_s = window_s
        self.samples: dict[str, deque[tuple[float, Sample]]] = {n: deque() for n in services}
        self.history: dict[str, list[tuple[float, float]]] = {n: [] for n in services}
        self.last_scrape_s: float | None = None
        self._averages: dict[str, Sample] = {}

    def add(self, service: str, t_s: float, sample: Sample) -> None:
        """Record one scrape of ``service`` taken at ``t_s``."""
        samples = self.samples[service]
        samples.append((t_s, sample))
        self._averages.pop(service, None)
        self.history[service].append((t_s, sample.get("arrival_rps") or 0.0))
        while samples and samples[0][0] <= t_s - self.window_s:
            samples.popleft()
        self.last_scrape_s = t_s

    def average(self, service: str) -> Sample:
        """Per-metric mean of the samples in the window (None where none has a value); kept
        until the next scrape of ``service`` (every instance of a fleet asks for it)."""
        cached = self._averages.get(service)
        if cached is not None:
            return dict(cached)
        values: dict[str, list[float]] = {}
        for _t, sample in self.samples[service]:
            for key, value in sample.items():
                if value is not None and not math.isnan(value):
                    values.setdefault(key, []).append(value)
        keys = {key for _t, sample in self.samples[service] for key in sample}
        # np.add.reduce / n is np.mean's own arithmetic without its per-call set-up
        average = {key: (float(np.add.reduce(np.asarray(values[key], dtype=float))
                               / len(values[key])) if key in values else None)
                   for key in keys}
        self._averages[service] = average
        return dict(average)

    def instance_metric(self, policy: AutoscalingPolicy, service: str, ready: bool,
                        ready_since_s: float) -> float | None:
        """An instance's metric as the policy asked for it: the window value, or None while
        the instance has no scrape yet (it became ready after the last one)."""
        name = policy.instance_metric(service)
        if name is None or not ready or self.last_scrape_s is None:
            return None
        if ready_since_s > self.last_scrape_s:
            return None
        return self.average(service).get(name)


class Controller:
    """Runs ``policy`` against a simulation (see the module docstring)."""

    def __init__(self, policy: AutoscalingPolicy, section: AutoscalingSection) -> None:
        self.policy = policy
        self.section = section
        self.window = MetricWindow([], section.window_s)

    def initial_counts(self) -> dict[str, int]:
        """Counts in place at t=0: a static policy's counts, or a schedule's entries due at
        the start (capacity provisioned before the run, not after the first decision)."""
        params = self.policy.params
        if isinstance(params, StaticParams):
            return dict(params.instances)
        if isinstance(params, ScheduledParams):
            due = [entry for entry in params.schedule if entry.at <= 0.0]
            return dict(due[-1].instances) if due else {}
        return self.policy.initial_counts()

    def start(self, sim: EngineState) -> None:
        """Register the scrape and decision processes with the simulation's environment."""
        scale = sim.traffic.time_scale
        self.window = MetricWindow(list(sim.services), self.section.window_s / scale)
        sim.env.process(self._scraper(sim, self.section.scrape_s / scale))
        sim.env.process(self._decider(sim, self.section.interval_s / scale))

    # ------------------------------------------------------------------ scraping
    def _scraper(self, sim: EngineState, every_s: float) -> Generator[simpy.Event, None, None]:
        while sim.env.now + every_s <= sim.duration_s:
            yield sim.env.timeout(every_s)
            now = sim.env.now
            for name, rt in sim.services.items():
                self.window.add(name, now, scrape(sim, rt, now - every_s, now))

    # ------------------------------------------------------------------ deciding
    def _decider(self, sim: EngineState, every_s: float) -> Generator[simpy.Event, None, None]:
        while sim.env.now + every_s <= sim.duration_s:
            yield sim.env.timeout(every_s)
            obs = self.observe(sim)
            decision = self.policy.decide(obs)
            for name, desired in decision.items():
                if name in sim.services:
                    reason = self.policy.explain(name) or f"{self.policy.name} decision"
                    sim.scale_to(sim.services[name], int(desired), reason)
            for name, rt in sim.services.items():
                # Below min (instances lost to a fault) is no steady state, whatever the
                # policy answered: the controller restores min, as the HPA's floor does.
                if name not in decision and len(rt.instances) < rt.spec.instances.min:
                    sim.scale_to(rt, rt.spec.instances.min, "below min after a fault: "
                                 f"restored to min {rt.spec.instances.min}")

    def observe(self, sim: EngineState) -> Observation:
        """The observation a policy gets now (only observed, never future, values).

        Policies reason in scenario time: with a compressed run (``time_scale`` > 1) the run
        time, ages and history times are multiplied back, and boot times are the scenario's.
        """
        scale = sim.traffic.time_scale
        now = sim.env.now
        start_clock = sim.scenario.start_clock_s if sim.traffic.time_scale == 1.0 else None
        views = {}
        for name, rt in sim.services.items():
            metrics = self.window.average(name)

            def build(name: str = name, rt: ServiceRuntime = rt) -> tuple[InstanceView, ...]:
                return tuple(
                    InstanceView(
                        ready=inst.ready, age_s=(now - inst.started_s) * scale,
                        metric=self.window.instance_metric(self.policy, name, inst.ready,
                                                           inst.ready_s),
                    )
                    for inst in rt.instances
                )

            instances = LazyViews(build, len(rt.instances))
            limits = rt.spec.instances
            views[name] = ServiceView(
                name=name, current=len(rt.instances), ready=rt.ready_count,
                booting=rt.booting_count, min=limits.min, max=limits.max,
                workers=rt.spec.workers, boot_s=rt.spec.boot_s,
                mean_service_ms=rt.plane.sampler.mean_ms, metrics=metrics, instances=instances,
            )
        clock = None if start_clock is None else (start_clock + now) % 86400.0
        history = {name: HistoryView(h, len(h), scale)
                   for name, h in self.window.history.items()}
        return Observation(t_s=now * scale, clock_s=clock, services=views, history=history)


class LazyViews(Sequence[InstanceView]):
    """The instance views of one service, built on first use: most policies never look at
    them, and a real-scale fleet has tens of thousands."""

    def __init__(self, build: Callable[[], tuple[InstanceView, ...]], count: int) -> None:
        self._build = build
        self._count = count
        self._views: tuple[InstanceView, ...] | None = None

    def _all(self) -> tuple[InstanceView, ...]:
        if self._views is None:
            self._views = self._build()
        return self._views

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> InstanceView: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[InstanceView]: ...

    def __getitem__(self, index: int | slice) -> InstanceView | Sequence[InstanceView]:
        return self._all()[index]

    def __iter__(self) -> Iterator[InstanceView]:
        return iter(self._all())


class HistoryView(Sequence[tuple[float, float]]):
    """The first ``count`` (t_s, arrival_rps) samples of a growing history, times multiplied
    by ``scale``: a read-only snapshot without a copy (the history grows by one sample a
    scrape, and a day has thousands)."""

    def __init__(self, samples: list[tuple[float, float]], count: int, scale: float) -> None:
        self._samples = samples
        self._count = count
        self._scale = scale

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> tuple[float, float]: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[tuple[float, float]]: ...

    def __getitem__(
        self, index: int | slice,
    ) -> tuple[float, float] | Sequence[tuple[float, float]]:
        if isinstance(index, slice):
            return tuple(self._item(i) for i in range(*index.indices(self._count)))
        if index < 0:
            index += self._count
        if not 0 <= index < self._count:
            raise IndexError("history index out of range")
        return self._item(index)

    def _item(self, i: int) -> tuple[float, float]:
        t, rps = self._samples[i]
        return (t * self._scale, rps)

    def __iter__(self) -> Iterator[tuple[float, float]]:
        return (self._item(i) for i in range(self._count))


def scrape(sim: EngineState, rt: ServiceRuntime, t0_s: float, t1_s: float) -> Sample:
    """Metrics of one service over ``[t0_s, t1_s)``, exact from the plane's accounts."""
    rt.plane.advance_to(t1_s)
    sim.book_capacity(rt)
    acc = rt.plane.acc
    lo = max(0, int(round(t0_s / sim.bucket_s)))
    hi = max(lo + 1, int(round(t1_s / sim.bucket_s)))
    span_s = (hi - lo) * sim.bucket_s
    busy = float(acc.busy_ws[lo:hi].sum())
    capacity = float(acc.capacity_ws[lo:hi].sum())
    queue = float(acc.queue_ws[lo:hi].sum())
    attempts = float(acc.arrivals[lo:hi].sum() + acc.retries[lo:hi].sum())
    acc.close_ticks(t1_s, sim.tick_s)
    first_tick = int(t0_s // sim.tick_s)
    last_tick = max(first_tick + 1, int(t1_s // sim.tick_s))
    recent = acc.tick_percentiles_ms[first_tick:last_tick]
    p95 = _nanmax(recent[:, 1]) if recent.size else None
    p99 = _nanmax(recent[:, 2]) if recent.size else None
    return make_sample(busy, queue, capacity, attempts, span_s, rt.ready_count, p95, p99)


def make_sample(
    busy_worker_s: float, queued_request_s: float, ready_worker_s: float, attempts: float,
    span_s: float, ready: int, p95_ms: float | None, p99_ms: float | None,
) -> Sample:
    """One scrape from the integrals over ``span_s`` seconds: utilization = busy / ready
    worker-seconds; concurrency, queue and request rate per ready instance; total arrival
    rate; latency percentiles as given. Used for the model and for the live shop alike."""

    def per_ready(value: float) -> float | None:
        return value / ready if ready else None

    return {
        "utilization": busy_worker_s / ready_worker_s if ready_worker_s > 0 else None,
        "concurrency": per_ready((busy_worker_s + queued_request_s) / span_s),
        "queue": per_ready(queued_request_s / span_s),
        "rps": per_ready(attempts / span_s),
        "arrival_rps": attempts / span_s,
        "p95_ms": p95_ms,
        "p99_ms": p99_ms,
    }


def _nanmax(values: np.ndarray) -> float | None:
    if values.size == 1:  # a scrape of one tick, the usual case
        value = float(values[0])
        return None if math.isnan(value) else value
    finite = values[~np.isnan(values)]
    return float(finite.max()) if finite.size else None


_FORECAST_CHUNK = 64
"""Forecast points computed together (decision intervals ahead)."""


def build_controller(
    scenario: Scenario, variant: str | None, fixed: bool, rate_scale: float = 1.0,
    time_scale: float = 1.0,
) -> tuple[Controller | None, str]:
    """(controller or None, policy label) for a run of ``scenario`` under ``variant``.

    ``variant`` None means the scenario's ``autoscaling.default`` (none: fixed instances);
    ``fixed`` (instance counts forced by the caller) means no autoscaler. The policy's plan
    forecast is the run's own (scaled) rate, indexed by scenario time.
    """
    section = scenario.autoscaling
    if fixed:
        return None, "fixed"
    name = variant if variant is not None else (section.default if section else None)
    if name is None:
        return None, "static"
    services = {
        n: ServiceInfo(workers=s.workers, min=s.instances.min, max=s.instances.max,
                       initial=s.instances.start, boot_s=s.boot_s,
                       mean_service_ms=_mean_ms(scenario, n))
        for n, s in scenario.services.items()
    }
    from sim.model import TrafficModel

    traffic = TrafficModel(scenario, rate_scale=rate_scale, time_scale=time_scale)

    known: dict[tuple[str, float], float] = {}
    step_s = section.interval_s if section else 15.0

    def forecast_rps(service: str, scenario_t_s: float) -> float:
        # A forecast horizon overlaps the previous decision's and moves one decision interval
        # at a time: each point is computed once, the next points of its grid with it (the
        # curve costs the same for one point as for a chunk of them).
        key = (service, scenario_t_s)
        rate = known.get(key)
        if rate is None:
            grid = scenario_t_s + np.arange(_FORECAST_CHUNK) * step_s
            rates = traffic.rates_rps(service, grid / traffic.time_scale)
            for t_s, value in zip(grid.tolist(), rates.tolist(), strict=True):
                known.setdefault((service, t_s), value)
            rate = known[key]
        return rate

    context = PolicyContext(
        services=services,
        interval_s=section.interval_s if section else 15.0,
        start_clock_s=scenario.start_clock_s,
        forecast_rps=forecast_rps,
        window_s=section.window_s if section else 60.0,
        start_time=scenario.start_time if time_scale == 1.0 else None,
        base_dir=scenario.base_dir,
    )
    policy = build_policy(name, section, context)
    return Controller(policy, section or AutoscalingSection()), name


def _mean_ms(scenario: Scenario, service: str) -> float:
    from sim.model import sampler_for

    return sampler_for(scenario.services[service].service_time, scenario.base_dir).mean_ms
