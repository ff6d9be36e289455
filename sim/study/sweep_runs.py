"""Run a sweep's points (with replications) and find the cheapest point that holds the SLO.

A point *holds* the SLO when every objective is met with 95% confidence over its replications
(with one run per point: when it was met in that run). Its *SLO attainment* is the share of
its replications in which every service held every objective. The Pareto front is the set of
points that no other point beats on both cost (lower) and attainment (higher). The sweep's
gate takes the points as alternatives: it passes when at least one point holds, is undecided
when none holds but some point's intervals straddle a target, and fails when every point
missed with confidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sim.intervals import EXIT_CODES, Decision, best_of
from sim.parallel import DoneFn, Where, map_jobs
from sim.runio import new_run_dir
from sim.runs import SimJob, run_sim_job
from sim.study.replicate import Replicated, replication_seeds, summarise
from sim.study.replicated import check_replications
from sim.study.sweep import Point


@dataclass(frozen=True)
class SweepPoint:
    """One point of the grid and what its runs found."""

    point: Point
    replicated: Replicated

    @property
    def cost(self) -> float:
        interval = self.replicated.figure("cost.total")
        return interval.mean if interval is not None else float("inf")

    @property
    def attainment(self) -> float:
        return self.replicated.met_share()

    @property
    def holds(self) -> bool:
        return self.replicated.decision is Decision.PASS


@dataclass(frozen=True)
class SweepOutcome:
    """Every point's result, the Pareto front and the cheapest point that holds the SLO."""

    out_dir: Path
    points: list[SweepPoint]
    seeds: tuple[int, ...]
    pareto: list[int]
    cheapest: int | None

    @property
    def decision(self) -> Decision:
        """The gate over the points (``sim.intervals.best_of``)."""
        return best_of([p.replicated.decision for p in self.points])

    @property
    def exit_code(self) -> int:
        """0 a point holds the SLO, 1 none does, 3 none holds but some are undecided."""
        return EXIT_CODES[self.decision]

    def undecided(self) -> list[int]:
        """Indexes (into ``points``) of the undecided points, cheapest first."""
        mine = [i for i, p in enumerate(self.points)
                if p.replicated.decision is Decision.UNDECIDED]
        return sorted(mine, key=lambda i: (self.points[i].cost, i))


def run_sweep(
    points: Sequence[Point], place: Where, *, replications: int | None = None,
    seed: int | None = None, variant: str | None = None, out: Path | None = None,
    on_done: DoneFn | None = None,
) -> SweepOutcome:
    """Run every point under the same seeds: the scenario's seed (or ``seed``) alone, or
    ``replications`` seeds derived from it; creates the sweep directory, which
    ``sim.study.sweep_report.write_sweep`` fills."""
    if replications is not None:
        check_replications(replications)
    scenario = points[0].scenario
    base_seed = scenario.seed if seed is None else seed
    seeds = (replication_seeds(base_seed, replications) if replications is not None
             else [base_seed])
    jobs = [SimJob(p.scenario, variant, s, rows=False) for p in points for s in seeds]
    outputs = map_jobs(run_sim_job, jobs, place, on_done)
    n = len(seeds)
    results = []
    for i, point in enumerate(points):
        summaries = [o.summary for o in outputs[i * n:(i + 1) * n]]
        results.append(SweepPoint(point, summarise(point.scenario, base_seed, seeds,
                                                   summaries)))
    out_dir = new_run_dir(scenario.name, out, kind="sweep")
    return SweepOutcome(out_dir, results, tuple(seeds), pareto_front(results),
                        cheapest_holding(results))


def pareto_front(points: Sequence[SweepPoint]) -> list[int]:
    """Indexes (into ``points``) of the points no other point beats on both cost and
    attainment, cheapest first."""
    order = sorted(range(len(points)), key=lambda i: (points[i].cost, -points[i].attainment))
    front, best = [], -1.0
    for i in order:
        if points[i].attainment > best:
            front.append(i)
            best = points[i].attainment
    return front


def cheapest_holding(points: Sequence[SweepPoint]) -> int | None:
    """Index of the cheapest point that holds the SLO (ties: the first in grid order)."""
    holding = [i for i, p in enumerate(points) if p.holds]
    return min(holding, key=lambda i: (points[i].cost, i)) if holding else None
