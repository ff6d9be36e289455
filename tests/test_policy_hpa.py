"""The target_tracking policy against worked examples of the Kubernetes HPA algorithm.

Every expected count is derived by hand from the Kubernetes documentation ("Algorithm details",
"Stabilization window", "Scaling policies", "Default behavior") and the controller's rules as
REFERENCE.md states them; the arithmetic is in the comment of each case. Utilization is
compared in whole percent, as the controller does (``currentUtilization`` is an int32).
"""

from __future__ import annotations

from typing import Any

import pytest

from sim.policies.autoscaling import (
    InstanceView,
    Observation,
    PolicyContext,
    ServiceInfo,
    ServiceView,
    TargetTrackingParams,
    TargetTrackingPolicy,
)

OLD_S = 10_000.0  # an instance age well past boot and the CPU initialization period


def service(
    metrics: list[float | None],
    booting: int = 0,
    *,
    name: str = "order",
    svc_min: int = 0,
    svc_max: int = 100,
    service_metrics: dict[str, float | None] | None = None,
    young: list[tuple[float, float]] = (),  # type: ignore[assignment]
) -> ServiceView:
    """Ready instances with the given per-instance metric, plus ``booting`` ones; ``young``
    adds ready instances as (age_s, metric)."""
    instances = [InstanceView(ready=True, age_s=OLD_S, metric=m) for m in metrics]
    instances += [InstanceView(ready=True, age_s=age, metric=m) for age, m in young]
    instances += [InstanceView(ready=False, age_s=5.0, metric=None) for _ in range(booting)]
    ready = len(metrics) + len(young)
    return ServiceView(
        name=name, current=ready + booting, ready=ready, booting=booting, min=svc_min,
        max=svc_max, workers=8, boot_s=30.0, mean_service_ms=50.0,
        metrics=service_metrics or {}, instances=tuple(instances),
    )


def observe(t_s: float, *views: ServiceView) -> Observation:
    return Observation(
        t_s=t_s, clock_s=None, services={v.name: v for v in views}, history={}
    )


def hpa(names: tuple[str, ...] = ("order",), **params: Any) -> TargetTrackingPolicy:
    info = ServiceInfo(workers=8, min=0, max=100, initial=4, boot_s=30.0, mean_service_ms=50.0)
    context = PolicyContext(
        services={n: info for n in names}, interval_s=15.0, start_clock_s=None,
        forecast_rps=None, window_s=60.0,
    )
    settings = TargetTrackingParams.model_validate({"policy": "target_tracking", **params})
    return TargetTrackingPolicy(settings, context)


def desired(policy: TargetTrackingPolicy, obs: Observation, name: str = "order") -> int:
    """The count the policy wants (a service left out of the decision keeps its count)."""
    return policy.decide(obs).get(name, obs.services[name].current)


NO_DOWN_WINDOW = {"downscale_stabilization_s": 0}


# ----------------------------------------------------------------- tolerance and plain ratio
def test_within_tolerance_no_change() -> None:
    # 4 pods at 65% vs target 60%: ratio 65/60 = 1.083; |1 - 1.083| <= 0.1 -> keep 4.
    assert desired(hpa(target=0.6), observe(0, service([0.65] * 4))) == 4


def test_tolerance_edge_and_just_beyond() -> None:
    # 66/60 = 1.1 exactly: the band is inclusive (ratio <= 1 + 0.1) -> keep 4.
    assert desired(hpa(target=0.6), observe(0, service([0.66] * 4))) == 4
    # 67/60 = 1.1167 > 1.1 -> ceil(4 x 1.1167) = ceil(4.467) = 5.
    assert desired(hpa(target=0.6), observe(0, service([0.67] * 4))) == 5


def test_utilization_is_whole_percent() -> None:
    # 66.9% is reported as 66% (int32 truncation): 66/60 = 1.1 -> within the band, keep 4,
    # although 0.669/0.6 = 1.115 would have scaled to 5.
    assert desired(hpa(target=0.6), observe(0, service([0.669] * 4))) == 4


def test_plain_scale_up_is_ceil_current_times_ratio() -> None:
    # 3 pods at 90%, target 50%: ratio 1.8 -> ceil(3 x 1.8) = ceil(5.4) = 6;
    # legacy limit max(2 x 3, 4) = 6 does not bind.
    assert desired(hpa(target=0.5), observe(0, service([0.9] * 3))) == 6


def test_default_target_is_80_percent_utilization() -> None:
    # No metric given: the autoscaling/v2 default, CPU 80%. 5 pods at 100%: 100/80 = 1.25
    # -> ceil(5 x 1.25) = ceil(6.25) = 7.
    assert desired(hpa(), observe(0, service([1.0] * 5))) == 7


# ----------------------------------------------------------------- legacy scale-up limit
@pytest.mark.parametrize(("pods", "expected"), [(1, 4), (5, 10)])
def test_legacy_scale_up_limit(pods: int, expected: int) -> None:
    # 100% vs target 20%: ratio 5 -> proposal 5 x pods (5, 25); no behavior block, so the
    # legacy limit max(2 x current, 4) applies: 1 pod -> max(2, 4) = 4; 5 -> max(10, 4) = 10.
    assert desired(hpa(target=0.2), observe(0, service([1.0] * pods))) == expected


# ----------------------------------------------------------------- scale-down stabilization
def test_scale_down_held_by_300s_window_then_released() -> None:
    # t=0: 10 pods at 60% = target -> keep 10 (recommendations 10, 10 recorded at t=0).
    # t>=15: 30% -> ratio 0.5 -> proposal ceil(10 x 0.5) = 5, but the highest recommendation
    # of the last 300 s is 10 (from t=0) -> hold 10. The legacy window includes its edge
    # (a recommendation is dropped only when it is *before* t - 300), so t=300 still holds;
    # at t=315 only 5s remain -> scale down to 5 (no rate limit without behavior).
    policy = hpa(target=0.6)
    assert desired(policy, observe(0, service([0.6] * 10))) == 10
    for t in range(15, 301, 15):
        assert desired(policy, observe(t, service([0.3] * 10))) == 10, t
    assert desired(policy, observe(315, service([0.3] * 10))) == 5


def test_behavior_window_excludes_its_edge() -> None:
    # Same, with a behavior block (defaults: scale-down window = the controller's 300 s): here
    # a recommendation counts only if it is *after* t - 300, so the t=0 ones drop out at
    # t=300 -> 5 there; the rate limit (100% per 15 s) allows int(10 x 0) = 0 -> 5 stands.
    policy = hpa(target=0.6, behavior={})
    assert desired(policy, observe(0, service([0.6] * 10))) == 10
    for t in range(15, 300, 15):
        assert desired(policy, observe(t, service([0.3] * 10))) == 10, t
    assert desired(policy, observe(300, service([0.3] * 10))) == 5


def test_initial_count_is_the_first_recommendation() -> None:
    # The controller records the current count when it first sees the HPA: 8 pods at 30% vs
    # 60% propose 4 at t=0, but the window already holds 8 -> keep 8.
    assert desired(hpa(target=0.6), observe(0, service([0.3] * 8))) == 8


# ----------------------------------------------------------------- behavior policies
def test_default_behavior_scale_up_then_next_period() -> None:
    # 10 pods at 100% vs 20%: ratio 5 -> proposal 50. Defaults: 4 pods/15 s -> 14,
    # 100%/15 s -> ceil(10 x 2) = 20; selectPolicy Max -> 20.
    policy = hpa(target=0.2, behavior={})
    assert desired(policy, observe(0, service([1.0] * 10))) == 20
    # t=15 with 20 pods: the +10 event at t=0 is not *after* 15 - 15 = 0, so it is outside
    # the period: start 20 -> 24 or 40 -> 40 (proposal 100).
    assert desired(policy, observe(15, service([1.0] * 20))) == 40


def test_select_policy_min() -> None:
    # Same overshoot, selectPolicy Min: min(10 + 4, ceil(10 x 2)) = 14.
    policy = hpa(target=0.2, behavior={"scale_up": {"select_policy": "Min"}})
    assert desired(policy, observe(0, service([1.0] * 10))) == 14


def test_pods_policy_over_a_longer_period() -> None:
    # One policy, 4 pods per 60 s. t=0: 10 -> 14. t=15: the +4 at t=0 is within the last
    # 60 s, so the period started at 14 - 4 = 10 -> limit 14, stay. t=60: the event is not
    # after 60 - 60 = 0 -> start 14 -> 18.
    rules = {"scale_up": {"policies": [{"type": "Pods", "value": 4, "period_s": 60}]}}
    policy = hpa(target=0.2, behavior=rules)
    assert desired(policy, observe(0, service([1.0] * 10))) == 14
    assert desired(policy, observe(15, service([1.0] * 14))) == 14
    assert desired(policy, observe(45, service([1.0] * 14))) == 14
    assert desired(policy, observe(60, service([1.0] * 14))) == 18


def test_scale_down_percent_policy() -> None:
    # Window 0, one policy 50% / 15 s. 10 pods at 6% vs 60%: ratio 0.1 -> proposal 1;
    # limit int(10 x 0.5) = 5 -> 5. t=15: 5 pods -> start 5 (the t=0 event is not after 0)
    # -> int(5 x 0.5) = int(2.5) = 2.
    rules = {"scale_down": {"stabilization_window_s": 0,
                            "policies": [{"type": "Percent", "value": 50, "period_s": 15}]}}
    policy = hpa(target=0.6, behavior=rules)
    assert desired(policy, observe(0, service([0.06] * 10))) == 5
    assert desired(policy, observe(15, service([0.06] * 5))) == 2


@pytest.mark.parametrize(("select", "expected"), [("Max", 5), ("Min", 9)])
def test_scale_down_select_policy(select: str, expected: int) -> None:
    # Policies 50% / 15 s (keeps int(10 x 0.5) = 5) and 1 pod / 15 s (keeps 9). Max takes the
    # largest change -> 5; Min the smallest -> 9.
    rules = {"scale_down": {"stabilization_window_s": 0, "select_policy": select, "policies": [
        {"type": "Percent", "value": 50, "period_s": 15},
        {"type": "Pods", "value": 1, "period_s": 15},
    ]}}
    policy = hpa(target=0.6, behavior=rules)
    assert desired(policy, observe(0, service([0.06] * 10))) == expected


def test_disabled_directions() -> None:
    # selectPolicy Disabled: the limit is the current count, whatever the metric says.
    up = hpa(target=0.2, behavior={"scale_up": {"select_policy": "Disabled"}})
    assert desired(up, observe(0, service([1.0] * 10))) == 10
    down = hpa(target=0.6, behavior={
        "scale_down": {"stabilization_window_s": 0, "select_policy": "Disabled"}})
    assert desired(down, observe(0, service([0.06] * 10))) == 10


def test_scale_up_stabilization_window() -> None:
    # Scale-up window 30 s: the lowest recommendation of the last 30 s wins. t=0: 4 pods at
    # 50% = target -> proposal 4. t=15: 4 at 100% -> proposal 8, but the window (after
    # 15 - 30) still holds the 4 of t=0 -> stay 4. t=30: the t=0 record is not after
    # 30 - 30 = 0; only 8s remain -> 8 (the default rate limits allow max(4+4, 2x4) = 8).
    policy = hpa(target=0.5, behavior={"scale_up": {"stabilization_window_s": 30}})
    assert desired(policy, observe(0, service([0.5] * 4))) == 4
    assert desired(policy, observe(15, service([1.0] * 4))) == 4
    assert desired(policy, observe(30, service([1.0] * 4))) == 8


# ----------------------------------------------------------------- not-ready pods
def test_booting_pods_count_as_zero_on_scale_up() -> None:
    # 4 ready at 100% + 2 booting, target 50%. Ready ratio 2.0 > 1 with unready pods ->
    # re-run with the 2 booting at 0%: 400/6 = 66% -> 66/50 = 1.32 -> ceil(1.32 x 6) =
    # ceil(7.92) = 8 (counting them at the ready average would give ceil(2 x 6) = 12).
    assert desired(hpa(target=0.5), observe(0, service([1.0] * 4, booting=2))) == 8


def test_booting_pods_at_zero_can_land_in_the_tolerance_band() -> None:
    # 10 ready at 95% + 5 booting, target 60%: ready ratio 95/60 = 1.583 (alone it would
    # give ceil(1.583 x 10) = ceil(15.83) = 16). With the booting at 0%: 950/15 = 63% ->
    # 63/60 = 1.05, within the tolerance -> keep 15.
    assert desired(hpa(target=0.6), observe(0, service([0.95] * 10, booting=5))) == 15


def test_booting_pods_flip_direction_means_no_change() -> None:
    # 3 ready at 80% + 3 booting, target 50%: ratio 1.6; with the booting at 0%:
    # 240/6 = 40% -> 0.8 < 1: the direction flips -> keep 6.
    assert desired(hpa(target=0.5), observe(0, service([0.8] * 3, booting=3))) == 6


def test_booting_pods_are_ignored_on_scale_down() -> None:
    # 4 ready at 20% + 2 booting, target 50%, no window: ratio 0.4 < 1, so the booting pods
    # are just left out -> ceil(0.4 x 4) = ceil(1.6) = 2.
    policy = hpa(target=0.5, **NO_DOWN_WINDOW)
    assert desired(policy, observe(0, service([0.2] * 4, booting=2))) == 2


def test_freshly_ready_pod_within_cpu_initialization_is_unready() -> None:
    # 3 old pods at 50% and one that became ready 20 s ago (age 50 s, boot 30 s, metric window
    # 60 s) at 100%, target 50%. Within the CPU initialization period (300 s) and ready for
    # less than a window, its sample is set aside: ratio 50/50 = 1.0 -> keep 4. With the
    # period off, it counts: (150 + 100)/4 = 62% -> 1.24 -> ceil(4 x 1.24) = ceil(4.96) = 5.
    view = service([0.5] * 3, young=[(50.0, 1.0)])
    assert desired(hpa(target=0.5), observe(0, view)) == 4
    assert desired(hpa(target=0.5, cpu_initialization_s=0), observe(0, view)) == 5


# ----------------------------------------------------------------- missing metrics
def test_missing_metric_counts_as_zero_on_scale_up() -> None:
    # 3 ready at 90% + 1 ready without a sample, target 60%: ratio 1.5 -> re-run with the
    # missing one at 0%: 270/4 = 67% -> 67/60 = 1.1167 -> ceil(1.1167 x 4) = ceil(4.47) = 5.
    assert desired(hpa(target=0.6), observe(0, service([0.9, 0.9, 0.9, None]))) == 5


def test_missing_metric_counts_as_full_on_scale_down() -> None:
    # 5 ready at 10% + 1 missing, target 50%, no window: ratio 0.2 -> re-run with the missing
    # one at 100% of its request: (50 + 100)/6 = 25% -> 0.5 -> ceil(0.5 x 6) = 3
    # (ignoring it would give ceil(0.2 x 5) = 1).
    policy = hpa(target=0.5, **NO_DOWN_WINDOW)
    assert desired(policy, observe(0, service([0.1] * 5 + [None]))) == 3


def test_missing_pods_metric_counts_as_target_on_scale_down() -> None:
    # A per-instance metric (concurrency, target 4): 3 at 1.0 + 1 missing. Ratio 0.25 ->
    # the missing one counts as the target, 4: (3 + 4)/4 = 1.75 -> 0.4375 ->
    # ceil(0.4375 x 4) = ceil(1.75) = 2.
    policy = hpa(metric="concurrency", target=4, **NO_DOWN_WINDOW)
    assert desired(policy, observe(0, service([1.0, 1.0, 1.0, None]))) == 2


def test_missing_metrics_flip_direction_means_no_change() -> None:
    # 1 ready at 70% + 3 missing, target 60%: ratio 1.167 -> missing at 0%: 70/4 = 17%
    # -> 0.283 < 1: the direction flips -> keep 4.
    assert desired(hpa(target=0.6), observe(0, service([0.7, None, None, None]))) == 4


def test_no_sample_at_all_skips_the_sync() -> None:
    # Every ready pod lacks a sample: the controller cannot compute a proposal -> keep 3.
    assert desired(hpa(target=0.6), observe(0, service([None, None, None]))) == 3


# ----------------------------------------------------------------- bounds
def test_min_max_clamping() -> None:
    # 4 at 100% vs 50%: proposal 8, max_replicas 6 -> 6.
    assert desired(hpa(target=0.5, max_replicas=6), observe(0, service([1.0] * 4))) == 6
    # 4 at 5% vs 50%: ratio 0.1 -> ceil(0.4) = 1, min_replicas 3 -> 3.
    policy = hpa(target=0.5, min_replicas=3, **NO_DOWN_WINDOW)
    assert desired(policy, observe(0, service([0.05] * 4))) == 3
    # Above max without any sample: the controller goes straight to max.
    assert desired(hpa(target=0.5, max_replicas=6), observe(0, service([None] * 10))) == 6
    # Below min: straight to min.
    assert desired(hpa(target=0.5, min_replicas=5), observe(0, service([0.5] * 2))) == 5


def test_min_replicas_defaults_to_one() -> None:
    # The service allows 0 instances, but minReplicas defaults to 1: 3 idle pods -> ratio 0
    # -> proposal ceil(0) = 0 -> 1.
    policy = hpa(target=0.5, **NO_DOWN_WINDOW)
    assert desired(policy, observe(0, service([0.0] * 3, svc_min=0))) == 1


def test_zero_replicas_disables_scaling() -> None:
    # currentReplicas 0 with minReplicas 1: "scaling is disabled" -> stays 0.
    assert desired(hpa(target=0.5), observe(0, service([]))) == 0


def test_service_bounds_intersect_hpa_bounds() -> None:
    # The service's instances.max 5 is below the HPA's max: 4 at 100% vs 50% -> 8 -> 5.
    assert desired(hpa(target=0.5), observe(0, service([1.0] * 4, svc_max=5))) == 5


# ----------------------------------------------------------------- other metric kinds
def test_latency_object_metric_uses_ready_count() -> None:
    # p95 400 ms vs target 200 ms: ratio 2 -> ceil(2 x ready 5) = 10 (the booting one is not
    # ready); legacy limit max(12, 4) does not bind.
    view = service([None] * 5, booting=1, service_metrics={"p95_ms": 400.0})
    assert desired(hpa(metric="p95_ms", target=200), observe(0, view)) == 10


def test_arrival_rate_external_average_value() -> None:
    # 900 rps vs 100 rps per instance with 6 current: ratio 900/600 = 1.5 -> ceil(900/100) = 9.
    view = service([None] * 6, service_metrics={"arrival_rps": 900.0})
    assert desired(hpa(metric="arrival_rps", target=100), observe(0, view)) == 9


def test_per_direction_tolerance() -> None:
    # ratio 30/50 = 0.6: outside the default band (scale to ceil(0.6 x 10) = 6), inside a
    # scale-down tolerance of 0.5 (band [0.5, 1.1]) -> keep 10.
    view = service([0.3] * 10)
    plain = hpa(target=0.5, behavior={"scale_down": {"stabilization_window_s": 0}})
    assert desired(plain, observe(0, view)) == 6
    wide = hpa(target=0.5, behavior={"scale_down": {"stabilization_window_s": 0,
                                                    "tolerance": 0.5}})
    assert desired(wide, observe(0, view)) == 10


def test_per_service_overrides() -> None:
    # browse keeps target 60%: 4 at 90% -> 90/60 = 1.5 -> 6. order has target 30%:
    # 4 at 90% -> 3.0 -> 12, capped by the legacy limit max(8, 4) = 8.
    policy = hpa(("browse", "order"), target=0.6, services={"order": {"target": 0.3}})
    obs = observe(0, service([0.9] * 4, name="browse"), service([0.9] * 4, name="order"))
    assert policy.decide(obs) == {"browse": 6, "order": 8}
    assert policy.instance_metric("order") == "utilization"


def test_disabled_service_is_left_alone() -> None:
    policy = hpa(("browse", "order"), target=0.5, services={"order": {"enabled": False}})
    obs = observe(0, service([1.0] * 4, name="browse"), service([1.0] * 4, name="order"))
    assert policy.decide(obs) == {"browse": 8}
    assert policy.instance_metric("order") is None
