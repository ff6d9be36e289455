"""The results file of a load test, written by the Locust process that collects measurements.

In local mode the only Locust process records and collects; in distributed mode every worker
ships its ``Recorder`` records to the master with Locust's ``report_to_master`` hook (every few
seconds and once more when it stops) and the master appends them here. Either way there is one
file, ``results.jsonl`` in the results directory: a first line ``{"meta": {...}}`` describing the
replay, then one JSON record per (process, service, window) piece (see ``loadtests.recorder``).
Records are additive, so the reader sums them per (service, window).

The writer also watches generator lag as records arrive and returns, once per window, a warning
for each window where more than the tolerated share of sends were late or never sent.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

RESULTS_FILE = "results.jsonl"
MIN_SENDS_TO_WARN = 20
"""A window with fewer intended sends is not judged on its own (a single late send is noise)."""


class ResultsWriter:
    """Appends records to ``results.jsonl`` and flags windows where the generator fell behind."""

    def __init__(self, directory: Path, meta: dict[str, Any], window_s: float,
                 lag_tolerance: float) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / RESULTS_FILE
        self.window_s = window_s
        self.lag_tolerance = lag_tolerance
        self._handle: IO[str] | None = self.path.open("w", encoding="utf-8")
        self._lag: dict[tuple[str, int], list[int]] = {}
        self._warned: set[tuple[str, int]] = set()
        self.records = 0
        self._write({"meta": meta})

    def _write(self, data: dict[str, Any]) -> None:
        if self._handle is None:
            return
        self._handle.write(json.dumps(data, separators=(",", ":")) + "\n")

    def add(self, records: Iterable[dict[str, Any]]) -> list[str]:
        """Append ``records``; return warnings for windows that just crossed the lag
        tolerance."""
        touched = set()
        for record in records:
            self._write(record)
            self.records += 1
            counts = record.get("c", {})
            key = (str(record["s"]), int(record["w"]))
            lag = self._lag.setdefault(key, [0, 0])
            lag[0] += int(counts.get("intended", 0))
            lag[1] += int(counts.get("late", 0)) + int(counts.get("dropped", 0))
            touched.add(key)
        if self._handle is not None:
            self._handle.flush()
        warnings = []
        for key in sorted(touched):
            intended, behind = self._lag[key]
            if (key not in self._warned and intended >= MIN_SENDS_TO_WARN
                    and behind > self.lag_tolerance * intended):
                self._warned.add(key)
                service, window = key
                start = window * self.window_s
                warnings.append(
                    f"GENERATOR BEHIND: {service} {start:g}-{start + self.window_s:g} s: "
                    f"{behind} of {intended} sends late or never sent "
                    f"({100.0 * behind / intended:.1f}%); latencies of this window include the "
                    f"generator's own delay. Add --workers or raise --max-users.")
        return warnings

    @property
    def behind_windows(self) -> int:
        """Windows flagged so far."""
        return len(self._warned)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def iter_results(path: Path) -> Iterator[dict[str, Any]]:
    """The lines of a results file as dicts, in order (the meta line first); a torn last line
    (a writer killed mid-write) is skipped. Streams: memory does not grow with the file."""
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue
