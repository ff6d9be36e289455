"""Reports of run directories: HTML, Markdown, JUnit, plots, comparisons, curves.

Owns everything rebuilt from ``summary.json``/``timeseries.csv``/``cluster.csv``/``plan.json``
alone. Other parts (the load tester) add their sections through ``ReportExtension`` objects
passed in; this package knows nothing of them. May import the foundation modules,
``sim.model`` and ``sim.plan`` (the plan file's name); never ``sim.engine`` or ``loadtests``.
"""

from sim.report.ci import render_markdown, render_md_table
from sim.report.cluster_data import CLUSTER_COLUMNS
from sim.report.curve import write_curve
from sim.report.data import REQUIRED_COLUMNS, RunData, ServiceSeries, load_run
from sim.report.derive import Window, capacity_rps, cumulative_cost, miss_windows
from sim.report.document import (
    MET,
    MISSED,
    NO_VALUE,
    DocSection,
    ReportDoc,
    ReportFigure,
    Table,
    VerdictLine,
    fmt_count,
    fmt_ms,
    fmt_num,
    fmt_objective,
    fmt_pct,
    objective_label,
    plural,
)
from sim.report.html import render_html
from sim.report.plan_section import plan_table
from sim.report.plots import (
    CLUSTER_SECTION,
    RUN_PLOTS,
    ReportPlot,
    centres,
    has_columns,
    service_panels,
)
from sim.report.plotting import (
    BATCH_COLOUR,
    ONLINE_COLOUR,
    clock_axis,
    clock_ticks,
    empty_note,
    latency_axis,
    legend_outside,
    new_figure,
    new_grid,
    service_colour,
    service_title,
    to_png,
    to_png_aligned,
    variant_colour,
)
from sim.report.schedule_section import PLOT_FILE as SCHEDULE_PLOT_FILE
from sim.report.schedule_section import plot_schedule
from sim.report.verdict import judge, when
from sim.report.writer import (
    ReportExtension,
    ReportFiles,
    rebuild_command,
    regenerate,
    write_comparison_report,
    write_report,
)

__all__ = [
    "SCHEDULE_PLOT_FILE",
    "plot_schedule",
    "MET",
    "MISSED",
    "clock_axis",
    "clock_ticks",
    "new_grid",
    "render_html",
    "render_markdown",
    "render_md_table",
    "to_png_aligned",
    "variant_colour",
    "BATCH_COLOUR",
    "CLUSTER_COLUMNS",
    "CLUSTER_SECTION",
    "DocSection",
    "NO_VALUE",
    "ONLINE_COLOUR",
    "REQUIRED_COLUMNS",
    "RUN_PLOTS",
    "ReportDoc",
    "ReportFigure",
    "ReportExtension",
    "ReportFiles",
    "ReportPlot",
    "RunData",
    "ServiceSeries",
    "Table",
    "VerdictLine",
    "Window",
    "capacity_rps",
    "centres",
    "cumulative_cost",
    "empty_note",
    "fmt_count",
    "fmt_ms",
    "fmt_num",
    "fmt_objective",
    "fmt_pct",
    "has_columns",
    "judge",
    "latency_axis",
    "legend_outside",
    "load_run",
    "miss_windows",
    "new_figure",
    "objective_label",
    "plural",
    "plan_table",
    "rebuild_command",
    "regenerate",
    "service_colour",
    "service_panels",
    "service_title",
    "to_png",
    "when",
    "write_comparison_report",
    "write_curve",
    "write_report",
]
