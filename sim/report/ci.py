"""What CI systems read: ``report.md`` and ``junit.xml``.

``report.md`` holds the verdict, scenario summary and tables in GitHub-flavoured Markdown, small
enough to append to ``$GITHUB_STEP_SUMMARY`` (job summaries do not show local images, so the
plots are named, not embedded).

``junit.xml`` has one test case per SLO objective per service, failed when the objective was
missed, so CI systems (GitHub, GitLab, Jenkins) show SLO gates as tests. Test names are the
objective keys (``p99_ms``, ``error_rate``), not their targets, so a test's history survives a
change of target; the target and value are in the failure message.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass

from sim.report.document import MET, MISSED, ReportDoc, Table, VerdictLine, fmt_objective
from sim.report.verdict import ObjectiveResult, RunVerdict, when

# --- Markdown -------------------------------------------------------------------------------

_MARKS = {True: "✅", False: "❌", None: "➖"}
_STATUS = {MET: "✅ met", MISSED: "❌ MISSED"}


def render_markdown(doc: ReportDoc) -> str:
    """The report as Markdown: verdict first, then the scenario facts and every table."""
    head = _MARKS[doc.met]
    lines = [
        f"# {md_text(doc.title)}",
        "",
        f"_{md_text(doc.subtitle)}_",
        "",
        f"## {head} {md_text(doc.headline)}",
        "",
        *[_verdict_line(line) for line in doc.verdict],
        "",
        "## Scenario",
        "",
        *[f"- **{md_text(key)}**: {md_text(value)}" for key, value in doc.facts],
        "",
    ]
    for section in doc.sections:
        lines += [f"## {md_text(section.title)}", ""]
        if section.intro:
            lines += [md_text(section.intro), ""]
        lines += _md_tables(section.tables, "###")
    lines += _md_tables(doc.tables, "##")
    figures = [*doc.figures, *(f for s in doc.sections for f in s.figures)]
    if figures:
        names = ", ".join(f"`{f.filename}`" for f in figures)
        lines += [f"Plots (in `report.html` and as PNG files next to this file): {names}.", ""]
    if doc.plots_note:
        lines += [md_text(doc.plots_note), ""]
    if doc.footer:
        lines += [f"<sub>{md_text(doc.footer)}</sub>", ""]
    return "\n".join(lines)


def _md_tables(tables: tuple[Table, ...], level: str) -> list[str]:
    lines: list[str] = []
    for table in tables:
        lines += [f"{level} {md_text(table.title)}", ""]
        if table.rows:
            lines += [render_md_table(table), ""]
        if table.note:
            lines += [md_text(table.note), ""]
    return lines


def _verdict_line(line: VerdictLine) -> str:
    return f"- {_MARKS[line.ok]} {md_text(line.text)}"


def render_md_table(table: Table) -> str:
    """A pipe table: header, separator (with alignment), one line per row, equal cell counts."""
    sep = {"l": ":--", "r": "--:"}
    rows = [
        "| " + " | ".join(md_cell(h) for h in table.header) + " |",
        "| " + " | ".join(sep[a] for a in table.align) + " |",
    ]
    rows += ["| " + " | ".join(md_cell(_STATUS.get(c, c)) for c in row) + " |"
             for row in table.rows]
    return "\n".join(rows)


def md_cell(text: str) -> str:
    """A table cell: pipes escaped, line breaks flattened (either would break the row)."""
    return md_text(text).replace("|", "\\|").replace("\n", " ")


def md_text(text: str) -> str:
    """Plain text safe in Markdown: characters that would start emphasis or HTML escaped."""
    for char in ("\\", "*", "_", "`", "<", ">", "[", "]"):
        text = text.replace(char, "\\" + char)
    return text


# --- JUnit XML ------------------------------------------------------------------------------

FAILURE_TYPE = "SLOMissed"


@dataclass(frozen=True)
class Suite:
    """One ``<testsuite>``: a run (or one variant of a comparison) and its objectives.

    ``class_prefix`` is prepended to the service in ``classname`` (``"hpa."`` in a comparison,
    where the same service appears once per variant).
    """

    name: str
    verdict: RunVerdict
    start_clock_s: float | None
    properties: tuple[tuple[str, str], ...] = ()
    class_prefix: str = ""
    timestamp: str | None = None


def render_junit(suites: Sequence[Suite], name: str = "peaksim") -> str:
    """The JUnit XML document (``<testsuites>`` with per-suite and total counts)."""
    root = ET.Element("testsuites", name=name)
    total = failures = 0
    for suite in suites:
        results = suite.verdict.objectives
        missed = sum(1 for r in results if not r.met)
        total, failures = total + len(results), failures + missed
        attrs = {"name": suite.name, "tests": str(len(results)), "failures": str(missed),
                 "errors": "0", "skipped": "0", "time": "0"}
        if suite.timestamp:
            attrs["timestamp"] = suite.timestamp
        element = ET.SubElement(root, "testsuite", attrs)
        if suite.properties:
            props = ET.SubElement(element, "properties")
            for key, value in suite.properties:
                ET.SubElement(props, "property", name=key, value=value)
        for result in results:
            _testcase(element, result, suite)
    root.set("tests", str(total))
    root.set("failures", str(failures))
    root.set("errors", "0")
    root.set("time", "0")
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _testcase(parent: ET.Element, result: ObjectiveResult, suite: Suite) -> None:
    case = ET.SubElement(parent, "testcase", classname=suite.class_prefix + result.service,
                         name=result.objective, time="0")
    value = fmt_objective(result.objective, result.value)
    target = fmt_objective(result.objective, result.target)
    if result.met:
        out = ET.SubElement(case, "system-out")
        out.text = f"{result.against()}: met"
        return
    why = result.reason or f"{result.label} {value} above target {target}"
    failure = ET.SubElement(case, "failure", type=FAILURE_TYPE,
                            message=f"{result.service} {result.label}: {why}")
    lines = [f"{result.against()}: missed" + (f" ({result.reason})" if result.reason else "")]
    lines += [
        f"above target from {when(w.start_s, suite.start_clock_s)} to "
        f"{when(w.end_s, suite.start_clock_s)} "
        f"(worst per tick: {fmt_objective(result.objective, w.worst)})"
        for w in result.windows
    ]
    failure.text = "\n".join(lines)
