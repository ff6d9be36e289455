"""static, scheduled, step and predictive policies driven as pure functions.

Expected counts are derived by hand (arithmetic in the comments) from each policy's documented
semantics (docs/autoscaling.md; AWS step-scaling rules for ``step``).
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from sim.model import AutoscalingSection
from sim.policies.autoscaling import (
    POLICIES,
    AutoscalingPolicy,
    HoltForecaster,
    InstanceView,
    Observation,
    PolicyContext,
    PolicyError,
    PredictivePolicy,
    SeasonalNaiveForecaster,
    ServiceInfo,
    ServiceView,
    build_policy,
)

START_2300_S = 23 * 3600.0
INFO = ServiceInfo(workers=10, min=0, max=200, initial=4, boot_s=30.0, mean_service_ms=100.0)


def context(
    names: tuple[str, ...] = ("order",),
    forecast: Any = None,
    start_clock_s: float | None = None,
) -> PolicyContext:
    return PolicyContext(
        services={n: INFO for n in names}, interval_s=15.0, start_clock_s=start_clock_s,
        forecast_rps=forecast, window_s=60.0,
    )


def make(params: dict[str, Any], ctx: PolicyContext | None = None) -> AutoscalingPolicy:
    """Build through the section schema and the registry, as the engine does."""
    ctx = ctx or context()
    section = AutoscalingSection.model_validate(
        {"variants": {"v": params}}, context={"start_clock_s": ctx.start_clock_s}
    )
    return build_policy("v", section, ctx)


def service(
    metrics: list[float | None] | None = None,
    *,
    count: int | None = None,
    ages: list[float] | None = None,
    name: str = "order",
    arrival_rps: float | None = None,
) -> ServiceView:
    """``metrics`` per ready instance (age 10,000 s unless ``ages`` says otherwise), or
    ``count`` ready instances without samples."""
    if metrics is None:
        metrics = [None] * (count or 0)
    ages = ages or [10_000.0] * len(metrics)
    instances = tuple(
        InstanceView(ready=age >= INFO.boot_s, age_s=age, metric=m)
        for age, m in zip(ages, metrics, strict=True)
    )
    ready = sum(1 for i in instances if i.ready)
    return ServiceView(
        name=name, current=len(instances), ready=ready, booting=len(instances) - ready,
        min=0, max=200, workers=INFO.workers, boot_s=INFO.boot_s,
        mean_service_ms=INFO.mean_service_ms, metrics={"arrival_rps": arrival_rps},
        instances=instances,
    )


def observe(
    t_s: float, *views: ServiceView, history: dict[str, list[tuple[float, float]]] | None = None
) -> Observation:
    return Observation(
        t_s=t_s, clock_s=None, services={v.name: v for v in views}, history=history or {}
    )


def want(policy: AutoscalingPolicy, obs: Observation, name: str = "order") -> int:
    return policy.decide(obs).get(name, obs.services[name].current)


def test_registry_names_every_policy() -> None:
    assert sorted(POLICIES) == [
        "kubernetes", "predictive", "scheduled", "static", "step", "target_tracking"]
    assert all(cls.name == name for name, cls in POLICIES.items())
    with pytest.raises(TypeError):
        POLICIES["x"] = POLICIES["static"]  # type: ignore[index]


# ----------------------------------------------------------------- static
def test_static_holds_named_counts_and_initial_for_the_rest() -> None:
    policy = make({"policy": "static", "instances": {"order": 7}}, context(("browse", "order")))
    obs = observe(0, service(count=3, name="browse"), service(count=5))
    # order -> its fixed 7; browse is not named -> its initial count, 4.
    assert policy.decide(obs) == {"browse": 4, "order": 7}


# ----------------------------------------------------------------- scheduled
SCHEDULE = {
    "policy": "scheduled",
    "schedule": [
        {"at": "23:50", "instances": {"order": 40}},
        {"at": "00:30", "instances": {"order": 12}},
    ],
}


def test_scheduled_switches_at_the_clock_times() -> None:
    # start 23:00: "23:50" is 3000 s into the run, "00:30" (after midnight) 5400 s.
    policy = make(SCHEDULE, context(start_clock_s=START_2300_S))
    assert policy.decide(observe(2985, service(count=6))) == {}  # before: left alone
    assert policy.decide(observe(3000, service(count=6))) == {"order": 40}
    assert policy.decide(observe(5385, service(count=40))) == {"order": 40}
    assert policy.decide(observe(5400, service(count=40))) == {"order": 12}


def test_scheduled_floor_with_hpa_above() -> None:
    params = {**SCHEDULE, "target_tracking": {"target": 0.5}}
    policy = make(params, context(start_clock_s=START_2300_S))
    # Before 23:50 it is a plain HPA: 4 at 100% vs 50% -> ratio 2 -> 8 (limit max(8, 4)).
    assert want(policy, observe(0, service([1.0] * 4))) == 8
    # At 23:50 the floor 40 joins the recommendations: max(metric ceil(8 x 10/50) = 2, 40)
    # = 40, reached at the legacy rate: max(2 x 8, 4) = 16, then 32, then 40.
    assert want(policy, observe(3000, service([0.1] * 8))) == 16
    assert want(policy, observe(3015, service([0.1] * 16))) == 32
    assert want(policy, observe(3030, service([0.1] * 32))) == 40
    # Busy above the floor: 40 at 90% vs 50% -> ratio 1.8 -> ceil(72) = 72 (limit 80).
    assert want(policy, observe(3045, service([0.9] * 40))) == 72
    # Idle: max(ceil(72 x 0.2) = 15, floor 40) = 40, but the 300 s window holds 72.
    assert want(policy, observe(3060, service([0.1] * 72))) == 72


def test_scheduled_floor_drop_lets_the_hpa_scale_in_after_its_window() -> None:
    params = {**SCHEDULE, "target_tracking": {"target": 0.5}}
    policy = make(params, context(start_clock_s=START_2300_S))
    # From 23:50 on, 40 idle instances: each sync recommends max(ceil(40 x 5/50) = 4, 40).
    for t in range(3000, 5400, 15):
        assert want(policy, observe(t, service([0.05] * 40))) == 40, t
    # 00:30: the floor drops to 12 -> recommendation max(4, 12) = 12, but the window keeps
    # the 40s recorded up to 5385 s; they leave it (recorded before t - 300) at 5700 s.
    for t in range(5400, 5700, 15):
        assert want(policy, observe(t, service([0.05] * 40))) == 40, t
    assert want(policy, observe(5700, service([0.05] * 40))) == 12


# ----------------------------------------------------------------- step
STEP = {
    "policy": "step",
    "warmup_s": 120,
    "cooldown_s": 300,
    "scale_out": {
        "threshold": 0.7,
        "evaluation_periods": 2,
        "steps": [{"lower": 0, "upper": 0.2, "change": 1}, {"lower": 0.2, "change": 3}],
    },
    "scale_in": {"threshold": 0.3, "steps": [{"upper": 0, "change": -2}]},
}


def test_step_needs_evaluation_periods_then_steps_by_breach() -> None:
    policy = make(STEP)
    # 0.8 breaches 0.7 once: 1 of 2 periods -> nothing.
    assert want(policy, observe(0, service([0.8] * 10))) == 10
    # Second breach: alarm. Breach 0.8 - 0.7 = 0.1 in [0, 0.2) -> +1 -> 11.
    assert want(policy, observe(15, service([0.8] * 10))) == 11


def test_step_warmup_single_activity_then_larger_step_adds_the_difference() -> None:
    policy = make(STEP)
    want(policy, observe(0, service([0.8] * 10)))
    assert want(policy, observe(15, service([0.8] * 10))) == 11
    # The new instance is 15 s old (< warm-up 120 s): it does not count in the base
    # (11 - 1 = 10) and its own metric is excluded. Same step: 10 + 1 = 11 = current -> no
    # second activity.
    ages = [10_000.0] * 10 + [15.0]
    assert want(policy, observe(30, service([0.8] * 10 + [0.0], ages=ages))) == 11
    # Breach 0.95 - 0.7 = 0.25 >= 0.2 -> +3 on base 10 -> 13: adds only 2.
    assert want(policy, observe(45, service([0.95] * 10 + [0.0], ages=ages))) == 13


def test_step_warming_instances_do_not_count_in_the_metric() -> None:
    policy = make(STEP)
    # Ten warmed instances at 0.6 and two warming ones at 1.0: the alarm sees 0.6 < 0.7.
    ages = [10_000.0] * 10 + [60.0, 60.0]
    for t in (0, 15, 30):
        assert want(policy, observe(t, service([0.6] * 10 + [1.0, 1.0], ages=ages))) == 12


def test_step_scale_in_waits_for_cooldown_and_warmup() -> None:
    policy = make(STEP)
    want(policy, observe(0, service([0.9] * 10)))
    assert want(policy, observe(15, service([0.9] * 10))) == 13  # breach 0.2 -> +3
    # Load drops at once: the scale-in alarm (0.1 <= 0.3, 1 period) fires, but the last
    # activity was at 15 s: no scale-in before 15 + 300 = 315 s.
    for t in range(30, 315, 15):
        assert want(policy, observe(t, service([0.1] * 13))) == 13, t
    # At 315 s: cooldown over, no instance warming -> 13 - 2 = 11.
    assert want(policy, observe(315, service([0.1] * 13))) == 11
    # The next scale-in needs another full cooldown.
    assert want(policy, observe(330, service([0.1] * 11))) == 11
    assert want(policy, observe(615, service([0.1] * 11))) == 9


def test_step_no_scale_in_while_an_instance_warms_up() -> None:
    policy = make({**STEP, "cooldown_s": 0})
    # One instance is 60 s old (< warm-up 120 s): the scale-in alarm fires (0.1 <= 0.3) but
    # AWS holds scale-in until the warm-up is over.
    ages = [10_000.0] * 9 + [60.0]
    assert want(policy, observe(0, service([0.1] * 10, ages=ages))) == 10
    # All warmed up: 10 - 2 = 8.
    assert want(policy, observe(15, service([0.1] * 10))) == 8


def test_step_bounds_inclusive_like_aws() -> None:
    # Threshold 0.5 (exact binary fractions, so breaches are exact). Above the threshold a
    # step's lower bound is inclusive: metric 0.75 -> breach 0.25 -> the [0.25, inf) step
    # (+3); metric 0.5 -> breach 0 -> the [0, 0.25) step (+1). Below it the upper bound is
    # inclusive: with threshold 0.375, metric 0.25 -> breach -0.125 -> (-inf, -0.125] (-3).
    out = {"threshold": 0.5, "steps": [{"lower": 0, "upper": 0.25, "change": 1},
                                       {"lower": 0.25, "change": 3}]}
    in_ = {"threshold": 0.375, "steps": [{"upper": -0.125, "change": -3},
                                         {"lower": -0.125, "upper": 0, "change": -1}]}
    base = {"policy": "step", "warmup_s": 0, "cooldown_s": 0}
    assert want(make({**base, "scale_out": out}), observe(0, service([0.75] * 10))) == 13
    assert want(make({**base, "scale_out": out}), observe(0, service([0.5] * 10))) == 11
    assert want(make({**base, "scale_in": in_}), observe(0, service([0.25] * 10))) == 7


def test_step_percent_adjustments_round_like_aws() -> None:
    base = {"policy": "step", "warmup_s": 0, "cooldown_s": 0}
    # +30% of 10 = 3 -> 13.
    out = make({**base, "scale_out": {"threshold": 0.7, "adjustment": "percent",
                                      "steps": [{"lower": 0, "change": 30}]}})
    assert want(out, observe(0, service([0.9] * 10))) == 13
    # +5% of 10 = 0.5, between 0 and 1 -> 1 -> 11; with min_adjustment_magnitude 2 -> 12.
    small = {"threshold": 0.7, "adjustment": "percent", "steps": [{"lower": 0, "change": 5}]}
    assert want(make({**base, "scale_out": small}), observe(0, service([0.9] * 10))) == 11
    small_min = {**small, "min_adjustment_magnitude": 2}
    assert want(make({**base, "scale_out": small_min}), observe(0, service([0.9] * 10))) == 12
    # -25% of 10 = -2.5, below -1 -> rounded toward zero: -2 -> 8.
    down = make({**base, "scale_in": {"threshold": 0.3, "adjustment": "percent",
                                      "steps": [{"upper": 0, "change": -25}]}})
    assert want(down, observe(0, service([0.1] * 10))) == 8


def test_step_exact_capacity() -> None:
    policy = make({"policy": "step", "warmup_s": 0, "scale_out": {
        "threshold": 0.7, "adjustment": "exact", "steps": [{"lower": 0, "change": 25}]}})
    assert want(policy, observe(0, service([0.9] * 10))) == 25


# ----------------------------------------------------------------- forecasters
def test_holt_matches_a_hand_computation() -> None:
    # alpha 0.5, beta 0.3, samples 10, 12, 15, 15 every 15 s.
    # After two samples: level 12, trend 12 - 10 = 2.
    # y=15: level = 0.5 x 15 + 0.5 x (12 + 2) = 14.5; trend = 0.3 x 2.5 + 0.7 x 2 = 2.15.
    # y=15: level = 7.5 + 0.5 x (14.5 + 2.15) = 15.825;
    #       trend = 0.3 x (15.825 - 14.5) + 0.7 x 2.15 = 0.3975 + 1.505 = 1.9025.
    # Forecast 30 s (2 steps) after the last sample: 15.825 + 2 x 1.9025 = 19.63;
    # 7.5 s (half a step): 15.825 + 0.5 x 1.9025 = 16.77625.
    holt = HoltForecaster(alpha=0.5, beta=0.3)
    samples = [(0.0, 10.0), (15.0, 12.0), (30.0, 15.0), (45.0, 15.0)]
    holt.update(samples[:2])
    assert holt.forecast(45.0) == pytest.approx(12 + 2 * 2)
    holt.update(samples)  # incremental: only the two new samples are consumed
    assert holt.level == pytest.approx(15.825)
    assert holt.trend == pytest.approx(1.9025)
    assert holt.forecast(75.0) == pytest.approx(19.63)
    assert holt.forecast(52.5) == pytest.approx(16.77625)


def test_holt_never_forecasts_negative_demand() -> None:
    holt = HoltForecaster(alpha=1.0, beta=1.0)
    holt.update([(0.0, 100.0), (15.0, 10.0)])  # trend -90 per step
    assert holt.forecast(45.0) == 0.0


def test_seasonal_naive() -> None:
    sn = SeasonalNaiveForecaster(season_s=60.0)
    sn.update([(t, t * 2.0) for t in range(0, 121, 15)])
    assert sn.forecast(150.0) == pytest.approx(180.0)  # value at 90 s: 2 x 90
    assert sn.forecast(97.5) == pytest.approx(75.0)  # at 37.5 s, between 30 (60) and 45 (90)
    assert sn.forecast(30.0) == pytest.approx(240.0)  # a season back is before the data: last


# ----------------------------------------------------------------- predictive
def step_plan(service_name: str, t_s: float) -> float:
    """10 rps, then 1000 rps from t=600 s."""
    return 1000.0 if t_s >= 600.0 else 10.0


PLAN = {"policy": "predictive", "source": "plan", "lead_s": 120, "target_utilization": 0.5,
        "headroom": 0.0}


def test_plan_source_provisions_lead_s_ahead_of_the_ramp() -> None:
    # need(rps) = ceil(rps x 0.1 s / (10 workers x 0.5)); need(10) = ceil(0.2) = 1,
    # need(1000) = ceil(20) = 20. The horizon at t covers t..t+120 s: 600 enters it at 480.
    policy = make(PLAN, context(forecast=step_plan))
    first_raise = None
    for t in range(0, 601, 15):
        n = want(policy, observe(t, service(count=1, arrival_rps=10.0)))
        if n == 20 and first_raise is None:
            first_raise = t
        assert n in (1, 20)
    assert first_raise == 600 - 120


def test_plan_source_never_below_the_reactive_floor() -> None:
    # The plan says 10 rps but 1000 rps are observed: ceil(1000 x 0.1 / 5) = 20.
    policy = make(PLAN, context(forecast=step_plan))
    assert want(policy, observe(0, service(count=1, arrival_rps=1000.0))) == 20


def test_predictive_scale_in_is_stabilized() -> None:
    # After the ramp (plan 1000 rps until 900 s, then 10): the forecast need drops to 1 at
    # 900 s, but the highest need of the last 300 s (20) holds until 900 + 300 = 1200 s.
    def plan(service_name: str, t_s: float) -> float:
        return 1000.0 if t_s < 900.0 else 10.0

    policy = make(PLAN, context(forecast=plan))
    assert want(policy, observe(885, service(count=1, arrival_rps=10.0))) == 20
    for t in range(900, 1185, 15):
        assert want(policy, observe(t, service(count=20, arrival_rps=10.0))) == 20, t
    assert want(policy, observe(1185, service(count=20, arrival_rps=10.0))) == 1


def forbidden_plan(service_name: str, t_s: float) -> float:
    raise AssertionError("a learned forecast looked at the planned curve")


def test_learned_source_never_sees_the_plan() -> None:
    params = {"policy": "predictive", "source": "learned", "lead_s": 30, "alpha": 0.5,
              "beta": 0.3, "target_utilization": 0.5, "headroom": 0.0}
    built = make(params, context(forecast=forbidden_plan))
    assert built.context.forecast_rps is None  # build_policy withheld it
    # Even handed one directly, the learned policy never calls it.
    direct = PredictivePolicy(built.params, context(forecast=forbidden_plan))  # type: ignore[arg-type]
    samples = [(0.0, 10.0), (15.0, 12.0), (30.0, 15.0), (45.0, 15.0)]
    for policy in (built, direct):
        for k in range(1, len(samples) + 1):
            history = {"order": samples[:k]}
            n = want(policy, observe(samples[k - 1][0], service(count=5), history=history))
        # Every forecast is below 20 rps (last call, t=45, as in the Holt hand computation:
        # the horizon 45..75 s peaks at 19.63 rps) -> ceil(19.63 x 0.1 / 5) = 1 instance.
        assert n == 1
    # The same history x 100, at t=45: 1963 rps -> ceil(39.26) = 40 (the earlier calls
    # needed less: 20 at t=0, ceil(1600 x 0.02) = 32 at t=15, ceil(1880 x 0.02) = 38 at t=30).
    fresh = make(params, context(forecast=forbidden_plan))
    big = [(t, y * 100) for t, y in samples]
    for k in range(1, len(big) + 1):
        n = want(fresh, observe(big[k - 1][0], service(count=1), history={"order": big[:k]}))
    assert n == math.ceil(1963.0 * 0.1 / 5)


def test_plan_source_without_a_plan_is_an_error() -> None:
    with pytest.raises(PolicyError, match="planned traffic"):
        make(PLAN, context(forecast=None))


def test_predictive_with_hpa_above_the_forecast() -> None:
    params = {**PLAN, "target_tracking": {"target": 0.5}}
    policy = make(params, context(forecast=step_plan))
    assert policy.instance_metric("order") == "utilization"
    # t=480: the forecast needs 20; 4 instances at 20% vs 50% propose ceil(4 x 0.4) = 2;
    # max(2, 20) = 20, reached at the legacy rate: max(2 x 4, 4) = 8, then 16, then 20.
    assert want(policy, observe(480, service([0.2] * 4))) == 8
    assert want(policy, observe(495, service([0.2] * 8))) == 16
    assert want(policy, observe(510, service([0.2] * 16))) == 20
    # t=600 with 20 at 100% vs 50%: the HPA wants ceil(20 x 2) = 40 > forecast 20 -> 40.
    assert want(policy, observe(600, service([1.0] * 20))) == 40
