"""``peaksim sweep``: a grid over scenario values, each point run (with replications).

``--set services.order.workers=6,8,10`` names a value of the scenario file by its dotted path
(mapping keys and list indexes: ``autoscaling.variants.scheduled.schedule.0.at``) and the
values it takes, read as the scenario file would read them (``23:30`` stays a clock time).
Several ``--set`` make the grid of every combination, in the order given. Every point is
validated like the file before anything runs (a bad value is a file/field error, exit 2).
Every point runs under the same seeds (common random numbers): points differ by their values,
not by their luck.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.errors import PeaksimError, Problem, ScenarioError
from sim.model import Scenario, read_scenario_data, scenario_from_data, yaml_value

MAX_POINTS = 10_000


@dataclass(frozen=True)
class Setting:
    """One ``--set``: a dotted path of the scenario and the values it takes."""

    path: str
    keys: tuple[str, ...]
    values: tuple[Any, ...]
    texts: tuple[str, ...]


@dataclass(frozen=True)
class Point:
    """One point of the grid: its values (by path) and the validated scenario."""

    index: int
    values: dict[str, str]
    scenario: Scenario

    @property
    def label(self) -> str:
        return ", ".join(f"{path}={text}" for path, text in self.values.items())


def parse_setting(option: str) -> Setting:
    """``dotted.path=v1,v2,...`` -> ``Setting``; commas inside [...] or {...} do not split."""
    path, sep, rest = option.partition("=")
    path = path.strip()
    keys = tuple(path.split("."))
    if not sep or not path or any(not k for k in keys) or not rest.strip():
        raise PeaksimError(f"--set {option!r}: expected dotted.path=value1,value2,... "
                           f"(e.g. services.order.workers=6,8,10)")
    texts = tuple(t.strip() for t in _split(rest))
    if any(not t for t in texts):
        raise PeaksimError(f"--set {option!r}: an empty value between commas")
    if len(set(texts)) != len(texts):
        raise PeaksimError(f"--set {option!r}: a value is given twice")
    try:
        values = tuple(yaml_value(t) for t in texts)
    except Exception as exc:  # noqa: BLE001 - any YAML error is a bad value
        raise PeaksimError(f"--set {option!r}: cannot read a value as YAML: {exc}") from None
    return Setting(path, keys, values, texts)


def _split(text: str) -> list[str]:
    parts, depth, current = [], 0, []
    for char in text:
        if char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def grid(file: Path, settings: Sequence[Setting]) -> list[Point]:
    """Every combination of the settings' values, each validated like the scenario file.

    Raises ``PeaksimError`` for a path the file does not have, ``ScenarioError`` (file, field,
    what was expected) for a value the schema refuses; nothing is run before all points pass.
    """
    if not settings:
        raise PeaksimError("give at least one --set dotted.path=value1,value2,...")
    paths = [s.path for s in settings]
    if len(set(paths)) != len(paths):
        raise PeaksimError(f"each path may be set once, got {', '.join(paths)}")
    size = 1
    for s in settings:
        size *= len(s.values)
    if size > MAX_POINTS:
        raise PeaksimError(f"the grid has {size:,} points; at most {MAX_POINTS:,}")
    data, lines = read_scenario_data(file)
    base_dir = str(Path(file).resolve().parent)
    points = []
    for index, combo in enumerate(itertools.product(*(range(len(s.values)) for s in settings))):
        changed = copy.deepcopy(data)
        for setting, i in zip(settings, combo, strict=True):
            _assign(changed, setting, setting.values[i], str(file), lines)
        values = {s.path: s.texts[i] for s, i in zip(settings, combo, strict=True)}
        where = f"{file} (--set {', '.join(f'{p}={t}' for p, t in values.items())})"
        points.append(Point(index, values, scenario_from_data(changed, where, base_dir, lines)))
    return points


def _assign(data: Any, setting: Setting, value: Any, file: str,
            lines: dict[tuple[str | int, ...], int]) -> None:
    """Set ``setting.path`` in ``data`` to ``value``; the parent must exist in the file."""
    node = data
    walked: list[str | int] = []
    for depth, key in enumerate(setting.keys):
        last = depth == len(setting.keys) - 1
        where = ".".join(str(k) for k in walked) or "the top level"
        if isinstance(node, list):
            if not key.isdigit() or int(key) >= len(node):
                raise ScenarioError([Problem(
                    file, setting.path, f"{where} is a list of {len(node)} items: expected an "
                    f"index 0..{len(node) - 1}, got {key!r}", lines.get(tuple(walked)))])
            index: str | int = int(key)
        elif isinstance(node, dict):
            if key not in node and not last:
                known = ", ".join(str(k) for k in node) or "nothing"
                raise ScenarioError([Problem(
                    file, setting.path, f"{where} has no key {key!r} (it has {known})",
                    lines.get(tuple(walked)))])
            index = key
        else:
            raise ScenarioError([Problem(
                file, setting.path, f"{where} is a value ({node!r}), not a mapping or list",
                lines.get(tuple(walked)))])
        if last:
            node[index] = copy.deepcopy(value)
        else:
            node = node[index]
            walked.append(index)
