"""Studies over many runs: replications with confidence intervals, the three-way SLO gate,
paired comparisons of variants, sweeps over scenario values, and their reports and terminal
output.

Owns the replication seeds (``replication_seeds``), the summary of N runs as intervals
(``Replicated``), the decision of SLO objectives on those intervals, paired differences
between variants, the sweep grid (``--set``), its Pareto front and files, and the replicated
report (bands plot, report.html/.md, junit.xml) and its rebuild from a replicated directory
(``peaksim report``). Runs are dispatched through ``sim.parallel`` as
``sim.runs.SimJob`` jobs. May import the foundation modules (``sim.parallel``,
``sim.intervals`` among them), ``sim.model``, ``sim.plan``, ``sim.report``, ``sim.runs`` and
``sim.console``; never ``loadtests``.
"""

from sim.study.compare import Difference, differences, differences_json, replicated_rows
from sim.study.plan import confirm_plan
from sim.study.rebuild import RebuiltStudy, StudyKind, rebuild_study, study_kind
from sim.study.replicate import (
    ObjectiveVerdict,
    Replicated,
    ScenarioFacts,
    judge_service,
    replication_seeds,
    summarise,
)
from sim.study.replicated import (
    DIFFERENCES_FILE,
    REPLICATIONS_FILE,
    compare_replications,
    run_replications,
)
from sim.study.sweep import Point, Setting, grid, parse_setting
from sim.study.sweep_report import SweepFiles, sweep_json, write_sweep
from sim.study.sweep_runs import SweepOutcome, SweepPoint, run_sweep
from sim.study.terminal import (
    StudyExit,
    compare_replicated,
    confirm_plan_on_intervals,
    done_fraction,
    print_sweep,
    report_replicated,
    run_replicated,
)

__all__ = [
    "DIFFERENCES_FILE",
    "Difference",
    "ObjectiveVerdict",
    "Point",
    "REPLICATIONS_FILE",
    "RebuiltStudy",
    "Replicated",
    "ScenarioFacts",
    "Setting",
    "StudyExit",
    "StudyKind",
    "SweepFiles",
    "SweepOutcome",
    "SweepPoint",
    "compare_replicated",
    "compare_replications",
    "confirm_plan",
    "confirm_plan_on_intervals",
    "differences",
    "differences_json",
    "done_fraction",
    "grid",
    "judge_service",
    "parse_setting",
    "print_sweep",
    "rebuild_study",
    "replicated_rows",
    "replication_seeds",
    "report_replicated",
    "run_replicated",
    "run_replications",
    "run_sweep",
    "study_kind",
    "summarise",
    "sweep_json",
    "write_sweep",
]
