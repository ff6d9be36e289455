"""The ``peaksim`` command line: thin typer commands over the domain modules.

This is the only module that imports typer and the only place where domain errors become exit
codes: 0 ok, 1 an SLO gate failed, 2 bad input or usage, 3 a gate on replications or a sweep
is undecided (an interval straddles its target), 130 interrupted.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from typer import _click as click
from typer.core import TyperGroup

from sim.console import make_console, print_paths, show_table
from sim.errors import PeaksimError, ScenarioError
from sim.termtable import TextTable

if TYPE_CHECKING:
    from sim.engine import RunLimits

DEFAULT_SCENARIO = Path("scenarios/singles-day.yaml")

class _Group(TyperGroup):
    """The peaksim command group: flags show no value type (``<bool>``) in ``--help``, since a
    flag takes no value."""

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        return _untyped_flags(super().get_params(ctx))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            original = command.get_params
            command.get_params = lambda c: _untyped_flags(original(c))  # type: ignore[method-assign]
        return command


def _untyped_flags(params: list[click.Parameter]) -> list[click.Parameter]:
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


app = typer.Typer(
    cls=_Group,
    name="peaksim",
    help="Peak-traffic load-test and autoscaling simulator (11.11-style traffic).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _out() -> Console:
    return make_console()


def _err() -> Console:
    console = make_console(stderr=True)
    console.soft_wrap = True
    return console


def _animate(console: Console) -> bool:
    """Progress bars and spinners only on an interactive terminal, never in CI."""
    from sim.console import ci_mode

    return console.is_terminal and not ci_mode()


def _job_summary(markdown: Path) -> None:
    """In CI, append a report.md to the job summary file (``GITHUB_STEP_SUMMARY``)."""
    from sim.console import append_job_summary

    try:
        append_job_summary(markdown)
    except OSError as exc:
        _err().print(f"warning: could not append {markdown} to the job summary: {exc}",
                     markup=False)


def _print_headline(console: Console, met: bool | None, headline: str) -> None:
    """The last line of a judging command: PASS/FAIL/NO SLO and the headline."""
    from rich.markup import escape

    mark = {True: "[bold green]PASS[/]", False: "[bold red]FAIL[/]", None: "[bold]NO SLO[/]"}
    word = headline.split(":", 1)[0]
    if word in ("PASS", "FAIL", "INCONCLUSIVE"):  # a load test's gate names its own verdict
        colour = "green" if word == "PASS" else "red"
        console.print(f"[bold {colour}]{word}[/]{escape(headline[len(word):])}")
        return
    console.print(f"{mark[met]} {escape(headline)}")


def _print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def _version(value: bool) -> None:
    if value:
        from sim import __version__

        sys.stdout.write(f"peaksim {__version__}\n")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Peak-traffic load-test and autoscaling simulator (11.11-style traffic)."""


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn domain errors into one line per problem on stderr and exit code 2; Ctrl-C into
    exit 130 (whatever was already written stays)."""
    try:
        yield
    except ScenarioError as exc:
        for problem in exc.problems:
            _err().print(f"error: {problem}", markup=False)
        raise typer.Exit(2) from None
    except PeaksimError as exc:
        _err().print(f"error: {exc}", markup=False)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        _err().print("interrupted: files already written are kept", markup=False)
        raise typer.Exit(130) from None


ScenarioArg = Annotated[
    Path, typer.Argument(help="Scenario YAML file.", show_default=True)
]
OutOpt = Annotated[
    Path | None,
    typer.Option("--out", help="Write the files into this directory instead of reports/."),
]
EngineOpt = Annotated[
    str | None,
    typer.Option("--engine", help="exact (every request), fluid (flows per time step, any "
                                  "rate) or auto; default: the scenario's engine key (auto)."),
]
MAX_REQUESTS_DEFAULT = 50_000_000
"""``sim.engine.runsize.MAX_REQUESTS`` (kept here so that --help needs no numpy import)."""
MaxRequestsOpt = Annotated[
    int,
    typer.Option("--max-requests", min=1, help="Refuse a run estimated above this many "
                                               "requests (see docs/scenarios.md, Limits)."),
]


def _limits(max_requests: int) -> RunLimits:
    from sim.engine import RunLimits

    return RunLimits(max_requests=max_requests)


ReplicationsOpt = Annotated[int | None, typer.Option(
    "--replications", min=2, help="Run N seeds derived from the scenario's seed and report "
    "every figure with its 95% interval (Student t); --gate then exits 3 when undecided.")]
JobsOpt = Annotated[int | None, typer.Option(
    "--jobs", min=1, help="Local processes for independent runs (default: every core).")]
ClusterOpt = Annotated[str | None, typer.Option(
    "--cluster", help="Run on an existing Dask cluster: dask://HOST:PORT of its scheduler.")]
PlotsOpt = Annotated[bool, typer.Option(
    "--plots/--no-plots", help="Draw the report's plots; --no-plots writes every table and "
    "verdict without them (faster; peaksim report DIR draws them later).")]


def _no_plots_with(plots: bool, **others: bool) -> None:
    """Refuse --no-plots beside options whose reports it does not cover."""
    given = [f"--{name.replace('_', '-')}" for name, used in others.items() if used]
    if not plots and given:
        raise PeaksimError(f"--no-plots: not with {' or '.join(given)}")


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="Scenario files to check.")],
) -> None:
    """Check scenario files; print one line per problem (exit 2 if any file is invalid)."""
    from sim.engine import check_scenario_size
    from sim.model import load_scenario
    from sim.report import plural

    bad = 0
    for file in files:
        try:
            scenario = load_scenario(file)
            check_scenario_size(scenario)
        except ScenarioError as exc:
            bad += 1
            for problem in exc.problems:
                _err().print(f"error: {problem}", markup=False)
            continue
        services = plural(len(scenario.services), "service")
        _out().print(f"ok: {file} ({scenario.name}, {services})", markup=False)
    if bad:
        raise typer.Exit(2)


@app.command()
def schema() -> None:
    """Print the JSON Schema of scenario files (for editors and CI linting)."""
    from sim.model import Scenario

    document = Scenario.model_json_schema()
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    document["title"] = "peaksim scenario"
    sys.stdout.write(json.dumps(document, indent=2) + "\n")


@app.command()
def curve(
    file: ScenarioArg = DEFAULT_SCENARIO,
    out: OutOpt = None,
    log: Annotated[bool, typer.Option("--log", help="Logarithmic rate axis.")] = False,
    rate_scale: Annotated[float, typer.Option(min=1e-9, help="Multiply every rate.")] = 1.0,
    time_scale: Annotated[float, typer.Option(min=1e-9, help="Compress time by this.")] = 1.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the peaks as JSON.")] = False,
) -> None:
    """Write the scenario's traffic curve (traffic.csv, traffic.png) and print its peaks."""
    with user_errors():
        from sim.console import curve_table
        from sim.model import load_scenario
        from sim.report import write_curve

        scenario = load_scenario(file)
        result = write_curve(scenario, out, log, rate_scale, time_scale)
        if as_json:
            _print_json(result.to_json())
            return
        show_table(_out(), curve_table(result.peaks, f"traffic of {scenario.name}"))
        print_paths(_out(), "wrote", result.csv_path, result.png_path)


@app.command()
def run(
    file: ScenarioArg = DEFAULT_SCENARIO,
    seed: Annotated[int | None, typer.Option(min=0, help="Override the scenario's seed.")] = None,
    out: OutOpt = None,
    policy: Annotated[
        str | None, typer.Option(help="Autoscaling variant of the scenario to use.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print summary.json to stdout.")] = False,
    gate: Annotated[bool, typer.Option("--gate", help="Exit 1 when any SLO is missed.")] = False,
    replications: ReplicationsOpt = None,
    jobs: JobsOpt = None,
    cluster: ClusterOpt = None,
    engine: EngineOpt = None,
    max_requests: MaxRequestsOpt = MAX_REQUESTS_DEFAULT,
    plots: PlotsOpt = True,
) -> None:
    """Simulate a scenario; write summary.json, timeseries.csv and the report."""
    with user_errors():
        from sim.console import progress_bar, service_table, verdict_line
        from sim.engine import with_engine
        from sim.model import load_scenario
        from sim.runs import run_scenario

        _no_plots_with(plots, replications=replications is not None)
        scenario = with_engine(load_scenario(file), engine)
        console = _err() if as_json else _out()
        if replications is not None:
            from sim.parallel import where
            from sim.study import run_replicated

            study = run_replicated(console, scenario, replications, where(jobs, cluster),
                                   seed=seed, out=out, variant=policy, as_json=as_json)
            _job_summary(study.markdown)
            if gate and study.exit_code:
                raise typer.Exit(study.exit_code)
            return
        with progress_bar(console, f"simulating {scenario.name}", _animate(console)) as bar:
            outcome = run_scenario(scenario, seed=seed, out=out, variant=policy, progress=bar,
                                   engine=engine, limits=_limits(max_requests), plots=plots)
        summary = outcome.summary
        _job_summary(outcome.run_dir / "report.md")
        if as_json:
            _print_json(summary)
        else:
            show_table(console, service_table(
                summary, f"{scenario.name} — policy {summary['policy']}, seed {summary['seed']}"))
            used = summary["engine"]
            print_paths(console, f"simulated {summary['sim_requests']:,} requests in "
                                 f"{summary['wall_s']:.1f} s with the {used['name']} engine "
                                 f"({used['reason']}); report:", outcome.main_file)
            console.print(verdict_line(summary))
        if gate and not summary["slo_met"]:
            raise typer.Exit(1)


@app.command()
def compare(
    file: ScenarioArg = DEFAULT_SCENARIO,
    policy: Annotated[
        list[str] | None,
        typer.Option("--policy", help="A variant of the scenario or a policy name; repeat. "
                                      "Default: every variant of the scenario."),
    ] = None,
    seed: Annotated[int | None, typer.Option(min=0, help="Override the scenario's seed.")] = None,
    out: OutOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the table as JSON.")] = False,
    replications: ReplicationsOpt = None,
    jobs: JobsOpt = None,
    cluster: ClusterOpt = None,
    engine: EngineOpt = None,
    max_requests: MaxRequestsOpt = MAX_REQUESTS_DEFAULT,
    plots: PlotsOpt = True,
) -> None:
    """Run one scenario and seed under several policies; print and write a side-by-side
    comparison."""
    with user_errors():
        _no_plots_with(plots, replications=replications is not None)
        from sim.console import cluster_table, comparison_table, progress_bar
        from sim.engine import with_engine
        from sim.model import load_scenario
        from sim.parallel import where
        from sim.report import plural
        from sim.runs import compare_variants, comparison_rows, variant_names
        from sim.study import done_fraction

        scenario = with_engine(load_scenario(file), engine)
        names = variant_names(scenario, policy or [])
        console = _err() if as_json else _out()
        place = where(jobs, cluster)
        if replications is not None:
            from sim.study import compare_replicated

            study = compare_replicated(console, scenario, names, replications, place,
                                       seed=seed, out=out, as_json=as_json)
            _job_summary(study.markdown)
            return
        label = f"{len(names)} runs on {place.describe()}"
        with progress_bar(console, label, _animate(console)) as bar:
            outcome = compare_variants(scenario, names, seed=seed, out=out, place=place,
                                       on_done=done_fraction(bar),
                                       limits=_limits(max_requests), plots=plots)
        rows = comparison_rows(outcome.names, outcome.summaries)
        report = outcome.report
        _job_summary(report.markdown)
        if as_json:
            _print_json({"scenario": scenario.name, "rows": rows,
                         "verdict": {"met": report.met, "headline": report.headline}})
            return
        show_table(console, comparison_table(
            rows, f"{scenario.name}: {plural(len(names), 'policy', 'policies')}, "
                  f"seed {outcome.summaries[0]['seed']}"))
        machines = cluster_table(rows, "cluster: machines, utilization and batch work")
        if machines is not None:
            show_table(console, machines)
        print_paths(console, "report:", outcome.report_html)
        _print_headline(console, report.met, report.headline)


@app.command()
def bench(
    duration_s: Annotated[
        float, typer.Option("--duration", min=10, help="Simulated seconds of the workload.")
    ] = 300.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
    memory: Annotated[bool, typer.Option(help="Also measure peak RSS at 1x and 10x.")] = True,
    loadgen: Annotated[bool, typer.Option(
        "--loadgen", help="Instead: the load generator against bare Locust (loopback).")
    ] = False,
    loadgen_s: Annotated[float, typer.Option(
        "--loadgen-seconds", min=5, max=600, help="--loadgen: wall seconds per run.")] = 15.0,
    rounds: Annotated[int, typer.Option(min=1, max=10, help="--loadgen: rounds.")] = 2,
    fraction: Annotated[float, typer.Option(
        min=0.05, max=2.0, help="--loadgen: replay rate as a fraction of bare.")] = 0.9,
    workers: Annotated[int, typer.Option(
        min=0, max=64, help="--loadgen: replay worker processes (0: one process).")] = 0,
    engine: Annotated[str, typer.Option(
        "--engine", help="exact: the engine against the naive SimPy model; fluid: the fluid "
                         "engine at real 11.11 rates against exact at 1/1000.")] = "exact",
) -> None:
    """Engine speed against the naive per-request SimPy model on the same workload; with
    --engine fluid, the fluid engine at the real rates against exact at 1/1000; with
    --loadgen, the load generator's replay against bare Locust FastHttpUser."""
    with user_errors():
        if loadgen:
            from loadtests.bench.loadgen import loadgen_lines, run_loadgen_bench

            with _err().status("benchmarking the load generator (bare Locust, then replay)"):
                measured = run_loadgen_bench(loadgen_s, rounds, fraction, workers)
            if as_json:
                sys.stdout.write(json.dumps(measured.as_dict(), indent=2) + "\n")
                return
            for line in loadgen_lines(measured):
                _out().print(line, markup=False)
            return
        if engine == "fluid":
            _bench_fluid(as_json)
            return
        if engine != "exact":
            raise PeaksimError(f"--engine: expected exact or fluid, got {engine!r}")
        from sim.bench import run_bench, to_json

        console = _err() if as_json else _out()
        with console.status("benchmarking (engine, naive SimPy model, memory at 1x and 10x, "
                            "report cost)"):
            result = run_bench(duration_s, measure_memory=memory)
        if as_json:
            sys.stdout.write(to_json(result) + "\n")
            return
        rows = [("engine (pre-drawn workload)", f"{result.requests:,}",
                 f"{result.engine_wall_s:.2f}", f"{result.engine_rps:,.0f}"),
                ("naive SimPy, process per request", f"{result.naive_requests:,}",
                 f"{result.naive_wall_s:.2f}", f"{result.naive_rps:,.0f}"),
                ("engine end to end (draws its own arrivals)", "-", "-",
                 f"{result.end_to_end_rps:,.0f}")]
        show_table(console, TextTable.of(
            f"three services, timeouts, fixed instances, {duration_s:,.0f} simulated s",
            ("model", "requests", "wall s", "requests / s"), "lrrr", rows))
        console.print(f"engine / naive: [bold]{result.ratio:.1f}x[/]")
        if result.rss_1x_mb is not None and result.rss_10x_mb is not None:
            console.print(f"peak RSS: {result.rss_1x_mb:.0f} MB at 1x duration, "
                          f"{result.rss_10x_mb:.0f} MB at 10x")
        if result.report is not None:
            cost = result.report
            console.print(f"report of a {cost.duration_s:g}-s run: {cost.plots_s:.3f} s with "
                          f"plots, {cost.no_plots_s:.3f} s with --no-plots; report / "
                          f"simulation: [bold]{cost.plots_ratio:.1f}x[/] and "
                          f"[bold]{cost.no_plots_ratio:.2f}x[/]")


# --- peaksim sweep (sim/sweep*.py; runs in parallel by sim/parallel.py) ---------------


@app.command()
def sweep(
    file: ScenarioArg,
    settings: Annotated[list[str], typer.Option(
        "--set", help="dotted.path=v1,v2,... of a scenario value; repeat for a grid.")],
    replications: ReplicationsOpt = None,
    jobs: JobsOpt = None,
    cluster: ClusterOpt = None,
    policy: Annotated[str | None, typer.Option(
        help="Autoscaling or colocation variant to run at every point.")] = None,
    seed: Annotated[int | None, typer.Option(min=0, help="Override the scenario's seed.")] = None,
    out: OutOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print sweep.json to stdout.")] = False,
    gate: Annotated[bool, typer.Option(
        "--gate", help="Exit 0 when a point holds the SLO, 1 when none does, 3 when none "
                       "holds with confidence but some are undecided.")] = False,
) -> None:
    """Run a grid over scenario values; write sweep.csv/.json/.md and a Pareto plot of cost
    against SLO attainment naming the cheapest point that holds the SLO."""
    with user_errors():
        from sim.console import progress_bar
        from sim.parallel import where
        from sim.study import (
            done_fraction,
            grid,
            parse_setting,
            print_sweep,
            run_sweep,
            sweep_json,
            write_sweep,
        )

        parsed = [parse_setting(s) for s in settings]
        points = grid(file, parsed)
        place = where(jobs, cluster)
        console = _err() if as_json else _out()
        runs = len(points) * (replications or 1)
        with progress_bar(console, f"{runs} runs on {place.describe()}",
                          _animate(console)) as bar:
            outcome = run_sweep(points, place, replications=replications, seed=seed,
                                variant=policy, out=out, on_done=done_fraction(bar))
        files = write_sweep(outcome, parsed)
        if as_json:
            sys.stdout.write(json.dumps(sweep_json(outcome, parsed), indent=2) + "\n")
        else:
            print_sweep(console, outcome, parsed, files)
        if gate and outcome.exit_code:
            raise typer.Exit(outcome.exit_code)


def _bench_fluid(as_json: bool) -> None:
    from sim.bench import run_fluid_bench, to_json

    console = _err() if as_json else _out()
    with console.status("benchmarking (exact at 1/1000, fluid at 1x for 2 h and 24 h)"):
        result = run_fluid_bench()
    if as_json:
        sys.stdout.write(to_json(result) + "\n")
        return
    with_cluster = ", cluster" if result.cluster else ""
    rows = (("exact, 1/1000, 2 h, no cluster", result.exact_requests, result.exact_wall_s,
             result.exact_rps),
            ("fluid, 1x, 2 h, no cluster", result.plane_requests, result.plane_wall_s,
             result.plane_rps),
            (f"fluid, 1x, 2 h{with_cluster}", result.fluid_requests, result.fluid_wall_s,
             result.fluid_rps),
            (f"fluid, 1x, 24 h{with_cluster}", result.day_requests, result.day_wall_s,
             result.day_rps))
    show_table(console, TextTable.of(
        f"{result.scenario}: exact at 1/1000 of the rates, fluid at 1x",
        ("run", "requests", "wall s", "requests / s"), ("l", "r", "r", "r"),
        [(run, f"{n:,}", f"{wall:.2f}", f"{rate:,.0f}") for run, n, wall, rate in rows]))
    console.print(f"fluid / exact (simulated requests per second, no cluster): "
                  f"[bold]{result.ratio:,.0f}x[/]")


# --- peaksim report (sim/report*.py) -------------------------------------------------------


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(
        help="Run directory (summary.json + timeseries.csv), comparison directory, or "
             "replicated run or comparison directory.")],
    gate: Annotated[bool, typer.Option(
        "--gate", help="Exit 1 when any SLO is missed (replicated: 0, 1 or 3).")] = False,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the verdict and the table as JSON.")] = False,
) -> None:
    """Rebuild report.html, report.md, junit.xml and the plots from a run's saved files."""
    with user_errors():
        from loadtests.report import REPORT_EXTENSIONS
        from sim.report import regenerate
        from sim.study import report_replicated, study_kind

        if study_kind(run_dir) is not None:
            study = report_replicated(_err() if as_json else _out(), run_dir, as_json=as_json)
            _job_summary(study.markdown)
            if gate and study.exit_code:
                raise typer.Exit(study.exit_code)
            return
        files = regenerate(run_dir, extensions=REPORT_EXTENSIONS)
    _job_summary(files.markdown)
    table = TextTable.from_table(files.table)
    if as_json:
        _print_json({"met": files.met, "headline": files.headline,
                     "verdict": [{"ok": line.ok, "text": line.text} for line in files.verdict],
                     "table": table.to_json(), "report": str(files.html)})
    else:
        console = _out()
        show_table(console, table)
        print_paths(console, "report:", files.html)
        for line in files.terminal_lines:
            console.print(f"  - {line}", markup=False)
        _print_headline(console, files.met, files.headline)
    if gate and files.met is False:
        raise typer.Exit(1)


# ---------------------------------------------------------------- peaksim shop (reference shop)


@app.command()
def shop(
    file: ScenarioArg = DEFAULT_SCENARIO,
    host: Annotated[
        str, typer.Option(help="Address to listen on; loopback unless you mean to expose it.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port (0: any free).")] = 8099,
    db: Annotated[
        Path | None,
        typer.Option("--db", help="SQLite file (default: shop.db in a new run directory)."),
    ] = None,
    check_db: Annotated[
        Path | None,
        typer.Option("--check-db", help="Check a shop database and exit (1 on a violation)."),
    ] = None,
    autoscale: Annotated[
        str | None,
        typer.Option("--autoscale", help="Scale the shop live with this autoscaling variant "
                                         "of the scenario (or a policy name)."),
    ] = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="With --check-db: print the counts and violations as JSON.")] = False,
    header_timeout_s: Annotated[float, typer.Option(
        "--header-timeout", min=0.01, max=3600,
        help="Seconds a request's line and headers may take to arrive (then 408).")] = 10.0,
    body_timeout_s: Annotated[float, typer.Option(
        "--body-timeout", min=0.01, max=3600,
        help="Seconds a request's body may take after its headers (then 408).")] = 10.0,
    keepalive_timeout_s: Annotated[float, typer.Option(
        "--keepalive-timeout", min=0.01, max=3600,
        help="Seconds an idle keep-alive connection stays open.")] = 75.0,
    max_connections: Annotated[int, typer.Option(
        min=1, max=1_000_000,
        help="Open connections served at once; more are answered 503.")] = 4096,
) -> None:
    """Run the reference shop with the scenario's capacity (Ctrl-C/SIGTERM stop it cleanly),
    or check a shop database's consistency with --check-db."""
    with user_errors():
        if check_db is not None:
            from loadtests.shop import check_db as run_check

            result = run_check(check_db)
            rows = []
            for what in ("orders", "paid_orders", "payments", "charged_cents"):
                real, shadow = result.counts.get(what), result.counts.get(f"shadow_{what}")
                rows.append((what, f"{real:,}" if real is not None else "-",
                             f"{shadow:,}" if shadow is not None else "-"))
            if as_json:
                _print_json({"database": str(check_db), "ok": result.ok,
                             "counts": result.counts, "violations": list(result.violations)})
                if not result.ok:
                    raise typer.Exit(1)
                return
            show_table(_out(), TextTable.of(f"shop database {check_db}",
                                            ("rows", "real", "shadow"), "lrr", rows))
            for violation in result.violations:
                _err().print(f"violation: {violation}", markup=False)
            if not result.ok:
                raise typer.Exit(1)
            _out().print("ok: no violations", markup=False)
            return
        from loadtests.shop import (
            ServerLimits,
            ShopConfig,
            ShopHandle,
            default_db_path,
            fit_connection_cap,
            run_shop,
        )
        from sim.model import load_scenario

        scenario = load_scenario(file)
        cap = fit_connection_cap(max_connections)
        if cap < max_connections:
            _err().print(f"warning: --max-connections lowered to {cap} (open-file limit)",
                         markup=False)
        config = ShopConfig(limits=ServerLimits(header_timeout_s, body_timeout_s,
                                                keepalive_timeout_s, cap))

        def ready(handle: ShopHandle) -> None:
            _out().print(f"peaksim shop: {scenario.name} on {handle.url} (db {handle.db_path})",
                         markup=False, soft_wrap=True)
            sys.stdout.flush()

        background = []
        if autoscale is not None:
            from loadtests.shop.autoscale import LiveAutoscaler
            from sim.engine import build_controller

            controller, _name = build_controller(scenario, autoscale, fixed=False)
            if controller is None:
                raise PeaksimError(f"{autoscale!r} does not name an autoscaling policy")
            console = _out()
            background.append(LiveAutoscaler(
                scenario, controller, lambda line: console.print(line, markup=False)).run)
        run_shop(scenario, db or default_db_path(scenario), host, port, ready, background, config)
        _out().print("peaksim shop: stopped", markup=False)


# ---------------------------------------------------------------- peaksim calibrate


@app.command()
def calibrate(
    file: ScenarioArg,
    service: Annotated[list[str], typer.Option(
        "--service", help="Service to calibrate (repeat for several).")],
    host: Annotated[str | None, typer.Option(
        help="Base URL of the running system to measure.")] = None,
    from_files: Annotated[list[Path] | None, typer.Option(
        "--from", help="Fit measurements already taken: results.jsonl or Locust *_stats.csv "
                       "(repeat for several).")] = None,
    instances: Annotated[int, typer.Option(
        min=1, help="Instances of each service in the measured deployment.")] = 1,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Calibrated scenario file (default: calibrated.yaml in the run "
                      "directory).")] = None,
    report_dir: Annotated[Path | None, typer.Option(
        "--report-dir", help="Run directory for the report (default: under reports/).")] = None,
    rates: Annotated[str | None, typer.Option(
        help="Explicit step rates, e.g. 10,20,40,80 (rps).")] = None,
    start_rps: Annotated[float, typer.Option(min=0.01, help="First step's rate.")] = 5.0,
    growth: Annotated[float, typer.Option(help="Rate factor from one step to the next.")] = 1.5,
    step_s: Annotated[float, typer.Option("--step", min=1, help="Seconds per step.")] = 5.0,
    light_s: Annotated[float, typer.Option(
        "--light", min=1, help="Seconds of the first (light-load) step.")] = 10.0,
    max_steps: Annotated[int, typer.Option(min=1, help="Most steps per service.")] = 10,
    steps_per_run: Annotated[int, typer.Option(
        min=1, help="Steps per load-generator run (saturation is checked between runs).")] = 3,
    max_requests: Annotated[int, typer.Option(
        min=1, help="Most requests per service's staircase.")] = 100_000,
    rtt_path: Annotated[str, typer.Option(
        help="Trivial request whose round trip is subtracted.")] = "/healthz",
    rtt_ms: Annotated[float | None, typer.Option(
        min=0, help="Round trip to subtract instead of measuring it (ms).")] = None,
    request_timeout_s: Annotated[float, typer.Option(
        "--request-timeout", min=0.01, help="Client timeout per attempt, seconds.")] = 5.0,
    seed: Annotated[int, typer.Option(help="Seed of the replay and the fits.")] = 0,
    allow_remote: Annotated[bool, typer.Option(
        "--allow-remote", help="Allow a --host that is not a loopback address.")] = False,
    insecure: Annotated[bool, typer.Option(
        "--insecure", help="Do not verify the target's TLS certificate.")] = False,
    ca_bundle: Annotated[Path | None, typer.Option(
        "--ca-bundle", help="CA bundle (PEM) that verifies the target.")] = None,
    locustfile: Annotated[Path | None, typer.Option(
        "--locustfile", help="Your own Locust classes for some services.")] = None,
) -> None:
    """Measure a running system with a staircase of open-model steps up to saturation (or
    read --from files) and write the scenario that describes it, with a report."""
    with user_errors():
        from loadtests.calibrate.report import fit_table, step_line
        from loadtests.calibrate.run import CalibrateConfig, run_calibration
        from loadtests.calibrate.staircase import StaircasePlan

        try:
            rate_list = tuple(float(r) for r in rates.split(",")) if rates else ()
        except ValueError:
            raise PeaksimError(f"--rates: expected numbers separated by commas, got "
                               f"{rates!r}") from None
        plan = StaircasePlan(start_rps=start_rps, growth=growth, step_s=step_s, light_s=light_s,
                             max_steps=max_steps, steps_per_run=steps_per_run,
                             max_requests=max_requests, request_timeout_s=request_timeout_s,
                             rates=rate_list)
        config = CalibrateConfig(Path(file), tuple(service), host=host,
                                 from_paths=tuple(from_files or ()), instances=instances,
                                 out=out, report_dir=report_dir, plan=plan, rtt_path=rtt_path,
                                 rtt_ms=rtt_ms, seed=seed, allow_remote=allow_remote,
                                 insecure=insecure, ca_bundle=ca_bundle, locustfile=locustfile)
        console = _out()
        with console.status("calibrating") as spinner:
            outcome = run_calibration(
                config, lambda text: spinner.update(text),
                lambda name, step: console.print(step_line(name, step), markup=False))
        console.print(fit_table(outcome.fits))
        for fit in outcome.fits:
            console.print(f"{fit.service}: {fit.curve_text}", markup=False)
            for note in fit.notes:
                console.print(f"{fit.service}: note: {note}", markup=False)
        console.print(f"calibrated scenario: {outcome.scenario_out}", markup=False)
        console.print(f"report: {outcome.report_md}", markup=False)


# ---------------------------------------------------------------- peaksim plan (sim/plan*.py)


@app.command()
def plan(
    file: ScenarioArg = DEFAULT_SCENARIO,
    headroom: Annotated[float, typer.Option(
        min=0.0, max=10.0, help="Spare capacity over the smallest count that held: "
                                "recommended = ceil(minimum x (1 + headroom)).")] = 0.2,
    margin_s: Annotated[float, typer.Option(
        "--margin", min=0.0, help="Seconds before the traffic outgrows the initial count "
                                  "that the recommended count must be ready.")] = 60.0,
    seed: Annotated[int | None, typer.Option(min=0, help="Override the scenario's seed.")] = None,
    out: OutOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print plan.json to stdout.")] = False,
    schedule: Annotated[bool, typer.Option(
        "--schedule", help="Plan the cheapest instances-over-time schedule instead.")] = False,
    step: Annotated[str, typer.Option(help="--schedule: step length (minimum time between "
                                           "changes).")] = "5m",
    scale_down_delay: Annotated[str, typer.Option(
        help="--schedule: keep a step's count this long after it.")] = "0",
    write_variant: Annotated[str | None, typer.Option(
        help="--schedule: add the schedule as this variant to a copy of the scenario.")] = None,
    emit: Annotated[tuple[str, Path] | None, typer.Option(
        metavar="FORMAT DIR", help="--schedule: write k8s manifests (HPA + KEDA ScaledObject "
                                   "per service) or json into DIR.")] = None,
    compare: Annotated[bool, typer.Option(
        "--compare", help="--schedule: run every variant and the planned one side by side.")
    ] = False,
    replications: ReplicationsOpt = None,
    jobs: JobsOpt = None,
    cluster: ClusterOpt = None,
    engine: EngineOpt = None,
    max_requests: MaxRequestsOpt = MAX_REQUESTS_DEFAULT,
    plots: PlotsOpt = True,
) -> None:
    """How many instances of each service must be ready, and from when, to hold the SLO through
    the scenario's peak (queueing estimate, confirmed by simulation); with --schedule, the
    cheapest schedule over the whole run. Exit 1 if no plan holds."""
    with user_errors():
        _no_plots_with(plots, schedule=schedule, replications=replications is not None)
        from sim.engine import with_engine
        from sim.model import load_scenario
        from sim.report import plan_table
        from sim.runs import plan_scenario

        scenario = with_engine(load_scenario(file), engine)
        console = _err() if as_json else _out()
        only = [name for name, given in (
            ("--write-variant", write_variant is not None), ("--emit", emit is not None),
            ("--compare", compare), ("--step", step != "5m"),
            ("--scale-down-delay", scale_down_delay != "0")) if given]
        if only and not schedule:
            raise PeaksimError(f"{', '.join(only)}: only with --schedule")
        if schedule and replications is not None:
            raise PeaksimError("--replications confirms the peak plan; not with --schedule")
        if schedule:
            _plan_schedule(scenario, console, as_json, headroom=headroom, margin_s=margin_s,
                           seed=seed, out=out, step=step, delay=scale_down_delay,
                           write_variant=write_variant, emit=emit, compare=compare)
            return
        label = f"planning {scenario.name}"
        if _animate(console):
            with console.status(label) as status:
                outcome = plan_scenario(
                    scenario, headroom=headroom, margin_s=margin_s, seed=seed, out=out,
                    on_trial=lambda what: status.update(
                        f"{label}: {what}" if what == "writing report"
                        else f"{label}: simulating the {what}"),
                    limits=_limits(max_requests), plots=plots)
        else:
            outcome = plan_scenario(scenario, headroom=headroom, margin_s=margin_s, seed=seed,
                                    out=out, limits=_limits(max_requests), plots=plots)
        data = outcome.plan.to_json()
        if outcome.report_html is not None:
            _job_summary(outcome.report_html.with_name("report.md"))
        if as_json:
            _print_json(data)
        else:
            model = plan_table(data)
            table = TextTable.of(
                f"capacity plan for {scenario.name} — peak window "
                f"{data['window']['from']}–{data['window']['to']}",
                model.header, model.align, model.rows)
            show_table(console, table)
            for name, why in data["skipped"].items():
                console.print(f"  - {name} not planned: {why}", markup=False)
            print_paths(console, f"{data['simulations']} simulations in "
                                 f"{data['wall_s']:.1f} s; report:",
                        outcome.report_html or outcome.run_dir)
            _print_headline(console, outcome.plan.held, data["verdict"])
        planned = any(s.recommended is not None for s in outcome.plan.services)
        if replications is not None and planned:  # nothing to confirm: the plan failed
            from sim.parallel import where
            from sim.study import confirm_plan_on_intervals

            code = confirm_plan_on_intervals(console, scenario, outcome, replications,
                                             where(jobs, cluster), seed=seed)
            if code or not outcome.plan.held:
                raise typer.Exit(code or 1)
            return
        if not outcome.plan.held:
            raise typer.Exit(1)


def _plan_schedule(scenario: object, console: Console, as_json: bool, *, headroom: float,
                   margin_s: float, seed: int | None, out: Path | None, step: str, delay: str,
                   write_variant: str | None, emit: tuple[str, Path] | None,
                   compare: bool) -> None:
    """``peaksim plan --schedule`` (sim/plan_schedule*.py): print the schedule and verdict."""

    from sim.console import comparison_table
    from sim.model import Scenario
    from sim.plan import SCHEDULE_HEADER, ScheduleOptions, schedule_rows, schedule_verdict
    from sim.runs import schedule_scenario
    from sim.units import parse_duration_s

    assert isinstance(scenario, Scenario)
    try:
        step_s, delay_s = parse_duration_s(step), parse_duration_s(delay)
    except ValueError as exc:
        raise PeaksimError(f"--step/--scale-down-delay: {exc}") from None
    options = ScheduleOptions(step_s=step_s, headroom=headroom, margin_s=margin_s,
                              scale_down_delay_s=delay_s, seed=seed)
    label = f"planning the schedule of {scenario.name}"
    with console.status(label) as status:
        outcome = schedule_scenario(
            scenario, options, out=out, write_variant=write_variant, emit=emit,
            compare=compare, on_trial=lambda what: status.update(f"{label}: simulating {what}"))
    data = outcome.data
    if outcome.report_html is not None:
        _job_summary(outcome.report_html.with_name("report.md"))
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        show_table(console, TextTable.of(
            f"schedule for {scenario.name} — step {step}, headroom {headroom:.0%}",
            SCHEDULE_HEADER, ["r" if c in ("min", "peak", "cost") else "l"
                              for c in SCHEDULE_HEADER], list(schedule_rows(data))))
        if outcome.compare_rows:
            show_table(console, comparison_table(outcome.compare_rows, "the planned variant "
                                                                       "next to the scenario's"))
        for name, why in data["skipped"].items():
            console.print(f"  - {name} not planned: {why}", markup=False)
        console.print(f"variant {outcome.variant_name} (ready to paste): "
                      f"{outcome.run_dir / 'variant.yaml'}", markup=False)
        if outcome.scenario_copy is not None:
            console.print(f"scenario with it: {outcome.scenario_copy} (peaksim run "
                          f"{outcome.scenario_copy} --policy {outcome.variant_name})",
                          markup=False)
        for path in outcome.emitted:
            console.print(f"wrote {path}", markup=False)
        print_paths(console, f"{data['simulations']} simulations in {data['wall_s']:.1f} s; "
                             "report:", outcome.report_html or outcome.run_dir)
        _print_headline(console, data["held"], schedule_verdict(data))
    if not data["held"]:
        raise typer.Exit(1)


# --- peaksim loadtest (loadtests/runner.py; Locust runs as a subprocess) --------------------


@app.command()
def loadtest(
    file: ScenarioArg,
    host: Annotated[str | None, typer.Option(
        help="Base URL of the system under test, e.g. http://127.0.0.1:8099.")] = None,
    local_shop: Annotated[bool, typer.Option(
        "--local-shop", help="Start the reference shop on loopback for the run.")] = False,
    time_scale: Annotated[float | None, typer.Option(
        min=1e-9, help="Compress time (default: the scenario's loadtest section).")] = None,
    rate_scale: Annotated[float | None, typer.Option(
        min=1e-9, help="Multiply every rate (default: the scenario's loadtest section).")] = None,
    duration_s: Annotated[float | None, typer.Option(
        "--duration", min=1e-3, help="Replay only the first S seconds of the scaled curve.")
    ] = None,
    workers: Annotated[int, typer.Option(
        min=0, help="Locust worker processes on this machine (0: one local process).")] = 0,
    gate: Annotated[bool, typer.Option(
        "--gate", help="Exit 1 on an SLO miss, 2 when the target load was not offered.")
    ] = False,
    out: OutOpt = None,
    compare_sim: Annotated[bool, typer.Option(
        "--compare-sim", help="Also simulate the scaled scenario and compare.")] = False,
    arrivals: Annotated[str, typer.Option(help="Send times: poisson or paced.")] = "poisson",
    lag_threshold_ms: Annotated[float, typer.Option(
        min=0, help="A send later than this counts as generator lag.")] = 50.0,
    window_s: Annotated[float | None, typer.Option(
        "--window", min=1, max=10, help="Measurement window, seconds.")] = None,
    max_users: Annotated[int, typer.Option(min=1, help="Most Locust users in total.")] = 2000,
    max_requests: Annotated[int, typer.Option(
        min=1, help="Refuse runs expected to send more requests.")] = 5_000_000,
    request_timeout_s: Annotated[float, typer.Option(
        "--request-timeout", min=0.01, help="Client timeout per attempt, seconds.")] = 30.0,
    locustfile: Annotated[Path | None, typer.Option(
        help="Your own Locust classes (peaksim_service = NAME) for those services.")] = None,
    insecure: Annotated[bool, typer.Option(
        "--insecure", help="HTTPS: do not verify the target's certificate.")] = False,
    ca_bundle: Annotated[Path | None, typer.Option(
        help="HTTPS: PEM file of CA certificates to trust.")] = None,
    allow_remote: Annotated[bool, typer.Option(
        "--allow-remote", help="Allow a target that is not a loopback address.")] = False,
    replications: Annotated[int | None, typer.Option(
        "--replications", min=2, help="With --compare-sim: simulate N seeds and judge each "
        "measured figure against the 95% spread of single simulated runs.")] = None,
    jobs: JobsOpt = None,
    cluster: ClusterOpt = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the gate's verdict and summary.json as JSON.")] = False,
) -> None:
    """Replay the scenario's traffic open-model with Locust; write the run directory, report
    and Locust's CSV/HTML; with --gate exit 1 on an SLO miss, 2 if the load was not offered."""
    with user_errors():
        from rich.markup import escape

        from sim.interrupts import quit_on_sigint

        with quit_on_sigint():  # nothing to clean up while importing: Ctrl-C exits 130 at once
            from loadtests.gate import load_table
            from loadtests.runner import LoadTestConfig, run_loadtest
            from loadtests.simcompare import sim_table
            from loadtests.simreplicate import sim_interval_table
            from sim.parallel import where

        config = LoadTestConfig(
            Path(file), host=host, local_shop=local_shop, time_scale=time_scale,
            rate_scale=rate_scale, duration_s=duration_s, workers=workers, out=out,
            compare_sim=compare_sim, arrivals=arrivals, lag_threshold_ms=lag_threshold_ms,
            window_s=window_s, max_users=max_users, max_requests=max_requests,
            request_timeout_s=request_timeout_s, locustfile=locustfile, insecure=insecure,
            ca_bundle=ca_bundle, allow_remote=allow_remote, sim_replications=replications,
            sim_place=where(jobs, cluster))
        if replications is not None and not compare_sim:
            raise PeaksimError("--replications on loadtest needs --compare-sim (the load test "
                               "itself is one run)")
        console = _err() if as_json else _out()
        printer = lambda text: console.print(text, markup=False)  # noqa: E731
        if _animate(console):
            with console.status("starting the load test") as spinner:
                outcome = run_loadtest(config, lambda text: spinner.update(text), printer)
        else:  # CI logs and pipes: the steps as plain lines
            from sim.console import step_printer

            outcome = run_loadtest(config, step_printer(console), printer)
        summary = outcome.summary
        _job_summary(outcome.report.markdown)
        verdict = outcome.gate
        if as_json:
            _print_json({"gate": {"exit_code": verdict.exit_code, "headline": verdict.headline,
                                  "reasons": list(verdict.reasons)},
                         "report": str(outcome.report.html), "summary": summary})
            if outcome.interrupted:
                raise typer.Exit(130)
            if gate and verdict.exit_code:
                raise typer.Exit(verdict.exit_code)
            return
        show_table(console, load_table(summary, f"load test of {summary['scenario']} "
                                                f"({summary['loadtest']['target']})"))
        if "sim_vs_real" in summary and replications is not None:
            show_table(console, sim_interval_table(summary["sim_vs_real"]))
        elif "sim_vs_real" in summary:
            show_table(console, sim_table(summary["sim_vs_real"]))
        print_paths(console, "report:", outcome.report.html)
        for reason in verdict.reasons:
            console.print(f"  - {reason}", markup=False)
        colour = {0: "green", 1: "red", 2: "red"}[verdict.exit_code]
        console.print(f"[bold {colour}]{escape(verdict.headline)}[/]")
        if outcome.interrupted:
            _err().print("interrupted: what was measured is in the run directory", markup=False)
            raise typer.Exit(130)
        if gate and verdict.exit_code:
            raise typer.Exit(verdict.exit_code)
