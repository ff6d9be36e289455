"""The report of replicated runs (one variant, or a comparison): report.html, report.md,
bands.png and junit.xml.

The report is drawn from the replications as their run directories hold them (summary.json,
timeseries.csv), so ``peaksim report`` rebuilds the same files from the directory alone
(sim/study/rebuild.py). It says what one run's report says, with every figure as
``mean ± half-width`` of its 95% interval, each SLO objective decided on the interval (met /
missed with confidence, or undecided with the replications likely to decide it), the per-tick
series as mean and band, and for a comparison the differences between variants that are
significant (paired by seed).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sim.intervals import METHOD, Decision, Interval, combine, fmt_interval
from sim.report import (
    MET,
    MISSED,
    ReportDoc,
    ReportFigure,
    RunData,
    Table,
    VerdictLine,
    fmt_count,
    fmt_ms,
    fmt_num,
    fmt_objective,
    fmt_pct,
    objective_label,
    rebuild_command,
    render_html,
    render_markdown,
)
from sim.runio import atomic_write_bytes, atomic_write_text
from sim.study.bands import plot_bands
from sim.study.compare import Difference, differences
from sim.study.junit import comparison_suites, render_replicated_junit, run_suite
from sim.study.replicate import Replicated

BANDS_FILE = "bands.png"
HTML_FILE = "report.html"
MARKDOWN_FILE = "report.md"
JUNIT_FILE = "junit.xml"
UNDECIDED = "undecided"
_CELL = {Decision.PASS: MET, Decision.FAIL: MISSED, Decision.UNDECIDED: UNDECIDED}
_OK = {Decision.PASS: True, Decision.FAIL: False, Decision.UNDECIDED: None}


@dataclass(frozen=True)
class ReplicatedFiles:
    """What a replicated report wrote, and its headline and verdict lines."""

    html: Path
    markdown: Path
    junit: Path
    doc: ReportDoc


def write_replicated_report(out_dir: Path, variants: Sequence[Replicated],
                            runs: Sequence[Sequence[RunData]],
                            names: Sequence[str] | None = None) -> ReplicatedFiles:
    """Write bands.png, junit.xml, report.md and report.html (last) into ``out_dir``.

    ``runs[i]`` are the replications of ``variants[i]`` as read from their run directories
    (``sim.report.load_run``), in seed order; ``names`` (a comparison) labels the variants,
    whose directories are those runs' parents.
    """
    doc = replicated_doc(variants, runs, names, rebuild_command(out_dir))
    for figure in doc.figures:
        atomic_write_bytes(out_dir / figure.filename, figure.png)
    suites = ([run_suite(variants[0])] if names is None else
              comparison_suites(names, variants, [r[0].run_dir.parent for r in runs], out_dir))
    files = ReplicatedFiles(out_dir / HTML_FILE, out_dir / MARKDOWN_FILE, out_dir / JUNIT_FILE,
                            doc)
    atomic_write_text(files.junit, render_replicated_junit(suites))
    atomic_write_text(files.markdown, render_markdown(doc))
    # The HTML last: its presence means the whole report is there.
    atomic_write_text(files.html, render_html(doc))
    return files


def headline(decision: Decision, needed: int | None, n: int) -> str:
    """The gate's sentence: met/missed with 95% confidence, or undecided and what would decide
    it."""
    if decision is Decision.PASS:
        return f"SLO met with 95% confidence ({n} replications)."
    if decision is Decision.FAIL:
        return f"SLO missed with 95% confidence ({n} replications)."
    more = (f"about {needed} replications would likely decide it" if needed is not None
            else "a mean sits on its target: more replications will not decide it")
    return f"An interval straddles its SLO target after {n} replications; {more}."


def comparison_headline(names: Sequence[str], variants: Sequence[Replicated]
                        ) -> tuple[str, bool | None]:
    """Which variants held every SLO with confidence, and the cheapest of them; ``met`` is
    True when all held, False when none did."""
    held = [(name, v) for name, v in zip(names, variants, strict=True)
            if v.decision is Decision.PASS]
    undecided = [name for name, v in zip(names, variants, strict=True)
                 if v.decision is Decision.UNDECIDED]
    n = len(variants[0].seeds)
    text = (f"{len(held)} of {len(variants)} variants held every SLO with 95% confidence "
            f"({n} replications)")
    if held:
        name, best = min(held, key=lambda item: _mean_cost(item[1]))
        text += (f"; cheapest: {name} at "
                 f"{fmt_interval(best.figure('cost.total'), fmt_dollars)}")
    if undecided:
        text += f"; undecided: {', '.join(undecided)}"
    met = True if len(held) == len(variants) else (False if not held and not undecided
                                                   else None)
    return text + ".", met


def _mean_cost(v: Replicated) -> float:
    interval = v.figure("cost.total")
    return interval.mean if interval is not None else float("inf")


def replicated_doc(variants: Sequence[Replicated], runs: Sequence[Sequence[RunData]],
                   names: Sequence[str] | None = None, rebuild: str = "") -> ReportDoc:
    """The format-neutral document of the report (``rebuild``: the command that rebuilds
    it, for the footer)."""
    names = list(names) if names is not None else [v.policy for v in variants]
    first = variants[0]
    n = len(first.seeds)
    scenario = first.scenario
    targets = {s: o.p99_ms for s, o in scenario.slo.items() if o.p99_ms is not None}
    bands = ReportFigure(
        BANDS_FILE, "Per tick: mean and 95% band over replications",
        "Per service: offered load, ready instances and per-tick p99; the line is the mean over "
        "replications, the shaded band its 95% Student t interval at each tick.",
        plot_bands(names, runs, scenario.start_clock_s, targets))
    tables = [figures_table(names, variants), objectives_table(names, variants)]
    if len(variants) > 1:
        tables.append(differences_table(differences(names, variants, base_index=0)))
    kind = "comparison" if len(variants) > 1 else "run"
    if len(variants) > 1:
        title_line, met = comparison_headline(names, variants)
    else:
        title_line = headline(first.decision, first.replications_needed, n)
        met = _OK[first.decision]
    return ReportDoc(
        title=f"{scenario.name}: replicated {kind}",
        subtitle=f"{n} replications per variant; {METHOD}",
        met=met,
        headline=title_line,
        verdict=tuple(line for name, v in zip(names, variants, strict=True)
                      for line in verdict_lines(name if len(variants) > 1 else "", v)),
        facts=(("scenario file", scenario.source), ("variants", ", ".join(names)),
               ("base seed", str(first.base_seed)),
               ("seeds", ", ".join(str(s) for s in first.seeds)),
               ("method", f"{METHOD}; variants share the seeds (common random numbers)")),
        figures=(bands,), tables=tuple(tables),
        footer="Each replication is a run directory (seed-<seed>/) that 'peaksim report' "
               "turns into a full report; 'peaksim run --seed <seed>' reproduces it."
               + (f" To rebuild this report, run: {rebuild}" if rebuild else ""))


def verdict_lines(label: str, v: Replicated) -> list[VerdictLine]:
    """One sentence per objective: its interval against its target and the decision."""
    lines = []
    for x in v.verdicts:
        value = fmt_interval(x.interval, lambda m, o=x.objective: fmt_objective(o, m))
        what = {Decision.PASS: "met with confidence", Decision.FAIL: "missed with confidence",
                Decision.UNDECIDED: "undecided"}[x.decision]
        more = (f"; about {x.replications_needed} replications would likely decide it"
                if x.replications_needed is not None else "")
        who = f"{label}: " if label else ""
        lines.append(VerdictLine(_OK[x.decision], f"{who}{x.service} "
                                 f"{objective_label(x.objective)} {value} against "
                                 f"{fmt_objective(x.objective, x.target)}: {what}{more}"))
    return lines


def figures_table(names: Sequence[str], variants: Sequence[Replicated]) -> Table:
    """One row per variant and service, every figure as mean ± half-width."""
    rows = []
    for name, v in zip(names, variants, strict=True):
        for service in v.summaries[0]["services"]:
            p = f"services.{service}."
            decisions = [x.decision for x in v.verdicts if x.service == service]
            rows.append((
                name, service, _CELL[combine(decisions)] if decisions else "no SLO",
                f"{100 * v.met_share(service):.0f}%",
                fmt_interval(v.figure(p + "latency_ms.p95"), fmt_ms),
                fmt_interval(v.figure(p + "latency_ms.p99"), fmt_ms),
                fmt_interval(v.figure(p + "error_rate"), fmt_pct),
                fmt_interval(v.figure(p + "shed"), fmt_count),
                fmt_interval(_hours(v.figure(p + "instance_seconds")), fmt_num),
                fmt_interval(v.figure(p + "cost"), fmt_dollars),
            ))
    return Table("Figures (mean ± 95% half-width)",
                 ("variant", "service", "SLO", "met in", "p95", "p99", "error rate", "shed",
                  "instance-h", "cost"), tuple(rows), ("l", "l", "l") + ("r",) * 7,
                 note="'met in': share of replications in which the service held its SLO.",
                 anchor="figures")


def objectives_table(names: Sequence[str], variants: Sequence[Replicated]) -> Table:
    """Each objective's interval, target and decision."""
    rows = []
    for name, v in zip(names, variants, strict=True):
        for x in v.verdicts:
            low = "-" if x.interval is None else fmt_objective(x.objective, x.interval.low)
            high = "-" if x.interval is None else fmt_objective(x.objective, x.interval.high)
            rows.append((name, x.service, objective_label(x.objective),
                         fmt_objective(x.objective, x.target), low, high, _CELL[x.decision],
                         "" if x.replications_needed is None else str(x.replications_needed)))
    return Table("SLO objectives decided on their intervals",
                 ("variant", "service", "objective", "target", "95% low", "95% high",
                  "decision", "replications to decide"), tuple(rows),
                 ("l", "l", "l", "r", "r", "r", "l", "r"), anchor="objectives")


def differences_table(diffs: Sequence[Difference]) -> Table:
    """Each variant against the first, paired by seed; which differences are significant."""
    rows = []
    for d in diffs:
        fmt = _formatter(d.figure)
        rows.append((f"{d.other} - {d.base}", d.figure.removeprefix("services."),
                     fmt_interval(d.interval, fmt),
                     "significant" if d.significant else "not significant"))
    return Table("Differences against the first variant (paired by seed, 95%)",
                 ("variants", "figure", "difference", "verdict"), tuple(rows),
                 ("l", "l", "r", "l"), anchor="differences",
                 note="Significant: the interval of the per-seed differences excludes zero.")


def _formatter(figure: str) -> Callable[[float | None], str]:
    """The value formatter of a compared figure."""
    if "latency_ms" in figure:
        return fmt_ms
    if figure.endswith("error_rate"):
        return fmt_pct
    return fmt_dollars


def fmt_dollars(value: float | None) -> str:
    """Money in USD: cents from $0.10 up, three significant digits below (scaled-down runs
    cost fractions of a cent)."""
    if value is None:
        return "-"
    text = f"{abs(value):,.2f}" if abs(value) >= 0.1 else f"{abs(value):.3g}"
    return f"-${text}" if value < 0 else f"${text}"


def _hours(interval: Interval | None) -> Interval | None:
    if interval is None:
        return None
    return Interval(interval.mean / 3600, interval.low / 3600, interval.high / 3600,
                    interval.n, interval.sd / 3600)
