"""Reading the files a scenario refers to (trace CSVs, service-time samples, batch CSVs) within
documented bounds.

A scenario may name any path; ``/dev/zero``, a FIFO or a multi-gigabyte log would otherwise
hang or exhaust memory while peaksim reads it, and random bytes would raise a decoding error.
``read_csv_rows`` accepts only regular files up to ``MAX_INPUT_BYTES``, decodes them as UTF-8,
and stops at ``MAX_INPUT_ROWS`` rows; every refusal is a ``ValueError`` whose message names the
file and the limit (the loader adds the scenario file, line and field).
"""

from __future__ import annotations

import csv
import io
import os
import stat
from pathlib import Path

MAX_INPUT_BYTES = 100_000_000
"""A file a scenario refers to is at most 100 MB."""
MAX_INPUT_ROWS = 2_000_000
"""... and has at most 2,000,000 rows."""


def read_csv_rows(path: Path, what: str, show_path: bool = True) -> list[list[str]]:
    """The rows of the CSV file at ``path``. Messages read ``cannot read <what> '<path>':
    <reason>`` (without the path when the caller names the file itself)."""
    where = f"{what} {str(path)!r}" if show_path else what

    def refuse(reason: str) -> ValueError:
        return ValueError(f"cannot read {where}: {reason}")

    try:
        info = os.stat(path)
    except OSError as exc:
        raise refuse(str(exc.strerror)) from None
    if stat.S_ISDIR(info.st_mode):
        raise refuse("it is a directory, expected a CSV file")
    if not stat.S_ISREG(info.st_mode):
        raise refuse("not a regular file (a device, pipe or socket), expected a CSV file")
    if info.st_size > MAX_INPUT_BYTES:
        raise refuse(f"{info.st_size:,} bytes, at most {MAX_INPUT_BYTES:,} are read")
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_INPUT_BYTES + 1)
    except OSError as exc:
        raise refuse(str(exc.strerror)) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise refuse(f"not UTF-8 text (byte {exc.start:,} cannot be decoded), expected a CSV "
                     f"file") from None
    if "\x00" in text:
        raise refuse("it holds NUL bytes, expected a CSV text file")
    rows: list[list[str]] = []
    try:
        for row in csv.reader(io.StringIO(text, newline="")):
            rows.append(row)
            if len(rows) > MAX_INPUT_ROWS:
                raise refuse(f"more than {MAX_INPUT_ROWS:,} rows")
    except csv.Error as exc:
        raise refuse(f"row {len(rows) + 1}: {exc}") from None
    return rows
