"""Replicated variants side by side: table rows with intervals, and paired differences.

Every variant ran under the same seeds, so replication i of variant A and of variant B saw the
same arrivals and service times (common random numbers). The difference B - A is therefore
judged per seed: the Student t interval of the n paired differences. A difference is
*significant* when that interval excludes zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sim.intervals import CONFIDENCE, Decision, Interval, t_interval
from sim.study.replicate import Replicated, figures_of

COMPARED_SERVICE_FIGURES = ("latency_ms.p95", "latency_ms.p99", "error_rate", "cost")
"""Per-service figures whose differences a comparison tests (plus the total cost)."""


@dataclass(frozen=True)
class Difference:
    """``other`` minus ``base`` in one figure, paired by seed."""

    base: str
    other: str
    figure: str
    interval: Interval | None

    @property
    def significant(self) -> bool:
        return self.interval is not None and self.interval.excludes(0.0)

    def to_json(self) -> dict[str, Any]:
        return {"base": self.base, "other": self.other, "figure": self.figure,
                "difference": self.interval.to_json() if self.interval else None,
                "significant": self.significant}


def compared_figures(variant: Replicated) -> list[str]:
    """The dotted figure paths a comparison tests: total cost, then per service."""
    services = list(variant.summaries[0]["services"])
    return ["cost.total"] + [f"services.{s}.{f}" for s in services
                             for f in COMPARED_SERVICE_FIGURES]


def paired_difference(base: Replicated, other: Replicated, figure: str) -> Interval | None:
    """The interval of ``other - base`` in ``figure`` over seeds run by both."""
    if base.seeds != other.seeds:
        raise ValueError("paired differences need the same seeds for both variants")
    a = [figures_of(s).get(figure) for s in base.summaries]
    b = [figures_of(s).get(figure) for s in other.summaries]
    diffs = [None if x is None or y is None else y - x for x, y in zip(a, b, strict=True)]
    return t_interval(diffs)


def differences(names: Sequence[str], variants: Sequence[Replicated],
                base_index: int | None = None) -> list[Difference]:
    """Paired differences of every pair of variants (``base_index``: only against that one)."""
    pairs = ([(base_index, j) for j in range(len(names)) if j != base_index]
             if base_index is not None else
             [(i, j) for i in range(len(names)) for j in range(i + 1, len(names))])
    out = []
    for i, j in pairs:
        for figure in compared_figures(variants[i]):
            out.append(Difference(names[i], names[j], figure,
                                  paired_difference(variants[i], variants[j], figure)))
    return out


def differences_json(names: Sequence[str], variants: Sequence[Replicated]) -> dict[str, Any]:
    """The content of differences.json: every pair of variants, every compared figure."""
    return {"kind": "differences", "confidence": CONFIDENCE,
            "method": "Student t interval over per-seed differences (common random numbers)",
            "seeds": list(variants[0].seeds),
            "differences": [d.to_json() for d in differences(names, variants)]}


def replicated_rows(names: Sequence[str], variants: Sequence[Replicated]) -> list[dict[str, Any]]:
    """``sim.runs.comparison_rows``'s rows with an ``Interval`` in place of each figure and the
    interval decision in place of ``slo_met``."""
    rows = []
    for name, v in zip(names, variants, strict=True):
        for service in v.summaries[0]["services"]:
            p = f"services.{service}."
            decisions = [x.decision for x in v.verdicts if x.service == service]
            rows.append({
                "policy": name, "service": service, "slo_met": _slo_cell(decisions),
                "p95_ms": v.figure(p + "latency_ms.p95"), "p99_ms": v.figure(p + "latency_ms.p99"),
                "error_rate": v.figure(p + "error_rate"), "timed_out": v.figure(p + "timed_out"),
                "shed": v.figure(p + "shed"), "instance_seconds": v.figure(p + "instance_seconds"),
                "peak_instances": v.figure(p + "instances.max"),
                "scale_events": v.figure(p + "scale_events"), "cost": v.figure(p + "cost"),
            })
    return rows


def rows_json(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``replicated_rows`` with each interval as ``{mean, low, high, n, sd}`` (for --json)."""
    return [{k: (v.to_json() if isinstance(v, Interval) else v) for k, v in row.items()}
            for row in rows]


def _slo_cell(decisions: list[Decision]) -> str | bool:
    if not decisions:
        return True
    if Decision.FAIL in decisions:
        return False
    return "undecided" if Decision.UNDECIDED in decisions else True
