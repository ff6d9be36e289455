"""Fit one service from its staircase steps: the whole calibration of a service, no I/O.

``calibrate_service`` combines the pieces (``distfit`` for the shape, ``capacity`` for the
mean, workers, the M/G/c check and overload) into a ``ServiceCalibration``: what the
calibrated scenario and the report are written from.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from loadtests.calibrate.capacity import (
    Capacity,
    Overload,
    StepPrediction,
    follows_curve,
    light_mean_ms,
    light_step,
    overload,
    predict_steps,
    saturation,
    t_interval,
)
from loadtests.calibrate.distfit import Choice, dequantize, fit_service_time
from loadtests.calibrate.steps import StepStats
from sim.errors import CalibrationError
from sim.model import ServiceTime


@dataclass(frozen=True)
class ServiceCalibration:
    """Everything fitted for one service (times in ms, rates in requests/s)."""

    service: str
    instances: int
    rtt_ms: float
    steps: tuple[StepStats, ...]
    light_index: int
    choice: Choice
    mean_service_ms: float
    mean_ci_ms: tuple[float, float]
    fixed_ms: float
    """Latency outside the workers (round trip and overheads), in every prediction."""
    capacity: Capacity
    workers: int
    """Fitted workers per instance (the prior's when no step saturated)."""
    predictions: tuple[StepPrediction, ...]
    follows_curve: bool
    curve_text: str
    overload: Overload
    notes: tuple[str, ...]

    @property
    def capacity_rps(self) -> float:
        """``workers x instances / E[S]``: the fitted model's saturation throughput."""
        return self.workers * self.instances * 1000.0 / self.mean_service_ms


def calibrate_service(
    service: str, steps: Sequence[StepStats], rtt_ms: float, instances: int,
    prior_workers: int, rng: np.random.Generator, exact_samples: bool = True,
) -> ServiceCalibration:
    """Fit ``service`` from ``steps`` measured against ``instances`` instances.

    ``rtt_ms`` is subtracted from light-load latencies; ``prior_workers`` (the scenario's) is
    kept when no step saturated. ``exact_samples`` False means the histograms stand for
    reported percentiles (a Locust CSV): no p-values then. Raises ``CalibrationError``.
    """
    try:
        light = light_step(steps)
    except ValueError as exc:
        raise CalibrationError(f"{service}: {exc}; start the staircase lower") from None
    notes: list[str] = []
    latencies = dequantize(light.histogram, rng)
    if light.latency_ms["mean"] <= rtt_ms:
        raise CalibrationError(f"{service}: light-load latency ({light.latency_ms['mean']:.2f}"
                               f" ms) is not above the round trip ({rtt_ms:.2f} ms)")
    scv = float(np.var(latencies - rtt_ms) / np.mean(latencies - rtt_ms) ** 2)
    capacity = saturation(steps, light, rtt_ms, instances, scv)
    if capacity.workers is None or capacity.saturation_rps is None:
        workers, mean, fixed_ms = prior_workers, light_mean_ms(light, rtt_ms), rtt_ms
        notes.append(f"no step saturated: workers not identified, the scenario's {workers} "
                     f"kept (capacity is at least {max(s.served_rps for s in steps):.1f} rps); "
                     f"the mean service time is an upper bound")
        mean_ci = _mean_interval(latencies - rtt_ms)
    else:
        workers, mean = capacity.workers, 1000.0 * capacity.workers * instances \
            / capacity.saturation_rps
        fixed_ms = capacity.overhead_ms or 0.0
        low, high = capacity.saturation_ci_rps or (math.nan, math.nan)
        scale = 1000.0 * workers * instances
        mean_ci = (scale / high, scale / low) if low > 0 else (mean, math.inf)
    try:
        choice = fit_service_time(latencies - fixed_ms, mean, rng, with_p_value=exact_samples)
    except ValueError as exc:
        raise CalibrationError(f"{service}: {exc}") from None
    spec = ServiceTime.model_validate(choice.service_time)
    predictions = predict_steps(steps, spec, workers * instances, fixed_ms)
    verdict, text = follows_curve(predictions)
    lagging = [s.index + 1 for s in steps if not s.generator_ok]
    if lagging:
        notes.append(f"the generator fell behind in step(s) {lagging}: those steps are not "
                     f"used for capacity")
    return ServiceCalibration(
        service=service, instances=instances, rtt_ms=rtt_ms, steps=tuple(steps),
        light_index=light.index, choice=choice, mean_service_ms=mean, mean_ci_ms=mean_ci,
        fixed_ms=fixed_ms,
        capacity=capacity, workers=workers, predictions=tuple(predictions),
        follows_curve=verdict, curve_text=text,
        overload=overload(steps, mean, fixed_ms, instances), notes=tuple(notes),
    )


def _mean_interval(samples_ms: np.ndarray) -> tuple[float, float]:
    low, high = t_interval(samples_ms.tolist())
    return (low, high) if math.isfinite(low) else (float(samples_ms.mean()),) * 2
