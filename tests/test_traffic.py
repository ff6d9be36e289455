"""Traffic curves against their definitions (docs/scenarios.md, "Traffic").

Expected values are computed here from the documented formulas, never read back from the model.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from sim.model import Scenario, TrafficModel, load_scenario, parse_scenario

SERVICES = """\
services:
  browse: {service_time: {dist: constant, mean_ms: 10}, workers: 4, instances: 1}
  order: {service_time: {dist: constant, mean_ms: 10}, workers: 4, instances: 1}
  payment: {service_time: {dist: constant, mean_ms: 10}, workers: 4, instances: 1}
"""


def scenario(traffic: str, duration: str = "2h", head: str = "", base_dir: str = ".") -> Scenario:
    """A three-service scenario with the given ``traffic:`` block (YAML, indented 2)."""
    text = f"name: t\nseed: 11\nduration: {duration}\n{head}traffic:\n{traffic}{SERVICES}"
    return parse_scenario(text, "test.yaml", base_dir=base_dir)


# ------------------------------------------------------------------ constant


def test_constant_integrates_to_rate_times_duration() -> None:
    model = TrafficModel(scenario("  kind: constant\n  rps: {order: 37.5, payment: 12}\n"))
    assert model.expected_count("order", 0.0, 7200.0) == pytest.approx(37.5 * 7200, rel=1e-12)
    assert model.expected_count("payment", 100.0, 400.0) == pytest.approx(12 * 300, rel=1e-12)
    # A service the traffic section does not name receives nothing.
    assert model.expected_count("browse", 0.0, 7200.0) == 0.0
    t = np.linspace(0.0, 7200.0, 101)
    assert np.array_equal(model.rates_rps("order", t), np.full(101, 37.5))


# ------------------------------------------------------------------ keyframes

KEYFRAMES = """\
  kind: keyframes
  interpolation: {interp}
  keyframes:
    - {{at: 0, rps: {{order: 10, payment: 4}}}}
    - {{at: 10m, rps: {{order: 1000, payment: 4}}}}
    - {{at: 20m, rps: {{order: 100{last_payment}}}}}
"""


def keyframes(interp: str, last_payment: str = "") -> TrafficModel:
    """Keyframes at 0, 10m, 20m; ``last_payment`` adds a payment rate to the last one."""
    text = KEYFRAMES.format(interp=interp, last_payment=last_payment)
    return TrafficModel(scenario(text, duration="30m"))


@pytest.mark.parametrize("interp", ["linear", "step"])
def test_keyframes_hit_every_keyframe_exactly(interp: str) -> None:
    model = keyframes(interp)
    assert model.rates_rps("order", np.array([0.0, 600.0, 1200.0])).tolist() == [10, 1000, 100]
    assert model.rate_rps("payment", 600.0) == 4.0


def test_keyframes_log_hits_keyframes_to_rounding() -> None:
    # exp(log(v)) may differ from v in the last bit.
    rates = keyframes("log", ", payment: 1").rates_rps("order", np.array([0.0, 600.0, 1200.0]))
    assert rates == pytest.approx([10, 1000, 100], rel=1e-12)


def test_keyframes_linear_interpolates_linearly() -> None:
    model = keyframes("linear")
    assert model.rate_rps("order", 300.0) == pytest.approx((10 + 1000) / 2, rel=1e-12)
    assert model.rate_rps("order", 150.0) == pytest.approx(10 + 0.25 * 990, rel=1e-12)
    assert model.rate_rps("order", 900.0) == pytest.approx((1000 + 100) / 2, rel=1e-12)
    # A service missing from a keyframe is at 0 there: payment falls from 4 to 0 over 10 min.
    assert model.rate_rps("payment", 900.0) == pytest.approx(2.0, rel=1e-12)


def test_keyframes_step_holds_until_the_next_keyframe() -> None:
    model = keyframes("step")
    assert model.rate_rps("order", 599.999) == 10.0
    assert model.rate_rps("order", 1199.0) == 1000.0
    assert model.rate_rps("payment", 1200.0) == 0.0


def test_keyframes_log_interpolates_geometrically() -> None:
    model = keyframes("log", ", payment: 1")
    # Midpoint: the geometric mean sqrt(10 * 1000) = 100; a quarter: 10 * 100^(1/4).
    assert model.rate_rps("order", 300.0) == pytest.approx(100.0, rel=1e-12)
    assert model.rate_rps("order", 150.0) == pytest.approx(10 * 100**0.25, rel=1e-12)
    assert model.rate_rps("order", 900.0) == pytest.approx(math.sqrt(1000 * 100), rel=1e-12)
    assert model.rate_rps("payment", 900.0) == pytest.approx(2.0, rel=1e-12)


def test_keyframes_hold_their_end_values_outside() -> None:
    text = KEYFRAMES.format(interp="linear", last_payment="").replace("at: 0,", "at: 5m,")
    model = TrafficModel(scenario(text, duration="30m"))
    assert model.rates_rps("order", np.array([0.0, 299.0, 1500.0, 1800.0])).tolist() == [
        10, 10, 100, 100]


def test_keyframes_accept_clock_times() -> None:
    text = ("  kind: keyframes\n  keyframes:\n    - {at: '23:50', rps: {order: 10}}\n"
            "    - {at: '00:10', rps: {order: 50}}\n")
    model = TrafficModel(scenario(text, duration="1h", head="start_clock: '23:40'\n"))
    # 23:50 is 600 s in, 00:10 is 1800 s in; halfway (1200 s) is 30.
    assert [model.rate_rps("order", t) for t in (600.0, 1200.0, 1800.0)] == [10, 30, 50]


# ------------------------------------------------------------------ singles_day

EVENING_S, BUILDUP_TAU_S = 7200.0, 1800.0  # documented constants of the pre-midnight build-up


def buildup(x_s: float, evening: float, pre_midnight: float) -> float:
    """Documented level before midnight, x_s seconds from midnight (x_s <= 0)."""
    tail = math.exp(-EVENING_S / BUILDUP_TAU_S)
    share = (math.exp(max(x_s, -EVENING_S) / BUILDUP_TAU_S) - tail) / (1 - tail)
    return evening + (pre_midnight - evening) * share


def test_shipped_singles_day_peaks_within_the_ramp_after_midnight(scenarios_dir: Path) -> None:
    scn = load_scenario(scenarios_dir / "singles-day.yaml")
    model = TrafficModel(scn)
    midnight = 3600.0  # start_clock 23:00
    ramp = scn.traffic.ramp_s
    order_peak, order_at = model.peak("order")
    assert midnight < order_at <= midnight + ramp
    assert order_peak == pytest.approx(583_000 * 0.001, rel=1e-12)  # peak_rps x rate_scale
    pay_peak, pay_at = model.peak("payment")
    # Payments trail by peak_delay_s: their peak lies within the ramp after midnight + delay.
    delay = scn.traffic.peak_delay_s["payment"]
    assert midnight + delay < pay_at <= midnight + delay + ramp
    configured = scn.traffic.peak_rps["payment"] / scn.traffic.peak_rps["order"]
    assert pay_peak / order_peak == pytest.approx(configured, rel=1e-12)
    assert 0.7 <= configured <= 0.8  # REFERENCE.md: payments ~0.7-0.8 x orders
    # Browse is a funnel multiple of orders, its peak at the same moment.
    browse_peak, browse_at = model.peak("browse")
    assert browse_at == order_at and browse_peak > order_peak


def sd_model(extra: str = "", head: str = "start_clock: '22:00'\n") -> TrafficModel:
    traffic = ("  kind: singles_day\n  peak_rps: {order: 1000, payment: 750}\n"
               "  ramp_s: 90\n  decay_s: 600\n  evening_ratio: 0.1\n  pre_midnight_ratio: 0.25\n"
               "  plateau_ratio: 0.4\n" + extra)
    return TrafficModel(scenario(traffic, duration="4h", head=head))


def test_singles_day_custom_ramp_and_shape() -> None:
    model = sd_model("  daily_pattern: false\n")
    midnight = 7200.0  # start 22:00
    peak, at = model.peak("order")
    assert peak == pytest.approx(1000.0, rel=1e-12) and at == midnight + 90
    # The rise is half a cosine from the pre-midnight level to the peak: halfway at mid-ramp.
    assert model.rate_rps("order", midnight + 45) == pytest.approx(1000 * (0.25 + 0.75 / 2))
    # Before midnight: the exponential build-up, from 0.1 x peak two hours before to 0.25.
    for x in (-7200.0, -3600.0, -1800.0, -1.0):
        expected = 1000 * buildup(x, 0.1, 0.25)
        assert model.rate_rps("order", midnight + x) == pytest.approx(expected, rel=1e-12)
    assert model.rate_rps("order", 0.0) == pytest.approx(100.0, rel=1e-12)  # evening level
    # After the peak: plateau + (1 - plateau) * exp(-(x - ramp) / decay), plateau 0.4.
    for since_peak in (0.0, 600.0, 1800.0):
        expected = 1000 * (0.4 + 0.6 * math.exp(-since_peak / 600))
        rate = model.rate_rps("order", midnight + 90 + since_peak)
        assert rate == pytest.approx(expected, rel=1e-12)
    assert model.peak("payment")[0] / peak == pytest.approx(0.75, rel=1e-12)


def test_singles_day_peak_delay_shifts_the_curve() -> None:
    model = sd_model("  daily_pattern: false\n  peak_delay_s: {payment: 40}\n")
    t = np.arange(5000.0, 9000.0, 7.0)
    shifted = model.rates_rps("payment", t + 40) / 750
    assert np.allclose(shifted, model.rates_rps("order", t) / 1000, rtol=1e-12, atol=0)
    assert model.peak("payment")[1] == model.peak("order")[1] + 40


def test_singles_day_plateau_follows_the_daily_pattern() -> None:
    # Documented day levels (relative to the evening high): 00:00 0.60, 02:00 0.28, 03:00 0.18.
    # After the decay has died away the plateau is plateau_ratio x level(clock) / level(00:00).
    model = sd_model(head="start_clock: '22:00'\n")
    midnight = 7200.0
    for clock_s, level in ((2 * 3600, 0.28), (2.5 * 3600, (0.28 + 0.18) / 2)):
        since_peak = clock_s - 90
        plateau = 0.4 * level / 0.60
        expected = 1000 * (plateau + (1 - plateau) * math.exp(-since_peak / 600))
        assert model.rate_rps("order", midnight + clock_s) == pytest.approx(expected, rel=1e-9)


def test_singles_day_midnight_can_be_given_explicitly() -> None:
    model = sd_model("  daily_pattern: false\n  midnight: 1800\n", head="")
    assert model.peak("order")[1] == 1800 + 90


# ------------------------------------------------------------------ flash sales


def test_flash_sale_multiplies_on_its_plateau_only() -> None:
    traffic = ("  kind: constant\n  rps: {order: 20, payment: 5}\n  flash_sales:\n"
               "    - {at: 10m, duration_s: 5m, multiplier: 8, ramp_s: 30, services: [order]}\n")
    model = TrafficModel(scenario(traffic, duration="30m"))
    at, end, ramp = 600.0, 900.0, 30.0
    plateau = np.linspace(at + ramp, end, 50)
    assert np.allclose(model.rates_rps("order", plateau), 20 * 8, rtol=1e-12)
    outside = np.concatenate([np.linspace(0, at, 20), np.linspace(end + ramp, 1800, 20)])
    assert np.allclose(model.rates_rps("order", outside), 20, rtol=1e-12)
    # Linear ramps: halfway up and halfway down the factor is 1 + (8 - 1) / 2.
    assert model.rate_rps("order", at + ramp / 2) == pytest.approx(20 * 4.5, rel=1e-12)
    assert model.rate_rps("order", end + ramp / 2) == pytest.approx(20 * 4.5, rel=1e-12)
    # Services not listed are untouched.
    assert np.allclose(model.rates_rps("payment", plateau), 5, rtol=1e-12)


def test_flash_sale_without_services_applies_to_all_on_any_curve() -> None:
    traffic = KEYFRAMES.format(interp="linear", last_payment="") + (
        "  flash_sales:\n    - {at: 100, duration_s: 200, multiplier: 3, ramp_s: 0}\n")
    model = TrafficModel(scenario(traffic, duration="30m"))
    base = keyframes("linear")
    for name in ("order", "payment"):
        assert model.rate_rps(name, 200.0) == pytest.approx(3 * base.rate_rps(name, 200.0))
        assert model.rate_rps(name, 350.0) == pytest.approx(base.rate_rps(name, 350.0))


# ------------------------------------------------------------------ trace replay


def test_trace_replay_reproduces_the_csv(tmp_path: Path) -> None:
    (tmp_path / "rates.csv").write_text(
        "t_s,order_rps,payment_rps\n0,10,1\n60,70,3.5\n90,40,0\n300,40,2\n")
    model = TrafficModel(scenario("  kind: trace\n  path: rates.csv\n", duration="10m",
                                  base_dir=str(tmp_path)))
    rows = np.array([0.0, 60.0, 90.0, 300.0])
    assert model.rates_rps("order", rows).tolist() == [10, 70, 40, 40]
    assert model.rates_rps("payment", rows).tolist() == [1, 3.5, 0, 2]
    # Linear between rows; the last row holds to the end; no column means no traffic.
    assert model.rate_rps("order", 30.0) == pytest.approx(40.0, rel=1e-12)
    assert model.rate_rps("order", 75.0) == pytest.approx(55.0, rel=1e-12)
    assert model.rate_rps("payment", 599.0) == 2.0
    assert model.rate_rps("browse", 30.0) == 0.0


def test_trace_step_interpolation(tmp_path: Path) -> None:
    (tmp_path / "rates.csv").write_text("t_s,order_rps\n0,10\n60,70\n")
    model = TrafficModel(scenario("  kind: trace\n  path: rates.csv\n  interpolation: step\n",
                                  duration="2m", base_dir=str(tmp_path)))
    assert [model.rate_rps("order", t) for t in (0.0, 59.9, 60.0, 119.0)] == [10, 10, 70, 70]


# ------------------------------------------------------------------ scaling

SCALED = KEYFRAMES.format(interp="linear", last_payment="") + (
    "  flash_sales:\n    - {at: 5m, duration_s: 2m, multiplier: 2}\n"
    "  noise: {sigma: 0.2, interval_s: 30}\n")


def test_rate_and_time_scale_act_as_documented() -> None:
    base = TrafficModel(scenario(SCALED, duration="30m"))
    scaled = TrafficModel(scenario(SCALED, duration="30m"), rate_scale=0.01, time_scale=60.0)
    assert scaled.duration_s == 1800 / 60
    t = np.linspace(0.0, 30.0, 301)
    for name in ("order", "payment"):
        expected = 0.01 * base.rates_rps(name, t * 60)
        assert np.allclose(scaled.rates_rps(name, t), expected, rtol=1e-12, atol=0)
    # The compressed run carries rate_scale / time_scale of the requests.
    full = base.expected_count("order", 0.0, 1800.0, step_s=0.5)
    short = scaled.expected_count("order", 0.0, 30.0, step_s=0.5 / 60)
    assert short == pytest.approx(full * 0.01 / 60, rel=1e-9)


def test_section_scales_multiply_with_the_callers() -> None:
    in_file = SCALED + "  rate_scale: 0.5\n  time_scale: 4\n"
    model = TrafficModel(scenario(in_file, duration="30m"), rate_scale=3.0, time_scale=2.0)
    base = TrafficModel(scenario(SCALED, duration="30m"))
    assert (model.rate_scale, model.time_scale, model.duration_s) == (1.5, 8.0, 1800 / 8)
    t = np.linspace(0.0, 225.0, 97)
    assert np.allclose(model.rates_rps("order", t), 1.5 * base.rates_rps("order", t * 8),
                       rtol=1e-12, atol=0)


# ------------------------------------------------------------------ noise


def noisy(seed_line: str = "", sigma: float = 0.2, duration: str = "30m") -> TrafficModel:
    traffic = (f"  kind: constant\n  rps: {{order: 100, payment: 100}}\n"
               f"  noise: {{sigma: {sigma}, interval_s: 1{seed_line}}}\n")
    return TrafficModel(scenario(traffic, duration=duration))


def test_noise_is_reproducible_for_a_seed_and_differs_for_another() -> None:
    t = np.arange(0.0, 1800.0, 0.5)
    first, again = noisy().rates_rps("order", t), noisy().rates_rps("order", t)
    assert np.array_equal(first, again)
    other = noisy(", seed: 12").rates_rps("order", t)
    assert not np.allclose(first, other)
    # Without its own seed the noise uses the scenario seed (11).
    assert np.array_equal(noisy(", seed: 11").rates_rps("order", t), first)
    # Services get independent noise streams.
    assert not np.allclose(first, noisy().rates_rps("payment", t))


def test_noise_has_mean_factor_one_and_the_configured_spread() -> None:
    sigma = 0.2
    model = noisy(sigma=sigma, duration="27h")
    knots = np.arange(0.0, 27 * 3600.0, 1.0)  # knot times: the factors themselves
    factors = model.rates_rps("order", knots) / 100
    n = len(factors)
    # Lognormal factor exp(sigma Z - sigma^2/2): mean 1, sd sqrt(exp(sigma^2) - 1).
    standard_error = math.sqrt(math.exp(sigma**2) - 1) / math.sqrt(n)
    assert abs(factors.mean() - 1.0) < 5 * standard_error
    # log-factors are normal with sd sigma; the sample sd has standard error sigma/sqrt(2n).
    assert abs(np.log(factors).std() - sigma) < 5 * sigma / math.sqrt(2 * n)


# ------------------------------------------------------------------ scalar == vector


@pytest.mark.parametrize("kind", ["constant", "keyframes", "singles_day", "noise"])
def test_rate_rps_equals_the_vectorised_form(kind: str, scenarios_dir: Path) -> None:
    if kind == "singles_day":
        model = TrafficModel(load_scenario(scenarios_dir / "singles-day.yaml"))
    elif kind == "keyframes":
        model = keyframes("log", ", payment: 1")
    elif kind == "noise":
        model = TrafficModel(scenario(SCALED, duration="30m"), time_scale=3.0)
    else:
        model = TrafficModel(scenario("  kind: constant\n  rps: {order: 3}\n"))
    t = np.random.default_rng(5).uniform(0.0, model.duration_s, 200)
    for name in model.services:
        vector = model.rates_rps(name, t)
        assert [model.rate_rps(name, float(x)) for x in t] == vector.tolist()
