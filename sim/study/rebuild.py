"""``peaksim report DIR`` on a replicated run or a replicated comparison: the report rebuilt
from the directory alone.

A replicated run directory is recognised by its ``replications.json`` without a
``summary.json`` of its own (a plan directory confirmed on replications has both, and is
rebuilt as the plan's run); a replicated comparison by its ``differences.json``, which lists
the variants and their directories. The seeds come from ``replications.json``, each
replication's figures from ``seed-<seed>/summary.json`` and its series from
``seed-<seed>/timeseries.csv``, and the SLO objectives from the summaries (which record every
target), so the scenario file is not needed. The intervals, decisions and report files are
those the command that ran the replications wrote: same data, same code.
``replications.json`` and ``differences.json`` are inputs here and are not rewritten.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from sim.errors import RunDirError
from sim.intervals import EXIT_CODES, Decision, best_of
from sim.report import RunData, load_run
from sim.study.replicate import Replicated, ScenarioFacts, summarise
from sim.study.replicated import DIFFERENCES_FILE, REPLICATIONS_FILE
from sim.study.report import ReplicatedFiles, write_replicated_report

_SUMMARY_FILE = "summary.json"


class StudyKind(StrEnum):
    """What kind of replicated directory ``peaksim report`` was given."""

    RUN = "replications"
    COMPARISON = "replicated-comparison"


def study_kind(directory: Path) -> StudyKind | None:
    """The kind of replicated directory ``directory`` is; None for any other directory."""
    if (directory / DIFFERENCES_FILE).is_file():
        return StudyKind.COMPARISON
    if (directory / REPLICATIONS_FILE).is_file() and not (directory / _SUMMARY_FILE).exists():
        return StudyKind.RUN
    return None


@dataclass(frozen=True)
class RebuiltStudy:
    """A rebuilt replicated report: the variants (one for a run) and the gate's decision."""

    kind: StudyKind
    directory: Path
    names: list[str]
    variants: list[Replicated]
    files: ReplicatedFiles

    @property
    def decision(self) -> Decision:
        """A run's gate; for a comparison, that of its variants taken as alternatives (it
        passes when one variant holds every SLO with confidence, as a sweep does)."""
        if self.kind is StudyKind.RUN:
            return self.variants[0].decision
        return best_of([v.decision for v in self.variants])

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.decision]


def rebuild_study(directory: Path) -> RebuiltStudy:
    """Rewrite the report files of a replicated run or comparison directory from its files.

    Raises ``RunDirError`` naming the file and what was expected when one is missing or
    unreadable.
    """
    kind = study_kind(directory)
    if kind is None:
        raise RunDirError(f"{directory}: expected a replicated run directory ({REPLICATIONS_FILE}"
                          f" and seed-*/) or a replicated comparison ({DIFFERENCES_FILE})")
    if kind is StudyKind.RUN:
        replicated, runs = read_replicated(directory)
        files = write_replicated_report(directory, [replicated], [runs])
        return RebuiltStudy(kind, directory, [replicated.policy], [replicated], files)
    names, variants, runs_of = [], [], []
    for name, variant_dir in _variants(directory):
        replicated, runs = read_replicated(variant_dir)
        names.append(name)
        variants.append(replicated)
        runs_of.append(runs)
    files = write_replicated_report(directory, variants, runs_of, names)
    return RebuiltStudy(kind, directory, names, variants, files)


def read_replicated(run_dir: Path) -> tuple[Replicated, list[RunData]]:
    """The replications of ``run_dir`` summarised as when they ran, and each one's run data."""
    path = run_dir / REPLICATIONS_FILE
    listing = _read_json(path)
    try:
        seeds = [int(s) for s in listing["seeds"]]
        base_seed = int(listing["base_seed"])
    except (KeyError, TypeError, ValueError) as exc:
        raise RunDirError(f"{path}: expected \"seeds\" (a list of integers) and \"base_seed\" "
                          f"({exc})") from None
    if len(seeds) < 2:
        raise RunDirError(f"{path}: expected at least two seeds, got {len(seeds)}")
    dirs = [run_dir / f"seed-{seed}" for seed in seeds]
    runs = [load_run(d) for d in dirs]  # checks both files of every replication
    summaries = [_read_json(d / _SUMMARY_FILE) for d in dirs]
    facts = ScenarioFacts.from_summary(summaries[0], str(dirs[0] / _SUMMARY_FILE))
    try:
        return summarise(facts, base_seed, seeds, summaries), runs
    except (KeyError, TypeError) as exc:
        raise RunDirError(f"{run_dir}: a replication's {_SUMMARY_FILE} lacks {exc} (expected "
                          f"the summary 'peaksim run' writes)") from None


def _variants(directory: Path) -> list[tuple[str, Path]]:
    path = directory / DIFFERENCES_FILE
    listing = _read_json(path)
    try:
        entries = [(str(v["name"]), directory / str(v["run_dir"])) for v in listing["variants"]]
    except (KeyError, TypeError) as exc:
        raise RunDirError(f"{path}: expected \"variants\": [{{\"name\": ..., \"run_dir\": ...}}]"
                          f" ({exc})") from None
    if not entries:
        raise RunDirError(f"{path}: lists no variants")
    return entries


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunDirError(f"{path}: missing (written by the command that ran the "
                          f"replications)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RunDirError(f"{path}: cannot read ({exc})") from None
    except json.JSONDecodeError as exc:
        raise RunDirError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise RunDirError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data
