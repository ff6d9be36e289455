"""The autoscaling control loop that connects a policy to the engine.

Until a policy is configured, runs use fixed instance counts.
"""

from __future__ import annotations

from typing import Any

from sim.scenario import Scenario


def build_controller(
    scenario: Scenario, variant: str | None, fixed: bool
) -> tuple[Any | None, str]:
    """(controller or None, policy name) for a run of ``scenario`` under ``variant``."""
    del scenario, variant, fixed
    return None, "static"
