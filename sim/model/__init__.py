"""The scenario: what is simulated, validated once into frozen objects.

Owns the scenario schema (services, traffic, SLOs, autoscaling variants, cluster, batch
workload), the YAML loader with its one-line-per-problem errors, the traffic curves
(``rate_rps(service, t)``, shared with the load tester), service-time samplers and the SLO
judgement. May import the foundation modules (``sim.errors``, ``sim.units``, ``sim.schema``,
``sim.runio``) and ``sim.policies.autoscaling`` (whose parameter classes a variant is made of);
nothing that simulates, plans or reports.
"""

from sim.model.autoscaling import AutoscalingSection, check_autoscaling
from sim.model.batch import (
    BATCH_TASK_COLUMNS,
    BatchJob,
    Workload,
    arrival_times_s,
    draw,
    generate_jobs,
    load_workload,
    read_batch_task_csv,
)
from sim.model.batch_config import BatchGenerator, BatchWorkload, Dist
from sim.model.cluster_config import (
    POLICY_NAMES,
    STRATEGY_NAMES,
    ClusterSection,
    ColocatedPolicy,
    DedicatedPolicy,
    HasResources,
    NodeType,
    check_cluster,
)
from sim.model.interference import Interference, node_cpu_utilization
from sim.model.loader import (
    load_scenario,
    parse_scenario,
    read_scenario_data,
    scenario_from_data,
)
from sim.model.requests_config import (
    ENV_NAME,
    TEMPLATE_FUNCTIONS,
    TRUSTED,
    LoadTest,
    RequestSpec,
    check_requests,
    env_references,
    missing_env,
    read_table,
    references,
    template_environment,
    template_strings,
)
from sim.model.scenario import Fault, Objectives, Retries, Scenario, Service, ServiceTime
from sim.model.servicetime import Sampler, sampler_for
from sim.model.slo import (
    LATENCY_QUANTILES,
    LatencyCounts,
    ServiceOutcome,
    evaluate_slo,
    judge_objectives,
    slo_percentiles,
)
from sim.model.traffic import TrafficModel
from sim.model.traffic_config import KeyframesTraffic, SinglesDayTraffic, TraceTraffic
from sim.model.yamldoc import yaml_value

__all__ = [
    "ENV_NAME",
    "TEMPLATE_FUNCTIONS",
    "LoadTest",
    "RequestSpec",
    "check_requests",
    "env_references",
    "missing_env",
    "read_table",
    "references",
    "template_environment",
    "TRUSTED",
    "template_strings",
    "AutoscalingSection",
    "BATCH_TASK_COLUMNS",
    "BatchGenerator",
    "BatchJob",
    "BatchWorkload",
    "ClusterSection",
    "ColocatedPolicy",
    "DedicatedPolicy",
    "Dist",
    "Fault",
    "HasResources",
    "Interference",
    "KeyframesTraffic",
    "LATENCY_QUANTILES",
    "LatencyCounts",
    "NodeType",
    "Objectives",
    "POLICY_NAMES",
    "Retries",
    "STRATEGY_NAMES",
    "Sampler",
    "Scenario",
    "Service",
    "ServiceTime",
    "ServiceOutcome",
    "SinglesDayTraffic",
    "TraceTraffic",
    "TrafficModel",
    "Workload",
    "arrival_times_s",
    "check_autoscaling",
    "check_cluster",
    "draw",
    "evaluate_slo",
    "judge_objectives",
    "slo_percentiles",
    "generate_jobs",
    "load_scenario",
    "load_workload",
    "node_cpu_utilization",
    "parse_scenario",
    "read_batch_task_csv",
    "read_scenario_data",
    "sampler_for",
    "scenario_from_data",
    "yaml_value",
]
