"""Typed domain errors. Only ``sim/cli.py`` turns them into exit codes and messages."""

from __future__ import annotations

from dataclasses import dataclass


class PeaksimError(Exception):
    """Base class for every error peaksim reports to a user (exit code 2)."""


@dataclass(frozen=True)
class Problem:
    """One problem in one input file: where it is and what was expected."""

    file: str
    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        field = f" {self.path}:" if self.path else ""
        return _one_line(f"{where}:{field} {self.message}")


def _one_line(text: str) -> str:
    """Control characters (a newline in a quoted value, say) escaped: a problem is one line."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii")
                   for ch in text)


class ScenarioError(PeaksimError):
    """A scenario (or a file it refers to) is invalid; carries one ``Problem`` per issue."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class RunDirError(PeaksimError):
    """A run directory is missing files or holds files peaksim cannot read."""


class LoadTestError(PeaksimError):
    """A load test could not run as asked (unreachable host, generator failure)."""


class CalibrationError(PeaksimError):
    """Calibration cannot proceed (no usable measurements, a bad input file or step plan)."""
