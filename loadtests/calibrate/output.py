"""What calibration writes: the calibrated scenario and ``calibration.json``.

The calibrated scenario is the user's scenario with each calibrated service's
``service_time``, ``workers`` and (when overload showed them) ``max_queue`` / ``timeout_ms``
replaced, and its instances set to the measured deployment when they were a fixed count. A
comment block on top records how: the round trip, the steps (offered, served, p50/p95, errors),
every candidate distribution with its KS statistic, p-value and AIC, and the confidence
intervals. YAML comments of the input file are not carried over (the data is).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from loadtests.calibrate.fit import ServiceCalibration
from sim.runio import atomic_write_json, atomic_write_text


def calibrated_mapping(raw: dict[str, Any], fits: Sequence[ServiceCalibration]) -> dict[str, Any]:
    """``raw`` (the input scenario mapping) with the fitted services."""
    data = dict(raw)
    services = {name: dict(spec) for name, spec in raw["services"].items()}
    for fit in fits:
        spec = services[fit.service]
        spec["service_time"] = fit.choice.service_time
        spec["workers"] = fit.workers
        if not isinstance(spec.get("instances"), dict):
            spec["instances"] = fit.instances
        if fit.overload.max_queue is not None:
            spec["max_queue"] = fit.overload.max_queue
        if fit.overload.timeout_ms is not None:
            spec["timeout_ms"] = fit.overload.timeout_ms
    data["services"] = services
    data["name"] = f"{raw.get('name', 'scenario')}-calibrated"
    return data


def comment_block(fits: Sequence[ServiceCalibration], source: str) -> str:
    """The ``#`` lines recording how each service was fitted."""
    lines = [f"Calibrated by `peaksim calibrate` from {source}.",
             "Model: FCFS pool of workers x instances, Poisson arrivals, independent service "
             "times."]
    for fit in fits:
        low, high = fit.mean_ci_ms
        lines += ["", f"{fit.service}: {fit.instances} instance(s) measured, round trip "
                  f"{fit.rtt_ms:.2f} ms; latency outside the workers {fit.fixed_ms:.2f} ms "
                  f"(not in the model)",
                  "  step  offered rps  served rps   p50 ms   p95 ms  errors"]
        for step in fit.steps:
            flag = " saturated" if step.saturated else ""
            lines.append(f"  {step.index + 1:>4}  {step.offered_rps:>11.1f}  "
                         f"{step.served_rps:>10.1f}  {step.latency_ms['p50']:>7.1f}  "
                         f"{step.latency_ms['p95']:>7.1f}  {100 * step.error_share:>5.1f}%{flag}")
        lines.append(f"  service time fitted on step {fit.light_index + 1} "
                     f"({fit.choice.n_samples} samples); candidates:")
        for cand in fit.choice.candidates:
            p = "n/a" if cand.p_value is None else f"{cand.p_value:.3f}"
            lines.append(f"    {cand.dist:<12} KS {cand.ks_statistic:.4f}  p {p:>5}  "
                         f"AIC {cand.aic:,.1f}")
        lines.append(f"  chosen: {fit.choice.reason}")
        lines.append(f"  mean service time {fit.mean_service_ms:.2f} ms "
                     f"(95% CI {low:.2f}-{high:.2f})")
        cap = fit.capacity
        if cap.saturation_rps is not None and cap.saturation_ci_rps and cap.concurrency:
            s_low, s_high = cap.saturation_ci_rps
            lines.append(f"  saturation {cap.saturation_rps:.1f} rps (95% CI {s_low:.1f}-"
                         f"{s_high:.1f}); Little's law: at most "
                         f"{cap.concurrency / fit.instances:.2f} workers per instance -> "
                         f"{fit.workers}, mean service time = workers x instances / X_sat")
        lines.append(f"  capacity {fit.capacity_rps:.1f} rps; M/G/c check: {fit.curve_text}")
        over = fit.overload
        lines.append(f"  overload: {100 * over.timeout_share:.1f}% timeouts, "
                     f"{100 * over.shed_share:.1f}% shed"
                     + (f"; max_queue {over.max_queue}" if over.max_queue is not None else "")
                     + (f"; timeout_ms {over.timeout_ms:g}" if over.timeout_ms is not None
                        else ""))
        lines += [f"  note: {note}" for note in fit.notes]
    return "\n".join(f"# {line}".rstrip() for line in lines) + "\n"


def write_scenario(path: Path, raw: dict[str, Any], fits: Sequence[ServiceCalibration],
                   source: str) -> None:
    """Write the calibrated scenario (atomically)."""
    body = yaml.safe_dump(calibrated_mapping(raw, fits), sort_keys=False, width=100,
                          default_flow_style=None)
    atomic_write_text(path, comment_block(fits, source) + body)


def to_json(fit: ServiceCalibration) -> dict[str, Any]:
    """A JSON-ready record of ``fit`` (NaN becomes None)."""
    return _clean({
        "service": fit.service, "instances": fit.instances, "rtt_ms": fit.rtt_ms,
        "service_time": fit.choice.service_time if fit.choice.dist != "empirical"
        else {"dist": "empirical", "points": len(fit.choice.service_time["samples_ms"])},
        "choice": {"dist": fit.choice.dist, "reason": fit.choice.reason,
                   "n_samples": fit.choice.n_samples, "scv": fit.choice.scv,
                   "candidates": [asdict(c) for c in fit.choice.candidates]},
        "mean_service_ms": fit.mean_service_ms, "mean_ci_ms": list(fit.mean_ci_ms),
        "fixed_ms": fit.fixed_ms,
        "capacity": asdict(fit.capacity), "workers": fit.workers,
        "capacity_rps": fit.capacity_rps,
        "steps": [{k: v for k, v in asdict(s).items() if k != "histogram"}
                  | {"saturated": s.saturated, "error_share": s.error_share}
                  for s in fit.steps],
        "predictions": [asdict(p) for p in fit.predictions],
        "follows_curve": fit.follows_curve, "curve": fit.curve_text,
        "overload": asdict(fit.overload), "notes": list(fit.notes),
    })


def write_json(path: Path, fits: Sequence[ServiceCalibration], source: str) -> None:
    atomic_write_json(path, {"kind": "calibration", "source": source,
                             "services": [to_json(f) for f in fits]})


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else round(value, 6)
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value
