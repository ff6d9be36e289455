"""``report.html``: one self-contained page (inline CSS, plots as base64 PNG data URIs, no
scripts, no external resources) laid out from a ``ReportDoc``; readable on screen and printed.
"""

from __future__ import annotations

import base64
from html import escape

from sim.report.document import (
    MET,
    MISSED,
    DocSection,
    ReportDoc,
    ReportFigure,
    Table,
    VerdictLine,
)

_CSS = """
:root { --ok: #1a7f37; --bad: #c00000; --ink: #1f2328; --muted: #59636e; --rule: #d0d7de; }
* { box-sizing: border-box; }
body { font: 15px/1.45 -apple-system, "Segoe UI", "DejaVu Sans", Helvetica, Arial, sans-serif;
       color: var(--ink); margin: 0 auto; max-width: 1180px; padding: 24px 28px 48px; }
h1 { font-size: 26px; margin: 0 0 2px; }
h2 { font-size: 19px; margin: 32px 0 10px; padding-bottom: 4px;
     border-bottom: 1px solid var(--rule); }
h3 { font-size: 16px; margin: 22px 0 6px; }
.subtitle, .note, footer, figcaption { color: var(--muted); }
.subtitle { margin: 0 0 16px; }
nav { font-size: 14px; margin: 0 0 12px; }
nav a { color: var(--muted); margin-right: 14px; }
.verdict { border: 2px solid var(--muted); border-left-width: 10px; border-radius: 6px;
           padding: 12px 18px; margin: 8px 0 4px; }
.verdict.ok { border-color: var(--ok); background: #f0faf2; }
.verdict.bad { border-color: var(--bad); background: #fff3f3; }
.verdict .headline { font-size: 19px; font-weight: 700; margin: 0 0 8px; }
.verdict ul { margin: 0; padding-left: 4px; list-style: none; }
.verdict li { margin: 4px 0; padding-left: 26px; text-indent: -26px; }
.mark { display: inline-block; width: 22px; font-weight: 700; text-indent: 0; }
.ok .mark, .mark.ok { color: var(--ok); }
.mark.bad { color: var(--bad); }
.mark.neutral { color: var(--muted); }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 3px 18px; margin: 0; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; }
figure { margin: 18px 0 26px; }
figure img { width: 100%; height: auto; border: 1px solid var(--rule); }
figcaption { font-size: 14px; margin-top: 4px; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; font-size: 14px; margin: 4px 0 6px;
        font-variant-numeric: tabular-nums; }
th, td { border: 1px solid var(--rule); padding: 4px 8px; vertical-align: top; }
th { background: #f3f5f7; text-align: left; }
td.r, th.r { text-align: right; white-space: nowrap; }
tbody tr:nth-child(even) td { background: #fafbfc; }
td.met { color: var(--ok); font-weight: 700; }
td.missed { color: var(--bad); font-weight: 700; }
.note { font-size: 13px; margin: 2px 0 12px; max-width: 900px; }
.intro { margin: 0 0 8px; max-width: 900px; }
.plots-note { border-left: 4px solid var(--muted); background: #f3f5f7; padding: 8px 14px;
              margin: 4px 0 12px; }
footer { font-size: 13px; margin-top: 36px; border-top: 1px solid var(--rule); padding-top: 8px; }
@media print {
  @page { size: A4; margin: 14mm 12mm; }
  body { max-width: none; padding: 0; font-size: 11pt; }
  nav { display: none; }
  .verdict, .verdict.ok, .verdict.bad { -webkit-print-color-adjust: exact;
                                         print-color-adjust: exact; }
  h2 { break-after: avoid; page-break-after: avoid; }
  figure, tr, .verdict { break-inside: avoid; page-break-inside: avoid; }
  #plots, .part { break-before: page; page-break-before: always; }
  #plots.not-drawn { break-before: auto; page-break-before: auto; }
  table { font-size: 9pt; }
  thead { display: table-header-group; }
  .table-wrap { overflow: visible; }
  a { color: inherit; text-decoration: none; }
}
"""

_MARKS = {True: ("ok", "✓"), False: ("bad", "✗"), None: ("neutral", "•")}


def render_html(doc: ReportDoc) -> str:
    """The whole page, in the order: verdict, scenario summary, plots, tables."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(doc.title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<header><h1>{escape(doc.title)}</h1>",
        f'<p class="subtitle">{escape(doc.subtitle)}</p>',
        _nav(doc),
        "</header>",
        _verdict(doc),
        '<section id="summary"><h2>Scenario</h2>', _facts(doc.facts), "</section>",
    ]
    if doc.figures:
        parts.append('<section id="plots"><h2>Plots</h2>')
        parts += [_figure(f) for f in doc.figures]
        parts.append("</section>")
    elif doc.plots_note:
        parts.append('<section id="plots" class="not-drawn"><h2>Plots</h2>'
                     f'<p class="plots-note">{escape(doc.plots_note)}</p></section>')
    parts += [_section(s) for s in doc.sections]
    parts.append('<section id="tables"><h2>Tables</h2>')
    parts += [render_table(t) for t in doc.tables]
    parts.append("</section>")
    if doc.footer:
        parts.append(f"<footer>{escape(doc.footer)}</footer>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _nav(doc: ReportDoc) -> str:
    links = [("#verdict", "Verdict"), ("#summary", "Scenario")]
    if doc.figures or doc.plots_note:
        links.append(("#plots", "Plots"))
    links += [(f"#{s.anchor}", s.title) for s in doc.sections]
    links += [(f"#{t.anchor}", t.title) for t in doc.tables if t.anchor]
    return "<nav>" + "".join(f'<a href="{h}">{escape(label)}</a>' for h, label in links) + "</nav>"


def _section(section: DocSection) -> str:
    """A titled part: intro, its tables (the figures to quote), then its plots."""
    parts = [f'<section id="{escape(section.anchor)}" class="part"><h2>{escape(section.title)}'
             f"</h2>"]
    if section.intro:
        parts.append(f'<p class="intro">{escape(section.intro)}</p>')
    parts += [render_table(t) for t in section.tables]
    parts += [_figure(f) for f in section.figures]
    parts.append("</section>")
    return "\n".join(parts)


def _verdict(doc: ReportDoc) -> str:
    box = {True: "ok", False: "bad", None: ""}[doc.met]
    items = "".join(_verdict_line(line) for line in doc.verdict)
    return (f'<section id="verdict" class="verdict {box}">'
            f'<p class="headline">{escape(doc.headline)}</p><ul>{items}</ul></section>')


def _verdict_line(line: VerdictLine) -> str:
    cls, mark = _MARKS[line.ok]
    return f'<li><span class="mark {cls}">{mark}</span>{escape(line.text)}</li>'


def _facts(facts: tuple[tuple[str, str], ...]) -> str:
    rows = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in facts)
    return f'<dl class="facts">{rows}</dl>'


def _figure(figure: ReportFigure) -> str:
    data = base64.b64encode(figure.png).decode("ascii")
    return (f'<figure id="plot-{escape(figure.filename.removesuffix(".png"))}">'
            f"<h3>{escape(figure.title)}</h3>"
            f'<img src="data:image/png;base64,{data}" alt="{escape(figure.title)}">'
            f"<figcaption>{escape(figure.caption)}</figcaption></figure>")


def render_table(table: Table) -> str:
    """One table with its title and note; status cells (met / MISSED) are coloured."""
    anchor = f' id="{escape(table.anchor)}"' if table.anchor else ""
    head = "".join(
        f'<th class="{a}" scope="col">{escape(h)}</th>'
        for h, a in zip(table.header, table.align, strict=True)
    )
    body = "".join(
        "<tr>" + "".join(_cell(c, a) for c, a in zip(row, table.align, strict=True)) + "</tr>"
        for row in table.rows
    )
    note = f'<p class="note">{escape(table.note)}</p>' if table.note else ""
    if not table.rows:  # an empty grid says less than its note
        return f"<section{anchor}><h3>{escape(table.title)}</h3>{note}</section>"
    return (f"<section{anchor}><h3>{escape(table.title)}</h3>"
            f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>{note}</section>")


def _cell(text: str, align: str) -> str:
    classes = [align]
    if text == MET:
        classes.append("met")
    elif text == MISSED:
        classes.append("missed")
    return f'<td class="{" ".join(classes)}">{escape(text)}</td>'
