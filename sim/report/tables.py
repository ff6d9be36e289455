"""The scenario facts and the tables of a run report, as formatted strings.

HTML and Markdown lay out exactly these tables, so the two formats always agree, and the
tables depend only on ``summary.json`` and ``timeseries.csv`` (regenerating gives the same).
"""

from __future__ import annotations

import numpy as np

from sim.model import LATENCY_QUANTILES
from sim.report.cluster import cluster_facts
from sim.report.data import RunData
from sim.report.derive import peak_at, price_per_hour
from sim.report.document import (
    MET,
    MISSED,
    NO_VALUE,
    Table,
    fmt_count,
    fmt_money,
    fmt_ms,
    fmt_num,
    fmt_objective,
    fmt_pct,
)
from sim.report.verdict import RunVerdict, when
from sim.units import format_duration

MAX_WINDOW_CELLS = 8
"""Windows listed per objective in the SLO table; more are counted."""
MAX_EVENT_ROWS = 200
"""Events beyond this many are counted, not listed (summary.json keeps them all)."""


def status(met: bool) -> str:
    return MET if met else MISSED


def scenario_facts(run: RunData) -> tuple[tuple[str, str], ...]:
    """What was simulated: scenario, policy, seed, duration, scale and the traffic peaks."""
    s = run.summary
    facts: list[tuple[str, str]] = [
        ("scenario", s.scenario + (f" — {s.description}" if s.description else "")),
    ]
    if s.scenario_file:
        facts.append(("scenario file", s.scenario_file))
    facts += [
        ("kind", s.kind),
        ("policy", s.policy),
        *cluster_facts(run),
        ("seed", NO_VALUE if s.seed is None else str(s.seed)),
        ("duration", f"{format_duration(s.duration_s)} in ticks of {format_duration(s.tick_s)}"
                     + (f", from {s.start_clock}" if s.start_clock else "")),
    ]
    cost = cost_fact(run)
    if cost:
        facts.append(("cost", cost))
    traffic = s.traffic
    if traffic:
        scale = [f"{k.replace('_', ' ')} x{traffic[k]:g}" for k in ("rate_scale", "time_scale")
                 if isinstance(traffic.get(k), int | float) and traffic[k] != 1]
        facts.append(("traffic", str(traffic.get("kind", "custom"))
                      + (f" ({', '.join(scale)})" if scale else "")))
    for name in run.services:
        facts.append((f"{name} peak", peak_fact(run, name)))
    if s.sim_requests is not None:
        facts.append(("simulated attempts", fmt_count(s.sim_requests)))
    return tuple(facts)


def peak_fact(run: RunData, name: str) -> str:
    """The traffic curve's peak (the definition ``plan`` and ``curve`` use) and, apart, the
    busiest tick with its start: a constant 80/s has a peak of 80/s and a busier tick."""
    info, clock = run.summary.services[name], run.start_clock_s
    busiest, tick_at = peak_at(run.series[name], "offered_rps")
    if info.offered_peak_rps is not None:
        busiest = info.offered_peak_rps
    if info.offered_peak_s is not None:
        tick_at = info.offered_peak_s
    tick = f"busiest tick {fmt_num(busiest)} requests/s offered, from {when(tick_at, clock)}"
    total = f"{fmt_count(info.requests)} requests in the run"
    if info.curve_peak_rps is None or info.curve_peak_s is None:
        return f"{tick}; {total}"
    return (f"{fmt_num(info.curve_peak_rps)} requests/s at {when(info.curve_peak_s, clock)} "
            f"(the traffic curve's highest rate); {tick}; {total}")


def cost_fact(run: RunData) -> str:
    """What the run cost and on which basis (``summary["cost"]["basis"]``): the cluster's nodes
    or the instances; ``""`` without a cost."""
    cost = run.summary.cost
    if cost is None:
        return ""
    total = fmt_money(cost.total, cost.currency)
    cluster = run.summary.cluster
    if cost.basis == "nodes":
        text = f"{total} node cost"
        if cluster is not None:
            text += (f": {fmt_num(cluster.node_hours)} node-hours on at most "
                     f"{cluster.nodes_max} machines")
        if cost.instances is not None:
            text += f" (the instances alone: {fmt_money(cost.instances, cost.currency)})"
        return text
    return f"{total} instance cost (instance-hours x price per hour, all services)"


def results_table(run: RunData, verdict: RunVerdict) -> Table:
    """Per-service totals, latency percentiles and error counts over the whole run."""
    met = {v.service: v for v in verdict.services}
    rows = []
    for name in run.services:
        info = run.summary.services[name]
        lat = info.latency_ms
        rows.append((
            name, status(met[name].met) if met[name].objectives else NO_VALUE,
            fmt_count(info.requests), fmt_count(info.completed), fmt_count(info.retries),
            fmt_count(info.timed_out), fmt_count(info.shed), fmt_count(info.failed),
            fmt_pct(info.error_rate), fmt_ms(lat.p50), fmt_ms(lat.p95), fmt_ms(lat.p99),
            fmt_ms(lat.max),
        ))
    return Table(
        "Results per service",
        ("service", "SLO", "requests", "completed", "retries", "timed out", "shed", "failed",
         "error rate", "p50", "p95", "p99", "max"),
        tuple(rows), ("l", "l", *("r",) * 11),
        note="Counts are attempts except requests (first attempts); the error rate is the "
             "share of requests whose last attempt failed. Latencies are over completed "
             "attempts.",
        anchor="results",
    )


def slo_table(run: RunData, verdict: RunVerdict) -> Table:
    """One row per objective: target, whole-run value, result, and when per-tick values were
    above the target."""
    clock = run.start_clock_s
    rows = []
    for result in verdict.objectives:
        spans = ", ".join(
            f"{when(w.start_s, clock)}–{when(w.end_s, clock)} "
            f"(worst {fmt_objective(result.objective, w.worst)})"
            for w in result.windows[:MAX_WINDOW_CELLS]
        )
        if len(result.windows) > MAX_WINDOW_CELLS:
            spans += f" and {len(result.windows) - MAX_WINDOW_CELLS} more"
        overall = (NO_VALUE if result.objective not in LATENCY_QUANTILES
                   else "beyond any target" if result.slo_value is None
                   else fmt_objective(result.objective, result.slo_value))
        rows.append((result.service, result.label,
                     fmt_objective(result.objective, result.target),
                     fmt_objective(result.objective, result.value), overall,
                     status(result.met) + (f": {result.reason}" if result.reason else ""),
                     spans or "none"))
    return Table(
        "SLO objectives",
        ("service", "objective", "target", "completed requests", "all requests", "result",
         "per-tick above target"),
        tuple(rows), ("l", "l", "r", "r", "r", "l", "l"),
        note="An objective is judged on the whole run with SRE semantics: a percentile "
             "objective holds when that share of all requests was served successfully on its "
             "first attempt within the target (timed-out, shed and failed requests count as "
             "slower than any target: the 'all requests' column); a mean holds only with at "
             "most 1% errors. 'completed requests' is the value over completed attempts alone. "
             "The last column shows when the per-tick percentile of the tick's completions was "
             "above the target (a short excursion can leave the whole-run value within it) "
             "and, for a missed error rate, when the share of attempts lost was.",
        anchor="slo",
    )


def instances_table(run: RunData) -> Table:
    """Instances, instance-hours and cost per service, with a total row."""
    currency = run.currency
    rows = []
    hours = [i.instance_seconds / 3600.0 for i in run.summary.services.values()
             if i.instance_seconds is not None]
    costs = [i.cost for i in run.summary.services.values() if i.cost is not None]
    for name in run.services:
        info = run.summary.services[name]
        series = run.series[name]
        inst = info.instances
        service_hours = None if info.instance_seconds is None else info.instance_seconds / 3600
        price = price_per_hour(run, name)
        rows.append((
            name,
            fmt_num(inst.min if inst else float(np.min(series["instances_ready"]))),
            fmt_num(inst.mean if inst else float(np.mean(series["instances_ready"]))),
            fmt_num(inst.max if inst else float(np.max(series["instances_ready"]))),
            fmt_num(float(np.max(series["instances_booting"]))),
            fmt_num(service_hours), fmt_num(price), fmt_num(info.cost),
            NO_VALUE if info.scale_events is None else fmt_count(info.scale_events),
        ))
    header = ("service", "min", "mean", "max", "most booting", "instance-hours",
              f"price/hour ({currency})", f"cost ({currency})", "scale events")
    note = "Instance-hours count booting and ready instances (both are paid for)."
    cost = run.summary.cost
    if cost is not None and cost.basis == "nodes":
        instances_cost = cost.instances if cost.instances is not None else (
            sum(costs) if costs else None)
        rows.append(("all instances", "", "", "", "", fmt_num(sum(hours) if hours else None),
                     "", fmt_num(instances_cost), ""))
        rows.append(_nodes_row(run, cost.total))
        return Table(
            f"Instances, machines and cost ({currency})", header, tuple(rows),
            ("l", *("r",) * 8), anchor="instances",
            note="The run's cost is the node cost (cost basis: nodes): machines are billed "
                 "whether or not instances fill them. In the nodes row the columns count "
                 "machines: fewest, mean and most nodes billed, most provisioning at once, "
                 "node-hours and the mean price per node-hour. The service rows price "
                 "instance-hours at each service's price, for reference. " + note)
    total_cost = cost.total if cost else (sum(costs) if costs else None)
    rows.append(("total", "", "", "", "", fmt_num(sum(hours) if hours else None), "",
                 fmt_num(total_cost), ""))
    if cost is not None:
        note += (" The run's cost is the instance cost (cost basis: instances): "
                 "instance-hours x price per hour, summed over the services.")
    return Table(
        f"Instances and cost ({currency})", header, tuple(rows), ("l", *("r",) * 8),
        note=note, anchor="instances",
    )


def _nodes_row(run: RunData, total_cost: float) -> tuple[str, ...]:
    """The machines of a colocation run in the columns of the instances table."""
    cluster, series = run.summary.cluster, run.cluster
    fewest = most_provisioning = NO_VALUE
    if series is not None:
        fewest = fmt_num(float(np.min(series["nodes"])))
        most_provisioning = fmt_num(float(np.max(series["nodes"] - series["nodes_ready"])))
    if cluster is None:
        return ("nodes (run cost)", fewest, NO_VALUE, NO_VALUE, most_provisioning, NO_VALUE,
                NO_VALUE, fmt_num(total_cost), "")
    return ("nodes (run cost)", fewest, fmt_num(cluster.nodes_mean), fmt_num(cluster.nodes_max),
            most_provisioning, fmt_num(cluster.node_hours), fmt_num(cluster.price_per_node_hour),
            fmt_num(total_cost), "")


def events_table(run: RunData) -> Table:
    """Scaling decisions, faults and other events in time order (at most MAX_EVENT_ROWS)."""
    clock = run.start_clock_s
    events = sorted(run.summary.events, key=lambda e: e.t_s)
    rows = tuple(
        (when(e.t_s, clock), e.service or "", e.kind,
         NO_VALUE if e.from_count is None else fmt_num(e.from_count),
         NO_VALUE if e.to_count is None else fmt_num(e.to_count), e.reason)
        for e in events[:MAX_EVENT_ROWS]
    )
    note = "" if rows else "No scaling or fault events in this run."
    if len(events) > MAX_EVENT_ROWS:
        note = (f"The first {MAX_EVENT_ROWS} of {len(events)} events; summary.json lists "
                f"them all.")
    return Table("Scaling and fault events", ("time", "service", "event", "from", "to", "reason"),
                 rows, ("l", "l", "l", "r", "r", "l"), note=note, anchor="events")


def terminal_table(run: RunData, verdict: RunVerdict) -> Table:
    """The short table ``peaksim report`` prints: one row per service."""
    met = {v.service: v for v in verdict.services}
    rows = []
    for name in run.services:
        info = run.summary.services[name]
        inst = info.instances
        rows.append((
            name, status(met[name].met) if met[name].objectives else NO_VALUE,
            fmt_ms(info.latency_ms.p99), fmt_pct(info.error_rate),
            fmt_num(inst.max if inst else float(np.max(run.series[name]["instances_ready"]))),
            fmt_num(info.cost),
        ))
    return Table(f"{run.summary.scenario} ({run.summary.policy})",
                 ("service", "SLO", "p99", "error rate", "peak instances",
                  f"cost ({run.currency})"),
                 tuple(rows), ("l", "l", "r", "r", "r", "r"))
