"""Capacity from a staircase: mean service time, workers (Little's law), the M/G/c check and
the overload behaviour.

Model: one FCFS queue in front of ``c = workers x instances`` identical workers (the
simulator's ``least_outstanding`` balancer), Poisson arrivals, independent service times.

- Workers and mean service time: when the offered rate exceeds capacity every worker is busy,
  so the served rate is ``X_sat = c / E[S]`` (Little's law on the workers). The light step's
  mean latency minus the round trip of a trivial request bounds ``E[S]`` from above (it still
  holds client and server overheads), which bounds ``c``; ``c`` is the largest integer count
  per instance the bound allows, then ``E[S] = c / X_sat`` (see ``workers_and_mean``). With no
  saturated step, ``E[S]`` is the bound itself and ``c`` is not identified.
- The M/G/c check: per unsaturated step, the model's mean and percentiles (Allen-Cunneen wait
  convolved with the fitted service times, plus the fixed overhead) against the measured ones.
- Overload: the share of timeouts and sheds in saturated steps; a full queue's length follows
  from Little's law on the wait (``L_q = X x W_q``) and a timeout from the longest wait that
  still completed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from loadtests.calibrate.steps import StepStats
from sim.model import ServiceTime, sampler_for
from sim.plan import mgc_mean_wait_s, mgc_response_quantile_s, service_time_grid_s

CURVE_RHO_LIMIT = 0.9
"""Steps at or above this predicted utilization are left out of the M/G/c check (no steady
state within a few seconds)."""
CURVE_TOLERANCE = 0.25
"""A step whose p95 is within this relative error of the model's follows the M/G/c curve
(histogram bins, short steps and a shared machine make a tighter bound meaningless)."""
OVERLOAD_SHARE = 0.01
"""A share of sheds or timeouts in saturated steps above this counts as seen."""


@dataclass(frozen=True)
class Capacity:
    """Saturation throughput and what it implies (None: no step saturated)."""

    saturation_rps: float | None
    saturation_ci_rps: tuple[float, float] | None
    concurrency: float | None
    """``(light-load latency - round trip) x X_sat``: an upper bound of the busy workers at
    saturation, all instances (the latency holds overheads no worker holds)."""
    workers: int | None
    """Per instance: the largest count the measurements allow (see ``workers_and_mean``)."""
    overhead_ms: float | None
    """Light-load latency not spent in a worker: client, network and server overheads."""


@dataclass(frozen=True)
class StepPrediction:
    """The fitted model's prediction for one step (latencies in ms, round trip included)."""

    index: int
    rate_rps: float
    utilization: float
    predicted_ms: dict[str, float]
    measured_ms: dict[str, float]
    relative_error: dict[str, float]
    """``(measured - predicted) / predicted`` per metric."""


@dataclass(frozen=True)
class Overload:
    """What saturated steps showed: shares of timeouts and sheds, and estimates."""

    timeout_share: float
    shed_share: float
    max_queue: int | None
    timeout_ms: float | None


def t_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """Student-t confidence interval of the mean of ``values``."""
    data = np.asarray(values, dtype=float)
    if data.size < 2:
        return (math.nan, math.nan)
    half = float(stats.t.ppf(0.5 + level / 2, data.size - 1) * data.std(ddof=1)
                 / math.sqrt(data.size))
    return (float(data.mean()) - half, float(data.mean()) + half)


def light_step(steps: Sequence[StepStats], min_completed: int = 20) -> StepStats:
    """The lowest-rate step that is unsaturated, measured on time and has enough answers."""
    usable = [s for s in steps if not s.saturated and s.generator_ok
              and s.completed >= min_completed]
    if not usable:
        raise ValueError("no unsaturated step with at least "
                         f"{min_completed} answers measured on time")
    return min(usable, key=lambda s: s.offered_rps)


def saturation_rate(steps: Sequence[StepStats]) -> tuple[float, tuple[float, float]] | None:
    """Mean served rate over the windows of the saturated steps measured on time, with its
    95% confidence interval (None when no step saturated)."""
    windows = [v for s in steps if s.saturated and s.generator_ok for v in s.served_rps_windows]
    if not windows:
        return None
    return float(np.mean(windows)), t_interval(windows)


def workers_and_mean(light: StepStats, rtt_ms: float, rate_rps: float, rate_high_rps: float,
                     instances: int, scv: float) -> tuple[int, float, float]:
    """``(workers per instance, mean service ms, overhead ms)`` from saturation.

    Little's law on the workers at saturation: ``c = X_sat x E[S]``. The light-load latency
    minus the round trip still holds overheads no worker holds (client and server
    scheduling), so ``X x (W_light - rtt - W_q)`` over-estimates ``c``: the workers are the
    largest integer per instance it allows at ``rate_high_rps`` (the served rate's upper
    confidence bound, so noise does not round a true count down), the mean service time then
    ``c / X_sat`` exactly, and what is left of the light latency is the overhead.
    """
    bound_ms = light.latency_ms["mean"] - rtt_ms
    workers = max(1, int(math.floor(bound_ms * rate_high_rps / 1000.0 / instances + 1e-9)))
    # The bound shrinks by the light step's own wait, which depends on the count tried.
    while True:
        mean_ms = 1000.0 * workers * instances / rate_rps
        wait = mgc_mean_wait_s(workers * instances, light.offered_rps, mean_ms / 1000.0, scv)
        wait_ms = 1000.0 * wait if math.isfinite(wait) else math.inf
        if workers == 1 or workers * instances <= (bound_ms - wait_ms) * rate_high_rps / 1000.0:
            break
        workers -= 1
    overhead_ms = max(0.0, light.latency_ms["mean"] - wait_ms - mean_ms) \
        if math.isfinite(wait_ms) else 0.0
    return workers, mean_ms, overhead_ms


MIN_RATE_MARGIN, MAX_RATE_MARGIN = 0.02, 0.05
"""The served rate's upper bound used for workers: its 95% confidence bound, but at least 2%
(1-s windows resolve no better) and at most 5% above the mean."""


def saturation(steps: Sequence[StepStats], light: StepStats, rtt_ms: float, instances: int,
               scv: float) -> Capacity:
    """Saturation throughput and the workers, mean service time and overhead it implies."""
    measured = saturation_rate(steps)
    if measured is None:
        return Capacity(None, None, None, None, None)
    rate, (low, high) = measured
    margin = high - rate if math.isfinite(high) else MAX_RATE_MARGIN * rate
    upper = rate + min(max(margin, MIN_RATE_MARGIN * rate), MAX_RATE_MARGIN * rate)
    workers, mean_ms, overhead_ms = workers_and_mean(light, rtt_ms, rate, upper, instances, scv)
    concurrency = rate * max(light.latency_ms["mean"] - rtt_ms, 0.0) / 1000.0
    return Capacity(rate, (low, high), concurrency, workers, overhead_ms)


def light_mean_ms(light: StepStats, rtt_ms: float) -> float:
    """Mean service time when nothing saturated: light-load latency minus the round trip (an
    upper bound: overheads and a little queueing remain in it)."""
    return max(light.latency_ms["mean"] - rtt_ms, 1e-3)


def predict_steps(steps: Sequence[StepStats], service_time: ServiceTime, total_workers: int,
                  fixed_ms: float) -> list[StepPrediction]:
    """The model's latency per step below ``CURVE_RHO_LIMIT`` (saturated steps are left out:
    their queues grow with time, there is no steady value to compare); ``fixed_ms`` (the
    overhead outside the workers) is added to every prediction."""
    sampler = sampler_for(service_time)
    grid_s = service_time_grid_s(sampler)
    mean_s = sampler.mean_ms / 1000.0
    scv = sampler.second_moment_ms2 / sampler.mean_ms**2 - 1.0
    out = []
    for step in steps:
        rate = step.offered_rps
        rho = rate * mean_s / total_workers
        if rho >= CURVE_RHO_LIMIT or step.saturated or step.completed == 0:
            continue
        predicted = {"mean": 1000.0 * (mean_s + mgc_mean_wait_s(total_workers, rate, mean_s,
                                                                 scv)) + fixed_ms}
        for label, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
            predicted[label] = 1000.0 * mgc_response_quantile_s(
                q, total_workers, rate, mean_s, scv, grid_s) + fixed_ms
        measured = {k: step.latency_ms[k] for k in predicted}
        errors = {k: (measured[k] - predicted[k]) / predicted[k] for k in predicted}
        out.append(StepPrediction(step.index, rate, rho, predicted, measured, errors))
    return out


def follows_curve(predictions: Sequence[StepPrediction]) -> tuple[bool, str]:
    """Whether every checked step's p95 is within ``CURVE_TOLERANCE`` of the model, and why."""
    if not predictions:
        return False, "no unsaturated step to compare"
    worst = max(predictions, key=lambda p: abs(p.relative_error["p95"]))
    error = worst.relative_error["p95"]
    verdict = abs(error) <= CURVE_TOLERANCE
    text = (f"p95 within {100 * CURVE_TOLERANCE:.0f}% of the M/G/c model at every step "
            f"(worst {100 * error:+.1f}% at step {worst.index + 1}, rho {worst.utilization:.2f})"
            if verdict else
            f"p95 departs from the M/G/c model by {100 * error:+.1f}% at step "
            f"{worst.index + 1} (rho {worst.utilization:.2f}): not a FCFS pool of identical "
            f"workers there (contention, a different discipline or generator noise)")
    return verdict, text


def overload(steps: Sequence[StepStats], mean_service_ms: float, fixed_ms: float,
             instances: int) -> Overload:
    """Timeouts and sheds seen in saturated steps, with the queue bound and timeout they
    imply (None when not seen); ``fixed_ms`` is latency outside the workers."""
    saturated = [s for s in steps if s.saturated]
    answered = sum(s.answered for s in saturated)
    if not answered:
        return Overload(0.0, 0.0, None, None)
    timeout_share = sum(s.timed_out for s in saturated) / answered
    shed_share = sum(s.shed for s in saturated) / answered
    max_queue = timeout_ms = None
    if shed_share > OVERLOAD_SHARE:
        # A shedding queue stays full: its length is the served rate times the wait.
        shedding = [s for s in saturated if s.shed and s.completed]
        queue = [s.served_rps * max(0.0, s.latency_ms["mean"] - mean_service_ms - fixed_ms)
                 / 1000.0 for s in shedding]
        if queue:
            max_queue = max(0, int(round(float(np.median(queue)) / instances)))
    if timeout_share > OVERLOAD_SHARE:
        longest = [s.max_latency_ms for s in saturated if s.timed_out and s.completed]
        if longest:
            timeout_ms = round(max(longest) - fixed_ms)
    return Overload(timeout_share, shed_share, max_queue, timeout_ms)
