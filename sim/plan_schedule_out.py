"""What ``peaksim plan --schedule`` writes: the ``scheduled`` variant (ready to paste, or added
to a copy of the scenario), schedule.json, and the plot of the schedule against the traffic
and the HPA variant's actual counts.

The copy keeps the scenario's text (comments included): the variant's YAML is inserted at the
end of ``autoscaling.variants`` (or a new ``autoscaling`` section is appended).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from sim.errors import ScenarioError
from sim.plan import PlanError
from sim.plan_schedule import SchedulePlan
from sim.result import RunResult
from sim.scenario import Scenario
from sim.traffic import TrafficModel
from sim.units import clock_label, format_duration

SCHEDULE_FILE = "schedule.json"
PLOT_FILE = "schedule.png"
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
    from sim.loader import parse_scenario

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
        "skipped": plan.skipped,
    }


def _iso(start: Any, t_s: float) -> str:
    from datetime import timedelta

    return (start + timedelta(seconds=t_s)).isoformat()


def hpa_variant(scenario: Scenario) -> str | None:
    """The first ``target_tracking`` variant of the scenario (the reactive baseline)."""
    section = scenario.autoscaling
    if section is None:
        return None
    return next((n for n, v in section.variants.items()
                 if getattr(v, "policy", None) == "target_tracking"), None)


def plot_schedule(plan: SchedulePlan, hpa: tuple[str, RunResult] | None) -> bytes:
    """Per service: the planned count, the confirming run's ready instances and the HPA
    variant's, against the traffic (right axis)."""
    from sim.plots import finish_time_axes, new_figure, service_title, to_png

    names = list(plan.services)
    fig, axes = new_figure(len(names), 2.8)
    traffic = TrafficModel(plan.scenario)
    grid_s = np.arange(0.0, plan.grid.duration_s, 10.0)
    tick_s = plan.confirm.tick_s
    for ax, name in zip(axes, names, strict=True):
        s = plan.services[name]
        times = [*s.times_s, plan.grid.duration_s]
        ax.step(times, [*s.counts, s.counts[-1]], where="post", color="black", lw=1.6,
                label="planned schedule")
        ready = plan.confirm.services[name].columns["instances_ready"]
        ticks = np.arange(ready.size) * tick_s
        ax.plot(ticks, ready, color="#2ca02c", lw=1.0, label="ready (planned run)")
        if hpa is not None:
            running = hpa[1].services[name].columns["instances_running"]
            ax.plot(np.arange(running.size) * hpa[1].tick_s, running, color="#d62728", lw=1.0,
                    ls="--", label=f"{hpa[0]} (actual)")
        ax.set_ylabel("instances")
        right = ax.twinx()
        right.fill_between(grid_s, traffic.rates_rps(name, grid_s), color="#9e9e9e",
                           alpha=0.25, lw=0, label="traffic (rps)")
        right.set_ylabel("requests/s")
        handles = ax.get_legend_handles_labels()
        extra = right.get_legend_handles_labels()
        ax.legend(handles[0] + extra[0], handles[1] + extra[1], loc="upper left",
                  bbox_to_anchor=(1.12, 1.0), frameon=False, fontsize="small")
        cost = plan.confirm.summary()["services"][name]["cost"]
        service_title(ax, name, names, f"planned cost ${cost:.2f}")
    finish_time_axes(axes, plan.scenario.start_clock_s, (0.0, plan.grid.duration_s))
    return to_png(fig)
