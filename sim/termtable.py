"""Terminal tables that fit the width they are printed at and never cut a value or a name.

Every command's table goes through ``render``: a ``TextTable`` is a title, columns and rows of
already-formatted cells. At a given width (a terminal's, ``COLUMNS``, or 120 when piped):

1. the whole table, when its columns fit (headers wrap at spaces; cells never wrap);
2. else the table in parts: the *key* columns (the row's identity: variant, service) repeated
   in each part, the other columns spread over as few parts as fit, in their order;
3. else (not even the key columns and one other fit) one block per row: a heading made of the
   key cells, then one ``header  value`` line per column, values wrapping onto the next line
   rather than being cut.

Nothing is ever ellipsized: each column is at least as wide as its widest cell and its
longest header word. ``TextTable.to_json`` is the same table for machines (``--json``).
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from rich import box
from rich.cells import cell_len
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

Align = Literal["l", "r"]


class TableLike(Protocol):
    """What ``TextTable.from_table`` reads: a titled table of formatted cells."""

    @property
    def title(self) -> str: ...
    @property
    def header(self) -> Sequence[str]: ...
    @property
    def align(self) -> Sequence[str]: ...
    @property
    def rows(self) -> Sequence[Sequence[str]]: ...
    @property
    def note(self) -> str: ...

CellStyle = Callable[[str], str | None]

PIPED_WIDTH = 120
"""Width used when output is not a terminal and ``COLUMNS`` is not set (CI logs)."""


def verdict_style(cell: str) -> str | None:
    """The default cell styling: ``met`` green, ``MISSED ...`` bold red, ``not judged`` dim."""
    if cell == "met":
        return "green"
    if cell.startswith("MISSED"):
        return "bold red"
    if cell == "not judged":
        return "yellow"
    return None


@dataclass(frozen=True)
class Column:
    """One column: its header, alignment, and whether it identifies the row (``key``)."""

    header: str
    align: Align = "r"
    key: bool = False


@dataclass(frozen=True)
class TextTable:
    """A titled table of formatted cells, printable at any width.

    ``blank_repeats`` leaves a key cell empty when it repeats the row above (a variant over its
    services); ``note`` is printed under the table.
    """

    title: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[str, ...], ...]
    note: str = ""
    blank_repeats: bool = False
    cell_style: CellStyle = field(default=verdict_style, compare=False)

    def __post_init__(self) -> None:
        width = len(self.columns)
        if any(len(row) != width for row in self.rows):
            raise ValueError(f"table {self.title!r}: every row needs {width} cells")

    @classmethod
    def of(cls, title: str, header: Sequence[str], align: Sequence[str],
           rows: Sequence[Sequence[str]], keys: int = 1, note: str = "") -> TextTable:
        """A table from parallel header/align lists; the first ``keys`` columns are keys."""
        columns = tuple(Column(h, "r" if a == "r" else "l", i < keys)
                        for i, (h, a) in enumerate(zip(header, align, strict=True)))
        return cls(title, columns, tuple(tuple(r) for r in rows), note)

    @classmethod
    def from_table(cls, table: TableLike, keys: int = 1) -> TextTable:
        """A report table (``sim.report.Table`` or alike) for the terminal."""
        return cls.of(table.title, table.header, table.align, table.rows, keys, table.note)

    def to_json(self) -> dict[str, Any]:
        """``{"title", "columns", "rows": [{header: cell}]}`` (cells as printed)."""
        headers = [c.header for c in self.columns]
        return {"title": self.title, "columns": headers,
                "rows": [dict(zip(headers, row, strict=True)) for row in self.rows],
                **({"note": self.note} if self.note else {})}


def _longest_word(text: str) -> int:
    return max((cell_len(word) for word in text.split()), default=0)


def column_widths(table: TextTable, wrap_headers: bool = True) -> list[int]:
    """Each column's width in terminal cells (a CJK character takes two): its widest cell, and
    at least its longest header word (its whole header when not ``wrap_headers``)."""
    return [max([_longest_word(c.header) if wrap_headers else cell_len(c.header),
                 *(cell_len(row[i]) for row in table.rows)])
            for i, c in enumerate(table.columns)]


COLUMN_GAP = 2
"""Spaces between two columns (no vertical rules: CI logs and narrow terminals keep room)."""


def table_width(widths: Sequence[int]) -> int:
    """Printed width of a table with these column widths."""
    return sum(widths) + COLUMN_GAP * max(len(widths) - 1, 0)


def layout(table: TextTable, width: int) -> tuple[list[list[int]], list[int]] | None:
    """The column indexes of each part of the table at ``width``, and the column widths; None
    when even one part with the key columns and one other column does not fit (then rows are
    stacked). Headers stay on one line when the whole table fits that way."""
    every = list(range(len(table.columns)))
    for wrap in (False, True):
        widths = column_widths(table, wrap_headers=wrap)
        if table_width(widths) <= width:
            return [every], widths
    keys = [i for i in every if table.columns[i].key]
    others = [i for i in every if not table.columns[i].key]
    parts: list[list[int]] = []
    current: list[int] = []
    for i in others:
        if table_width([widths[k] for k in keys + current + [i]]) <= width:
            current.append(i)
            continue
        if not current:
            return None
        parts.append(keys + current)
        current = [i]
        if table_width([widths[k] for k in keys + current]) > width:
            return None
    if current:
        parts.append(keys + current)
    return parts, widths


def render(table: TextTable, width: int) -> RenderableType:
    """``table`` laid out to fit ``width`` columns (see the module docstring)."""
    title = Text(table.title, style="italic")
    fitted = layout(table, width)
    body: list[RenderableType] = [title]
    if fitted is None:
        body += _stacked(table, width)
    else:
        parts, widths = fitted
        for n, indexes in enumerate(parts):
            if n:
                body.append(Text(""))
            body.append(_boxed(table, indexes, widths))
    if table.note:
        body.append(Text(table.note, style="dim"))
    return Group(*body)


def _shown_rows(table: TextTable) -> list[tuple[str, ...]]:
    """Rows as shown: a repeated leading key cell left blank when ``blank_repeats``."""
    shown, last = [], None
    for row in table.rows:
        cells = row
        if table.blank_repeats and row[0] == last:
            cells = ("", *row[1:])
        last = row[0]
        shown.append(cells)
    return shown


def _cell(table: TextTable, text: str) -> Text:
    return Text(text, style=table.cell_style(text) or "")


def _boxed(table: TextTable, indexes: list[int], widths: list[int]) -> Table:
    out = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1),
                collapse_padding=True, expand=False)
    for i in indexes:
        column = table.columns[i]
        header = "\n".join(textwrap.wrap(column.header, widths[i], break_long_words=False))
        out.add_column(header, justify="right" if column.align == "r" else "left",
                       no_wrap=True, min_width=widths[i], max_width=widths[i],
                       overflow="fold", header_style="bold")
    for cells in _shown_rows(table):
        out.add_row(*(_cell(table, cells[i]) for i in indexes))
    return out


def _stacked(table: TextTable, width: int) -> list[RenderableType]:
    """One block per row: the key cells as a heading, then ``header  value`` lines."""
    keys = [i for i, c in enumerate(table.columns) if c.key] or [0]
    label_width = max((cell_len(c.header) for i, c in enumerate(table.columns) if i not in keys),
                      default=0)
    label_width = min(label_width, max(8, width // 3))
    blocks: list[RenderableType] = []
    for row in table.rows:
        heading = " · ".join(row[i] for i in keys)
        blocks.append(Text(heading, style="bold"))
        for i, column in enumerate(table.columns):
            if i in keys:
                continue
            label = column.header
            lines = [f"  {label:<{label_width}}  "]
            if cell_len(lines[0]) + cell_len(row[i]) > width:
                lines = [f"  {label}", "    "]
            text = Text("\n".join(lines))
            text.append(row[i], style=table.cell_style(row[i]) or "")
            text.overflow = "fold"
            blocks.append(text)
    return blocks
