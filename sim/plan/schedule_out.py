"""What ``peaksim plan --schedule`` writes: the ``scheduled`` variant (ready to paste, or added
to a copy of the scenario), schedule.json and the terminal table (the plot is
``sim.report.schedule_plot``).

The copy keeps the scenario's text (comments included): the variant's YAML is inserted at the
end of ``autoscaling.variants`` (or a new ``autoscaling`` section is appended).
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from sim.errors import ScenarioError
from sim.model import Scenario, parse_scenario
from sim.plan.planner import PlanError
from sim.plan.schedule import SchedulePlan
from sim.units import clock_label, format_duration

SCHEDULE_FILE = "schedule.json"
VARIANT_FILE = "variant.yaml"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def variant_yaml(plan: SchedulePlan, name: str, indent: int = 4) -> str:
    """The ``scheduled`` variant ``name`` as YAML lines indented by ``indent`` spaces (the
    indentation of a key under ``autoscaling.variants``)."""
    pad = " " * indent
    clock = plan.scenario.start_clock_s
    lines = [f"{pad}{name}:    # planned by peaksim plan --schedule "
             f"(step {format_duration(plan.options.step_s)}, headroom "
             f"{plan.options.headroom:.0%})", f"{pad}  policy: scheduled", f"{pad}  schedule:"]
    for entry in plan.entries:
        at = float(entry["at"])  # type: ignore[arg-type]
        when = f'"{clock_label(at, clock)}"' if clock is not None else f"{at:g}"
        counts = ", ".join(f"{k}: {v}" for k, v in entry["instances"].items())  # type: ignore[union-attr]
        lines.append(f"{pad}    - {{at: {when}, instances: {{{counts}}}}}")
    return "\n".join(lines) + "\n"


def scenario_with_variant(plan: SchedulePlan, name: str) -> str:
    """The scenario file's text with the variant ``name`` added (validated: raises
    ``PlanError`` if the name is taken or the result does not load)."""
    if not _NAME.match(name):
        raise PlanError(f"--write-variant {name!r}: expected letters, digits, '.', '_', '-'")
    scenario = plan.scenario
    section = scenario.autoscaling
    if section is not None and name in section.variants:
        raise PlanError(f"--write-variant {name}: the scenario already has a variant of that "
                        "name")
    text = Path(scenario.source).read_text(encoding="utf-8")
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    variants = _child(_child(root, "autoscaling"), "variants")
    if variants is not None and isinstance(variants, yaml.MappingNode) and variants.value:
        indent = variants.value[0][0].start_mark.column
        end = variants.end_mark.index
        head = text[:end].rstrip("\n") + "\n"
        new = head + variant_yaml(plan, name, indent) + text[end:].lstrip("\n")
    elif section is None:
        new = (text.rstrip("\n") + "\n\nautoscaling:\n  variants:\n"
               + variant_yaml(plan, name, 4))
    else:
        raise PlanError(f"{scenario.source}: add the variant by hand (autoscaling.variants is "
                        "not a block mapping here); it is in " + VARIANT_FILE)
    try:
        parse_scenario(new, scenario.source, base_dir=scenario.base_dir)
    except ScenarioError as exc:
        raise PlanError(f"the scenario with the planned variant does not validate: "
                        f"{exc.problems[0]}") from None
    return new


def _child(node: yaml.Node | None, key: str) -> yaml.Node | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    for k, v in node.value:
        if k.value == key:
            return v
    return None


def schedule_json(plan: SchedulePlan) -> dict[str, Any]:
    """The content of schedule.json (docs/planning.md)."""
    summary = plan.confirm.summary()
    clock = plan.scenario.start_clock_s
    start = plan.scenario.start_time
    grid = plan.grid
    services = {}
    for name, s in plan.services.items():
        ends = [*s.times_s[1:], grid.duration_s]
        segments = []
        for t0, t1, n in zip(s.times_s, ends, s.counts, strict=True):
            segment: dict[str, Any] = {"from_s": t0, "to_s": t1, "instances": n,
                                       "from": clock_label(t0, clock),
                                       "to": clock_label(t1, clock)}
            if start is not None:
                segment["from_time"] = _iso(start, t0)
                segment["to_time"] = _iso(start, t1)
            segments.append(segment)
        service = summary["services"][name]
        services[name] = {
            "held": s.held, "note": s.note, "minimum": list(s.minimum),
            "planned": list(s.planned), "segments": segments,
            "boot_s": plan.scenario.services[name].boot_s, "cost": service["cost"],
            "slo": service["slo"]}
    return {
        "kind": "schedule", "scenario": plan.scenario.name, "seed": plan.confirm.seed,
        "step_s": grid.step_s, "headroom": plan.options.headroom,
        "margin_s": plan.options.margin_s, "scale_down_delay_s": plan.options.scale_down_delay_s,
        "duration_s": grid.duration_s, "start_clock": plan.scenario.start_clock,
        "timezone": plan.scenario.timezone or ("UTC" if start is not None else None),
        "start_time": start.isoformat() if start is not None else None,
        "steps": [grid.label(k) for k in range(grid.n_steps)],
        "held": plan.held, "cost": summary["cost"], "simulations": plan.simulations,
        "wall_s": round(plan.wall_s, 3), "schedule": plan.entries, "services": services,
        "skipped": plan.skipped, "infeasible": plan.infeasible,
    }


def at_run_s(start: datetime, t_s: float) -> datetime:
    """The local date and time ``t_s`` elapsed seconds after ``start`` (across DST changes)."""
    return datetime.fromtimestamp(start.timestamp() + t_s, start.tzinfo)


def _iso(start: datetime, t_s: float) -> str:
    return at_run_s(start, t_s).isoformat()


def hpa_variant(scenario: Scenario) -> str | None:
    """The first ``target_tracking`` variant of the scenario (the reactive baseline)."""
    section = scenario.autoscaling
    if section is None:
        return None
    return next((n for n, v in section.variants.items()
                 if getattr(v, "policy", None) == "target_tracking"), None)


SCHEDULE_HEADER = ("service", "min", "peak", "schedule (from: instances)", "cost", "SLO")


def schedule_rows(data: dict[str, Any]) -> list[list[str]]:
    """Terminal table rows of schedule.json: per service, the planned segments and the cost."""
    rows = []
    for name, s in data["services"].items():
        shown = ", ".join(f"{seg['from']} {seg['instances']}" for seg in s["segments"])
        rows.append([name, str(min(s["planned"])), str(max(s["planned"])), shown,
                     f"${s['cost']:.2f}", "held" if s["held"] else f"NOT HELD {s['note']}"])
    return rows


def schedule_verdict(data: dict[str, Any]) -> str:
    """One line: held or not, and the cost of the whole run."""
    cost = data["cost"]["total"]
    if data["held"]:
        return (f"The schedule holds the SLO in every {data['step_s']:g}-s step and over the "
                f"whole run at ${cost:.2f}.")
    missed = [n for n, s in data["services"].items() if not s["held"]]
    missed += [f"{n} (no count can hold its SLO: {why})" for n, why in data["infeasible"].items()]
    return f"The schedule does not hold for {', '.join(missed)} (cost ${cost:.2f})."
