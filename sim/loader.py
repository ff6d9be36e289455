"""Read scenario YAML into a frozen ``Scenario`` once, or explain every problem in one line.

Each problem names the file, the field path (``services.order.instances.min``), the line where
the YAML holds it, and what was expected. Files a scenario refers to (trace CSVs, empirical
service-time samples) are read here too, so that a scenario that loads is a scenario that runs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from sim.errors import Problem, ScenarioError
from sim.scenario import Scenario
from sim.units import parse_clock_s

PathKey = tuple[str | int, ...]


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Validate the scenario file at ``path``; raise ``ScenarioError`` listing every problem."""
    file = str(path)
    try:
        text = Path(file).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError([Problem(file, "", "file not found")]) from None
    except IsADirectoryError:
        raise ScenarioError([Problem(file, "", "is a directory, expected a YAML file")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError([Problem(file, "", f"cannot read file: {exc}")]) from None
    return parse_scenario(text, file, base_dir=str(Path(file).resolve().parent))


def parse_scenario(text: str, file: str = "<string>", base_dir: str = ".") -> Scenario:
    """Validate scenario YAML ``text``; ``file`` is only used in messages."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ScenarioError([Problem(file, "", f"YAML syntax error: {what}", line)]) from None
    if data is None:
        raise ScenarioError([Problem(file, "", "file is empty, expected a scenario mapping")])
    if not isinstance(data, dict):
        raise ScenarioError(
            [Problem(file, "", f"expected a mapping of scenario keys, got {type(data).__name__}")]
        )
    lines = _line_map(node)
    context = {"start_clock_s": _start_clock(data)}
    try:
        scenario = Scenario.model_validate(data, context=context)
    except ValidationError as exc:
        raise ScenarioError(_problems(exc, data, lines, file)) from None
    scenario._base_dir = base_dir
    scenario._source = file
    _check_referenced_files(scenario, file, lines)
    return scenario


def _start_clock(data: dict[str, Any]) -> float | None:
    value = data.get("start_clock")
    if isinstance(value, str):
        try:
            return parse_clock_s(value)
        except ValueError:
            return None  # reported by the start_clock field's own validation
    return None


def _check_referenced_files(scenario: Scenario, file: str, lines: dict[PathKey, int]) -> None:
    # Imported here: traffic and service-time modules depend on numpy, the schema does not.
    from sim.servicetime import sampler_for
    from sim.traffic import TrafficModel

    problems: list[Problem] = []
    try:
        TrafficModel(scenario)
    except ScenarioError as exc:
        problems += [_with_file(p, file, lines) for p in exc.problems]
    for name, service in scenario.services.items():
        try:
            sampler_for(service.service_time, scenario.base_dir)
        except ValueError as exc:
            key: PathKey = ("services", name, "service_time", "csv")
            problems.append(Problem(file, _dotted(key), str(exc), _nearest_line(key, lines)))
    if problems:
        raise ScenarioError(problems)


def _with_file(problem: Problem, file: str, lines: dict[PathKey, int]) -> Problem:
    key = tuple(int(p) if p.isdigit() else p for p in problem.path.split(".") if p)
    return Problem(file, problem.path, problem.message, _nearest_line(key, lines))


def _problems(
    exc: ValidationError, data: dict[str, Any], lines: dict[PathKey, int], file: str
) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[tuple[str, str]] = set()
    for error in exc.errors(include_url=False):
        ctx = error.get("ctx") or {}
        loc = _data_path(tuple(error["loc"]), data)
        if error["type"] == "unknown_key":
            loc = (*loc, ctx["key"])
        elif error["type"] == "unknown_service":
            loc = tuple(ctx["path"])
        message = _message(error)
        dotted = _dotted(loc)
        if (dotted, message) in seen:
            continue
        seen.add((dotted, message))
        problems.append(Problem(file, dotted, message, _nearest_line(loc, lines)))
    return problems


def _message(error: Any) -> str:
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    if error["type"] == "missing":
        return "required field is missing"
    if error["type"] == "union_tag_invalid":
        return f"unknown kind {error.get('input', '')!r}; {message}"
    if error["type"] not in ("unknown_key", "unknown_service") and "input" in error:
        shown = repr(error["input"])
        if len(shown) <= 40 and not isinstance(error["input"], dict | list):
            message = f"{message} (got {shown})"
    return message


def _data_path(loc: tuple[Any, ...], data: Any) -> PathKey:
    """Drop the parts of a pydantic location that are not in the YAML (union tags, etc.)."""
    path: list[str | int] = []
    current = data
    for part in loc:
        in_dict = isinstance(current, dict) and part in current
        in_list = isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current)
        if in_dict or in_list:
            path.append(part)
            current = current[part]
        elif isinstance(current, dict) and part == current.get("kind"):
            continue  # the discriminator tag of a tagged union
        elif isinstance(current, dict) and isinstance(part, str) and _is_field_name(part):
            path.append(part)  # a missing field: keep its name, nothing below it
            current = None
        # else: a tag pydantic adds (discriminator value, union member); not part of the file
    return tuple(path)


def _is_field_name(part: str) -> bool:
    return part.isidentifier() and not part[0].isupper() and part not in ("int", "float", "str")


def _dotted(loc: PathKey) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _nearest_line(loc: PathKey, lines: dict[PathKey, int]) -> int | None:
    for end in range(len(loc), -1, -1):
        line = lines.get(tuple(loc[:end]))
        if line is not None:
            return line
    return None


def _line_map(node: yaml.Node | None) -> dict[PathKey, int]:
    """1-based line of every mapping key and sequence item, by its path."""
    lines: dict[PathKey, int] = {}

    def walk(current: yaml.Node, path: PathKey) -> None:
        if isinstance(current, yaml.MappingNode):
            for key_node, value_node in current.value:
                child = (*path, key_node.value)
                lines[child] = key_node.start_mark.line + 1
                walk(value_node, child)
        elif isinstance(current, yaml.SequenceNode):
            for i, item in enumerate(current.value):
                lines[(*path, i)] = item.start_mark.line + 1
                walk(item, (*path, i))

    if node is not None:
        lines[()] = node.start_mark.line + 1
        walk(node, ())
    return lines
