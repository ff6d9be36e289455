"""Capacity planning: queueing estimates, the peak window and the search by simulation.

Owns ``make_plan`` (how many instances, ready by when) and the plan.json content, the
queueing formulas (Erlang C, Allen–Cunneen), and ``plan_schedule`` (the cheapest
instances-over-time schedule, its variant, schedule.json and Kubernetes manifests). May
import the foundation modules, ``sim.model``, ``sim.policies.autoscaling`` and
``sim.engine``; writing run directories and reports is left to ``sim.runs``.
"""

from sim.plan.estimate import (
    ServiceModel,
    estimate_instances,
    max_rate_rps,
    objective_holds,
    service_time_grid_s,
)
from sim.plan.k8s_emit import emit_k8s
from sim.plan.planner import DEFAULT_HEADROOM, DEFAULT_MARGIN_S, PlanError, make_plan
from sim.plan.plans import PLAN_FILE, ObjectiveCheck, Plan, ServicePlan, plan_json, plan_verdict
from sim.plan.queueing import (
    erlang_c,
    mg1_mean_wait_s,
    mgc_mean_wait_s,
    mgc_response_quantile_s,
    mgc_response_survival,
    mmc_mean_response_s,
    mmc_queue_at_least,
    mmc_response_quantile_s,
)
from sim.plan.schedule import ScheduleOptions, SchedulePlan, plan_schedule, simulate_schedule
from sim.plan.schedule_out import (
    SCHEDULE_FILE,
    SCHEDULE_HEADER,
    VARIANT_FILE,
    hpa_variant,
    scenario_with_variant,
    schedule_json,
    schedule_rows,
    schedule_verdict,
    variant_yaml,
)
from sim.plan.search import CountSearch
from sim.plan.steps import StepGrid, envelope, schedule_entries, step_verdicts
from sim.plan.window import HALF_PEAK, LEAD_S, MAX_WINDOW_S, TAIL_S, peak_window

__all__ = [
    "SCHEDULE_FILE",
    "SCHEDULE_HEADER",
    "ScheduleOptions",
    "SchedulePlan",
    "StepGrid",
    "VARIANT_FILE",
    "emit_k8s",
    "envelope",
    "hpa_variant",
    "plan_schedule",
    "scenario_with_variant",
    "schedule_entries",
    "schedule_json",
    "schedule_rows",
    "schedule_verdict",
    "simulate_schedule",
    "step_verdicts",
    "variant_yaml",
    "plan_verdict",
    "plan_json",
    "ObjectiveCheck",
    "PLAN_FILE",
    "PlanError",
    "DEFAULT_MARGIN_S",
    "DEFAULT_HEADROOM",
    "CountSearch",
    "HALF_PEAK",
    "LEAD_S",
    "MAX_WINDOW_S",
    "Plan",
    "ServiceModel",
    "ServicePlan",
    "TAIL_S",
    "erlang_c",
    "estimate_instances",
    "make_plan",
    "max_rate_rps",
    "mg1_mean_wait_s",
    "mgc_mean_wait_s",
    "mgc_response_quantile_s",
    "mgc_response_survival",
    "mmc_mean_response_s",
    "mmc_queue_at_least",
    "mmc_response_quantile_s",
    "objective_holds",
    "peak_window",
    "service_time_grid_s",
]
