"""What the target says about its own capacity during a load test, when it can say it.

The reference shop answers ``GET /healthz`` with each service's instance counts, busy workers
and queue length. ``PoolPoller`` samples that once a second in a background thread of the
runner (not the Locust process), so a load-test report can show instances, utilization and
queues next to the latencies, as a simulation report does. A host that does not answer in that
format is simply not sampled: its pool columns stay zero and the report leaves those plots out.
"""

from __future__ import annotations

import json
import math
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

POOL_COLUMNS = ("in_queue", "busy_workers", "instances_desired", "instances_booting",
                "instances_ready", "utilization")


@dataclass(frozen=True)
class PoolSample:
    """One ``/healthz`` answer for one service, at ``t_unix`` seconds."""

    t_unix: float
    service: str
    desired: int
    ready: int
    booting: int
    busy_workers: int
    queued: int


def parse_healthz(body: bytes, t_unix: float) -> list[PoolSample]:
    """The samples of a shop ``/healthz`` body; [] when it is not in that format."""
    try:
        data = json.loads(body)
        services = data["services"]
        return [PoolSample(t_unix, str(name), int(s["desired"]), int(s["ready"]),
                           int(s["booting"]), int(s["busy_workers"]), int(s["queued"]))
                for name, s in services.items()]
    except (ValueError, KeyError, TypeError, AttributeError):
        return []


class PoolPoller:
    """Samples ``{host}/healthz`` every ``interval_s`` in a daemon thread until ``stop()``.

    Stops sampling for good after the first answer that is not shop-shaped. Memory: one small
    sample per service per interval.
    """

    def __init__(self, host: str, interval_s: float = 1.0, timeout_s: float = 0.5) -> None:
        self.url = host.rstrip("/") + "/healthz"
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.samples: list[PoolSample] = []
        self.supported: bool | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="peaksim-pool-poller",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.timeout_s + self.interval_s + 1.0)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.time()
            try:
                with urllib.request.urlopen(self.url, timeout=self.timeout_s) as response:
                    samples = parse_healthz(response.read(), started)
            except (OSError, urllib.error.URLError, ValueError):
                samples = None  # a slow or busy target: try again next interval
            if samples is not None:
                if not samples:
                    self.supported = False
                    return
                self.supported = True
                self.samples.extend(samples)
            self._stop.wait(max(0.0, self.interval_s - (time.time() - started)))


def pool_columns(
    samples: Sequence[PoolSample], t0_unix: float, window_s: float, n_windows: int,
    workers: Mapping[str, int],
) -> dict[str, dict[str, np.ndarray]]:
    """Per service, the pool columns of ``timeseries.csv`` per window: means of the samples in
    each window (``instances_desired`` and ``instances_booting``: the last sample, as the
    simulator reports them at the end of a tick). A window without samples repeats the previous
    one. ``utilization`` is busy workers over ready workers (``workers`` per instance)."""
    out: dict[str, dict[str, np.ndarray]] = {}
    grouped: dict[str, list[list[PoolSample]]] = {}
    for sample in samples:
        w = int(math.floor((sample.t_unix - t0_unix) / window_s))
        if 0 <= w < n_windows and sample.service in workers:
            grouped.setdefault(sample.service, [[] for _ in range(n_windows)])[w].append(sample)
    for service, windows in grouped.items():
        cols = {c: np.zeros(n_windows) for c in POOL_COLUMNS}
        previous: dict[str, float] = dict.fromkeys(POOL_COLUMNS, 0.0)
        for w, group in enumerate(windows):
            if group:
                ready = float(np.mean([s.ready for s in group]))
                busy = float(np.mean([s.busy_workers for s in group]))
                capacity = ready * workers[service]
                previous = {
                    "in_queue": float(np.mean([s.queued for s in group])),
                    "busy_workers": busy,
                    "instances_desired": float(group[-1].desired),
                    "instances_booting": float(group[-1].booting),
                    "instances_ready": ready,
                    "utilization": min(1.0, busy / capacity) if capacity > 0 else 0.0,
                }
            for column in POOL_COLUMNS:
                cols[column][w] = previous[column]
        out[service] = cols
    return out
