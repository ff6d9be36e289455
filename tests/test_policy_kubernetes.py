"""The ``kubernetes`` policy as a pure function: cron windows in their time zone, one proposal
per metric (the largest wins, as upstream's computeReplicasForMetrics), the tolerance applied
to a cron trigger, and KEDA's idle count."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sim.policies.autoscaling import (
    HpaSettings,
    InstanceView,
    KubernetesParams,
    KubernetesPolicy,
    Observation,
    PolicyContext,
    ServiceInfo,
    ServiceView,
)
from sim.policies.autoscaling.k8s_common import CronWindow, MetricRule, TargetScaler
from sim.policies.autoscaling.kubernetes import CronTimeline, ManifestHpa

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 10, 23, 0, tzinfo=SHANGHAI)


def _cron(start: str, end: str, replicas: int = 7, tz: str = "Asia/Shanghai") -> CronWindow:
    return CronWindow(start, end, tz, replicas, "m.yaml: spec.triggers[0]")


def test_cron_window_opens_at_start_and_closes_at_end() -> None:
    timeline = CronTimeline(_cron("45 23 10 11 *", "40 0 11 11 *"), T0)
    assert not timeline.active(2699.0)
    assert timeline.active(2700.0)  # 23:45 is 45 min after 23:00
    assert timeline.active(5999.0)
    assert not timeline.active(6000.0)  # 00:40


def test_cron_time_zone_is_the_trigger_own() -> None:
    # 23:45 UTC is 07:45 the next morning in Shanghai (UTC+8): 8 h 45 min after t=0.
    timeline = CronTimeline(_cron("45 23 10 11 *", "0 0 11 11 *", tz="UTC"), T0)
    assert not timeline.active(2700.0)
    assert timeline.active(8 * 3600 + 45 * 60)


def test_cron_times_are_elapsed_seconds_across_a_dst_change() -> None:
    # Berlin skips 02:00-03:00 on 29 March 2026: 04:00 local is 3 h after midnight
    t0 = datetime(2026, 3, 29, 0, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    timeline = CronTimeline(_cron("0 4 29 3 *", "0 5 29 3 *", tz="Europe/Berlin"), t0)
    assert not timeline.active(3 * 3600 - 1) and timeline.active(3 * 3600)
    assert timeline.active(4 * 3600 - 1) and not timeline.active(4 * 3600)


def test_window_opened_before_the_run_is_open_at_start() -> None:
    timeline = CronTimeline(_cron("0 8 1 11 *", "0 8 20 11 *"), T0)  # 1 to 20 November
    assert timeline.active(0.0) and timeline.active(3600.0)


def _view(current: int, utilization: float | None, rps: float | None = None,
          arrival: float | None = None) -> ServiceView:
    metrics = {"utilization": utilization, "rps": rps, "arrival_rps": arrival,
               "concurrency": None, "queue": None, "p95_ms": None, "p99_ms": None}
    instances = tuple(InstanceView(ready=True, age_s=3600.0, metric=utilization)
                      for _ in range(current))
    return ServiceView(name="api", current=current, ready=current, booting=0, min=1, max=50,
                       workers=4, boot_s=30.0, mean_service_ms=50.0, metrics=metrics,
                       instances=instances)


def _hpa(rules: tuple[MetricRule, ...], crons: tuple[CronWindow, ...] = (),
         tolerance: float = 0.1) -> ManifestHpa:
    scaler = TargetScaler("m.yaml", "ScaledObject", "api", "api", 1, 50, rules, None, crons)
    settings = HpaSettings.model_validate({"tolerance": tolerance, "max_replicas": 50})
    return ManifestHpa(scaler, settings.resolve("api"), 60.0, T0)


UTIL = MetricRule("utilization", "pods", 0.6, "m.yaml: spec.metrics[0]")
RPS = MetricRule("rps", "pods", 60.0, "m.yaml: spec.metrics[1]")
ARRIVAL = MetricRule("arrival_rps", "average_value", 50.0, "m.yaml: spec.triggers[1]")


def test_largest_proposal_of_several_metrics_wins() -> None:
    hpa = _hpa((UTIL, RPS))
    # utilization 0.90 / 0.60 over 4 -> ceil(1.5 x 4) = 6; rps 30 / 60 -> ceil(0.5 x 4) = 2
    assert hpa._propose(_view(4, 0.90, rps=30.0)) == 6
    # utilization 0.30 -> 2; rps 150 / 60 over 4 -> ceil(2.5 x 4) = 10
    assert hpa._propose(_view(4, 0.30, rps=150.0)) == 10


def test_missing_metric_blocks_a_scale_down() -> None:
    hpa = _hpa((UTIL, ARRIVAL))
    # utilization says 2 of 4; arrival_rps is missing: upstream keeps the current count
    assert hpa._propose(_view(4, 0.30, arrival=None)) == 4
    # arrival_rps 460 / 50 per instance -> ceil(9.2) = 10 (an AverageValue External metric)
    assert hpa._propose(_view(4, 0.30, arrival=460.0)) == 10


def test_cron_trigger_is_an_average_value_metric_within_the_tolerance() -> None:
    cron = _cron("0 23 10 11 *", "0 1 11 11 *", replicas=13)
    hpa = _hpa((), (cron,))
    hpa.now_s = 60.0
    # 13 against 14 current: ratio 13/14 = 0.93 lies within the default 10% tolerance
    assert hpa._propose(_view(14, None)) == 14
    exact = _hpa((), (cron,), tolerance=0.0)
    exact.now_s = 60.0
    assert exact._propose(_view(14, None)) == 13
    exact.now_s = 7200.0  # after the window: the trigger's value is 1
    assert exact._propose(_view(14, None)) == 1


IDLE_SO = """apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: api}
spec:
  scaleTargetRef: {name: api}
  minReplicaCount: 0
  cooldownPeriod: 300
  triggers:
    - type: cron
      metadata: {timezone: Asia/Shanghai, start: 0 23 10 11 *, end: 10 23 10 11 *,
                 desiredReplicas: "5"}
"""


def test_keda_idles_after_the_cooldown_without_an_active_trigger(tmp_path: Path) -> None:
    (tmp_path / "so.yaml").write_text(IDLE_SO, encoding="utf-8")
    params = KubernetesParams.model_validate({"policy": "kubernetes", "manifests": ["so.yaml"]})
    context = PolicyContext({"api": ServiceInfo(4, 0, 50, 1, 30.0, 50.0)}, 15.0, None, None,
                            start_time=T0, base_dir=str(tmp_path))
    policy = KubernetesPolicy(params, context)
    assert policy.initial_counts() == {"api": 5}  # the window is open at t=0

    def decide(t_s: float, current: int) -> dict[str, int]:
        return policy.decide(Observation(t_s, None, {"api": _view(current, 0.1)}, {}))

    assert decide(300.0, 3) == {"api": 5}  # inside the window (legacy limit: max(2 x 3, 4))
    assert decide(590.0, 5) == {}  # still inside: no change
    assert decide(700.0, 5) == {}  # closed at 23:10; cooldown and stabilization hold 5
    assert decide(900.0, 5) == {"api": 0}  # 310 s after the last active moment: idle
    assert decide(915.0, 0) == {}  # idle stays idle while no trigger is active
