"""The cluster part of a colocation run's report: the verdict sentence on machines and batch
work, the scenario facts, and the "Cluster" section (its tables and plots).

It answers the four questions of docs/colocation.md in plain figures: how many machines the
run needed, how busy they were, how much batch work was done, delayed or lost, and what the
cluster cost. Everything comes from the ``"cluster"`` object of ``summary.json`` (and the
plots from ``cluster.csv``), so ``peaksim report`` rebuilds the same tables.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sim.report.cluster_data import (
    SECONDS_PER_HOUR,
    ClusterRunSummary,
    fmt_core_hours,
    fmt_share,
    fmt_slowdown,
)
from sim.report.data import RunData
from sim.report.document import (
    NO_VALUE,
    DocSection,
    ReportFigure,
    Table,
    VerdictLine,
    fmt_count,
    fmt_money,
    fmt_num,
)

CLUSTER_ANCHOR = "cluster"


def policy_label(cluster: ClusterRunSummary) -> str:
    """``"colocated"``, or ``"colocated (variant colocated-throttle)"`` when they differ."""
    if cluster.variant and cluster.variant != cluster.policy:
        return f"{cluster.policy} (variant {cluster.variant})"
    return cluster.policy


def machines_phrase(cluster: ClusterRunSummary, currency: str) -> str:
    """``"20 machines, 81.1% mean CPU, 24.00 USD node cost"``."""
    count = cluster.nodes_max
    return (f"{count} machine{'' if count == 1 else 's'}, "
            f"{fmt_share(cluster.mean_cpu_utilization)} mean CPU, "
            f"{fmt_money(cluster.cost, currency)} node cost")


def batch_phrase(cluster: ClusterRunSummary) -> str:
    """``"491.9 core-hours done, 0.12 lost, mean slowdown 2.66, 24 preemptions"``."""
    text = (f"{fmt_core_hours(cluster.done_core_h)} core-hours done, "
            f"{fmt_core_hours(cluster.lost_core_h)} lost, "
            f"mean slowdown {fmt_slowdown(cluster.batch_slowdown_mean)}")
    if cluster.batch_preemptions:
        text += f", {_plural(cluster.batch_preemptions, 'preemption')}"
    if cluster.batch_jobs_rejected:
        text += (f", {_plural(cluster.batch_jobs_rejected, 'job')} rejected (too big for any "
                 f"node)")
    return text


def _plural(count: int, noun: str) -> str:
    return f"{fmt_count(count)} {noun}{'' if count == 1 else 's'}"


def pending_phrase(cluster: ClusterRunSummary) -> str:
    """What waiting for a node cost the online services, or ``""`` when nothing waited."""
    if cluster.pending_instance_s <= 0:
        return ""
    return (f"online instances waited for room on a node: at most "
            f"{fmt_count(cluster.pending_max)} at once, "
            f"{fmt_count(cluster.pending_instance_s)} instance-seconds in all")


def cluster_verdict_lines(run: RunData) -> tuple[VerdictLine, ...]:
    """The machine figures in plain words, after the SLO sentences (neutral: no SLO is set on
    them). ``"cluster (policy colocated): 20 machines, 81.1% mean CPU, 24.00 USD node cost; batch:
    491.9 core-hours done, 0.12 lost, mean slowdown 2.66, 24 preemptions"``."""
    cluster = run.summary.cluster
    if cluster is None:
        return ()
    lines = [VerdictLine(None, f"cluster (policy {policy_label(cluster)}): "
                               f"{machines_phrase(cluster, run.currency)}; "
                               f"batch: {batch_phrase(cluster)}")]
    pending = pending_phrase(cluster)
    if pending:
        lines.append(VerdictLine(None, pending))
    return tuple(lines)


def cluster_facts(run: RunData) -> tuple[tuple[str, str], ...]:
    """Scenario facts of a colocation run: the cluster and autoscaling policies."""
    s = run.summary
    facts: list[tuple[str, str]] = []
    if s.autoscaling_policy:
        facts.append(("autoscaling", s.autoscaling_policy))
    if s.cluster is not None:
        facts.append(("cluster", f"policy {policy_label(s.cluster)}; at most "
                                 f"{s.cluster.nodes_max} machines, "
                                 f"{fmt_num(s.cluster.nodes_mean)} on average"))
    return tuple(facts)


def cluster_section(run: RunData, figures: Sequence[ReportFigure]) -> DocSection | None:
    """The "Cluster" part: its tables, then its plots; None for a run without a cluster."""
    cluster = run.summary.cluster
    if cluster is None and not figures:
        return None
    if cluster is None:
        intro = ("This run has per-tick cluster metrics (cluster.csv) but its summary.json has "
                 "no cluster block, so only the plots are shown.")
        return DocSection("Cluster", CLUSTER_ANCHOR, intro, (), tuple(figures))
    intro = (f"The machines of the run under cluster policy {policy_label(cluster)}: how many "
             f"were needed, how busy they were, what they cost, and what happened to the batch "
             f"work sharing them. The run's cost is the node cost: machines are paid for "
             f"whether or not instances fill them.")
    return DocSection("Cluster", CLUSTER_ANCHOR, intro,
                      (machines_table(run, cluster), batch_ledger_table(cluster)),
                      tuple(figures))


def machines_table(run: RunData, cluster: ClusterRunSummary) -> Table:
    """The figures a capacity planner quotes, one per row with what it means."""
    currency = run.currency
    price = cluster.price_per_node_hour
    fewest = NO_VALUE if run.cluster is None else fmt_count(float(np.min(run.cluster["nodes"])))
    rows = [
        ("machines needed", fmt_count(cluster.nodes_max),
         f"most nodes billed at once, ready or provisioning (fewest {fewest}, mean "
         f"{fmt_num(cluster.nodes_mean)})"),
        ("mean CPU utilization", fmt_share(cluster.mean_cpu_utilization),
         "busy cores (online busy workers + batch containers) over the cores of ready nodes"),
        ("cores allocated (mean)",
         f"{fmt_num(cluster.online_cores_mean)} online, {fmt_num(cluster.batch_cores_mean)} "
         f"batch", "cores held by online instances and by batch containers, run mean"),
        ("node-hours", fmt_num(cluster.node_hours),
         "nodes billed, integrated over the run"),
        ("node cost", fmt_money(cluster.cost, currency),
         "node-hours x price per hour" + (f" ({fmt_money(price, currency)} per node-hour on "
                                          f"average)" if price is not None else "")
         + ", billed from the moment a node is asked for"),
        ("online instances pending",
         (f"{fmt_count(cluster.pending_instance_s)} instance-s, at most "
          f"{fmt_count(cluster.pending_max)} at once") if cluster.pending_instance_s > 0
         else "none",
         "online instances started by the autoscaler that no node had room for yet"),
        ("batch jobs",
         f"{fmt_count(cluster.batch_jobs_submitted)} submitted, "
         f"{fmt_count(cluster.batch_jobs_completed)} completed, "
         f"{fmt_count(cluster.batch_jobs_rejected)} rejected",
         "rejected: a container no node of the batch pool could ever hold"),
        ("batch work done", f"{fmt_core_hours(cluster.done_core_h)} core-hours",
         f"completed or kept by a checkpoint ({fmt_num(cluster.batch_core_s_per_s)} cores "
         f"of useful work on average)"),
        ("batch work lost", f"{fmt_core_hours(cluster.lost_core_h)} core-hours",
         "progress that preemption threw away; it is redone later"),
        ("batch slowdown",
         f"mean {fmt_slowdown(cluster.batch_slowdown_mean)}, "
         f"p95 {fmt_slowdown(cluster.batch_slowdown_p95)}",
         "(completion - submission) / run time at full speed, over completed jobs; 1 = no "
         "wait"),
        ("preemptions", fmt_count(cluster.batch_preemptions),
         "batch containers evicted to make room for online instances"),
    ]
    return Table("Machines and batch work", ("measure", "value", "what it is"), tuple(rows),
                 ("l", "r", "l"), anchor="cluster-machines")


def batch_ledger_table(cluster: ClusterRunSummary) -> Table:
    """Where the submitted batch work went, in core-hours (one row)."""
    b = cluster.batch
    row = tuple(fmt_core_hours(v / SECONDS_PER_HOUR) for v in (
        b.submitted_core_s, b.done_core_s, b.running_core_s, b.remaining_core_s,
        b.lost_core_s, b.executed_core_s))
    return Table(
        "Batch work ledger (core-hours)",
        ("submitted", "done", "in progress", "still to run", "lost", "executed"),
        (row,), ("r",) * 6,
        note="done + in progress + still to run = submitted; done + in progress + lost = "
             "executed (batch cores held, over time). Work still to run at the end is batch "
             "work the run delayed past its end.",
        anchor="cluster-ledger",
    )
