"""The peak window that ``peaksim plan`` simulates instead of the whole run.

With fixed instance counts nothing happens in the quiet hours: queues are empty and every count
that holds the peak holds them too. The plan therefore simulates only the window around the
peak, which is also where the SLO is meant to hold ("through this scenario's peak"):

- from ``LEAD_S`` before the first moment any planned service's traffic reaches half its peak,
- to ``TAIL_S`` after the last moment any of them is still at half its peak or more
  (the full width at half maximum of each curve, merged, plus a lead-in and a drain-out),
- at most ``MAX_WINDOW_S`` long (a flat curve is at "half its peak" all run; an hour of it is
  plenty to judge a p99), rounded out to whole ticks,
- never starting after a scheduled fault that happens before its end (the fault's effect is
  part of the peak).

The window is simulated as a copy of the scenario whose t=0 is the window start: the duration
is cut, the start clock moves, and every scenario time (the 11.11 midnight, keyframes, flash
sales, faults) shifts by the same amount, so the copy's traffic curve equals the original's
over the window. Curves that cannot be shifted -- a trace file, or seeded noise drawn from the
start of the run -- keep the run's start and only lose the time after the window.

The SLO is judged over the window as ``peaksim run`` judges a whole run. Quiet hours dilute a
whole-run percentile, so the window's verdict is the stricter one: counts that hold the window
hold the whole run (see docs/planning.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sim.model import KeyframesTraffic, Scenario, SinglesDayTraffic, TraceTraffic, TrafficModel
from sim.units import clock_label

HALF_PEAK = 0.5
"""The window covers where each curve is at or above this fraction of its peak."""
LEAD_S = 120.0
"""Lead-in before the first service reaches half its peak (run seconds)."""
TAIL_S = 120.0
"""Drain-out after the last service falls below half its peak (run seconds)."""
MAX_WINDOW_S = 3600.0
"""Longest window (run seconds) unless the services' peaks themselves lie further apart."""


@dataclass(frozen=True)
class PeakWindow:
    """A span of the run ``[start_s, end_s)`` (run seconds of the original scenario) and the
    scenario to simulate for it (the original itself when the span is the whole run)."""

    start_s: float
    end_s: float
    scenario: Scenario
    note: str = ""
    """Why the window could not be narrower, or ""."""

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


def half_peak_span(traffic: TrafficModel, service: str) -> tuple[float, float, float] | None:
    """(first, peak, last) run time of the contiguous span around ``service``'s peak where its
    rate is at least ``HALF_PEAK`` x peak, on a 1 s grid of scenario time; None without
    traffic."""
    step = 1.0 / traffic.time_scale
    grid = np.arange(0.0, traffic.duration_s + step / 2, step)
    rates = traffic.rates_rps(service, grid)
    i = int(np.argmax(rates))
    if rates[i] <= 0:
        return None
    above = rates >= HALF_PEAK * rates[i]
    before = np.flatnonzero(~above[:i])
    after = np.flatnonzero(~above[i:])
    first = int(before[-1]) + 1 if before.size else 0
    last = i + int(after[0]) - 1 if after.size else len(grid) - 1
    return float(grid[first]), float(grid[i]), float(grid[last])


def peak_window(scenario: Scenario, services: Sequence[str]) -> PeakWindow:
    """The window around the peaks of ``services`` (see the module docstring)."""
    traffic = TrafficModel(scenario)
    duration = traffic.duration_s
    spans = [s for s in (half_peak_span(traffic, name) for name in services) if s is not None]
    if not spans:
        return PeakWindow(0.0, duration, scenario, "no traffic: the whole run")
    first, last = min(s[0] for s in spans), max(s[2] for s in spans)
    peak_lo, peak_hi = min(s[1] for s in spans), max(s[1] for s in spans)
    start, end = max(0.0, first - LEAD_S), min(duration, last + TAIL_S)
    if end - start > MAX_WINDOW_S:
        start = max(start, peak_lo - MAX_WINDOW_S / 4)
        end = min(end, max(peak_hi + TAIL_S, start + MAX_WINDOW_S))
    notes = []
    faults = [f.at / traffic.time_scale for f in scenario.faults]
    early = [at for at in faults if at < start]
    if early:
        start = max(0.0, min(early) - LEAD_S)
        notes.append("starts before the first scheduled fault")
    spec = scenario.traffic
    if isinstance(spec, TraceTraffic) or spec.noise is not None:
        start = 0.0
        notes.append("keeps the run's start: a trace or noisy curve cannot be shifted")
    tick = scenario.tick_s
    start = math.floor(start / tick + 1e-9) * tick
    if scenario.start_clock is not None:
        start = float(math.floor(start))  # the shifted start clock has whole seconds
    end = min(duration, math.ceil(end / tick - 1e-9) * tick)
    if start <= 0.0 and end >= duration:
        return PeakWindow(0.0, duration, scenario, "; ".join(notes) or "the whole run")
    return PeakWindow(start, end, shifted_scenario(scenario, start, end), "; ".join(notes))


def shifted_scenario(scenario: Scenario, start_s: float, end_s: float) -> Scenario:
    """A copy of ``scenario`` whose run is ``[start_s, end_s)`` of the original (run seconds).

    Built from already validated parts (``model_copy``), so shifted times may be negative
    (a keyframe or the 11.11 midnight before the new t=0): the curves handle that.
    """
    ts = scenario.traffic.time_scale
    u0 = start_s * ts  # scenario times are in the scenario's own (uncompressed) seconds
    spec = scenario.traffic
    traffic_update: dict[str, object] = {
        "flash_sales": tuple(
            sale.model_copy(update={"at": sale.at - u0}) for sale in spec.flash_sales
            if sale.at + sale.duration_s + sale.ramp_s > u0
        ),
    }
    if isinstance(spec, SinglesDayTraffic) and spec.midnight is not None:
        traffic_update["midnight"] = spec.midnight - u0
    if isinstance(spec, KeyframesTraffic):
        traffic_update["keyframes"] = tuple(
            frame.model_copy(update={"at": frame.at - u0}) for frame in spec.keyframes)
    update: dict[str, object] = {
        "duration_s": (end_s - start_s) * ts,
        "traffic": spec.model_copy(update=traffic_update),
        "faults": tuple(f.model_copy(update={"at": f.at - u0}) for f in scenario.faults
                        if f.at >= u0),
        "autoscaling": None,  # the plan fixes the counts; a schedule's times would not shift
    }
    clock_s = scenario.start_clock_s
    if clock_s is not None:
        update["start_clock"] = _clock_hms(clock_s + u0)
    return scenario.model_copy(update=update)


def _clock_hms(seconds_after_midnight: float) -> str:
    """``HH:MM:SS`` (``clock_label`` drops zero seconds; a start clock may keep them)."""
    label = clock_label(0.0, seconds_after_midnight)
    return label if label.count(":") == 2 else f"{label}:00"
