"""What a report costs, and what it still shows: ``--no-plots`` writes every table and verdict
without drawing (nor importing matplotlib), ``peaksim report`` draws the plots later, long
series are thinned for drawing without losing a spike, and stacked panels laid out without
measuring keep their titles and labels apart and inside the figure."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from test_report_rundir import embedded_pngs, html_tables, markdown_tables, synthetic_summary
from typer.testing import CliRunner

import sim.report.plots as report_plots
from sim.cli import app
from sim.report import REQUIRED_COLUMNS, RUN_PLOTS, clock_axis, load_run, new_figure
from sim.report.decimate import envelope, envelope_indices
from sim.report.plotting import PANEL_COLUMNS, legend_outside, service_title, stack_layout

ROOT = Path(__file__).resolve().parent.parent

SCENARIO = """
name: small-ci
seed: 5
duration_s: 20
tick_s: 1
traffic: {kind: constant, rps: {browse: 120, order: 30}}
services:
  browse: {service_time: {dist: exponential, mean_ms: 40}, workers: 8,
           instances: {min: 1, max: 2, initial: 1}, timeout_ms: 1000, price_per_hour: 0.1}
  order: {service_time: {dist: exponential, mean_ms: 80}, workers: 4,
          instances: {min: 1, max: 2, initial: 1}, timeout_ms: 2000, price_per_hour: 0.2}
slo:
  browse: {p99_ms: 400, error_rate: 0.01}
  order: {p99_ms: 800}
autoscaling:
  default: one
  variants:
    one: {policy: static, instances: {browse: 1, order: 1}}
    two: {policy: static, instances: {browse: 2, order: 2}}
"""

IMPORTED = """
import json, sys
from sim.cli import app
try:
    app(sys.argv[1:])
except SystemExit as exc:
    code = exc.code or 0
print(json.dumps({"exit": code, "plotting": sorted(
    m for m in sys.modules if m.split(".")[0] == "matplotlib")}))
"""


def _peaksim_in_subprocess(*args: str) -> dict:
    """Run a peaksim command in a fresh interpreter; its exit code and matplotlib modules."""
    done = subprocess.run([sys.executable, "-c", IMPORTED, *args], capture_output=True,
                          text=True, timeout=120, check=False,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("scenario") / "small-ci.yaml"
    path.write_text(SCENARIO)
    return path


@pytest.fixture(scope="module")
def unplotted(scenario: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A run written with --no-plots in its own interpreter, and what that interpreter
    imported."""
    out = tmp_path_factory.mktemp("unplotted") / "run"
    return out, _peaksim_in_subprocess("run", str(scenario), "--out", str(out), "--no-plots")


def test_no_plots_imports_no_matplotlib_and_writes_no_png(unplotted: tuple[Path, dict]) -> None:
    out, seen = unplotted
    assert seen == {"exit": 0, "plotting": []}
    assert sorted(p.name for p in out.iterdir()) == [
        "junit.xml", "report.html", "report.md", "summary.json", "timeseries.csv"]
    html = (out / "report.html").read_text()
    assert embedded_pngs(html) == []
    note = f"Plots not drawn (--no-plots). To draw them into this report, run: peaksim report {out}"
    assert note in html and '<a href="#plots">Plots</a>' in html
    markdown = (out / "report.md").read_text()
    assert note in markdown.replace("\\", "")  # Markdown escapes the path's underscores


def test_no_plots_keeps_every_table_and_peaksim_report_draws_the_plots_later(
    unplotted: tuple[Path, dict], tmp_path: Path, runner: CliRunner
) -> None:
    run_dir = shutil.copytree(unplotted[0], tmp_path / "run")
    before = {name: (run_dir / name).read_text() for name in
              ("report.html", "report.md", "junit.xml", "summary.json")}
    result = runner.invoke(app, ["report", str(run_dir)])
    assert result.exit_code == 0, result.output
    after = {name: (run_dir / name).read_text() for name in before}
    run = load_run(run_dir)
    expected = sorted(p.filename for p in RUN_PLOTS.values() if p.applies(run))
    assert len(expected) >= 6  # traffic, instances, latency, errors, utilization, cost
    assert sorted(p.name for p in run_dir.glob("*.png")) == expected
    assert len(embedded_pngs(after["report.html"])) == len(expected)
    assert "Plots not drawn" not in after["report.html"] + after["report.md"]
    # Everything else is what --no-plots wrote: verdict, tables, JUnit, the summary untouched.
    assert html_tables(after["report.html"]) == html_tables(before["report.html"])
    for title in ("Results per service", "SLO objectives", "Instances and cost (USD)",
                  "Scaling and fault events"):
        assert f"<h3>{title}</h3>" in before["report.html"]
    assert markdown_tables(after["report.md"]) == markdown_tables(before["report.md"])
    assert after["junit.xml"] == before["junit.xml"]
    assert after["summary.json"] == before["summary.json"]


def test_compare_without_plots_in_worker_processes(scenario: Path, tmp_path: Path,
                                                   runner: CliRunner) -> None:
    out = tmp_path / "cmp"
    result = runner.invoke(app, ["compare", str(scenario), "--out", str(out), "--jobs", "2",
                                 "--no-plots"])
    assert result.exit_code == 0, result.output
    assert list(out.rglob("*.png")) == []
    for directory in (out, out / "one", out / "two"):
        text = (directory / "report.md").read_text()
        assert f"run: peaksim report {directory}" in text.replace("\\", "")
        assert markdown_tables(text)
    assert json.loads((out / "comparison.json").read_text())["runs"][1]["name"] == "two"


@pytest.mark.parametrize(("command", "option"), [
    (["run", "--replications", "2"], "--replications"),
    (["plan", "--schedule"], "--schedule"),
])
def test_no_plots_is_refused_where_it_does_not_apply(
    scenario: Path, tmp_path: Path, runner: CliRunner, command: list[str], option: str
) -> None:
    result = runner.invoke(app, [*command[:1], str(scenario), *command[1:], "--no-plots",
                                 "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert result.output.strip() == f"error: --no-plots: not with {option}"
    assert not (tmp_path / "x").exists()


# --- thinning long series -----------------------------------------------------------------


def test_a_single_spike_and_a_single_dip_survive_thinning() -> None:
    rng = np.random.default_rng(11)
    x = np.arange(86_400, dtype=float)  # a day at a 1-s tick
    y = 100.0 + rng.normal(0.0, 5.0, x.size)
    y[51_234], y[70_001] = 2_000.0, -50.0
    kept_x, kept_y = envelope(x, y, PANEL_COLUMNS)
    assert kept_y.max() == 2_000.0 and kept_x[np.argmax(kept_y)] == 51_234
    assert kept_y.min() == -50.0 and kept_x[np.argmin(kept_y)] == 70_001
    assert kept_x.size <= 2 * PANEL_COLUMNS + 2  # min and max per pixel column, the ends
    assert np.all(np.diff(kept_x) > 0)  # real points, in time order
    np.testing.assert_array_equal(kept_y, y[kept_x.astype(int)])
    assert kept_x[0] == 0 and kept_x[-1] == x[-1]


def test_thinning_keeps_gaps_each_stacked_layers_peak_and_short_series() -> None:
    n = 10_000
    y = np.ones(n)
    y[4_000:4_003] = np.nan  # ticks without a value: the line must keep its gap
    kept = envelope_indices([y], 100)
    assert np.isnan(y[kept]).any()
    layer_a, layer_b = np.zeros(n), np.zeros(n)
    layer_a[123], layer_b[124] = 7.0, 9.0  # in one bucket: each layer keeps its own peak
    kept = envelope_indices([layer_a, layer_b, layer_a + layer_b], 100)
    assert {123, 124} <= set(kept.tolist())
    short = np.arange(200.0)
    np.testing.assert_array_equal(envelope_indices([short], 100), np.arange(200))


def _write_long_run(run_dir: Path, ticks: int, spike_at: int, spike_ms: float) -> Path:
    """A run of ``ticks`` 1-s ticks whose browse p99 is noise around 100 ms but one spike."""
    run_dir.mkdir(parents=True)
    summary = synthetic_summary()
    summary.update(duration_s=float(ticks), tick_s=1.0)
    (run_dir / "summary.json").write_text(json.dumps(summary))
    rng = np.random.default_rng(5)
    with (run_dir / "timeseries.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(REQUIRED_COLUMNS)
        for t in range(ticks):
            for name in ("browse", "order"):
                p99 = spike_ms if (name, t) == ("browse", spike_at) else 100 + rng.random() * 20
                row = {c: 1.0 for c in REQUIRED_COLUMNS[2:]}
                row.update(p99_ms=p99, p95_ms=p99 / 2, p50_ms=p99 / 4, utilization=0.5)
                writer.writerow([t, name, *[f"{row[c]:.6g}" for c in REQUIRED_COLUMNS[2:]]])
    return run_dir


def test_the_latency_plot_of_a_long_run_reaches_its_one_spike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    drawn: list[Figure] = []

    def keep(fig: Figure, *_args: object, **_kwargs: object) -> bytes:
        drawn.append(fig)
        return b""

    monkeypatch.setattr(report_plots, "to_png_aligned", keep)
    run = load_run(_write_long_run(tmp_path / "run", 20_000, 12_345, 9_000.0))
    report_plots.plot_latency(run)
    (fig,) = drawn
    browse = fig.axes[0]
    (p99,) = [line for line in browse.lines if line.get_label() == "p99"]
    ydata = np.asarray(p99.get_ydata())
    assert ydata.max() == 9_000.0
    assert ydata.size < 20_000 / 5  # thinned: fewer points than ticks


# --- stacked panels laid out from the fonts -------------------------------------------------


def test_stacked_panels_keep_titles_and_labels_apart_and_inside() -> None:
    names = ["browse", "order", "payment"]
    fig, axes = new_figure(len(names), 2.5)
    for ax, name in zip(axes, names, strict=True):
        ax.plot([0, 3600], [0, 1_000], label="offered")
        ax.set_ylabel("requests / s")
        service_title(ax, name, names, "a detail")
        legend_outside(ax)
    clock_axis(axes[-1], 23 * 3600.0, span_s=(0.0, 3600.0))
    fig.subplots_adjust(left=0.085, right=0.78, **stack_layout(fig))
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    boxes = [ax.get_tightbbox(renderer) for ax in axes]  # title, tick labels, x label
    height_px = fig.get_figheight() * fig.dpi
    pad_px = 1.08 * 10 / 72 * fig.dpi  # tight_layout's pad: 1.08 font sizes
    assert boxes[0].y1 <= height_px and boxes[-1].y0 >= 0
    assert height_px - boxes[0].y1 <= 1.5 * pad_px and boxes[-1].y0 <= 1.5 * pad_px
    for upper, lower in zip(boxes, boxes[1:], strict=False):
        assert 0 < upper.y0 - lower.y1 <= 2 * pad_px  # apart, but not wastefully
