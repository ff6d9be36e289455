"""Terminal output shared by CLI commands: short verdicts, per-service tables, progress bars."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from sim.engine import ProgressFn
from sim.intervals import Interval, fmt_interval


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def slo_cell(slo: dict[str, dict[str, Any]]) -> str:
    """'met' / 'MISSED p99_ms' for one service's objectives."""
    missed = [name for name, v in slo.items() if not v["met"]]
    if not slo:
        return "no SLO"
    return "[green]met[/]" if not missed else "[bold red]MISSED[/] " + ", ".join(missed)


def service_table(summary: dict[str, Any], title: str) -> Table:
    """One row per service: traffic, outcomes, latency, instances, cost, SLO."""
    table = Table(title=title, title_justify="left")
    for column in ("service", "requests", "peak rps", "errors", "p50/p95/p99 ms", "instances",
                   "cost", "SLO"):
        table.add_column(column, justify="left" if column in ("service", "SLO") else "right")
    for name, s in summary["services"].items():
        lat = s["latency_ms"]
        inst = s["instances"]
        instances = (f"{inst['min']}" if inst["min"] == inst["max"]
                     else f"{inst['min']}-{inst['max']}")
        table.add_row(
            name, f"{s['requests']:,}", f"{s['offered_peak_rps']:,.0f}",
            f"{100 * s['error_rate']:.3f}%",
            f"{_ms(lat['p50'])}/{_ms(lat['p95'])}/{_ms(lat['p99'])}", instances,
            f"${s['cost']:,.2f}", slo_cell(s["slo"]),
        )
    return table


def verdict_line(summary: dict[str, Any]) -> str:
    """One sentence: did every service hold its SLO?"""
    missed = [n for n, s in summary["services"].items() if not s["slo_met"]]
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
        yield lambda fraction: bar.update(task, completed=fraction)


def comparison_table(rows: list[dict[str, Any]], title: str) -> Table:
    """Policies side by side, one row per policy and service."""
    table = Table(title=title, title_justify="left")
    for column in ("policy", "service", "SLO", "p95 ms", "p99 ms", "errors", "timed out",
                   "shed", "instance-h", "peak inst.", "scale ev.", "cost"):
        table.add_column(column, justify="left" if column in ("policy", "service", "SLO")
                         else "right")
    last = None
    for row in rows:
        table.add_row(
            row["policy"] if row["policy"] != last else "", row["service"],
            _SLO_CELLS[row["slo_met"]], _fig(row["p95_ms"], _ms), _fig(row["p99_ms"], _ms),
            _fig(row["error_rate"], _pct), _fig(row["timed_out"], _count),
            _fig(row["shed"], _count), _fig(row["instance_seconds"], _hours),
            _fig(row["peak_instances"], _count), _fig(row["scale_events"], _count),
            _fig(row["cost"], _dollars), end_section=False,
        )
        last = row["policy"]
    return table


_SLO_CELLS = {True: "[green]met[/]", False: "[bold red]MISSED[/]",
              "undecided": "[bold yellow]undecided[/]"}


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


def cluster_table(rows: list[dict[str, Any]], title: str) -> Table | None:
    """Colocation variants side by side: machines, utilization, cost, batch work, online p99."""
    per_variant: dict[str, dict[str, Any]] = {}
    for row in rows:
        if "machines" not in row:
            return None
        entry = per_variant.setdefault(row["policy"], {**row, "p99": {}})
        entry["p99"][row["service"]] = row["p99_ms"]
    services = "/".join(next(iter(per_variant.values()))["p99"])
    table = Table(title=title, title_justify="left", caption=f"online p99 in ms: {services}",
                  caption_justify="left")
    for column in ("variant", "machines", "mean CPU", "cost", "batch done core-h",
                   "batch lost core-h", "batch slowdown", "preemptions", "online p99"):
        table.add_column(column, justify="left" if column == "variant" else "right",
                         no_wrap=column in ("variant", "online p99"))
    for name, r in per_variant.items():
        slowdown = r["batch_slowdown_mean"]
        table.add_row(
            name, str(r["machines"]), f"{100 * r['mean_cpu_utilization']:.1f}%",
            f"${r['cluster_cost']:,.2f}", f"{r['batch_core_s_done'] / 3600:,.1f}",
            f"{r['batch_core_s_lost'] / 3600:,.2f}",
            "-" if slowdown is None else f"{slowdown:.2f}", str(r["batch_preemptions"]),
            "/".join(_ms(v) for v in r["p99"].values()),
        )
    return table
