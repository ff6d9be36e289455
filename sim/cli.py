"""The ``peaksim`` command line: thin typer commands over the domain modules.

This is the only module that imports typer and the only place where domain errors become exit
codes: 0 ok, 1 an SLO gate failed, 2 bad input or usage, 130 interrupted.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from sim.errors import PeaksimError, ScenarioError

DEFAULT_SCENARIO = Path("scenarios/singles-day.yaml")

app = typer.Typer(
    name="peaksim",
    help="Peak-traffic load-test and autoscaling simulator (11.11-style traffic).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _out() -> Console:
    return Console(highlight=False)


def _err() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


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


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="Scenario files to check.")],
) -> None:
    """Check scenario files; print one line per problem (exit 2 if any file is invalid)."""
    from sim.loader import load_scenario

    bad = 0
    for file in files:
        try:
            scenario = load_scenario(file)
        except ScenarioError as exc:
            bad += 1
            for problem in exc.problems:
                _err().print(f"error: {problem}", markup=False)
            continue
        _out().print(f"ok: {file} ({scenario.name}, {len(scenario.services)} services)")
    if bad:
        raise typer.Exit(2)


@app.command()
def schema() -> None:
    """Print the JSON Schema of scenario files (for editors and CI linting)."""
    from sim.scenario import Scenario

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
) -> None:
    """Write the scenario's traffic curve (traffic.csv, traffic.png) and print its peaks."""
    with user_errors():
        from sim.curve import write_curve
        from sim.loader import load_scenario

        scenario = load_scenario(file)
        result = write_curve(scenario, out, log, rate_scale, time_scale)
        table = Table(title=f"traffic of {scenario.name}", title_justify="left")
        for column in ("service", "peak rps", "at", "requests in run"):
            table.add_column(column, justify="left" if column == "service" else "right")
        for row in result.peaks:
            table.add_row(row.service, f"{row.peak_rps:,.1f}", row.at, f"{row.total:,.0f}")
        _out().print(table)
        _out().print(f"wrote {result.csv_path} and {result.png_path}")
