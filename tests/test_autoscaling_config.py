"""The ``autoscaling:`` section: defaults, validation errors with field paths, service checks,
and ``build_policy``."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from sim.errors import ScenarioError
from sim.model import AutoscalingSection, Service, check_autoscaling, parse_scenario
from sim.policies.autoscaling import (
    PolicyContext,
    PolicyError,
    ServiceInfo,
    TargetTrackingPolicy,
    build_policy,
)

SERVICES = {
    "browse": Service.model_validate({
        "service_time": {"dist": "exponential", "mean_ms": 30}, "workers": 16,
        "instances": {"min": 2, "max": 60, "initial": 16}, "boot_s": 30}),
    "payment": Service.model_validate({
        "service_time": {"dist": "exponential", "mean_ms": 80}, "workers": 8,
        "instances": {"min": 1, "max": 30, "initial": 7}, "boot_s": 60}),
}


def section(data: dict[str, Any], start_clock_s: float | None = None) -> AutoscalingSection:
    return AutoscalingSection.model_validate(data, context={"start_clock_s": start_clock_s})


def errors(data: dict[str, Any]) -> dict[str, str]:
    """Dotted path -> message of every error, as the scenario loader reports them: pydantic's
    union tags (capitalised, not keys of the file) are left out of the path."""
    with pytest.raises(ValidationError) as info:
        section(data)
    out = {}
    for error in info.value.errors(include_url=False):
        loc = [str(p) for p in error["loc"] if not (isinstance(p, str) and p[:1].isupper())]
        out[".".join(["autoscaling", *loc])] = error["msg"]
    return out


def test_defaults_and_a_full_section() -> None:
    text = """
    default: hpa
    variants:
      static-peak: {policy: static, instances: {browse: 16, payment: 7}}
      hpa: {policy: target_tracking, metric: utilization, target: 0.6}
      prewarm:
        policy: scheduled
        schedule:
          - {at: "23:50", instances: {browse: 40}}
          - {at: "00:30", instances: {browse: 16}}
      forecast: {policy: predictive, source: plan, lead_s: 2m}
    """
    parsed = section(yaml.safe_load(text), start_clock_s=23 * 3600.0)
    assert (parsed.interval_s, parsed.scrape_s, parsed.window_s) == (15.0, 15.0, 60.0)
    assert parsed.default == "hpa"
    # Clock times resolve to run seconds from the 23:00 start: 50 min and 90 min.
    assert [e.at for e in parsed.variants["prewarm"].schedule] == [3000.0, 5400.0]
    assert parsed.variants["forecast"].lead_s == 120.0
    assert check_autoscaling(parsed, SERVICES) == []


def test_unknown_policy_suggests_the_closest() -> None:
    found = errors({"variants": {"hpa": {"policy": "target_trackin", "target": 0.6}}})
    message = found["autoscaling.variants.hpa.policy"]
    assert "unknown policy 'target_trackin'" in message
    assert "did you mean 'target_tracking'" in message


def test_missing_policy_and_not_a_mapping() -> None:
    found = errors({"variants": {"a": {"target": 0.6}, "b": "hpa"}})
    assert "autoscaling.variants.a.policy" in found
    assert "mapping" in found["autoscaling.variants.b"]


def test_negative_target_has_its_path() -> None:
    found = errors({"variants": {"hpa": {"policy": "target_tracking", "target": -0.5}}})
    assert list(found) == ["autoscaling.variants.hpa.target"]
    assert "greater than or equal to 0.001" in found["autoscaling.variants.hpa.target"]


def test_min_above_max_in_service_overrides() -> None:
    own = {"policy": "target_tracking", "services": {"payment": {"min_replicas": 5,
                                                                  "max_replicas": 3}}}
    inherited = {"policy": "target_tracking", "min_replicas": 5,
                 "services": {"payment": {"max_replicas": 3}}}
    for variant in (own, inherited):
        found = errors({"variants": {"hpa": variant}})
        assert found == {"autoscaling.variants.hpa.services.payment.min_replicas":
                         "min_replicas (5) must not exceed max_replicas (3)"}


def test_metric_without_default_target_and_utilization_above_one() -> None:
    found = errors({"variants": {
        "a": {"policy": "target_tracking", "metric": "p95_ms"},
        "b": {"policy": "target_tracking", "target": 1.5},
    }})
    assert "needs a target" in found["autoscaling.variants.a.target"]
    assert "never exceeds 1" in found["autoscaling.variants.b.target"]


def test_unknown_key_is_reported_with_a_suggestion() -> None:
    found = errors({"variants": {"hpa": {"policy": "target_tracking", "targt": 0.5}}})
    assert "did you mean 'target'" in found["autoscaling.variants.hpa.targt"]


def test_behavior_values_are_checked() -> None:
    found = errors({"variants": {"hpa": {"policy": "target_tracking", "behavior": {
        "scale_up": {"select_policy": "Maximum",
                     "policies": [{"type": "Pods", "value": 0, "period_s": 15}]},
        "scale_down": {"policies": [{"type": "Percent", "value": 10, "period_s": 3600}]},
    }}}})
    base = "autoscaling.variants.hpa.behavior"
    assert f"{base}.scale_up.select_policy" in found
    assert f"{base}.scale_up.policies.0.value" in found
    assert f"{base}.scale_down.policies.0.period_s" in found  # upstream caps it at 1800 s


def test_step_alarm_errors() -> None:
    found = errors({"variants": {"st": {"policy": "step",
        "scale_out": {"threshold": 0.7, "evaluation_periods": 2, "datapoints": 3,
                      "steps": [{"lower": 0, "upper": 0.1, "change": 1},
                                {"lower": 0.2, "change": 3}]},
    }}})
    assert "must not exceed evaluation_periods" in found[
        "autoscaling.variants.st.scale_out.datapoints"]
    assert "without gaps" in found["autoscaling.variants.st.scale_out.steps.1"]
    found = errors({"variants": {"st": {"policy": "step",
        "scale_out": {"threshold": 0.5}, "scale_in": {"threshold": 0.6,
                                                      "steps": [{"upper": 0, "change": 1}]},
    }}})
    assert "below the scale_out threshold" in found["autoscaling.variants.st.scale_in.threshold"]
    assert "< 0" in found["autoscaling.variants.st.scale_in.steps.0.change"]


def test_schedule_order_and_predictive_method() -> None:
    found = errors({"variants": {
        "s": {"policy": "scheduled", "schedule": [{"at": 100, "instances": {"browse": 1}},
                                                   {"at": 50, "instances": {"browse": 2}}]},
        "p": {"policy": "predictive", "source": "plan", "method": "holt"},
    }})
    assert "increasing order" in found["autoscaling.variants.s.schedule.1.at"]
    assert "learned only" in found["autoscaling.variants.p.method"]


def test_default_must_name_a_variant_and_window_must_hold_a_scrape() -> None:
    found = errors({"default": "hpb", "window_s": 5,
                    "variants": {"hpa": {"policy": "target_tracking"}}})
    assert "did you mean 'hpa'" in found["autoscaling.default"]
    assert "at least scrape_s" in found["autoscaling.window_s"]


def test_checks_against_the_scenario_services() -> None:
    parsed = section({"variants": {
        "peak": {"policy": "static", "instances": {"browse": 80, "order": 3}},
        "hpa": {"policy": "target_tracking", "services": {"payment": {"min_replicas": 40}}},
        "fast": {"policy": "predictive", "source": "plan", "lead_s": 60},
    }})
    found = dict(check_autoscaling(parsed, SERVICES))
    assert "exceed services.browse.instances.max (60)" in found[
        ("autoscaling", "variants", "peak", "instances", "browse")]
    assert "not under 'services'" in found[("autoscaling", "variants", "peak", "instances",
                                            "order")]
    assert "exceeds services.payment.instances.max" in found[
        ("autoscaling", "variants", "hpa", "services", "payment", "min_replicas")]
    # payment boots in 60 s: 60 + 15 = 75 s > lead_s 60 s.
    lead = found[("autoscaling", "variants", "fast", "lead_s")]
    assert "boot_s of 'payment' (60 s) + interval_s (15 s) = 75 s" in lead
    assert len(found) == 4


def test_lead_only_counts_the_services_it_scales() -> None:
    parsed = section({"variants": {"fast": {"policy": "predictive", "source": "plan",
                                            "lead_s": 45, "services": ["browse"]}}})
    assert check_autoscaling(parsed, SERVICES) == []  # browse: 30 + 15 = 45 s


def ctx(forecast: Any = None) -> PolicyContext:
    info = ServiceInfo(workers=8, min=1, max=30, initial=7, boot_s=60.0, mean_service_ms=80.0)
    return PolicyContext(services={"payment": info}, interval_s=15.0, start_clock_s=None,
                         forecast_rps=forecast, window_s=30.0)


def test_build_policy_by_variant_or_bare_policy_name() -> None:
    parsed = section({"window_s": 90, "variants": {"hpa": {"policy": "target_tracking"}}})
    policy = build_policy("hpa", parsed, ctx())
    assert isinstance(policy, TargetTrackingPolicy)
    assert policy.context.window_s == 90.0  # taken from the section
    assert isinstance(build_policy("target_tracking", None, ctx()), TargetTrackingPolicy)
    with pytest.raises(PolicyError, match="needs parameters"):
        build_policy("scheduled", parsed, ctx())
    with pytest.raises(PolicyError, match="did you mean 'hpa'"):
        build_policy("hpb", parsed, ctx())


def test_build_policy_hands_the_plan_only_to_plan_users() -> None:
    def plan(service: str, t_s: float) -> float:
        return 1.0

    parsed = section({"variants": {
        "plan": {"policy": "predictive", "source": "plan", "lead_s": 75},
        "learned": {"policy": "predictive", "source": "learned", "lead_s": 75},
        "hpa": {"policy": "target_tracking"},
    }})
    assert build_policy("plan", parsed, ctx(plan)).context.forecast_rps is plan
    assert build_policy("learned", parsed, ctx(plan)).context.forecast_rps is None
    assert build_policy("hpa", parsed, ctx(plan)).context.forecast_rps is None


SCENARIO = """
name: t
seed: 1
duration: 1h
start_clock: "23:00"
traffic: {kind: constant, rps: {browse: 10}}
services:
  browse:
    service_time: {dist: exponential, mean_ms: 30}
    workers: 16
    instances: {min: 1, max: 20, initial: 4}
autoscaling:
  variants:
    hpa: {policy: target_tracking, target: -1}
"""


def test_scenario_loader_reports_the_path() -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(SCENARIO)
    assert [p.path for p in info.value.problems] == ["autoscaling.variants.hpa.target"]


def test_scenario_loader_runs_the_service_checks() -> None:
    text = SCENARIO.replace("{policy: target_tracking, target: -1}",
                            "{policy: predictive, source: plan, lead_s: 20}")
    text = text.replace("max: 20, initial: 4}", "max: 20, initial: 4}\n    boot_s: 30")
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text)
    (problem,) = info.value.problems
    assert problem.path == "autoscaling.variants.hpa.lead_s"
    assert "(30 s) + interval_s (15 s) = 45 s" in problem.message
    assert problem.line == 15  # the line holding the variant
