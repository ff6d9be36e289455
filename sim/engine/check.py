"""The fluid engine checked against the exact one (its oracle), per service.

``scale_fleet`` multiplies a scenario's rates and everything sized to them (instance bounds,
static and scheduled counts, cluster nodes) by a factor, so the same scenario can be run at
1/1000 and 1/100 of the real rates. ``compare_engines`` runs both engines on one scenario and
returns, per service, the fluid engine's relative error on each checked figure, and whether
it is within ``TOLERANCES``. docs/engines.md shows the table; tests/test_engine_fluid_oracle.py
asserts it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sim.engine.runsize import RunLimits
from sim.engine.simulation import simulate
from sim.model import Scenario
from sim.policies.autoscaling import ScheduledParams, StaticParams

TOLERANCES: dict[str, float] = {
    "attempts": 0.01, "lost": 0.15, "mean_ms": 0.05, "p50_ms": 0.08, "p95_ms": 0.10,
    "p99_ms": 0.10, "instances": 0.05,
}
"""Largest relative error per figure. ``lost`` (timed out + shed) also passes within
``LOST_FLOOR`` of the attempts."""
LOST_FLOOR = 0.002


def scale_fleet(scenario: Scenario, factor: float) -> Scenario:
    """``scenario`` at ``factor`` x its rates, with instance bounds, static and scheduled
    counts and cluster nodes scaled alike (rounded, at least 1 where it was)."""

    def times(count: int) -> int:
        return max(1 if count > 0 else 0, int(round(count * factor)))

    services = {
        name: spec.model_copy(update={"instances": spec.instances.model_copy(update={
            "min": times(spec.instances.min), "max": times(spec.instances.max),
            "initial": None if spec.instances.initial is None
            else times(spec.instances.initial)})})
        for name, spec in scenario.services.items()
    }
    update: dict[str, Any] = {
        "services": services,
        "traffic": scenario.traffic.model_copy(
            update={"rate_scale": scenario.traffic.rate_scale * factor}),
    }
    section = scenario.autoscaling
    if section is not None:
        variants = {}
        for name, params in section.variants.items():
            if isinstance(params, StaticParams):
                params = params.model_copy(update={
                    "instances": {s: times(n) for s, n in params.instances.items()}})
            elif isinstance(params, ScheduledParams):
                params = params.model_copy(update={"schedule": tuple(
                    entry.model_copy(update={"instances": {
                        s: times(n) for s, n in entry.instances.items()}})
                    for entry in params.schedule)})
            variants[name] = params
        update["autoscaling"] = section.model_copy(update={"variants": variants})
    if scenario.cluster is not None:
        nodes = tuple(
            node.model_copy(update={
                "count": times(node.count),
                "min": None if node.min is None else times(node.min),
                "max": None if node.max is None else times(node.max)})
            for node in scenario.cluster.node_types)
        update["cluster"] = scenario.cluster.model_copy(update={"node_types": nodes})
    return scenario.model_copy(update=update)


@dataclass(frozen=True)
class ServiceErrors:
    """One service's figures under both engines and the fluid engine's relative errors."""

    service: str
    exact: dict[str, float]
    fluid: dict[str, float]
    errors: dict[str, float]
    failed: tuple[str, ...]


def figures(service_summary: dict[str, Any]) -> dict[str, float]:
    """The checked figures of one service of a summary.json."""
    s = service_summary
    lat = s["latency_ms"]
    return {
        "attempts": float(s["requests"] + s["retries"]),
        "lost": float(s["timed_out"] + s["shed"]),
        "mean_ms": float(lat["mean"] or 0.0), "p50_ms": float(lat["p50"] or 0.0),
        "p95_ms": float(lat["p95"] or 0.0), "p99_ms": float(lat["p99"] or 0.0),
        "instances": float(s["instances"]["mean"]),
    }


def compare_summaries(exact: dict[str, Any], fluid: dict[str, Any]) -> list[ServiceErrors]:
    """Per service: relative errors of the fluid summary against the exact one."""
    out = []
    for name, ex in exact["services"].items():
        e, f = figures(ex), figures(fluid["services"][name])
        errors = {key: abs(f[key] - e[key]) / e[key] if e[key] else abs(f[key])
                  for key in e}
        failed = [key for key, err in errors.items() if err > TOLERANCES[key]
                  and not (key == "lost" and abs(f[key] - e[key]) <= LOST_FLOOR * e["attempts"])]
        out.append(ServiceErrors(name, e, f, errors, tuple(failed)))
    return out


ORACLE_MAX_REQUESTS = 500_000_000
"""Request limit of the validation runs (about 2.5 minutes of the exact engine per 100 M)."""


def compare_engines(scenario: Scenario, seed: int | None = None) -> list[ServiceErrors]:
    """Run ``scenario`` (its default variant) with both engines; compare per service. The
    exact oracle may run past the default request limit (1/100 of the 11.11 rates does)."""
    limits = RunLimits(max_requests=ORACLE_MAX_REQUESTS)
    exact = simulate(scenario, seed=seed, engine="exact", limits=limits).summary()
    fluid = simulate(scenario, seed=seed, engine="fluid", limits=limits).summary()
    return compare_summaries(exact, fluid)
