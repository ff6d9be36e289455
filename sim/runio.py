"""Run directories and atomic file writes.

A run directory is ``reports/<scenario>/<run-id>/`` with a run-id that sorts by time
(``20261111T000026Z-1f3a``); ``reports/<scenario>/latest`` points to the newest. Every file is
written to a temporary name in the same directory and renamed into place, so a reader (or a
Ctrl-C) never sees half a file.
"""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
import tempfile
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DEFAULT_REPORTS_DIR = Path("reports")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that the file is either the old one or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        # mkstemp creates 0600; reports are meant to be read and served like any file
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def atomic_write_text(path: Path, text: str) -> None:
    """``atomic_write_bytes`` for UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, data: Any) -> None:
    """Pretty JSON (sorted keys are not used: the writer's key order is the reader's)."""
    atomic_write_text(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


def atomic_write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """CSV with a header row; floats are written with up to 6 significant digits."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([f"{v:.6g}" if isinstance(v, float) else v for v in row])
    atomic_write_text(path, buffer.getvalue())


def new_run_id(now: datetime | None = None) -> str:
    """A run-id that sorts by creation time, with a random suffix against collisions."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S")
    return f"{stamp}Z-{secrets.token_hex(2)}"


def new_run_dir(scenario_name: str, out: Path | None = None, kind: str = "",
                point: bool = True) -> Path:
    """Create the run directory for a run of ``scenario_name``.

    With ``out`` the files go exactly there; otherwise into
    ``reports/<scenario>/<run-id>[-kind]/`` and ``reports/<scenario>/latest`` is pointed at it
    (with ``point=False`` the caller does that, with ``point_latest``, once its report is
    written).
    """
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        return out
    base = DEFAULT_REPORTS_DIR / scenario_name
    run_dir = base / (new_run_id() + (f"-{kind}" if kind else ""))
    run_dir.mkdir(parents=True, exist_ok=False)
    if point:
        point_latest(base, run_dir)
    return run_dir


def point_latest(base: Path, run_dir: Path) -> None:
    """Make ``base/latest`` a relative symlink to ``run_dir`` (replaced atomically)."""
    link = base / "latest"
    tmp = base / f".latest.{secrets.token_hex(3)}"
    try:
        tmp.symlink_to(run_dir.name, target_is_directory=True)
        os.replace(tmp, link)
    except OSError:
        tmp.unlink(missing_ok=True)  # a file system without symlinks: no latest pointer
