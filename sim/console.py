"""Terminal output shared by CLI commands: consoles (terminal, pipe, CI), the per-service and
comparison tables (as ``TextTable``, laid out by ``sim.termtable``), verdicts, progress bars."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from sim.engine import ProgressFn
from sim.intervals import Interval, fmt_interval
from sim.termtable import PIPED_WIDTH, Column, TextTable, render


class PeakLike(Protocol):
    """A service's traffic peak as ``sim.report.curve.PeakRow`` has it."""

    service: str
    peak_rps: float
    at: str
    total: float


WRITING_REPORT = "writing report"
"""Label of the progress step after the simulation, while the report files are written."""


def ci_mode(environ: Mapping[str, str] | None = None) -> bool:
    """True in a CI job: ``CI`` set to true/1/yes, or ``GITHUB_STEP_SUMMARY`` set."""
    env = os.environ if environ is None else environ
    return env.get("CI", "").strip().lower() in ("true", "1", "yes") or bool(
        env.get("GITHUB_STEP_SUMMARY"))


def make_console(stderr: bool = False) -> Console:
    """A console for the CLI: a terminal's width, or ``COLUMNS``, or 120 columns when piped; in
    CI no colours, cursor moves or other control characters."""
    if ci_mode():
        console = Console(stderr=stderr, highlight=False, force_terminal=False,
                          force_interactive=False, color_system=None, no_color=True,
                          emoji=False)
    else:
        # No emoji codes: "file.yaml:100:" must not print as "file.yaml💯".
        console = Console(stderr=stderr, highlight=False, emoji=False)
    if not console.is_terminal and not os.environ.get("COLUMNS", "").isdigit():
        console.width = PIPED_WIDTH
    return console


def show_table(console: Console, table: TextTable) -> None:
    """Print ``table`` laid out for the console's width (never cutting a cell)."""
    console.print(render(table, console.width))


def print_paths(console: Console, text: str, *paths: Path) -> None:
    """``text`` and file paths on one line when it fits the console, else each path on a line
    of its own: a path is never broken, so it can be copied (a path longer than the width is
    the only thing that may overflow it)."""
    line = f"{text} {' and '.join(str(p) for p in paths)}"
    if len(line) <= console.width:
        console.print(line, markup=False, soft_wrap=True)
        return
    console.print(text, markup=False)
    for path in paths:
        console.print(f"  {path}", markup=False, soft_wrap=True)


def append_job_summary(markdown: Path, environ: Mapping[str, str] | None = None) -> Path | None:
    """Append ``markdown`` (a report.md) to the CI job summary file named by
    ``GITHUB_STEP_SUMMARY``; return that file, or None when the variable is not set."""
    env = os.environ if environ is None else environ
    target = env.get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    text = markdown.read_text(encoding="utf-8")
    with open(target, "a", encoding="utf-8") as handle:
        handle.write(text if text.endswith("\n") else text + "\n")
    return Path(target)


def step_printer(console: Console) -> Callable[[str], None]:
    """A progress callback for logs: prints a step's text once, when the step (the text before
    its first ``:``) changes, so a per-second "running: 12 s" does not fill a CI log."""
    last: list[str] = []

    def say(text: str) -> None:
        step = text.split(":", 1)[0]
        if not last or last[-1] != step:
            last.append(step)
            console.print(text, markup=False, soft_wrap=True)

    return say


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def slo_cell(slo: Mapping[str, Mapping[str, Any]]) -> str:
    """``met`` / ``MISSED p99_ms`` / ``no SLO`` for one service's objectives."""
    missed = [name for name, v in slo.items() if not v["met"]]
    if not slo:
        return "no SLO"
    return "met" if not missed else "MISSED " + ", ".join(missed)


def peak_cell(s: Mapping[str, Any]) -> str:
    """The traffic curve's peak rate of a service (the one definition ``plan`` and ``curve``
    use); older summaries without it show the busiest tick's rate."""
    peak = s.get("curve_peak_rps", s["offered_peak_rps"])
    return f"{peak:,.0f}" if peak >= 10 else f"{peak:,.1f}"


def service_table(summary: Mapping[str, Any], title: str) -> TextTable:
    """One row per service: traffic, outcomes, latency, instances, cost, SLO."""
    rows = []
    for name, s in summary["services"].items():
        lat = s["latency_ms"]
        inst = s["instances"]
        instances = (f"{inst['min']}" if inst["min"] == inst["max"]
                     else f"{inst['min']}-{inst['max']}")
        rows.append((
            name, f"{s['requests']:,}", peak_cell(s), f"{100 * s['error_rate']:.3f}%",
            f"{_ms(lat['p50'])}/{_ms(lat['p95'])}/{_ms(lat['p99'])}", instances,
            f"${s['cost']:,.2f}", slo_cell(s["slo"]),
        ))
    columns = (Column("service", "l", key=True), Column("requests"), Column("peak rps"),
               Column("errors"), Column("p50/p95/p99 ms"), Column("instances"),
               Column("cost"), Column("SLO", "l"))
    return TextTable(title, columns, tuple(rows),
                     note="peak rps: the traffic curve's highest rate (as in plan and curve).")


def verdict_line(summary: Mapping[str, Any]) -> str:
    """One sentence: did every service hold its SLO?"""
    judged = [n for n, s in summary["services"].items() if s["slo"]]
    missed = [n for n, s in summary["services"].items() if not s["slo_met"]]
    if not judged:
        return "[bold]NO SLO[/] no objectives are set; nothing was judged"
    if not missed:
        return "[bold green]PASS[/] every service held its SLO"
    return "[bold red]FAIL[/] SLO missed by: " + ", ".join(
        escape(_first_reason(name, summary["services"][name]["slo"])) for name in missed)


def _first_reason(name: str, slo: dict[str, dict[str, Any]]) -> str:
    """``"payment (80% of requests failed)"``: the service and why its first miss missed."""
    reasons = [v.get("reason") for v in slo.values() if not v["met"] and v.get("reason")]
    return f"{name} ({reasons[0]})" if reasons else name


@contextmanager
def progress_bar(console: Console, label: str, enabled: bool) -> Iterator[ProgressFn | None]:
    """A progress bar fed with the simulated fraction (0..1); silent when not ``enabled``."""
    if not enabled:
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(),
               TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(label, total=1.0)

        def update(fraction: float) -> None:
            # The engine reports 1.0 when it is done; the report files come next.
            label_now = WRITING_REPORT if fraction >= 1.0 else label
            bar.update(task, completed=fraction, description=label_now)

        yield update


def comparison_table(rows: list[dict[str, Any]], title: str) -> TextTable:
    """Policies side by side, one row per policy and service (replicated figures as the mean
    ± the 95% half-width)."""
    columns = (Column("policy", "l", key=True), Column("service", "l", key=True),
               Column("SLO", "l"), Column("p95 ms"), Column("p99 ms"), Column("errors"),
               Column("timed out"), Column("shed"), Column("instance-h"),
               Column("peak inst."), Column("scale ev."), Column("cost"))
    cells = tuple((
        row["policy"], row["service"], _SLO_CELLS[row["slo_met"]],
        _fig(row["p95_ms"], _ms), _fig(row["p99_ms"], _ms), _fig(row["error_rate"], _pct),
        _fig(row["timed_out"], _count), _fig(row["shed"], _count),
        _fig(row["instance_seconds"], _hours), _fig(row["peak_instances"], _count),
        _fig(row["scale_events"], _count), _fig(row["cost"], _dollars),
    ) for row in rows)
    return TextTable(title, columns, cells, blank_repeats=True)


_SLO_CELLS = {True: "met", False: "MISSED", "undecided": "undecided"}



def _fig(value: float | Interval | None, fmt: Callable[[float | None], str]) -> str:
    """A figure, or the mean ± 95% half-width of replicated figures, in the same format."""
    if isinstance(value, Interval):
        return fmt_interval(value, fmt)
    return fmt(value)


def _pct(fraction: float | None) -> str:
    return "-" if fraction is None else f"{100 * fraction:.2f}%"


def _count(value: float | None) -> str:
    return "-" if value is None else f"{round(value):,}"


def _hours(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 3600:,.1f}"


def _dollars(value: float | None) -> str:
    return "-" if value is None else f"${value:,.2f}"


def cluster_table(rows: list[dict[str, Any]], title: str) -> TextTable | None:
    """Colocation variants side by side: machines, utilization, cost, batch work, online p99."""
    per_variant: dict[str, dict[str, Any]] = {}
    for row in rows:
        if "machines" not in row:
            return None
        entry = per_variant.setdefault(row["policy"], {**row, "p99": {}})
        entry["p99"][row["service"]] = row["p99_ms"]
    services = "/".join(next(iter(per_variant.values()))["p99"])
    columns = (Column("variant", "l", key=True), Column("machines"), Column("mean CPU"),
               Column("cost"), Column("batch done core-h"), Column("batch lost core-h"),
               Column("batch slowdown"), Column("preemptions"), Column("online p99"))
    cells = []
    for name, r in per_variant.items():
        slowdown = r["batch_slowdown_mean"]
        cells.append((
            name, f"{r['machines']:,}", f"{100 * r['mean_cpu_utilization']:.1f}%",
            f"${r['cluster_cost']:,.2f}", f"{r['batch_core_s_done'] / 3600:,.1f}",
            f"{r['batch_core_s_lost'] / 3600:,.2f}",
            "-" if slowdown is None else f"{slowdown:.2f}", f"{r['batch_preemptions']:,}",
            "/".join(_ms(v) for v in r["p99"].values()),
        ))
    return TextTable(title, columns, tuple(cells), note=f"online p99 in ms: {services}")


def curve_table(peaks: Sequence[PeakLike], title: str) -> TextTable:
    """The peaks of ``peaksim curve``: the curve's highest rate, when, and expected requests."""
    rows = [(row.service, f"{row.peak_rps:,.1f}", row.at, f"{row.total:,.0f}") for row in peaks]
    return TextTable.of(title, ("service", "peak rps", "at", "expected requests"), "lrrr", rows)
