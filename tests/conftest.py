"""Shared fixtures: paths of the shipped scenarios and a CLI runner."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def scenarios_dir() -> Path:
    return SCENARIOS
