"""The shop's own measurements: Prometheus counters and windowed per-service snapshots.

Two views of the same events:

- ``/metrics`` (Prometheus text format 0.0.4): cumulative counters by endpoint, traffic class
  (``real`` or ``shadow``) and status code; capacity outcomes and a latency histogram per
  service; gauges of instances, busy workers, queued and in-flight requests.
- ``ShopMetrics.snapshot``: what an autoscaler sees of one service over the last ``window_s``
  seconds (arrival rate, latency percentiles, failures) next to the pool's instantaneous state.
  The window is a ring of per-second bins with log-spaced latency buckets (2% wide), so memory
  is fixed, whatever the request rate.

Latencies are measured from the request's arrival at the handler to its response, in ms, over
completed requests only (as the simulator reports them); shed, timed-out and failed requests
are counted, not timed.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields

import numpy as np

from loadtests.shop.outcomes import InstanceState, Outcome, PoolState

PROM_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Upper bounds (s) of the exported latency histogram (Prometheus client defaults + 1 ms)."""

WINDOW_SPAN_S = 300
"""Longest window ``snapshot`` can summarise (seconds)."""

_FINE_MIN_MS = 0.01
_FINE_RATIO = 1.02
_FINE_BUCKETS = int(math.ceil(math.log(1e6 / _FINE_MIN_MS) / math.log(_FINE_RATIO))) + 1
_LOG_RATIO = math.log(_FINE_RATIO)
_OUTCOMES = tuple(Outcome)


def traffic_label(shadow: bool) -> str:
    """The ``traffic`` label value of a request."""
    return "shadow" if shadow else "real"


@dataclass(frozen=True)
class ServiceSnapshot:
    """One service as an autoscaler sees it: pool state now plus the last ``window_s`` seconds.

    Rates are per second over the window's complete seconds; percentiles (ms, 2% precision)
    are over requests completed in the window, None when there were none. Totals count since
    the shop started. ``utilization`` is busy workers / worker slots on ready instances (1.0
    when no instance is ready but work is in flight, 0.0 when idle). The ``*_s`` fields are
    the pool's time integrals (see ``PoolState``): the difference between two snapshots gives
    window-averaged utilization and queue length exactly as the simulator's scrape does.
    ``instances`` lists the live instances (ready, draining, age).
    """

    service: str
    t_s: float
    window_s: float
    desired: int
    ready: int
    booting: int
    draining: int
    min_instances: int
    max_instances: int
    workers_per_instance: int
    busy_workers: int
    queued: int
    utilization: float
    arrival_rate_rps: float
    completed_rps: float
    shed: int
    timed_out: int
    failed: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    arrivals_total: int
    completed_total: int
    busy_worker_s: float = 0.0
    queued_request_s: float = 0.0
    ready_worker_s: float = 0.0
    instances: tuple[InstanceState, ...] = ()


@dataclass
class ConnectionStats:
    """Connection-level counts of the shop's HTTP server (no endpoint is involved).

    ``events``: ``refused`` (over the connection cap, answered 503), ``header_timeout`` and
    ``body_timeout`` (answered 408), ``idle_timeout`` (a connection that sent nothing),
    ``bad_request`` (what the HTTP parser refused, answered 400).
    """

    open: int = 0
    events: Counter[str] = field(default_factory=Counter)


class _Window:
    """Per-second counts and fine latency buckets for the last ``WINDOW_SPAN_S`` seconds."""

    def __init__(self, start_s: float) -> None:
        self.start_s = start_s
        self.counts = np.zeros((WINDOW_SPAN_S, 1 + len(_OUTCOMES)), dtype=np.int64)
        self.latency = np.zeros((WINDOW_SPAN_S, _FINE_BUCKETS), dtype=np.int32)
        self.second = 0
        self.arrivals_total = 0
        self.completed_total = 0

    def _row(self, now_s: float) -> int:
        second = int(now_s - self.start_s)
        if second > self.second:
            stale = range(self.second + 1, min(second, self.second + WINDOW_SPAN_S) + 1)
            rows = [s % WINDOW_SPAN_S for s in stale]
            self.counts[rows] = 0
            self.latency[rows] = 0
            self.second = second
        return self.second % WINDOW_SPAN_S

    def arrival(self, now_s: float) -> None:
        self.counts[self._row(now_s), 0] += 1
        self.arrivals_total += 1

    def outcome(self, now_s: float, outcome: Outcome, latency_ms: float) -> None:
        row = self._row(now_s)
        self.counts[row, 1 + _OUTCOMES.index(outcome)] += 1
        if outcome is Outcome.COMPLETED:
            self.completed_total += 1
            self.latency[row, _fine_bucket(latency_ms)] += 1

    def summary(self, now_s: float, window_s: float) -> tuple[float, np.ndarray, np.ndarray]:
        """(seconds covered, summed counts, summed latency buckets) over the complete seconds
        of the last ``window_s``; 0 seconds covered during the first second."""
        current = self._row(now_s)
        span = int(min(max(1.0, window_s), WINDOW_SPAN_S - 1, self.second))
        rows = [(current - k) % WINDOW_SPAN_S for k in range(1, span + 1)]
        return float(span), self.counts[rows].sum(axis=0), self.latency[rows].sum(axis=0)


def _fine_bucket(latency_ms: float) -> int:
    if latency_ms <= _FINE_MIN_MS:
        return 0
    index = int(math.log(latency_ms / _FINE_MIN_MS) / _LOG_RATIO) + 1
    return min(index, _FINE_BUCKETS - 1)


def _percentile_ms(buckets: np.ndarray, q: float) -> float | None:
    total = int(buckets.sum())
    if total == 0:
        return None
    index = int(np.searchsorted(np.cumsum(buckets), math.ceil(q * total)))
    if index == 0:
        return _FINE_MIN_MS
    low = _FINE_MIN_MS * _FINE_RATIO ** (index - 1)
    return low * math.sqrt(_FINE_RATIO)  # geometric middle of the bucket


class ShopMetrics:
    """Counters of one shop process. Call from the event loop's thread only."""

    def __init__(
        self,
        services: Iterable[str],
        start_s: float,
        endpoint_services: Mapping[str, str | None] | None = None,
    ) -> None:
        self.start_s = start_s
        self._endpoint_services = dict(endpoint_services or {})
        self.responses: Counter[tuple[str, str, int]] = Counter()
        self.outcomes: Counter[tuple[str, str, str]] = Counter()
        self.business: Counter[tuple[str, str]] = Counter()
        self.in_flight: Counter[str] = Counter()
        self.connections = ConnectionStats()
        self._latency_buckets: dict[tuple[str, str], list[int]] = {}
        self._latency_sum_s: Counter[tuple[str, str]] = Counter()
        self._windows = {name: _Window(start_s) for name in services}

    def response(self, endpoint: str, shadow: bool, status: int) -> None:
        """Count one HTTP response (every endpoint, every status)."""
        self.responses[(endpoint, traffic_label(shadow), status)] += 1

    def arrival(self, service: str, now_s: float) -> None:
        """A request asked ``service`` for a slot."""
        self._windows[service].arrival(now_s)

    def outcome(
        self, service: str, shadow: bool, outcome: Outcome, latency_ms: float, now_s: float
    ) -> None:
        """How a request left ``service``; ``latency_ms`` from arrival to response."""
        traffic = traffic_label(shadow)
        self.outcomes[(service, traffic, outcome.value)] += 1
        self._windows[service].outcome(now_s, outcome, latency_ms)
        if outcome is Outcome.COMPLETED:
            key = (service, traffic)
            buckets = self._latency_buckets.setdefault(key, [0] * (len(PROM_BUCKETS_S) + 1))
            buckets[bisect_left(PROM_BUCKETS_S, latency_ms / 1000.0)] += 1
            self._latency_sum_s[key] += latency_ms / 1000.0

    def count(self, what: str, shadow: bool, amount: int = 1) -> None:
        """Business counters: ``orders``, ``payments_charged``, ``payments_replayed``,
        ``charged_cents``."""
        self.business[(what, traffic_label(shadow))] += amount

    def snapshot(self, state: PoolState, now_s: float, window_s: float) -> ServiceSnapshot:
        """``state`` plus the window statistics of its service."""
        window = self._windows[state.service]
        span_s, counts, latency = window.summary(now_s, window_s)
        by_outcome = dict(zip(_OUTCOMES, counts[1:].tolist(), strict=True))
        slots = state.ready_slots
        if slots:
            utilization = min(1.0, state.busy_workers / slots)
        else:
            utilization = 1.0 if state.busy_workers else 0.0
        # the pool's state as it is, plus what the window measured
        pool = {f.name: getattr(state, f.name) for f in fields(state)}
        return ServiceSnapshot(
            **pool,
            t_s=now_s - self.start_s,
            window_s=span_s,
            utilization=utilization,
            arrival_rate_rps=int(counts[0]) / span_s if span_s else 0.0,
            completed_rps=by_outcome[Outcome.COMPLETED] / span_s if span_s else 0.0,
            shed=by_outcome[Outcome.SHED],
            timed_out=by_outcome[Outcome.TIMED_OUT],
            failed=by_outcome[Outcome.FAILED],
            p50_ms=_percentile_ms(latency, 0.50),
            p95_ms=_percentile_ms(latency, 0.95),
            p99_ms=_percentile_ms(latency, 0.99),
            arrivals_total=window.arrivals_total,
            completed_total=window.completed_total,
        )

    def render(self, states: Iterable[PoolState], now_s: float) -> str:
        """The Prometheus text exposition of everything counted so far."""
        out = _Exposition()
        out.family("peaksim_shop_uptime_seconds", "gauge", "Seconds since the shop started.")
        out.sample("peaksim_shop_uptime_seconds", {}, now_s - self.start_s)
        out.family("peaksim_shop_requests_total", "counter",
                   "HTTP responses by endpoint (and its emulated service, if any), traffic class "
                   "and status code.")
        for (endpoint, traffic, code), n in sorted(self.responses.items()):
            labels = {"endpoint": endpoint, "service": self._service_of(endpoint),
                      "traffic": traffic, "code": str(code)}
            out.sample("peaksim_shop_requests_total", labels, n)
        out.family("peaksim_shop_in_flight", "gauge",
                   "Requests inside a handler (queued, in service or in the database).")
        for endpoint, n in sorted(self.in_flight.items()):
            out.sample("peaksim_shop_in_flight",
                       {"endpoint": endpoint, "service": self._service_of(endpoint)}, n)
        out.family("peaksim_shop_outcomes_total", "counter",
                   "Requests leaving a service's capacity emulation, by outcome.")
        for (service, traffic, outcome), n in sorted(self.outcomes.items()):
            labels = {"service": service, "traffic": traffic, "outcome": outcome}
            out.sample("peaksim_shop_outcomes_total", labels, n)
        self._render_pools(out, list(states))
        self._render_latency(out)
        out.family("peaksim_shop_business_total", "counter",
                   "Orders created, payments charged or replayed, cents charged.")
        for (what, traffic), n in sorted(self.business.items()):
            out.sample("peaksim_shop_business_total", {"what": what, "traffic": traffic}, n)
        out.family("peaksim_shop_connections", "gauge", "Open HTTP connections.")
        out.sample("peaksim_shop_connections", {}, self.connections.open)
        out.family("peaksim_shop_connection_events_total", "counter",
                   "Connections refused over the cap, timed out, or closed on a malformed "
                   "request.")
        for event, n in sorted(self.connections.events.items()):
            out.sample("peaksim_shop_connection_events_total", {"event": event}, n)
        return out.text()

    def _service_of(self, endpoint: str) -> str:
        return self._endpoint_services.get(endpoint) or ""

    @staticmethod
    def _render_pools(out: _Exposition, states: list[PoolState]) -> None:
        gauges = (
            ("peaksim_shop_instances", "Instances by state (ready, booting, draining)."),
            ("peaksim_shop_workers", "Worker slots on ready instances."),
            ("peaksim_shop_busy_workers", "Worker slots holding a request."),
            ("peaksim_shop_queued", "Requests waiting for a worker slot."),
        )
        for name, help_text in gauges:
            out.family(name, "gauge", help_text)
            for s in states:
                if name == "peaksim_shop_instances":
                    for state, n in (("ready", s.ready), ("booting", s.booting),
                                     ("draining", s.draining)):
                        out.sample(name, {"service": s.service, "state": state}, n)
                    continue
                value = {"peaksim_shop_workers": s.ready_slots,
                         "peaksim_shop_busy_workers": s.busy_workers,
                         "peaksim_shop_queued": s.queued}[name]
                out.sample(name, {"service": s.service}, value)

    def _render_latency(self, out: _Exposition) -> None:
        name = "peaksim_shop_latency_seconds"
        out.family(name, "histogram", "Response time of completed requests, arrival to reply.")
        for (service, traffic), buckets in sorted(self._latency_buckets.items()):
            labels = {"service": service, "traffic": traffic}
            running = 0
            for bound, n in zip((*PROM_BUCKETS_S, math.inf), buckets, strict=True):
                running += n
                le = "+Inf" if math.isinf(bound) else repr(bound)
                out.sample(f"{name}_bucket", {**labels, "le": le}, running)
            out.sample(f"{name}_sum", labels, self._latency_sum_s[(service, traffic)])
            out.sample(f"{name}_count", labels, running)


class _Exposition:
    def __init__(self) -> None:
        self._lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        self._lines.append(f"# HELP {name} {help_text}")
        self._lines.append(f"# TYPE {name} {kind}")

    def sample(self, name: str, labels: dict[str, str], value: float) -> None:
        if labels:
            inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
            name = f"{name}{{{inner}}}"
        self._lines.append(f"{name} {_number(value)}")

    def text(self) -> str:
        return "\n".join(self._lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    return repr(float(value))
