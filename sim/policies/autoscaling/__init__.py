"""Autoscaling policies: pure decisions over plain observations (no SimPy, no I/O).

Owns the plug-in contract (``AutoscalingPolicy.decide(Observation) -> counts``), every
policy's parameters and the registry ``POLICIES`` (name -> class). May import only the
foundation modules (``sim.errors``, ``sim.units``, ``sim.schema``): the scenario is built from
these parameter classes, never the other way round.
"""

from sim.policies.autoscaling.base import (
    AutoscalingPolicy,
    InstanceView,
    Observation,
    PolicyContext,
    PolicyError,
    ServiceInfo,
    ServiceView,
)
from sim.policies.autoscaling.forecast import HoltForecaster, SeasonalNaiveForecaster
from sim.policies.autoscaling.hpa import TargetTrackingPolicy
from sim.policies.autoscaling.hpa_config import Behavior, HpaSettings, TargetTrackingParams
from sim.policies.autoscaling.k8s_read import read_scalers
from sim.policies.autoscaling.kubernetes import KubernetesParams, KubernetesPolicy
from sim.policies.autoscaling.predictive import PredictiveParams, PredictivePolicy
from sim.policies.autoscaling.registry import POLICIES, POLICY_ALIASES, build_policy
from sim.policies.autoscaling.scheduled import ScheduledParams, StaticParams
from sim.policies.autoscaling.step import StepParams

__all__ = [
    "Behavior",
    "KubernetesParams",
    "KubernetesPolicy",
    "read_scalers",
    "AutoscalingPolicy",
    "HoltForecaster",
    "HpaSettings",
    "InstanceView",
    "Observation",
    "POLICIES",
    "POLICY_ALIASES",
    "PolicyContext",
    "PolicyError",
    "PredictiveParams",
    "PredictivePolicy",
    "ScheduledParams",
    "SeasonalNaiveForecaster",
    "ServiceInfo",
    "ServiceView",
    "StaticParams",
    "StepParams",
    "TargetTrackingParams",
    "TargetTrackingPolicy",
    "build_policy",
]
