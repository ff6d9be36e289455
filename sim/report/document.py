"""The format-neutral report document and the number formatting every report format shares.

A report (of one run or of a comparison) is first built as a ``ReportDoc``: a verdict, a list of
facts about the scenario, figures (PNG bytes) and tables of already-formatted strings. The HTML
and Markdown writers only lay that document out, so both formats always say the same thing.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sim.errors import RunDirError

MET = "met"
"""Cell text for an objective that held; writers style exactly this text."""
MISSED = "MISSED"
"""Cell text for an objective that was missed; writers style exactly this text."""
NO_VALUE = "–"
"""Cell text for a value the run does not have (no completions, a load test without costs)."""


@dataclass(frozen=True)
class Table:
    """A titled table of formatted cells; ``align`` holds ``"l"`` or ``"r"`` per column."""

    title: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    align: tuple[str, ...]
    note: str = ""
    anchor: str = ""

    def __post_init__(self) -> None:
        width = len(self.header)
        if len(self.align) != width or any(len(row) != width for row in self.rows):
            raise ValueError(f"table {self.title!r}: every row needs {width} cells")


@dataclass(frozen=True)
class ReportFigure:
    """One plot: the PNG file name in the run directory, a title and a caption saying how to
    read it."""

    filename: str
    title: str
    caption: str
    png: bytes


@dataclass(frozen=True)
class VerdictLine:
    """One plain-words sentence of the verdict; ``ok`` is None for a neutral remark."""

    ok: bool | None
    text: str


@dataclass(frozen=True)
class DocSection:
    """A part of a report with its own heading (the cluster of a colocation run): an intro
    sentence, then its tables (the figures a planner quotes), then its plots."""

    title: str
    anchor: str
    intro: str
    tables: tuple[Table, ...]
    figures: tuple[ReportFigure, ...]


@dataclass(frozen=True)
class ReportDoc:
    """Everything a report says, in reading order; ``sections`` come after the plots and
    before the tables. ``plots_note`` stands where the plots would be when they were not
    drawn (and says how to draw them)."""

    title: str
    subtitle: str
    met: bool | None
    headline: str
    verdict: tuple[VerdictLine, ...]
    facts: tuple[tuple[str, str], ...]
    figures: tuple[ReportFigure, ...]
    tables: tuple[Table, ...]
    footer: str = ""
    sections: tuple[DocSection, ...] = ()
    plots_note: str = ""


def plural(count: int, noun: str, nouns: str = "") -> str:
    """``"1 service"``, ``"3 services"`` (``nouns`` for an irregular plural: ``"policies"``)."""
    return f"{count:,} {noun if count == 1 else nouns or noun + 's'}"


def is_missing(value: float | None) -> bool:
    """True for None and NaN (a tick without completions has no percentile)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def fmt_ms(value_ms: float | None) -> str:
    """A latency for people: ``"45 ms"``, ``"1.5 ms"``, ``"2.1 s"``; histograms are ~1% precise,
    so at most three significant digits are shown."""
    if is_missing(value_ms):
        return NO_VALUE
    assert value_ms is not None
    if value_ms >= 999.5:  # 999.7 ms reads as "1 s", not "1000 ms"
        return f"{_sig(value_ms / 1000.0, 3)} s"
    if value_ms >= 10.0:
        return f"{value_ms:.0f} ms"
    return f"{_sig(value_ms, 2)} ms"


def fmt_pct(fraction: float | None) -> str:
    """A fraction as a percentage with two significant digits: ``1.05e-05`` -> ``"0.0011%"``."""
    if is_missing(fraction):
        return NO_VALUE
    assert fraction is not None
    return f"{_sig(fraction * 100.0, 2)}%"


def fmt_count(value: float | None) -> str:
    """A count with thousands separators."""
    if is_missing(value):
        return NO_VALUE
    assert value is not None
    return f"{round(value):,}"


def fmt_num(value: float | None, digits: int = 3) -> str:
    """A measured quantity (rates, mean instance counts) with ``digits`` significant digits."""
    if is_missing(value):
        return NO_VALUE
    assert value is not None
    if abs(value) >= 10 ** digits:
        return f"{value:,.0f}"
    return _sig(value, digits)


def fmt_money(value: float | None, currency: str) -> str:
    """Money: two decimals from 1 up, three significant digits below (scaled-down runs cost
    fractions of a cent per service)."""
    if is_missing(value):
        return NO_VALUE
    assert value is not None
    text = f"{value:,.2f}" if abs(value) >= 1.0 else _sig(value, 3)
    return f"{text} {currency}"


def fmt_objective(objective: str, value: float | None) -> str:
    """A value in the unit of its objective: a rate for ``error_rate``, a latency otherwise."""
    return fmt_pct(value) if objective == "error_rate" else fmt_ms(value)


def objective_label(objective: str) -> str:
    """``p99_ms`` -> ``p99``, ``mean_ms`` -> ``mean latency``, ``error_rate`` -> ``error rate``."""
    if objective == "mean_ms":
        return "mean latency"
    if objective.endswith("_ms"):
        return objective[: -len("_ms")]
    return objective.replace("_", " ")


def _sig(value: float, digits: int) -> str:
    """Positional (never scientific) notation with ``digits`` significant digits, no trailing
    zeros."""
    if value == 0:
        return "0"
    return str(np.format_float_positional(
        value, precision=digits, unique=True, fractional=False, trim="-"
    ))


@dataclass(frozen=True)
class ColumnSeries:
    """Per-tick columns of a CSV as float arrays aligned with ``t_s`` (tick starts; NaN =
    empty cell)."""

    t_s: np.ndarray
    columns: Mapping[str, np.ndarray]

    def __getitem__(self, column: str) -> np.ndarray:
        return self.columns[column]

    def has(self, column: str) -> bool:
        return column in self.columns


def read_csv_records(
    path: Path, required: Sequence[str], missing_hint: str = "",
) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and the non-empty rows (with their 1-based line numbers) of a run
    directory's CSV file. A file that cannot be read, is empty, lacks a ``required`` column or
    has a row of the wrong length is a ``RunDirError`` naming the file (and line);
    ``missing_hint`` says what writes the file, for a file that does not exist."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.reader(handle))
    except FileNotFoundError:
        raise RunDirError(f"{path}: missing{f' ({missing_hint})' if missing_hint else ''}"
                          ) from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise RunDirError(f"{path}: cannot read ({exc})") from None
    if not rows:
        raise RunDirError(f"{path}: empty (expected a header row: {', '.join(required)})")
    header = [h.strip() for h in rows[0]]
    missing = [c for c in required if c not in header]
    if missing:
        raise RunDirError(f"{path}:1: missing column(s) {', '.join(missing)}")
    records = []
    for line_no, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != len(header):
            raise RunDirError(f"{path}:{line_no}: {len(row)} fields, expected {len(header)}")
        records.append((line_no, row))
    return header, records
