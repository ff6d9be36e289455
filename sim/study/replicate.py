"""Replications: one scenario under N independent seeds, summarised as intervals.

Seeds: replication i of a scenario with seed S simulates with the seed
``SeedSequence(S).spawn(N)[i].generate_state(1)[0]`` (numpy's ``SeedSequence``: children are
statistically independent streams, and child i does not depend on N, so 10 replications are
the first 5 and 5 more). Every replication's summary.json records its seed: ``peaksim run
--seed`` reproduces it alone. Variants and sweep points use the same seeds (common random
numbers), so their differences are paired by seed.

Every numeric figure of the summaries (per service, cost, cluster) becomes an ``Interval``
(sim/intervals.py); the SLO gate judges the interval bounds with the one SLO judgement
(``sim.model.evaluate_slo``): met at the pessimistic bound -> pass, missed at the optimistic bound
-> fail, else undecided.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.errors import RunDirError
from sim.intervals import (
    CONFIDENCE,
    EXIT_CODES,
    METHOD,
    Decision,
    Interval,
    combine,
    replications_to_decide,
    t_interval,
)
from sim.model import Objectives, Scenario, evaluate_slo
from sim.units import parse_clock_s

_SKIPPED = frozenset({"slo", "slo_met", "events"})
"""Summary keys that are verdicts or logs, not figures to average."""
_LATENCY_KEYS = ("mean", "p50", "p90", "p95", "p99")


def replication_seeds(base_seed: int, n: int) -> list[int]:
    """The seeds of ``n`` replications of a scenario whose seed is ``base_seed``."""
    children = np.random.SeedSequence(base_seed).spawn(n)
    return [int(child.generate_state(1)[0]) for child in children]


def flatten(data: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, float | None]]:
    """(dotted path, value) of every number under ``data`` (bools and lists left out)."""
    for key, value in data.items():
        if key in _SKIPPED:
            continue
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from flatten(value, f"{path}.")
        elif value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
            yield path, value


def figures_of(summary: dict[str, Any]) -> dict[str, float | None]:
    """The figures of one summary that replications average, by dotted path."""
    out: dict[str, float | None] = {}
    for section in ("services", "cluster"):
        if isinstance(summary.get(section), dict):
            out.update(flatten(summary[section], f"{section}."))
    out["cost.total"] = summary["cost"]["total"]
    return out


@dataclass(frozen=True)
class ScenarioFacts:
    """What a study needs of its scenario: its name, its file, the SLO objectives per service
    and the wall clock of t=0 (seconds after midnight, None without one).

    Built from the scenario when the runs are started, or from a replication's summary.json
    (which records the same facts) when ``peaksim report`` rebuilds a replicated report: both
    give the same judgement, so the rebuilt report equals the written one.
    """

    name: str
    source: str
    slo: Mapping[str, Objectives]
    start_clock_s: float | None

    @classmethod
    def of(cls, scenario: Scenario | ScenarioFacts) -> ScenarioFacts:
        if isinstance(scenario, ScenarioFacts):
            return scenario
        return cls(scenario.name, scenario.source, dict(scenario.slo), scenario.start_clock_s)

    @classmethod
    def from_summary(cls, summary: dict[str, Any], where: str) -> ScenarioFacts:
        """The facts a summary.json records (``where`` names the file in errors)."""
        try:
            slo = {name: Objectives(**{key: float(objective["target"])
                                       for key, objective in service["slo"].items()})
                   for name, service in summary["services"].items() if service.get("slo")}
            clock = summary.get("start_clock")
            return cls(str(summary["scenario"]), str(summary.get("scenario_file") or ""), slo,
                       parse_clock_s(clock) if clock else None)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise RunDirError(f"{where}: expected services with their slo targets, the "
                              f"scenario and its start_clock ({exc})") from None


@dataclass(frozen=True)
class ObjectiveVerdict:
    """One SLO objective of one service judged on its interval."""

    service: str
    objective: str
    target: float
    interval: Interval | None
    decision: Decision
    replications_needed: int | None

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target, "value": (self.interval.to_json() if self.interval
                                                  else None),
                "decision": str(self.decision),
                "replications_needed": self.replications_needed}


@dataclass(frozen=True)
class Replicated:
    """N replications of one scenario and variant, summarised."""

    scenario: ScenarioFacts
    policy: str
    base_seed: int
    seeds: tuple[int, ...]
    summaries: tuple[dict[str, Any], ...]
    figures: dict[str, Interval | None]
    verdicts: tuple[ObjectiveVerdict, ...]

    @property
    def decision(self) -> Decision:
        return combine([v.decision for v in self.verdicts])

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.decision]

    @property
    def replications_needed(self) -> int | None:
        """Replications that would likely decide every undecided objective (None: none
        undecided, or one whose mean sits on its target)."""
        if self.decision is not Decision.UNDECIDED:
            return None
        needed = [v.replications_needed for v in self.verdicts
                  if v.decision is Decision.UNDECIDED]
        return None if None in needed else max(n for n in needed if n is not None)

    def figure(self, path: str) -> Interval | None:
        return self.figures.get(path)

    def met_share(self, service: str | None = None) -> float:
        """Share of replications in which ``service`` (None: every service) held its SLO."""
        met = [s["slo_met"] if service is None else s["services"][service]["slo_met"]
               for s in self.summaries]
        return sum(met) / len(met)

    def to_json(self) -> dict[str, Any]:
        """The content of replications.json (docs/formats.md)."""
        services: dict[str, Any] = {}
        for name in self.summaries[0]["services"]:
            prefix = f"services.{name}."
            services[name] = {
                "slo_met_share": round(self.met_share(name), 6),
                "objectives": {v.objective: v.to_json() for v in self.verdicts
                               if v.service == name},
                "figures": {p[len(prefix):]: _json(i) for p, i in self.figures.items()
                            if p.startswith(prefix)},
            }
        return {
            "kind": "replications", "scenario": self.scenario.name,
            "scenario_file": self.scenario.source, "policy": self.policy,
            "base_seed": self.base_seed, "seeds": list(self.seeds),
            "replications": len(self.seeds), "confidence": CONFIDENCE, "method": METHOD,
            "gate": {"decision": str(self.decision), "exit_code": self.exit_code,
                     "replications_needed": self.replications_needed},
            "slo_met_share": round(self.met_share(), 6),
            "cost_total": _json(self.figures.get("cost.total")),
            "services": services,
            "cluster": {p[len("cluster."):]: _json(i) for p, i in self.figures.items()
                        if p.startswith("cluster.")} or None,
        }


def summarise(scenario: Scenario | ScenarioFacts, base_seed: int, seeds: Sequence[int],
              summaries: Sequence[dict[str, Any]]) -> Replicated:
    """Intervals of every figure and the SLO decisions of ``summaries`` (one per seed)."""
    facts = ScenarioFacts.of(scenario)
    per_run = [figures_of(s) for s in summaries]
    paths = list(per_run[0])
    figures = {p: t_interval([f.get(p) for f in per_run]) for p in paths}
    verdicts = tuple(v for name in summaries[0]["services"]
                     for v in judge_service(facts, name, figures))
    return Replicated(facts, str(summaries[0]["policy"]), base_seed, tuple(seeds),
                      tuple(summaries), figures, verdicts)


def judge_service(scenario: Scenario | ScenarioFacts, service: str,
                  figures: dict[str, Interval | None]) -> list[ObjectiveVerdict]:
    """Each objective of ``service`` judged at both ends of its figures' intervals."""
    objectives = scenario.slo.get(service)
    if not objectives:
        return []
    prefix = f"services.{service}."

    def bound(which: str) -> tuple[dict[str, float | None], float | None]:
        # SRE semantics (sim.model.slo): percentiles over all requests, the mean over
        # completed ones
        latency = {k: _end(figures.get(_latency_path(prefix, k)), which)
                   for k in _LATENCY_KEYS}
        return latency, _end(figures.get(f"{prefix}error_rate"), which)

    # every objective is "value <= target": the high end is the pessimistic one
    worst = evaluate_slo(objectives, *bound("high"))
    best = evaluate_slo(objectives, *bound("low"))
    means = evaluate_slo(objectives, *bound("mean"))
    out = []
    for name, judged in worst.items():
        interval = _judged_figure(figures, prefix, means[name]["value"],
                                  best[name]["value"], judged["value"])
        if judged["met"]:
            decision = Decision.PASS
        elif not best[name]["met"]:
            decision = Decision.FAIL
        else:
            decision = Decision.UNDECIDED
        needed = (replications_to_decide(interval, judged["target"])
                  if decision is Decision.UNDECIDED and interval is not None else None)
        out.append(ObjectiveVerdict(service, name, judged["target"], interval, decision, needed))
    return out


def objective_figure(objective: str) -> str:
    """The figure of a service (dotted path) an objective is judged on: ``error_rate``,
    ``latency_ms.mean`` for ``mean_ms``, ``latency_slo_ms.pN`` for ``pN_ms``."""
    if objective == "error_rate":
        return objective
    return _latency_path("", objective.removesuffix("_ms"))


def _latency_path(prefix: str, key: str) -> str:
    """The figure an objective is judged on: ``latency_ms.mean`` or ``latency_slo_ms.pN``."""
    return f"{prefix}latency_ms.mean" if key == "mean" else f"{prefix}latency_slo_ms.{key}"


def _end(interval: Interval | None, which: str) -> float | None:
    if interval is None:
        return None
    return {"high": interval.high, "low": interval.low, "mean": interval.mean}[which]


def _judged_figure(figures: dict[str, Interval | None], prefix: str, mean: float | None,
                   low: float | None, high: float | None) -> Interval | None:
    """The interval whose mean and ends the objective was judged on (None if undefined)."""
    paths = [_latency_path(prefix, k) for k in _LATENCY_KEYS] + [f"{prefix}error_rate"]
    for path in paths:
        interval = figures.get(path)
        if interval is not None and (interval.mean, interval.low, interval.high) == (
                mean, low, high):
            return interval
    return None


def _json(interval: Interval | None) -> dict[str, Any] | None:
    return interval.to_json() if interval is not None else None
