"""Kubernetes manifests in: the shipped examples map to the expected rules, and every kind of
unmappable or invalid field is an error naming the manifest file, the field path and the line
(through ``peaksim validate``: exit 2, no traceback)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from sim.cli import app
from sim.errors import ScenarioError
from sim.policies.autoscaling import read_scalers
from sim.policies.autoscaling.k8s_keda import query_metric

EXAMPLES = Path(__file__).resolve().parent.parent / "scenarios"
SERVICES = ("browse", "order", "payment")

HPA = """apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: api}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: api}
  minReplicas: 2
  maxReplicas: 9
  metrics:
    - type: Resource
      resource: {name: cpu, target: {type: Utilization, averageUtilization: 70}}
"""

KEDA = """apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: api}
spec:
  scaleTargetRef: {name: api}
  minReplicaCount: 1
  triggers:
    - type: cron
      metadata: {timezone: UTC, start: "0 23 * * *", end: "30 23 * * *", desiredReplicas: "5"}
"""


def _read(tmp_path: Path, text: str, services: tuple[str, ...] = ("api",),
          targets: dict[str, str] | None = None) -> dict:
    (tmp_path / "m.yaml").write_text(text, encoding="utf-8")
    return read_scalers(["m.yaml"], str(tmp_path), services, targets or {}, {}, None,
                        dated=False)


def _problem(tmp_path: Path, text: str, **kwargs: object) -> str:
    with pytest.raises(ScenarioError) as info:
        _read(tmp_path, text, **kwargs)  # type: ignore[arg-type]
    assert len(info.value.problems) >= 1
    return str(info.value.problems[0])


def test_shipped_examples_map_every_metric_trigger_and_behavior() -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    start = datetime(2026, 11, 10, 23, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    scalers = read_scalers(["k8s/hpa.yaml", "k8s/keda.yaml"], str(EXAMPLES), SERVICES, {}, {},
                           start, dated=True)
    order = scalers["order"]
    assert order.kind == "HorizontalPodAutoscaler" and (order.min_replicas,
                                                       order.max_replicas) == (1, 30)
    assert [(r.metric, r.kind, r.target) for r in order.metrics] == [
        ("utilization", "pods", 0.6), ("rps", "pods", 60.0)]
    assert order.behavior is not None and order.behavior.scale_down is not None
    down = order.behavior.scale_down
    assert down.stabilization_window_s == 300
    assert [(p.type, p.value, p.period_s) for p in down.policies or ()] == [("Percent", 50, 60)]
    payment = scalers["payment"]
    assert payment.kind == "ScaledObject" and payment.crons[0].replicas == 7
    assert payment.crons[0].timezone == "Asia/Shanghai"
    assert [(r.metric, r.kind, r.target) for r in payment.metrics] == [
        ("arrival_rps", "average_value", 50.0)]
    assert payment.idle_replicas is None  # minReplicaCount 1: never idles at zero
    assert [(r.metric, r.target) for r in scalers["browse"].metrics] == [("utilization", 0.6)]


def test_shipped_planned_manifests_give_one_count_at_every_minute_of_the_run() -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from sim.policies.autoscaling.kubernetes import CronTimeline

    start = datetime(2026, 11, 10, 23, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    files = sorted(str(p.relative_to(EXAMPLES))
                   for p in (EXAMPLES / "k8s" / "planned").glob("*-scaledobject.yaml"))
    scalers = read_scalers(files, str(EXAMPLES), SERVICES, {}, {}, start, dated=True)
    assert sorted(scalers) == sorted(SERVICES)
    for scaler in scalers.values():
        assert not scaler.metrics  # the plan alone: cron triggers only
        timelines = [CronTimeline(cron, start) for cron in scaler.crons]
        for t_s in range(0, 7200, 60):
            assert sum(tl.active(float(t_s)) for tl in timelines) == 1, t_s


def test_services_mapping_maps_a_target_of_another_name(tmp_path: Path) -> None:
    scalers = _read(tmp_path, HPA.replace("name: api}", "name: shop-api}"),
                    targets={"api": "shop-api"})
    assert scalers["api"].target == "shop-api"


@pytest.mark.parametrize(("text", "path", "words"), [
    (HPA.replace("maxReplicas: 9", "maxReplicas: 9\n  bogus: 1"), "spec.bogus",
     "unknown field"),
    (HPA.replace("  maxReplicas: 9\n", ""), "spec.maxReplicas", "missing"),
    (HPA.replace("name: cpu", "name: memory"), "spec.metrics[0].resource.name", "memory"),
    (HPA.replace("type: Utilization, averageUtilization: 70",
                 "type: AverageValue, averageValue: 500m"),
     "spec.metrics[0].resource.target.type", "CPU request"),
    (HPA.replace("- type: Resource\n      resource: {name: cpu, target: {type: Utilization, "
                 "averageUtilization: 70}}",
                 "- type: Pods\n      pods: {metric: {name: gpu_seconds}, target: "
                 "{type: AverageValue, averageValue: 1}}"),
     "spec.metrics[0].pods.metric.name", "gpu_seconds"),
    (HPA.replace("autoscaling/v2", "autoscaling/v1"), "apiVersion", "autoscaling/v2"),
    (HPA.replace("name: api}\n  minReplicas", "name: web}\n  minReplicas"),
     "spec.scaleTargetRef.name", "matches no service"),
    (KEDA.replace("type: cron", "type: kafka"), "spec.triggers[0].type", "kafka"),
    (KEDA.replace('start: "0 23 * * *"', 'start: "0 25 * * *"'),
     "spec.triggers[0].metadata.start", "cron expression"),
    (KEDA.replace("timezone: UTC", "timezone: Mars/Base"),
     "spec.triggers[0].metadata.timezone", "IANA"),
    (KEDA.replace("minReplicaCount: 1", "minReplicaCount: 1\n  pollingIntervall: 5"),
     "spec.pollingIntervall", "unknown field"),
    (KEDA.replace("minReplicaCount: 1", "minReplicaCount: 1\n  advanced:\n    "
                  "scalingModifiers: {formula: a + b}"),
     "spec.advanced.scalingModifiers", "formula"),
    (KEDA.replace("minReplicaCount: 1", "minReplicaCount: 1\n  advanced:\n    "
                  "horizontalPodAutoscalerConfig:\n      behavior:\n        scaleUp:\n"
                  "          policies: [{type: Pods, value: 4, periodSeconds: 3600}]"),
     "spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleUp.policies[0].periodSeconds",
     "1800"),
    (HPA + "---\n" + HPA, "spec.scaleTargetRef.name", "already scaled"),
])
def test_unmappable_or_invalid_fields_are_errors_naming_the_field(
    tmp_path: Path, text: str, path: str, words: str
) -> None:
    message = _problem(tmp_path, text)
    assert message.startswith("m.yaml:")
    assert f" {path}:" in message, message
    assert words in message, message


def test_error_carries_the_line_of_the_field(tmp_path: Path) -> None:
    text = HPA.replace("name: cpu", "name: memory")
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "memory" in row)
    assert _problem(tmp_path, text).startswith(f"m.yaml:{line}:")


def test_dated_cron_needs_the_scenario_start_date(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    (tmp_path / "m.yaml").write_text(KEDA.replace('"30 23 * * *"', '"30 23 10 11 *"'),
                                     encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        read_scalers(["m.yaml"], str(tmp_path), ("api",), {}, {},
                     datetime(2000, 1, 1, tzinfo=UTC), dated=False)
    assert "start_date" in str(info.value)


@pytest.mark.parametrize(("query", "expected"), [
    ('sum(rate(http_requests_total{service="pay"}[1m]))', ("arrival_rps", 1.0)),
    ("histogram_quantile(0.99, sum(rate(http_request_duration_seconds_bucket[1m])) by (le))",
     ("p99_ms", 1000.0)),
    ("histogram_quantile(0.95, sum(rate(latency_ms_bucket[1m])) by (le))", ("p95_ms", 1.0)),
    ("sum(http_requests_in_flight)", ("concurrency", 1.0)),
])
def test_prometheus_queries_map_to_the_nearest_metric(query: str,
                                                      expected: tuple[str, float]) -> None:
    assert query_metric(query) == expected


def test_unmappable_prometheus_query_is_a_reason() -> None:
    found = query_metric("sum(node_memory_MemFree_bytes)")
    assert isinstance(found, str) and "matches no peaksim metric" in found


def test_validate_reports_a_bad_manifest_of_a_scenario(tmp_path: Path) -> None:
    (tmp_path / "hpa.yaml").write_text(HPA.replace("name: cpu", "name: memory"),
                                       encoding="utf-8")
    (tmp_path / "s.yaml").write_text("""
name: t
seed: 1
duration_s: 60
traffic: {kind: constant, rps: {api: 1}}
services:
  api: {service_time: {dist: constant, mean_ms: 10}, workers: 1, instances: 1}
autoscaling:
  variants:
    k8s: {policy: kubernetes, manifests: [hpa.yaml]}
""", encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", str(tmp_path / "s.yaml")])
    assert result.exit_code == 2
    assert "hpa.yaml:10: spec.metrics[0].resource.name:" in result.output
    assert "Traceback" not in result.output
