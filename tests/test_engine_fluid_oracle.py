"""The fluid engine against the exact engine (its oracle), per service, on the shipped
scenarios at 1/1000 and 1/100 of the real rates (or 1x and 10x for scenarios without a rate
scale) and on the too-small pre-warm: attempts within 1%, timed out + shed within 15% (or
0.2% of the attempts), mean latency within 5%, p50 within 8%, p95 and p99 within 10%, mean
instances within 5% (``sim.engine.TOLERANCES``). Long: marked slow."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.engine import LOST_FLOOR, TOLERANCES, compare_engines, scale_fleet
from sim.model import load_scenario

pytestmark = pytest.mark.slow

CASES = [
    ("mmc-check.yaml", 1.0), ("mmc-check.yaml", 10.0),
    ("flash-sale.yaml", 1.0), ("flash-sale.yaml", 10.0),
    ("small-prewarm.yaml", 1.0), ("small-prewarm.yaml", 10.0),
    ("colocation.yaml", 1.0), ("colocation.yaml", 10.0),
    ("singles-day.yaml", 1.0), ("singles-day.yaml", 10.0),
]


@pytest.mark.parametrize(("file", "factor"), CASES, ids=[f"{f}x{k:g}" for f, k in CASES])
def test_fluid_agrees_with_exact(scenarios_dir: Path, file: str, factor: float) -> None:
    scenario = scale_fleet(load_scenario(scenarios_dir / file), factor)
    rows = compare_engines(scenario)
    assert rows, "no services compared"
    for row in rows:
        detail = {k: f"exact {row.exact[k]:.6g} fluid {row.fluid[k]:.6g}" for k in row.failed}
        assert not row.failed, f"{row.service}: {detail}"
        # the figures the tolerances are about exist in both runs
        assert row.exact["attempts"] > 0 and row.fluid["attempts"] > 0
        assert set(row.errors) == set(TOLERANCES)
        assert LOST_FLOOR * row.exact["attempts"] >= 0
