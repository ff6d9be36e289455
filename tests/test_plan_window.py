"""The peak window of ``peaksim plan``: it covers every peak, and the shifted copy of the
scenario has exactly the original's traffic (and faults) over the window."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sim.model import Scenario, TrafficModel, load_scenario, parse_scenario
from sim.plan import HALF_PEAK, LEAD_S, MAX_WINDOW_S, TAIL_S, peak_window


def assert_same_curves(original: Scenario, start_s: float, copy: Scenario) -> None:
    before, after = TrafficModel(original), TrafficModel(copy)
    grid = np.arange(0.0, after.duration_s, 0.37)
    for name in original.services:
        expected = before.rates_rps(name, grid + start_s)
        assert np.allclose(after.rates_rps(name, grid), expected, rtol=1e-9, atol=1e-9), name


def test_default_scenario_window_covers_the_midnight_peak(scenarios_dir: Path) -> None:
    scenario = load_scenario(scenarios_dir / "singles-day.yaml")
    window = peak_window(scenario, list(scenario.services))
    traffic = TrafficModel(scenario)
    midnight_s = 3600.0  # start_clock 23:00
    for name in scenario.services:
        peak_rps, peak_s = traffic.peak(name)
        assert window.start_s + LEAD_S <= peak_s <= window.end_s - TAIL_S
        # outside the window every curve is below half its peak
        assert traffic.rate_rps(name, window.start_s) < HALF_PEAK * peak_rps
        assert traffic.rate_rps(name, window.end_s) < HALF_PEAK * peak_rps
    # the rise starts at midnight: the window starts (at most) 2 minutes before it
    assert midnight_s - LEAD_S - scenario.tick_s <= window.start_s < midnight_s
    # whole ticks, and a shifted start clock
    assert window.start_s % scenario.tick_s == 0 and window.end_s % scenario.tick_s == 0
    copy = window.scenario
    assert copy.duration_s == window.end_s - window.start_s
    assert copy.start_clock_s == pytest.approx((82800.0 + window.start_s) % 86400.0)
    assert copy.autoscaling is None
    assert_same_curves(scenario, window.start_s, copy)


KEYFRAMES = """
name: k
seed: 3
duration: 3h
tick_s: 10
traffic:
  kind: keyframes
  interpolation: {interp}
  keyframes:
    - {{at: 0, rps: {{a: 10, b: 5}}}}
    - {{at: 4000, rps: {{a: 12, b: 5}}}}
    - {{at: 5000, rps: {{a: 100, b: 40}}}}
    - {{at: 5600, rps: {{a: 20, b: 8}}}}
  flash_sales:
    - {{at: 3000, duration_s: 2500, multiplier: 1.5, ramp_s: 60}}
    - {{at: 600, duration_s: 60, multiplier: 3}}
services:
  a: {{service_time: {{dist: exponential, mean_ms: 10}}, workers: 4, instances: 2}}
  b: {{service_time: {{dist: exponential, mean_ms: 10}}, workers: 4, instances: 2}}
faults:
  - {{at: 5100, service: a, kill: 1}}
"""


@pytest.mark.parametrize("interp", ["linear", "log", "step"])
def test_keyframes_flash_sales_and_faults_shift_with_the_window(interp: str) -> None:
    scenario = parse_scenario(KEYFRAMES.format(interp=interp))
    window = peak_window(scenario, ["a", "b"])
    assert 0 < window.start_s < 5000 < window.end_s < scenario.duration_s
    assert_same_curves(scenario, window.start_s, window.scenario)
    # the early flash sale is dropped, the fault keeps its place in the run
    assert len(window.scenario.traffic.flash_sales) == 1
    (fault,) = window.scenario.faults
    assert fault.at + window.start_s == pytest.approx(5100.0)


def test_a_fault_before_the_peak_pulls_the_window_start_back() -> None:
    text = KEYFRAMES.format(interp="linear").replace("at: 5100", "at: 1000")
    window = peak_window(parse_scenario(text), ["a", "b"])
    assert window.start_s <= 1000.0 - LEAD_S
    assert window.scenario.faults[0].at + window.start_s == pytest.approx(1000.0)


def test_flat_traffic_is_capped_to_an_hour_and_noise_keeps_the_start() -> None:
    flat = parse_scenario("""
name: flat
seed: 1
duration: 3h
tick_s: 10
traffic: {kind: constant, rps: {s: 50}}
services:
  s: {service_time: {dist: exponential, mean_ms: 10}, workers: 1, instances: 1}
""")
    window = peak_window(flat, ["s"])
    assert (window.start_s, window.end_s) == (0.0, MAX_WINDOW_S)
    noisy = parse_scenario("""
name: noisy
seed: 1
duration: 3h
tick_s: 10
traffic:
  kind: keyframes
  keyframes: [{at: 0, rps: {s: 5}}, {at: 7000, rps: {s: 50}}, {at: 7300, rps: {s: 5}}]
  noise: {sigma: 0.1}
services:
  s: {service_time: {dist: exponential, mean_ms: 10}, workers: 1, instances: 1}
""")
    window = peak_window(noisy, ["s"])
    assert window.start_s == 0.0 and window.end_s < noisy.duration_s
    assert "cannot be shifted" in window.note
    assert_same_curves(noisy, 0.0, window.scenario)
