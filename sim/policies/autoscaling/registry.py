"""The autoscaling policy registry (scenario name -> class) and ``build_policy``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Protocol

from pydantic import ValidationError

from sim.policies.autoscaling.base import AutoscalingPolicy, PolicyContext, PolicyError
from sim.policies.autoscaling.hpa import TargetTrackingPolicy
from sim.policies.autoscaling.kubernetes import KubernetesPolicy
from sim.policies.autoscaling.predictive import PredictivePolicy
from sim.policies.autoscaling.scheduled import ScheduledPolicy, StaticPolicy
from sim.policies.autoscaling.step import StepPolicy
from sim.schema import Strict, suggest

POLICIES: Mapping[str, type[AutoscalingPolicy]] = MappingProxyType({
    cls.name: cls
    for cls in (StaticPolicy, TargetTrackingPolicy, StepPolicy, ScheduledPolicy, PredictivePolicy,
                KubernetesPolicy)
})
"""Every autoscaling policy by the name scenarios use in ``policy:``."""

POLICY_ALIASES: Mapping[str, str] = MappingProxyType({
    # What people call these policies elsewhere (lower case, "-" and " " read as "_").
    "hpa": "target_tracking", "kubernetes": "target_tracking", "k8s": "target_tracking",
    "horizontal_pod_autoscaler": "target_tracking", "keda": "target_tracking",
    "aws": "target_tracking", "target_tracking_scaling": "target_tracking",
    "cpu": "target_tracking", "reactive": "target_tracking",
    "step_scaling": "step", "simple_scaling": "step", "alarm": "step", "alarms": "step",
    "cron": "scheduled", "schedule": "scheduled", "scheduled_scaling": "scheduled",
    "prewarm": "scheduled", "pre_warm": "scheduled",
    "predictive_scaling": "predictive", "forecast": "predictive",
    "fixed": "static", "none": "static", "manual": "static", "constant": "static",
})
"""Other names of the policies (Kubernetes, KEDA, AWS Auto Scaling), for "did you mean"."""


class VariantSource(Protocol):
    """What ``build_policy`` reads of a scenario's autoscaling section (``sim.model``)."""

    @property
    def variants(self) -> Mapping[str, Strict]: ...

    @property
    def window_s(self) -> float: ...


def build_policy(
    variant_name: str, section: VariantSource | None, context: PolicyContext
) -> AutoscalingPolicy:
    """A fresh policy for ``variant_name``: a variant of ``section``, or a bare policy name
    whose parameters all have defaults (``static``, ``target_tracking``).

    ``context.forecast_rps`` is kept only for a policy that declares it uses the plan;
    ``context.window_s`` is taken from the section. Raises ``PolicyError`` for unknown names.
    """
    variants = section.variants if section is not None else {}
    params: Strict
    if variant_name in variants:
        params = variants[variant_name]
    elif variant_name in POLICIES:
        try:
            params = POLICIES[variant_name].Params.model_validate(
                {"policy": variant_name}, context={"start_clock_s": context.start_clock_s}
            )
        except ValidationError:
            raise PolicyError(
                f"policy {variant_name!r} needs parameters: define a variant using it under "
                "'autoscaling.variants' in the scenario"
            ) from None
    else:
        known = sorted(set(variants) | set(POLICIES))
        raise PolicyError(
            f"unknown autoscaling variant or policy '{variant_name}'"
            f"{suggest(variant_name, known, POLICY_ALIASES)}; known: {', '.join(known)}"
        )
    cls = POLICIES[params.policy]  # type: ignore[attr-defined]
    context = replace(
        context,
        forecast_rps=context.forecast_rps if cls.uses_plan(params) else None,
        window_s=section.window_s if section is not None else context.window_s,
    )
    return cls(params, context)
