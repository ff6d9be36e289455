"""SLO judgement with SRE semantics: one pure function for every engine and every report.

An SLI is good events / valid events. The valid events of a service are its **requests**
(first attempts). A request is a *good* event for a latency objective ``pN_ms: X`` when its
first attempt completed successfully within ``X`` ms; a request whose first attempt timed out,
was shed or failed (even if a retry later saved it) is a bad event for every latency
objective, as if it had been slower than any target. So:

- ``pN_ms: X`` is met when at least N% of the requests were good within X ms. The
  *SLO-semantics* percentile (``slo_value``) is the N-th percentile over all requests with the
  bad ones counted as infinitely slow (None when more than 1 - N% were bad). The reported
  ``value`` stays the percentile over completed attempts.
- ``mean_ms: X`` is met when the mean over completed attempts is within X *and* at most
  ``MEAN_MAX_ERROR_RATE`` (1%) of the requests failed: a mean over the few requests that
  succeeded says nothing about a service that lost the rest.
- ``error_rate: X`` is met when the share of requests whose last attempt failed is within X.
- Whenever the error rate alone makes an objective impossible (above ``1 - N%`` for a
  percentile, above 1% for a mean), the reason says so: ``"80% of requests failed"``.

The inputs are plain counts and a latency distribution (values with counts), so the exact
engine, a fluid engine, replications and load tests judge with the same function. Nothing here
reads files or knows about histograms' bin layout.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.metrics import LatencyCounts
from sim.model.scenario import Objectives

LATENCY_QUANTILES: Mapping[str, float] = {"p50_ms": 0.50, "p90_ms": 0.90, "p95_ms": 0.95,
                                          "p99_ms": 0.99}
"""Percentile objectives and their quantile."""
MEAN_MAX_ERROR_RATE = 0.01
"""Above this error rate a ``mean_ms`` objective is missed whatever the mean."""
SLO_PERCENTILES: Mapping[str, float] = {"p50": 0.50, "p90": 0.90, "p95": 0.95, "p99": 0.99}
"""The SLO-semantics percentiles a summary reports beside the completed-only ones."""


@dataclass(frozen=True)
class ServiceOutcome:
    """What the judgement needs about one service's run.

    ``requests``: first attempts (valid events). ``good``: latencies of the first attempts
    that completed successfully (from the send, or the intended send for load tests).
    ``error_rate``: requests whose last attempt failed / requests (None without requests).
    ``completed_ms``: the reported figures over completed attempts (``mean``, ``p50``,
    ``p90``, ``p95``, ``p99``; None when nothing completed).
    """

    requests: int
    good: LatencyCounts
    error_rate: float | None
    completed_ms: Mapping[str, float | None]


def slo_quantile_ms(outcome: ServiceOutcome, q: float) -> float | None:
    """Nearest-rank ``q``-quantile over all requests, bad ones counted as infinitely slow;
    None when the rank falls among the bad ones (or there were no requests)."""
    if outcome.requests <= 0:
        return None
    rank = max(1, math.ceil(q * outcome.requests - 1e-9))
    cumulative = np.cumsum(outcome.good.counts)
    if cumulative.size == 0 or cumulative[-1] < rank:
        return None
    return float(outcome.good.values_ms[int(np.searchsorted(cumulative, rank))])


def good_fraction(outcome: ServiceOutcome, target_ms: float) -> float | None:
    """Share of requests whose first attempt completed successfully within ``target_ms``."""
    if outcome.requests <= 0:
        return None
    within = int(outcome.good.counts[outcome.good.values_ms <= target_ms].sum())
    return within / outcome.requests


def slo_percentiles(outcome: ServiceOutcome) -> dict[str, float | None]:
    """``{"p50", "p90", "p95", "p99"}`` with SLO semantics (for summaries, rounded to µs)."""
    out: dict[str, float | None] = {}
    for label, q in SLO_PERCENTILES.items():
        value = slo_quantile_ms(outcome, q)
        out[label] = None if value is None else round(value, 3)
    return out


def judge_objectives(objectives: Objectives | None,
                     outcome: ServiceOutcome) -> dict[str, dict[str, Any]]:
    """Each objective: ``target``, ``value`` (over completed attempts, or the error rate),
    ``met``, ``reason`` (None when met, else why, e.g. ``"80% of requests failed"``) and, for
    percentile objectives, ``slo_value`` and ``good_fraction`` (see the module docstring)."""
    if objectives is None:
        return {}
    return {name: judge_one(name, target, outcome) for name, target in objectives.items()}


def judge_one(name: str, target: float, outcome: ServiceOutcome) -> dict[str, Any]:
    """One objective (see ``judge_objectives``)."""
    errors = outcome.error_rate
    if name == "error_rate":
        met = errors is not None and errors <= target
        reason = None if met else (
            "no request was made" if errors is None
            else f"{fmt_share(errors)} of requests failed against {fmt_share(target)} allowed")
        return {"target": target, "value": errors, "met": met, "reason": reason}
    if name == "mean_ms":
        value = outcome.completed_ms.get("mean")
        failing = errors is not None and errors > MEAN_MAX_ERROR_RATE
        met = value is not None and value <= target and not failing
        if met:
            reason = None
        elif value is None:
            reason = "no request completed"
        elif failing:
            assert errors is not None
            reason = (f"{fmt_share(errors)} of requests failed; a mean over completed requests "
                      f"counts only below {fmt_share(MEAN_MAX_ERROR_RATE)} errors")
        else:
            reason = f"mean {value:,.4g} ms over completed requests against {target:,.4g} ms"
        return {"target": target, "value": value, "met": met, "reason": reason}
    q = LATENCY_QUANTILES[name]
    value = outcome.completed_ms.get(name.removesuffix("_ms"))
    slo_value = slo_quantile_ms(outcome, q)
    share = good_fraction(outcome, target)
    met = share is not None and share >= q - 1e-12 and slo_value is not None
    reason = None if met else _percentile_reason(name, q, target, outcome, share)
    return {"target": target, "value": value, "met": met, "reason": reason,
            "slo_value": None if slo_value is None else round(slo_value, 3),
            "good_fraction": None if share is None else round(share, 6)}


def _percentile_reason(name: str, q: float, target: float, outcome: ServiceOutcome,
                       share: float | None) -> str:
    label = name.removesuffix("_ms")
    errors = outcome.error_rate
    if share is None:
        return "no request was made"
    if errors is not None and errors > 1.0 - q:
        return f"{fmt_share(errors)} of requests failed"
    text = (f"{fmt_share(share)} of requests were served within {target:,.4g} ms on their "
            f"first attempt, {label} needs {fmt_share(q)}")
    completed = outcome.completed_ms.get(label)
    if completed is not None and completed <= target:
        text += (f" (over completed requests only, {label} was {completed:,.4g} ms: failed, "
                 f"timed-out and shed requests count as slower than any target)")
    return text


def fmt_share(fraction: float) -> str:
    """``0.8`` -> ``"80%"``, ``0.80013`` -> ``"80.01%"``, ``0.00041`` -> ``"0.041%"``."""
    return f"{100.0 * fraction:.4g}%"


def evaluate_slo(objectives: Objectives | None, latency_ms: Mapping[str, float | None],
                 error_rate: float | None) -> dict[str, dict[str, Any]]:
    """The same rules on figures alone, for callers that only have numbers (the bounds of a
    replication interval): ``latency_ms`` holds ``mean`` (over completed requests) and the
    SLO-semantics percentiles ``p50`` .. ``p99`` (over all requests; None when beyond every
    target, which is a miss). Each objective: ``target``, ``value``, ``met``."""
    if objectives is None:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for name, target in objectives.items():
        if name == "error_rate":
            value = error_rate
            met = value is not None and value <= target
        elif name == "mean_ms":
            value = latency_ms.get("mean")
            met = (value is not None and value <= target
                   and (error_rate is None or error_rate <= MEAN_MAX_ERROR_RATE))
        else:
            value = latency_ms.get(name.removesuffix("_ms"))
            met = value is not None and value <= target
        out[name] = {"target": target, "value": value, "met": bool(met)}
    return out
