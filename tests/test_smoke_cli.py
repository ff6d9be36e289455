"""The shipped scenarios validate through the CLI."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from sim.cli import app


def test_shipped_scenarios_validate(runner: CliRunner, scenarios_dir: Path) -> None:
    files = sorted(str(p) for p in scenarios_dir.glob("*.yaml"))
    result = runner.invoke(app, ["validate", *files])
    assert result.exit_code == 0, result.output
    assert result.output.count("ok:") == len(files) >= 3
