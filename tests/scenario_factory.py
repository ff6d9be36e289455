"""Small scenarios built in code for engine tests."""

from __future__ import annotations

from sim.model import Scenario, parse_scenario


def single_service(
    *, workers: int, rate_rps: float, service: str, duration_s: float, seed: int = 1,
    instances: int | str = 1, extra: str = "", tick_s: float = 10, top: str = "",
) -> Scenario:
    """One service ``s`` at a constant rate. ``service`` is the YAML of its service_time;
    ``extra`` adds keys to the service spec, ``top`` adds top-level sections."""
    return parse_scenario(f"""
name: t
seed: {seed}
duration_s: {duration_s}
tick_s: {tick_s}
traffic: {{kind: constant, rps: {{s: {rate_rps}}}}}
services:
  s: {{service_time: {service}, workers: {workers}, instances: {instances}{extra}}}
{top}
""")
