"""The cluster part of run and comparison reports (colocation runs, docs/colocation.md).

The synthetic cluster below is derived by hand on the 10 s ticks of ``write_synthetic_run``
(60 ticks from 23:59): 4 nodes of 8 cores at 1.20 USD/hour; at t = 100 s a fifth node is asked
for (two online instances wait for it) and it is ready at t = 200 s; online instances hold 8
cores (16 from t = 200 s), half of them busy; batch holds 20 cores, then 12 after 4 containers
are preempted at t = 100 s, losing 360 core-seconds. Hence:

- node-seconds = (4 x 10 + 5 x 50) x 10 = 2,900: 0.806 node-hours, 0.967 USD, mean 4.83 nodes;
- busy cores 24 / 32 (10 ticks), 16 / 32 (10 ticks), 20 / 40 (40 ticks): 1,200 / 2,240 =
  53.6% mean CPU;
- batch done = (20 x 10 + 12 x 50) x 10 = 8,000 core-s = 2.2 core-hours; lost 0.1 core-hours;
- pending: 2 instances for 100 s = 200 instance-seconds.
"""

from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_report_chromium import CHROMIUM, screenshot
from test_report_rundir import (
    TICK_S,
    TICKS,
    embedded_pngs,
    html_tables,
    markdown_tables,
    synthetic_summary,
    write_synthetic_run,
)
from typer.testing import CliRunner

from sim.cli import app
from sim.cluster import ClusterTick
from sim.errors import RunDirError
from sim.report import (
    BATCH_COLOUR,
    CLUSTER_COLUMNS,
    CLUSTER_SECTION,
    ONLINE_COLOUR,
    RUN_PLOTS,
    load_run,
    write_comparison_report,
    write_report,
)

CLUSTER_PLOTS = ["cluster_cores", "cluster_nodes", "cluster_utilization", "cluster_batch"]
MACHINES_SENTENCE = ("cluster (policy colocated): 5 machines, 53.6% mean CPU, 0.967 USD node "
                     "cost; batch: 2.2 core-hours done, 0.1 lost, mean slowdown 2.66, "
                     "4 preemptions, 1 job rejected (too big for any node)")


def cluster_rows() -> dict[str, np.ndarray]:
    """The per-tick cluster of the module docstring."""
    t = np.arange(TICKS) * TICK_S
    nodes, ready = np.where(t >= 100, 5.0, 4.0), np.where(t >= 200, 5.0, 4.0)
    online, batch = np.where(t >= 200, 16.0, 8.0), np.where(t >= 100, 12.0, 20.0)
    return {
        "t_s": t, "nodes": nodes, "nodes_ready": ready, "nodes_in_use": ready,
        "online_cores": online, "batch_cores": batch, "idle_cores": ready * 8 - online - batch,
        "cpu_utilization": (online / 2 + batch) / (ready * 8),
        "pending_instances": np.where((t >= 100) & (t < 200), 2.0, 0.0),
        "batch_running": batch, "batch_queued": np.where(t >= 100, 8.0, 0.0),
        "batch_throttled": np.zeros_like(t), "batch_preempted": np.where(t == 100, 4.0, 0.0),
        "batch_jobs_completed": np.ones_like(t), "batch_core_s_done": np.cumsum(batch * TICK_S),
        "batch_core_s_lost": np.where(t >= 100, 360.0, 0.0),
        "cost": np.cumsum(nodes * 1.2 * TICK_S / 3600.0),
    }


def cluster_block(**overrides: Any) -> dict[str, Any]:
    """summary.json's cluster object for the same cluster (``overrides`` change fields)."""
    block = {
        "policy": "colocated", "variant": "colocated", "duration_s": 600.0, "nodes_max": 5,
        "nodes_mean": 290 / 60, "node_hours": 2900 / 3600, "cost": 2900 / 3600 * 1.2,
        "mean_cpu_utilization": 1200 / 2240, "online_cores_mean": 14.0,
        "batch_cores_mean": 40 / 3, "pending_instance_s": 200.0, "pending_max": 2,
        "batch_jobs_submitted": 40, "batch_jobs_completed": 30, "batch_jobs_rejected": 1,
        "batch_preemptions": 4, "batch_core_s_per_s": 8000 / 600,
        "batch_slowdown_mean": 2.664, "batch_slowdown_p95": 7.712,
        "batch": {"submitted_core_s": 10000.0, "done_core_s": 8000.0, "running_core_s": 600.0,
                  "remaining_core_s": 1400.0, "lost_core_s": 360.0, "executed_core_s": 8960.0},
    }
    block.update(overrides)
    return block


def write_cluster_run(run_dir: Path, summary: dict[str, Any] | None = None,
                      rows: dict[str, np.ndarray] | None = None) -> Path:
    """The synthetic run plus its cluster: cluster.csv and the summary's cluster block."""
    if summary is None:
        summary = synthetic_summary(policy="colocated")
        summary.update(cluster=cluster_block(), autoscaling_policy="hpa",
                       cost={"total": 0.9667, "instances": 0.5, "basis": "nodes",
                             "currency": "USD"})
    write_synthetic_run(run_dir, summary)
    columns = rows or cluster_rows()
    with (run_dir / "cluster.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CLUSTER_COLUMNS)
        for i in range(len(columns["t_s"])):
            writer.writerow([f"{columns[c][i]:.6g}" for c in CLUSTER_COLUMNS])
    return run_dir


@pytest.fixture(scope="module")
def cluster_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = write_cluster_run(tmp_path_factory.mktemp("cluster") / "run")
    write_report(run_dir)
    return run_dir


def test_report_reads_the_columns_the_engine_writes() -> None:
    assert set(CLUSTER_COLUMNS) <= set(ClusterTick.columns())


def test_cluster_section_comes_after_the_plots_with_its_tables_and_embedded_plots(
        cluster_report: Path) -> None:
    page = (cluster_report / "report.html").read_text()
    pngs = embedded_pngs(page)
    assert pngs[-4:] == [(cluster_report / f"{n}.png").read_bytes() for n in CLUSTER_PLOTS]
    marks = [page.index(m) for m in ('id="plots"', 'id="cluster"', "Machines and batch work",
                                     "Batch work ledger", 'id="plot-cluster_cores"',
                                     'id="tables"')]
    assert marks == sorted(marks)
    assert page.index("<img", page.index('id="cluster"')) > page.index("Batch work ledger")
    assert '<a href="#cluster">Cluster</a>' in page


def test_verdict_says_the_machine_figures_in_plain_words(cluster_report: Path) -> None:
    md = (cluster_report / "report.md").read_text()
    assert MACHINES_SENTENCE.replace("_", "\\_") in md
    assert ("online instances waited for room on a node: at most 2 at once, 200 "
            "instance-seconds in all") in md


def test_machines_table_holds_the_hand_derived_figures(cluster_report: Path) -> None:
    tables = markdown_tables((cluster_report / "report.md").read_text())
    machines = {row[0]: row[1] for row in next(t for t in tables if t[0][0] == "measure")[1:]}
    assert machines == {
        "machines needed": "5", "mean CPU utilization": "53.6%",
        "cores allocated (mean)": "14 online, 13.3 batch", "node-hours": "0.806",
        "node cost": "0.967 USD", "online instances pending": "200 instance-s, at most 2 at once",
        "batch jobs": "40 submitted, 30 completed, 1 rejected",
        "batch work done": "2.2 core-hours", "batch work lost": "0.1 core-hours",
        "batch slowdown": "mean 2.66, p95 7.71", "preemptions": "4"}
    ledger = next(t for t in tables if t[0][0] == "submitted")
    # 10,000 / 8,000 / 600 / 1,400 / 360 / 8,960 core-seconds in core-hours.
    assert ledger[1:] == [["2.8", "2.2", "0.17", "0.39", "0.1", "2.5"]]


def test_cost_says_its_basis(cluster_report: Path, tmp_path: Path) -> None:
    md = (cluster_report / "report.md").read_text()
    assert ("**cost**: 0.967 USD node cost: 0.806 node-hours on at most 5 machines (the "
            "instances alone: 0.5 USD)") in md
    costs = next(t for t in markdown_tables(md) if t[0][:2] == ["service", "min"])
    by_row = {row[0]: row for row in costs[1:]}
    assert "total" not in by_row
    assert by_row["all instances"][7] == "0.5"
    # Nodes: fewest 4, mean 4.83, most 5, at most 1 provisioning, 0.806 node-hours, 1.2/hour.
    assert by_row["nodes (run cost)"][1:8] == ["4", "4.83", "5", "1", "0.806", "1.2", "0.967"]
    assert "cost basis: nodes" in md
    plain = synthetic_summary()
    plain["cost"]["basis"] = "instances"
    other = write_report(write_synthetic_run(tmp_path / "plain", plain)).markdown.read_text()
    assert "**cost**: 0.5 USD instance cost" in other and "cost basis: instances" in other
    assert "## Cluster" not in other


def test_junit_is_the_same_with_or_without_a_cluster(cluster_report: Path,
                                                     tmp_path: Path) -> None:
    summary = synthetic_summary(policy="colocated")
    plain = write_report(write_synthetic_run(tmp_path / "plain", summary))
    assert (cluster_report / "junit.xml").read_text() == plain.junit.read_text()
    assert ET.parse(plain.junit).getroot().get("tests") == "4"


def test_peaksim_report_rebuilds_identical_tables(cluster_report: Path) -> None:
    md = (cluster_report / "report.md").read_text()
    tables = html_tables((cluster_report / "report.html").read_text())
    result = CliRunner().invoke(app, ["report", str(cluster_report)], terminal_width=250)
    assert result.exit_code == 0, result.output
    assert MACHINES_SENTENCE in " ".join(result.output.split())
    assert (cluster_report / "report.md").read_text() == md
    assert html_tables((cluster_report / "report.html").read_text()) == tables
    assert len(tables) == 6  # 4 run tables + machines + ledger


def test_nodes_plot_draws_the_pending_panel_only_when_something_waited(tmp_path: Path) -> None:
    with_pending = write_report(write_cluster_run(tmp_path / "a"))
    rows = cluster_rows()
    rows["pending_instances"] = np.zeros(TICKS)
    without = write_report(write_cluster_run(tmp_path / "b", rows=rows))
    from PIL import Image

    with Image.open(with_pending.html.parent / "cluster_nodes.png") as a, \
            Image.open(without.html.parent / "cluster_nodes.png") as b:
        assert a.size[0] == b.size[0] and a.size[1] > b.size[1]
        red = np.asarray(a.convert("RGB"), dtype=int)
        # The pending line is drawn in the loss red (#b2182b).
        assert (np.abs(red - np.array([178, 24, 43])).sum(axis=2) < 30).sum() > 50


def test_a_bad_cluster_csv_names_line_and_column(tmp_path: Path) -> None:
    run_dir = write_cluster_run(tmp_path / "run")
    path = run_dir / "cluster.csv"
    lines = path.read_text().splitlines()
    cells = lines[2].split(",")
    cells[CLUSTER_COLUMNS.index("batch_cores")] = "many"
    path.write_text("\n".join([*lines[:2], ",".join(cells), *lines[3:]]) + "\n")
    with pytest.raises(RunDirError, match=r"cluster.csv:3: column batch_cores.*'many'"):
        load_run(run_dir)
    result = CliRunner().invoke(app, ["report", str(run_dir)])
    assert result.exit_code == 2 and "cluster.csv:3" in result.output
    path.write_text("t_s,nodes\n0,4\n")
    with pytest.raises(RunDirError, match="missing column"):
        load_run(run_dir)


def test_report_of_a_real_colocation_run(tmp_path: Path) -> None:
    from sim.engine import simulate
    from sim.model import load_scenario

    scenario = load_scenario("scenarios/colocation.yaml").model_copy(
        update={"duration_s": 600.0})
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    simulate(scenario, variant="colocated").write(run_dir)
    files = write_report(run_dir)
    page = files.html.read_text()
    assert 'id="cluster"' in page and len(embedded_pngs(page)) == 10
    with (run_dir / "cluster.csv").open() as handle:
        most_nodes = max(int(float(r["nodes"])) for r in csv.DictReader(handle))
    summary = json.loads((run_dir / "summary.json").read_text())
    machines = next(t for t in markdown_tables(files.markdown.read_text())
                    if t[0][0] == "measure")
    assert ["machines needed", str(most_nodes)] == machines[1][:2]
    assert summary["cost"]["basis"] == "nodes"
    assert f"{summary['cost']['total']:,.2f} USD node cost" in files.markdown.read_text()


# --- comparisons of colocation variants ------------------------------------------------------


def variant_summary(name: str, policy: str, *, util: float = 0.767, done_h: float = 465.2,
                    slowdown: float = 3.57, p99: tuple[float, float] = (149.0, 298.0),
                    cost: float = 24.0, machines: int = 20, met: bool = True) -> dict[str, Any]:
    """A variant's summary: browse and order p99 as given (held unless ``met`` is False,
    when browse misses 300 ms with 450 ms), its cluster block and node cost."""
    summary = synthetic_summary(policy=name)
    for service, value in zip(("browse", "order"), p99, strict=True):
        info = summary["services"][service]
        info["latency_ms"]["p99"] = value
        info["slo"]["p99_ms"].update(value=value, met=value <= info["slo"]["p99_ms"]["target"])
        info["slo_met"] = all(o["met"] for o in info["slo"].values())
    if not met:
        summary["services"]["browse"]["latency_ms"]["p99"] = 450.0
        summary["services"]["browse"]["slo"]["p99_ms"].update(value=450.0, met=False)
        summary["services"]["browse"]["slo_met"] = False
    summary["slo_met"] = all(i["slo_met"] for i in summary["services"].values())
    ledger = dict(cluster_block()["batch"], done_core_s=done_h * 3600.0)
    summary.update(
        cluster=cluster_block(policy=policy, variant=name, nodes_max=machines, cost=cost,
                              mean_cpu_utilization=util, batch_slowdown_mean=slowdown,
                              batch=ledger),
        cost={"total": cost, "instances": 0.5, "basis": "nodes", "currency": "USD"},
        autoscaling_policy="hpa")
    return summary


def compare(tmp_path: Path, *summaries: dict[str, Any]) -> Path:
    names = [s["cluster"]["variant"] for s in summaries]
    runs = [write_cluster_run(tmp_path / "runs" / n, s) for n, s in zip(names, summaries,
                                                                           strict=True)]
    write_comparison_report(tmp_path / "cmp", runs, names)
    return tmp_path / "cmp"


def headline(cmp_dir: Path) -> str:
    first = (cmp_dir / "report.md").read_text().split("\n## ", 1)[1].split("\n", 1)[0]
    return first.split(" ", 1)[1].replace("\\", "")


@pytest.fixture(scope="module")
def three_way(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # The shipped scenario's shape: equal node costs (up to float noise), colocation busier.
    return compare(
        tmp_path_factory.mktemp("three"),
        variant_summary("dedicated", "dedicated"),
        variant_summary("colocated", "colocated", util=0.811, done_h=491.9, slowdown=2.66,
                        p99=(158.0, 316.0), cost=24.000000000000387),
        variant_summary("colocated-throttle", "colocated", util=0.809, done_h=480.0,
                        slowdown=2.70, p99=(158.0, 316.0), cost=24.000000000000213))


def test_tied_costs_headline_says_what_differs(three_way: Path) -> None:
    # 158 / 149 and 316 / 298 are both +6%; colocated did the most batch work of the tied.
    assert headline(three_way) == (
        "all 3 variants held every SLO on 20 machines at 24.00 USD; compared with dedicated, "
        "colocated raised mean CPU from 76.7% to 81.1%, did 491.9 batch core-hours instead "
        "of 465.2 and cut batch slowdown from 3.57 to 2.66 at +6% online p99.")


def test_comparison_cluster_tables_and_overlays(three_way: Path) -> None:
    md = (three_way / "report.md").read_text()
    tables = markdown_tables(md)
    machines = next(t for t in tables if t[0][:3] == ["variant", "machines", "mean CPU"])
    assert [r[:6] for r in machines[1:]] == [
        ["dedicated", "20", "76.7%", "24.00 USD", "465.2", "0.1"],
        ["colocated", "20", "81.1%", "24.00 USD", "491.9", "0.1"],
        ["colocated-throttle", "20", "80.9%", "24.00 USD", "480.0", "0.1"]]
    impact = next(t for t in tables if t[0][-1] == "p99 change")
    assert impact[0] == ["variant", "SLO", "browse p99", "order p99", "p99 change"]
    assert [r[2:] for r in impact[1:]] == [
        ["149 ms", "298 ms", "baseline"], ["158 ms (+6%)", "316 ms (+6%)", "+6%"],
        ["158 ms (+6%)", "316 ms (+6%)", "+6%"]]
    assert "colocated held every SLO: 20 machines, 81.1% mean CPU" in md
    page = (three_way / "report.html").read_text()
    names = ["compare_cluster_cpu", "compare_cluster_batch"]
    assert embedded_pngs(page)[-2:] == [(three_way / f"{n}.png").read_bytes() for n in names]
    root = ET.parse(three_way / "junit.xml").getroot()
    assert (root.get("tests"), root.get("failures")) == ("12", "0")
    assert len(root.findall("testsuite")) == 3


def test_peaksim_report_rebuilds_the_cluster_comparison(three_way: Path) -> None:
    md, tables = (three_way / "report.md").read_text(), html_tables(
        (three_way / "report.html").read_text())
    result = CliRunner().invoke(app, ["report", str(three_way)], terminal_width=250)
    assert result.exit_code == 0, result.output
    assert (three_way / "report.md").read_text() == md
    assert html_tables((three_way / "report.html").read_text()) == tables


@pytest.mark.parametrize(("variants", "expected"), [
    pytest.param(  # node cost decides, though colocated's instances are the same price
        [("dedicated", "dedicated", {"cost": 28.8, "machines": 24}),
         ("colocated", "colocated", {"util": 0.811})],
        "colocated held every SLO at the lowest node cost of the 2 variants that did: "
        "20 machines at 24.00 USD (next: dedicated, 24 machines at 28.80 USD, 4 machines "
        "fewer).", id="cheaper-nodes"),
    pytest.param(  # the baseline missed: the tied pair is compared with its first member
        [("dedicated", "dedicated", {"met": False}),
         ("colocated", "colocated", {}), ("colocated-throttle", "colocated", {})],
        "colocated and colocated-throttle held every SLO on 20 machines at 24.00 USD; "
        "colocated-throttle and colocated did not differ in utilization, batch work or "
        "online p99.", id="tie-nothing-differs"),
    pytest.param(  # 155 / 149 = +4%, 325 / 298 = +9%
        [("dedicated", "dedicated", {"cost": 30.0}), ("a", "colocated", {}),
         ("b", "colocated", {"util": 0.811, "p99": (155.0, 325.0)})],
        "a and b held every SLO on 20 machines at 24.00 USD, the lowest node cost (next: "
        "dedicated at 30.00 USD); compared with a, b raised mean CPU from 76.7% to 81.1% at "
        "+4% to +9% online p99.", id="tie-services-differ"),
    pytest.param(
        [("dedicated", "dedicated", {"met": False}), ("colocated", "colocated", {"met": False})],
        "No variant held every SLO; dedicated missed the fewest objectives (1 of 4).",
        id="none-held"),
])
def test_headline_ranks_by_node_cost(tmp_path: Path, variants: list[tuple[str, str, dict]],
                                     expected: str) -> None:
    summaries = [variant_summary(n, p, **kw) for n, p, kw in variants]
    assert headline(compare(tmp_path, *summaries)) == expected


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_cluster_section_renders_in_chromium(tmp_path: Path) -> None:
    from PIL import Image

    # Only the cluster plots, so that the section is within the first screen.
    only_cluster = {k: p for k, p in RUN_PLOTS.items() if p.section == CLUSTER_SECTION}
    files = write_report(write_cluster_run(tmp_path / "run"), plots=only_cluster)
    shot = tmp_path / "shot.png"
    screenshot(files.html, shot, tmp_path / "profile")
    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("RGB"), dtype=int)
    grey = pixels.mean(axis=2)
    assert grey.std() > 20 and np.mean(grey > 240) > 0.4
    for colour in (BATCH_COLOUR, ONLINE_COLOUR):  # the stacked cores of the first plot
        rgb = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)])
        assert (np.abs(pixels - rgb).sum(axis=2) < 40).sum() > 2000, colour
