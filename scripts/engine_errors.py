"""Print the fluid engine's errors against the exact engine, by scenario and scale, as the
Markdown table of docs/engines.md.

Usage: ``python scripts/engine_errors.py [SCENARIO:FACTOR ...]`` (default: the validation set;
FACTOR multiplies the scenario's rates and fleet, see ``sim.engine.scale_fleet``).
"""

from __future__ import annotations

import sys
import time

from sim.engine import LOST_FLOOR, TOLERANCES, ServiceErrors, compare_engines, scale_fleet
from sim.model import load_scenario

DEFAULT_RUNS = (
    "scenarios/mmc-check.yaml:1", "scenarios/mmc-check.yaml:10",
    "scenarios/mmc-check.yaml:100",
    "scenarios/flash-sale.yaml:1", "scenarios/flash-sale.yaml:10",
    "scenarios/small-prewarm.yaml:1", "scenarios/small-prewarm.yaml:10",
    "scenarios/colocation.yaml:1", "scenarios/colocation.yaml:10",
    "scenarios/singles-day.yaml:1", "scenarios/singles-day.yaml:10",
)
KEYS = tuple(TOLERANCES)


def _cell(row: ServiceErrors, key: str) -> str:
    """A relative error; timed out + shed below the floor as a share of the attempts."""
    mark = " **x**" if key in row.failed else ""
    lost = max(row.exact["lost"], row.fluid["lost"])
    if key == "lost" and lost <= LOST_FLOOR * row.exact["attempts"]:
        share = abs(row.fluid["lost"] - row.exact["lost"]) / row.exact["attempts"]
        return f"{100 * share:.3f}% of attempts{mark}"
    return f"{100 * row.errors[key]:.1f}%{mark}"


def main(runs: list[str]) -> None:
    print("| scenario | scale | service | " + " | ".join(KEYS) + " | wall s (exact+fluid) |")
    print("|---|---|---|" + "---|" * (len(KEYS) + 1))
    for run in runs:
        path, factor = run.rsplit(":", 1)
        scenario = scale_fleet(load_scenario(path), float(factor))
        started = time.perf_counter()
        rows = compare_engines(scenario)
        wall = time.perf_counter() - started
        scale = f"{scenario.traffic.rate_scale:g}"
        for row in rows:
            cells = [_cell(row, k) for k in KEYS]
            print(f"| {scenario.name} | {scale} | {row.service} | " + " | ".join(cells)
                  + f" | {wall:.0f} |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or list(DEFAULT_RUNS))
