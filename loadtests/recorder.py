"""Per-window measurements of a load generator process, bounded in memory.

Every attempt updates counters and sparse latency histograms of one window per service; the
window of a count depends on what it counts:

- by **intended** send time: ``intended`` (sends the schedule called for), ``late`` (sent more
  than the lag threshold after their intended time), ``dropped`` (never sent: the run ended
  first), ``no_data`` (not sent: a captured value it needs was not available),
  ``lag_ms_sum`` / ``lag_ms_max``;
- by **actual** send time: ``sent`` (first attempts) and ``retries``;
- by **completion** time (as the simulator's ticks): ``completed`` (2xx), ``timed_out``
  (504 or a client timeout), ``shed`` (503/429), ``failed`` (anything else), ``final_failures``
  (first attempts whose last attempt failed), and two histograms over completed attempts:
  ``corrected`` latency, from the intended send time (coordinated-omission corrected), and
  ``raw`` latency, from the actual send; ``first``: the corrected latencies of first attempts
  that completed (the SLO's good events, ``sim.model.slo``); ``reasons`` counts why attempts
  failed (``status 404``, ``expect: ...``, ``timeout``, ...).

``drain()`` returns what changed since the last call as plain records (JSON-ready) and forgets
it, so memory holds only the windows touched since the previous drain. Records are additive:
the sum of all records of a (service, window) is its total, whoever sent them and in how many
pieces. The histogram bins are those of ``sim.metrics`` (log-spaced, ~1% precision).

Nothing here imports Locust or gevent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from sim.metrics import HIST_BINS, HIST_LOW_MS, HIST_RATIO

_INV_LOG_RATIO = 1.0 / math.log(HIST_RATIO)
COUNTERS = ("intended", "late", "dropped", "no_data", "sent", "retries", "completed", "timed_out",
            "shed", "failed", "final_failures")


def latency_bin(latency_ms: float) -> int:
    """``sim.engine.latency_bins`` for one value, without numpy (the per-request hot path)."""
    if latency_ms <= HIST_LOW_MS:
        return 0
    return min(HIST_BINS - 1, int(math.log(latency_ms / HIST_LOW_MS) * _INV_LOG_RATIO))


class Outcome(Enum):
    """How an attempt ended, in the simulator's vocabulary."""

    COMPLETED = "completed"
    TIMED_OUT = "timed_out"
    SHED = "shed"
    FAILED = "failed"


def classify(status: int, timed_out: bool) -> Outcome:
    """The outcome of an HTTP answer (``status`` 0: no answer; ``timed_out``: client timeout)."""
    if timed_out or status == 504:
        return Outcome.TIMED_OUT
    if 200 <= status < 300:
        return Outcome.COMPLETED
    if status in (429, 503):
        return Outcome.SHED
    return Outcome.FAILED


@dataclass
class _Window:
    counts: dict[str, int] = field(default_factory=dict)
    corrected: dict[int, int] = field(default_factory=dict)
    raw: dict[int, int] = field(default_factory=dict)
    first: dict[int, int] = field(default_factory=dict)
    lag_ms_sum: float = 0.0
    lag_ms_max: float = 0.0
    latency_ms_sum: list[float] = field(default_factory=lambda: [0.0, 0.0])
    latency_ms_max: list[float] = field(default_factory=lambda: [0.0, 0.0])
    """Exact sum and max of the corrected [0] and raw [1] latencies (means need no bins)."""
    reasons: dict[str, int] = field(default_factory=dict)

    def add(self, counter: str, n: int = 1) -> None:
        self.counts[counter] = self.counts.get(counter, 0) + n


class Recorder:
    """Counters and histograms per (service, window) of one generator process.

    ``window_s`` is the window width; ``lag_threshold_ms`` how late a send may be before it
    counts as late (generator lag); ``source`` names the process in its records.
    """

    def __init__(self, window_s: float, lag_threshold_ms: float, source: str = "local") -> None:
        if window_s <= 0:
            raise ValueError("window_s must be > 0")
        self.window_s = window_s
        self.lag_threshold_ms = lag_threshold_ms
        self.source = source
        self._windows: dict[tuple[str, int], _Window] = {}

    def _at(self, service: str, t_s: float) -> _Window:
        key = (service, max(0, int(t_s // self.window_s)))
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = _Window()
        return window

    # ------------------------------------------------------------------ events
    def claimed(self, service: str, intended_s: float) -> None:
        """The schedule handed out a send time."""
        self._at(service, intended_s).add("intended")

    def unclaimed(self, service: str, intended_s: float) -> None:
        """A claimed time went back unsent (its sender was stopped)."""
        self._at(service, intended_s).add("intended", -1)

    def dropped(self, service: str, intended_s: float) -> None:
        """A send time that passed without a send (counted at the end of the run)."""
        window = self._at(service, intended_s)
        window.add("intended")
        window.add("dropped")

    def no_data(self, service: str, intended_s: float) -> None:
        """A send time that passed unsent because a captured value it needs was missing."""
        window = self._at(service, intended_s)
        window.add("no_data")

    def sent(self, service: str, intended_s: float, sent_s: float, retry: bool = False) -> None:
        """An attempt left; first attempts are checked for lag against their intended time."""
        self._at(service, sent_s).add("retries" if retry else "sent")
        if retry:
            return
        lag_ms = max(0.0, (sent_s - intended_s) * 1000.0)
        window = self._at(service, intended_s)
        window.lag_ms_sum += lag_ms
        window.lag_ms_max = max(window.lag_ms_max, lag_ms)
        if lag_ms > self.lag_threshold_ms:
            window.add("late")

    def finished(
        self, service: str, outcome: Outcome, intended_s: float, sent_s: float, done_s: float,
        final_failure: bool = False, reason: str | None = None, first: bool = True,
    ) -> None:
        """An attempt ended at ``done_s``; latencies of completed attempts go into the
        histograms (corrected: from ``intended_s``; raw: from ``sent_s``; ``first`` attempts
        also into the first-attempt one). ``reason`` says why an attempt that did not complete
        failed (counted per window)."""
        window = self._at(service, done_s)
        window.add(outcome.value)
        if reason is not None:
            window.reasons[reason] = window.reasons.get(reason, 0) + 1
        if final_failure:
            window.add("final_failures")
        if outcome is Outcome.COMPLETED:  # unrolled: this runs once per request
            corrected_ms = (done_s - intended_s) * 1000.0
            raw_ms = (done_s - sent_s) * 1000.0
            hist, index = window.corrected, latency_bin(corrected_ms)
            hist[index] = hist.get(index, 0) + 1
            hist, index = window.raw, latency_bin(raw_ms)
            hist[index] = hist.get(index, 0) + 1
            sums, maxima = window.latency_ms_sum, window.latency_ms_max
            sums[0] += corrected_ms
            sums[1] += raw_ms
            if corrected_ms > maxima[0]:
                maxima[0] = corrected_ms
            if raw_ms > maxima[1]:
                maxima[1] = raw_ms
            if first:
                hist, index = window.first, latency_bin(corrected_ms)
                hist[index] = hist.get(index, 0) + 1

    # ------------------------------------------------------------------ shipping
    def drain(self) -> list[dict[str, Any]]:
        """Records of everything recorded since the last drain (then forgotten)."""
        records = [
            {"src": self.source, "s": service, "w": index, "c": w.counts,
             "hc": {str(k): v for k, v in w.corrected.items()},
             "hr": {str(k): v for k, v in w.raw.items()},
             "hf": {str(k): v for k, v in w.first.items()},
             "lag_sum": round(w.lag_ms_sum, 3), "lag_max": round(w.lag_ms_max, 3),
             "lat_sum_c": round(w.latency_ms_sum[0], 3), "lat_max_c": round(w.latency_ms_max[0], 3),
             "lat_sum_r": round(w.latency_ms_sum[1], 3), "lat_max_r": round(w.latency_ms_max[1], 3),
             "rs": w.reasons}
            for (service, index), w in sorted(self._windows.items())
        ]
        self._windows = {}
        return records

    @property
    def pending_windows(self) -> int:
        """Windows held in memory (bounded by the windows touched between drains)."""
        return len(self._windows)
