"""SLO evaluation shared by simulations and load tests."""

from __future__ import annotations

from typing import Any

from sim.model.scenario import Objectives

_LATENCY_KEYS = {"p50_ms": "p50", "p90_ms": "p90", "p95_ms": "p95", "p99_ms": "p99",
                 "mean_ms": "mean"}


def evaluate_slo(
    objectives: Objectives | None, latency_ms: dict[str, float | None], error_rate: float | None
) -> dict[str, dict[str, Any]]:
    """Each objective with its target, the measured value and whether it was met.

    ``latency_ms`` holds ``mean``, ``p50``, ``p90``, ``p95``, ``p99`` (None when nothing
    completed). A latency objective without completed requests is missed: no evidence is not a
    pass.
    """
    if objectives is None:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for name, target in objectives.items():
        value = error_rate if name == "error_rate" else latency_ms.get(_LATENCY_KEYS[name])
        met = value is not None and value <= target
        out[name] = {"target": target, "value": value, "met": bool(met)}
    return out
