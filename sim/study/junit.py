"""``junit.xml`` of replicated runs and comparisons: each SLO objective decided on its interval.

The names are those of a single run's ``junit.xml`` (sim/report/ci.py), so a CI dashboard
keeps one history per objective whether a job runs one seed or N: a run is one
``<testsuite name="peaksim.<scenario>">`` whose test cases have the service as ``classname``; a
comparison has one ``<testsuite>`` per variant, named after it, with ``<variant>.<service>`` as
``classname``; a test case's ``name`` is the objective key (``p99_ms``, ``error_rate``).

The three decisions map onto JUnit's three outcomes:

- **met with confidence**: a passed test; ``<system-out>`` gives the interval and target;
- **missed with confidence**: ``<failure type="SLOMissed">``, as for one run, with the
  interval, its ends and the target in the message;
- **undecided**: ``<error type="SLOUndecided">``. JUnit keeps *failure* for a check that ran
  and found the code wrong and *error* for a test that could not reach a verdict; an interval
  straddling its target is the second case (too few replications, not a miss). Every JUnit
  consumer (Jenkins, GitLab, GitHub and Azure test reporters) shows an errored test as not
  passed, matching exit code 3, while ``failures`` still counts only confident misses, so a
  dashboard's failure history is not polluted by noise. A ``<skipped>`` test would read as
  harmless where the job itself failed.

Each test case's body lists every replication's value with its seed.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sim.intervals import CONFIDENCE, METHOD, Decision, Interval, fmt_interval
from sim.report import fmt_objective, objective_label
from sim.study.replicate import ObjectiveVerdict, Replicated, figures_of, objective_figure

FAILURE_TYPE = "SLOMissed"
"""The failure type of a single run's junit.xml (sim/report/ci.py): one history for both."""
UNDECIDED_TYPE = "SLOUndecided"
_CONFIDENCE = f"{100 * CONFIDENCE:.0f}% confidence"


@dataclass(frozen=True)
class ReplicatedSuite:
    """One ``<testsuite>``: a replicated run, or one variant of a replicated comparison."""

    name: str
    replicated: Replicated
    class_prefix: str = ""
    run_dir: str | None = None
    """The variant's directory, relative to the comparison directory."""


def run_suite(replicated: Replicated) -> ReplicatedSuite:
    """The suite of a replicated run, named as a single run's (``peaksim.<scenario>``)."""
    return ReplicatedSuite(f"peaksim.{replicated.scenario.name}", replicated)


def comparison_suites(names: Sequence[str], variants: Sequence[Replicated],
                      run_dirs: Sequence[Path], out_dir: Path) -> list[ReplicatedSuite]:
    """One suite per variant, named as in a single comparison's junit.xml."""
    return [ReplicatedSuite(name, v, f"{name}.", _relative(d, out_dir))
            for name, v, d in zip(names, variants, run_dirs, strict=True)]


def render_replicated_junit(suites: Sequence[ReplicatedSuite], name: str = "peaksim") -> str:
    """The JUnit XML document: ``tests``, ``failures`` (missed with confidence) and ``errors``
    (undecided) per suite and in total."""
    root = ET.Element("testsuites", name=name)
    totals = {Decision.PASS: 0, Decision.FAIL: 0, Decision.UNDECIDED: 0}
    for suite in suites:
        verdicts = suite.replicated.verdicts
        counts = {d: sum(1 for v in verdicts if v.decision is d) for d in totals}
        for decision, count in counts.items():
            totals[decision] += count
        attrs = {"name": suite.name, "tests": str(len(verdicts)),
                 "failures": str(counts[Decision.FAIL]),
                 "errors": str(counts[Decision.UNDECIDED]), "skipped": "0", "time": "0"}
        started = _first_start(suite.replicated)
        if started:
            attrs["timestamp"] = started
        element = ET.SubElement(root, "testsuite", attrs)
        props = ET.SubElement(element, "properties")
        for key, value in _properties(suite):
            ET.SubElement(props, "property", name=key, value=value)
        for verdict in verdicts:
            _testcase(element, verdict, suite)
    root.set("tests", str(sum(totals.values())))
    root.set("failures", str(totals[Decision.FAIL]))
    root.set("errors", str(totals[Decision.UNDECIDED]))
    root.set("time", "0")
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _properties(suite: ReplicatedSuite) -> list[tuple[str, str]]:
    rep = suite.replicated
    props = [("scenario", rep.scenario.name), ("policy", rep.policy), ("kind", "replications"),
             ("replications", str(len(rep.seeds))), ("base_seed", str(rep.base_seed)),
             ("seeds", " ".join(str(s) for s in rep.seeds)), ("method", METHOD)]
    if suite.run_dir is not None:
        props.append(("run_dir", suite.run_dir))
    return props


def _testcase(parent: ET.Element, verdict: ObjectiveVerdict, suite: ReplicatedSuite) -> None:
    case = ET.SubElement(parent, "testcase", classname=suite.class_prefix + verdict.service,
                         name=verdict.objective, time="0")
    n = len(suite.replicated.seeds)
    label = f"{verdict.service} {objective_label(verdict.objective)}"
    target = fmt_objective(verdict.objective, verdict.target)
    body = "\n".join([against(verdict, n), *_per_seed(verdict, suite.replicated)])
    if verdict.decision is Decision.PASS:
        ET.SubElement(case, "system-out").text = body
        return
    if verdict.decision is Decision.FAIL:
        element = ET.SubElement(case, "failure", type=FAILURE_TYPE,
                                message=f"{label}: {_missed(verdict, target, n)}")
    else:
        element = ET.SubElement(case, "error", type=UNDECIDED_TYPE,
                                message=f"{label} {undecided_reason(verdict, n)}")
    element.text = body


def against(verdict: ObjectiveVerdict, n: int) -> str:
    """``browse p99 495 ms ± 19 ms (95% interval [476 ms, 514 ms]) against 500 ms:
    undecided after 5 replications``."""
    what = {Decision.PASS: f"met with {_CONFIDENCE}", Decision.FAIL: f"missed with {_CONFIDENCE}",
            Decision.UNDECIDED: "undecided"}[verdict.decision]
    target = fmt_objective(verdict.objective, verdict.target)
    return (f"{verdict.service} {objective_label(verdict.objective)} "
            f"{_value(verdict)} against {target}: {what} after {n} replications")


def undecided_reason(verdict: ObjectiveVerdict, n: int) -> str:
    """``undecided: interval [a, b] straddles target T after N replications; about K
    replications would likely decide it``."""
    interval = verdict.interval
    ends = "its interval" if interval is None else f"interval {_ends(verdict, interval)}"
    more = (f"about {verdict.replications_needed} replications would likely decide it"
            if verdict.replications_needed is not None else
            "its mean sits on the target: more replications will not decide it")
    return (f"undecided: {ends} straddles target "
            f"{fmt_objective(verdict.objective, verdict.target)} after {n} replications; {more}")


def _missed(verdict: ObjectiveVerdict, target: str, n: int) -> str:
    if verdict.interval is None:
        return (f"missed: a replication has no value for it (more requests failed than it "
                f"allows, or none completed) against {target} ({n} replications)")
    return (f"{_value(verdict)} above target {target} with {_CONFIDENCE} ({n} replications)")


def _value(verdict: ObjectiveVerdict) -> str:
    interval = verdict.interval
    if interval is None:
        return "without an interval"
    shown = fmt_interval(interval, lambda v: fmt_objective(verdict.objective, v))
    if interval.half_width == 0.0:  # equal in every replication: the value says it all
        return shown
    return f"{shown} (95% interval {_ends(verdict, interval)})"


def _ends(verdict: ObjectiveVerdict, interval: Interval) -> str:
    return (f"[{fmt_objective(verdict.objective, interval.low)}, "
            f"{fmt_objective(verdict.objective, interval.high)}]")


def _per_seed(verdict: ObjectiveVerdict, replicated: Replicated) -> list[str]:
    """One line per replication: its seed, its value and whether that run met the objective."""
    path = f"services.{verdict.service}.{objective_figure(verdict.objective)}"
    lines = []
    for seed, summary in zip(replicated.seeds, replicated.summaries, strict=True):
        value = figures_of(summary).get(path)
        judged = summary["services"][verdict.service].get("slo", {}).get(verdict.objective, {})
        met = {True: "met", False: "missed"}.get(judged.get("met"), "not judged")
        lines.append(f"seed {seed}: {fmt_objective(verdict.objective, value)} ({met})")
    return lines


def _first_start(replicated: Replicated) -> str | None:
    """When the first replication started (ISO 8601, from its summary.json)."""
    starts = [str(s["started_at"]) for s in replicated.summaries if s.get("started_at")]
    return min(starts) if starts else None


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)
