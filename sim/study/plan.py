"""``peaksim plan --replications N``: confirm the recommended counts over N seeds.

The search for the smallest counts runs on the scenario's seed (every trial sees the same
arrivals, so counts are compared fairly). The recommended counts are then simulated over the
whole run under N seeds derived from it (sim/study/replicate.py) and the plan's SLO is
decided on the intervals: held with 95% confidence (exit 0), missed with confidence (exit 1),
or undecided (exit 3, with the replications likely to decide it).
"""

from __future__ import annotations

from pathlib import Path

from sim.errors import PeaksimError
from sim.model import Scenario
from sim.parallel import DoneFn, Where, map_jobs
from sim.plan import Plan
from sim.runio import atomic_write_json, atomic_write_text
from sim.runs import SimJob, run_sim_job
from sim.study.junit import render_replicated_junit, run_suite
from sim.study.replicate import Replicated, replication_seeds, summarise
from sim.study.replicated import REPLICATIONS_FILE, check_replications
from sim.study.report import JUNIT_FILE

CONFIRM_DIR = "replications"


def recommended_counts(plan: Plan) -> dict[str, int]:
    """The plan's recommended instance count per planned service."""
    return {s.service: s.recommended for s in plan.services if s.recommended is not None}


def confirm_plan(
    scenario: Scenario, plan: Plan, n: int, place: Where, run_dir: Path, *,
    seed: int | None = None, on_done: DoneFn | None = None,
) -> Replicated:
    """Simulate the whole run at the recommended counts under ``n`` seeds; write each into
    ``run_dir/replications/seed-<seed>/`` and the intervals into ``run_dir/replications.json``."""
    check_replications(n)
    counts = recommended_counts(plan)
    if not counts:
        raise PeaksimError("the plan recommends no instance counts to confirm")
    base_seed = scenario.seed if seed is None else seed
    seeds = replication_seeds(base_seed, n)
    jobs = [SimJob(scenario, None, s, instances=counts) for s in seeds]
    dirs = [run_dir / CONFIRM_DIR / f"seed-{s}" for s in seeds]
    outputs = map_jobs(run_sim_job, jobs, place, on_done,
                       lambda i, output: output.write(dirs[i]))
    replicated = summarise(scenario, base_seed, seeds, [o.summary for o in outputs])
    atomic_write_json(run_dir / REPLICATIONS_FILE, replicated.to_json())
    # the plan's exit code is decided on the intervals: so is the junit.xml CI reads (the
    # single confirming run's file could pass what the intervals leave undecided)
    atomic_write_text(run_dir / JUNIT_FILE, render_replicated_junit([run_suite(replicated)]))
    return replicated
