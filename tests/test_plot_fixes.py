"""What the report plots show: neutral legends and labelled SLO lines (peak.png), booting
instances visible on a long axis (instances.png), overlapping variants apart (compare_p99.png),
load-test windows as steps over their real span (generator.png)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from test_report_rundir import write_synthetic_run

import sim.report.compare_plots as compare_plots
import sim.report.plots as report_plots
from loadtests.report_plots import window_edges
from sim.report import load_run, service_colour
from sim.report.compare import build_comparison
from sim.report.plotting import BOOT_COLOUR, MIN_MARK, SLO_COLOUR


@pytest.fixture
def figures(monkeypatch: pytest.MonkeyPatch) -> list[Figure]:
    """The matplotlib figures the plot functions draw, instead of their PNG bytes."""
    drawn: list[Figure] = []

    def keep(fig: Figure, *_args: object, **_kwargs: object) -> bytes:
        drawn.append(fig)
        return b""

    for module in (report_plots, compare_plots):
        monkeypatch.setattr(module, "to_png", keep)
        monkeypatch.setattr(module, "to_png_aligned", keep)
    return drawn


def test_peak_legends_are_neutral_and_each_slo_line_says_its_value(
    tmp_path: Path, figures: list[Figure]
) -> None:
    run = load_run(write_synthetic_run(tmp_path / "run"))
    report_plots.plot_peak(run)
    (fig,) = figures
    service_colours = {to_hex(service_colour(n, run.services)) for n in run.services}
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    assert len(legends) == 2
    for legend in legends:
        for handle in legend.legend_handles:
            assert to_hex(handle.get_color()) not in service_colours
    latency_axes = fig.axes[1::2]
    for ax, name in zip(latency_axes, run.services, strict=True):
        target = run.summary.services[name].slo["p99_ms"].target
        labels = [t.get_text() for t in ax.texts]
        assert any(label.startswith("p99 SLO ") and label != "p99 SLO " for label in labels)
        assert ax.get_ylim()[1] >= 1.5 * target  # the line is inside the panel, not its edge
        assert any(np.isclose(line.get_ydata()[0], target)
                   and to_hex(line.get_color()) == SLO_COLOUR for line in ax.lines)


def test_booting_instances_get_a_visible_bar_with_their_count(
    tmp_path: Path, figures: list[Figure]
) -> None:
    run = load_run(write_synthetic_run(tmp_path / "run"))
    booting = run.series["browse"]["instances_booting"]
    assert booting.max() > 0  # the synthetic browse service boots instances
    report_plots.plot_instances(run)
    (fig,) = figures
    browse = fig.axes[0]
    bars = [p for p in browse.patches if p.get_label() == "booting, +most at once"]
    assert bars, "no booting bar"
    span = run.summary.duration_s
    for bar in browse.patches:
        if to_hex(bar.get_facecolor()) == BOOT_COLOUR:
            x0, x1 = bar.get_x(), bar.get_x() + bar.get_width()
            assert x1 - x0 >= MIN_MARK * span * 0.999
    assert f"+{booting.max():.0f}" in [t.get_text() for t in browse.texts]


def test_compare_p99_is_one_panel_per_variant_and_service(
    tmp_path: Path, figures: list[Figure]
) -> None:
    runs = [load_run(write_synthetic_run(tmp_path / name, browse_p99_scale=scale))
            for name, scale in (("fast", 1.0), ("slow", 3.0), ("same", 1.0))]
    names = ["fast", "slow", "same"]
    build_comparison(runs, names, names)
    p99 = next(f for f in figures if len(f.axes) == 2 * 3)  # 2 services x 3 variants
    titles = [ax.get_title(loc="left") for ax in p99.axes[:3]]
    assert titles == names
    # "fast" and "same" are identical: each still has a panel of its own with its line drawn
    # in its own colour on top of the others in grey.
    for ax in p99.axes[:3]:
        coloured = [line for line in ax.lines if to_hex(line.get_color()) != "#c8c8c8"
                    and to_hex(line.get_color()) != SLO_COLOUR]
        assert len(coloured) == 1 and coloured[0].get_linewidth() > 1.0


def test_window_edges_cover_each_window_over_its_real_span() -> None:
    starts = np.array([0.0, 10.0])
    # Two 10-s windows of a 20-s run: steps from 0 to 10 and 10 to 20, not a line between
    # the centres at 5 and 15.
    assert window_edges(starts, 10.0, 20.0).tolist() == [0.0, 10.0, 20.0]
    # A run that ended inside its last window: that step stops at the end.
    assert window_edges(np.array([0.0, 10.0, 20.0]), 10.0, 25.0).tolist() == [0, 10, 20, 25]
