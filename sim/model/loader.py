"""Read scenario YAML into a frozen ``Scenario`` once, or explain every problem in one line.

Each problem names the file, the field path (``services.order.instances.min``), the line where
the YAML holds it, and what was expected. Files a scenario refers to (trace CSVs, empirical
service-time samples) are read here too, so that a scenario that loads is a scenario that runs.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sim.errors import Problem, ScenarioError
from sim.model.scenario import Scenario
from sim.model.traffic_config import TRAFFIC_KINDS
from sim.model.yamldoc import PathKey, dotted, read_yaml
from sim.model.yamlguard import check_size
from sim.schema import suggest


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Validate the scenario file at ``path``; raise ``ScenarioError`` listing every problem."""
    file = str(path)
    return parse_scenario(_read_text(file), file, base_dir=str(Path(file).resolve().parent))


def _read_text(file: str) -> str:
    try:
        info = os.stat(file)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(file)
        if not stat.S_ISREG(info.st_mode):
            raise ScenarioError([Problem(file, "", "is not a regular file (a device, pipe or "
                                                   "socket), expected a YAML file")])
        check_size(info.st_size, file)
        return Path(file).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError([Problem(file, "", "file not found")]) from None
    except IsADirectoryError:
        raise ScenarioError([Problem(file, "", "is a directory, expected a YAML file")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError([Problem(file, "", f"cannot read file: {exc}")]) from None


def parse_scenario(text: str, file: str = "<string>", base_dir: str = ".") -> Scenario:
    """Validate scenario YAML ``text``; ``file`` is only used in messages."""
    data, lines, duplicates = read_yaml(text, file)
    return scenario_from_data(data, file, base_dir, lines, duplicates)


def read_scenario_data(path: str | os.PathLike[str]) -> tuple[Any, dict[PathKey, int]]:
    """The scenario file's YAML as plain data and the line of every key (for tools that change
    values before validating them, like ``peaksim sweep``)."""
    file = str(path)
    data, lines, duplicates = read_yaml(_read_text(file), file)
    if duplicates:
        raise ScenarioError(duplicates)
    return data, lines


def scenario_from_data(
    data: Any, file: str, base_dir: str, lines: dict[PathKey, int] | None = None,
    duplicates: list[Problem] | None = None,
) -> Scenario:
    """Validate plain scenario data as if read from ``file`` (lines for messages)."""
    lines = lines or {}
    duplicates = duplicates or []
    if data is None:
        raise ScenarioError([Problem(file, "", "file is empty, expected a scenario mapping")])
    if not isinstance(data, dict):
        raise ScenarioError([Problem(
            file, "", f"expected a mapping of scenario keys (name: ..., services: ...), "
            f"got {_shown(data)}", lines.get(()))])
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(_sorted(duplicates + _problems(exc, data, lines, file))) from None
    if duplicates:
        raise ScenarioError(duplicates)
    scenario._base_dir = base_dir
    scenario._source = file
    scenario._lines = lines
    _check_referenced_files(scenario, file, lines)
    return scenario


def _check_referenced_files(scenario: Scenario, file: str, lines: dict[PathKey, int]) -> None:
    # Imported here: traffic and service-time modules depend on numpy, the schema does not.
    from sim.model.requests_config import check_requests
    from sim.model.servicetime import sampler_for
    from sim.model.traffic import TrafficModel

    problems: list[Problem] = []
    try:
        TrafficModel(scenario)
    except ScenarioError as exc:
        problems += [_with_file(p, file, lines) for p in exc.problems]
    if scenario.cluster is not None:
        problems += _cluster_problems(scenario, file, lines)
    if scenario.autoscaling is not None:
        from sim.model.autoscaling import check_autoscaling

        for key, message in check_autoscaling(scenario.autoscaling, scenario.services):
            problems.append(Problem(file, dotted(key), message, _nearest_line(key, lines)))
        problems += _manifest_problems(scenario, file, lines)
    for key, message in check_requests(scenario.loadtest, scenario.services, scenario.base_dir):
        where: PathKey = ("loadtest", *key)
        problems.append(Problem(file, dotted(where), message, _nearest_line(where, lines)))
    for name, service in scenario.services.items():
        try:
            sampler_for(service.service_time, scenario.base_dir)
        except ValueError as exc:
            key: PathKey = ("services", name, "service_time", "csv")
            problems.append(Problem(file, dotted(key), str(exc), _nearest_line(key, lines)))
    if problems:
        raise ScenarioError(problems)


def _manifest_problems(scenario: Scenario, file: str, lines: dict[PathKey, int]
                       ) -> list[Problem]:
    """Problems of the manifests that ``kubernetes`` variants read: a manifest that is not a
    readable file is named at its field of the scenario; problems inside one, by its file."""
    from sim.policies.autoscaling import KubernetesParams, read_scalers

    assert scenario.autoscaling is not None
    problems: list[Problem] = []
    for variant, params in scenario.autoscaling.variants.items():
        if isinstance(params, KubernetesParams):
            missing = False
            for i, manifest in enumerate(params.manifests):
                if not (Path(scenario.base_dir) / manifest).is_file():
                    key: PathKey = ("autoscaling", "variants", variant, "manifests", i)
                    problems.append(Problem(file, dotted(key), f"expected a manifest file, "
                                            f"found none at {manifest}", _nearest_line(key, lines)))
                    missing = True
            if missing:
                continue
            try:
                read_scalers(params.manifests, scenario.base_dir, scenario.services,
                             params.services, params.metric_map(), scenario.start_time,
                             dated=scenario.start_date is not None)
            except ScenarioError as exc:
                problems += exc.problems
    return problems


def _cluster_problems(scenario: Scenario, file: str, lines: dict[PathKey, int]) -> list[Problem]:
    import numpy as np

    from sim.model.batch import load_workload
    from sim.model.cluster_config import check_cluster

    assert scenario.cluster is not None
    problems = [Problem(file, dotted(key), message, _nearest_line(key, lines))
                for key, message in check_cluster(scenario.cluster, scenario.services)]
    if scenario.cluster.batch is not None:
        try:  # a bad batch CSV must fail now, not in the middle of a run
            load_workload(scenario.cluster.batch, scenario.base_dir, scenario.duration_s,
                          np.random.default_rng(0))
        except ScenarioError as exc:
            problems += [_with_file(p, file, lines) for p in exc.problems]
    return problems


def _with_file(problem: Problem, file: str, lines: dict[PathKey, int]) -> Problem:
    # The inverse of _dotted: "traffic.keyframes[2].rps" -> ("traffic", "keyframes", 2, "rps").
    parts = re.findall(r"\[(\d+)\]|([^.\[\]]+)", problem.path)
    key = tuple(int(index) if index else name for index, name in parts)
    return Problem(file, problem.path, problem.message, _nearest_line(key, lines))


def _problems(
    exc: ValidationError, data: dict[str, Any], lines: dict[PathKey, int], file: str
) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[tuple[str, str]] = set()
    errors = exc.errors(include_url=False)
    located = [tuple(e["loc"]) for e in errors]
    for error in errors:
        raw = tuple(error["loc"])
        if error["type"] == "too_short" and any(
                len(other) > len(raw) and other[:len(raw)] == raw for other in located):
            continue  # entries were refused (each reported): not a list that is too short
        loc = _data_path(raw, data)
        if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
            loc = (*loc, str((error.get("ctx") or {}).get("discriminator", "kind")).strip("'"))
        message = _message(error)
        where = dotted(loc)
        if (where, message) in seen:
            continue
        seen.add((where, message))
        problems.append(Problem(file, where, message, _nearest_line(loc, lines)))
    return problems


def _sorted(problems: list[Problem]) -> list[Problem]:
    """Problems in file order (those without a line first), so the list reads top-down."""
    return sorted(problems, key=lambda p: -1 if p.line is None else p.line)


_EXPECTED = {
    "int_type": "expected a whole number",
    "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number",
    "int_parsing_size": "expected a smaller whole number",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "finite_number": "expected a finite number",
    "string_type": "expected text",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "dict_type": "expected a mapping (key: value)",
    "model_type": "expected a mapping (key: value)",
    "model_attributes_type": "expected a mapping (key: value)",
    "list_type": "expected a list",
    "tuple_type": "expected a list",
    "set_type": "expected a list",
}
_BOUNDS = {
    "greater_than": ("gt", ">"),
    "greater_than_equal": ("ge", ">="),
    "less_than": ("lt", "<"),
    "less_than_equal": ("le", "<="),
}


def _message(error: Any) -> str:
    """What was expected, in words, from one pydantic error."""
    kind = error["type"]
    ctx = error.get("ctx") or {}
    value = error.get("input")
    if kind in ("field_error", "unknown_key"):
        return str(error["msg"])
    if kind == "missing" and error["loc"] == ("duration_s",):
        return "required field is missing: give duration (such as '2h') or duration_s (seconds)"
    if kind == "missing":
        return "required field is missing"
    if kind == "union_tag_not_found":
        return f"required field is missing; expected one of: {', '.join(TRAFFIC_KINDS)}"
    if kind in ("union_tag_invalid", "literal_error"):
        options = re.findall(r"'([^']*)'", str(ctx.get("expected_tags") or ctx.get("expected")))
        what = "kind" if kind == "union_tag_invalid" else "value"
        given = ctx.get("tag", value)
        if isinstance(given, str):
            hint = suggest(given, options)
            return f"unknown {what} '{given}'{hint}; expected one of: {', '.join(options)}"
        return f"expected one of: {', '.join(options)}, got {_shown(given)}"
    if kind in _EXPECTED:
        return f"{_EXPECTED[kind]}, got {_shown(value)}"
    if kind in _BOUNDS:
        key, sign = _BOUNDS[kind]
        bound = ctx.get(key)
        shown_bound = f"{bound:g}" if isinstance(bound, float) else str(bound)
        return f"expected a value {sign} {shown_bound}, got {_shown(value)}"
    if kind in ("string_too_short", "string_too_long"):
        bound = ctx.get("min_length") if kind == "string_too_short" else ctx.get("max_length")
        many = "at least" if kind == "string_too_short" else "at most"
        length = len(value) if isinstance(value, str) else "?"
        return f"expected text of {many} {bound} characters, got {length}"
    if kind in ("too_short", "too_long"):
        bound = ctx.get("min_length") if kind == "too_short" else ctx.get("max_length")
        many = "at least" if kind == "too_short" else "at most"
        entries = "entry" if bound == 1 else "entries"
        return f"expected {many} {bound} {entries}, got {ctx.get('actual_length')}"
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    scalar = not isinstance(value, dict | list | tuple)
    if "input" in error and scalar and "got " not in message and repr(value) not in message:
        message = f"{message}, got {_shown(value)}"
    return message


def _shown(value: Any) -> str:
    """A value as the user wrote it, shortened; containers by their kind."""
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "nothing (null)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    shown = repr(value)
    return shown if len(shown) <= 40 else shown[:37] + "..."


def _data_path(loc: tuple[Any, ...], data: Any) -> PathKey:
    """The path in the file of a pydantic error location.

    Drops what pydantic adds that the file does not hold (the tag of a tagged union, union
    members, ``[key]`` markers) and maps ``duration_s`` back to ``duration`` where the file
    used that spelling.
    """
    path: list[str | int] = []
    current = data
    tag_skipped = False
    for i, part in enumerate(loc):
        if isinstance(current, dict):
            # The discriminator value pydantic puts in the location. Only the `keyframes` kind
            # has a field of the same name, a list: followed by an index, it is the field.
            is_field = part in current and i + 1 < len(loc) and isinstance(loc[i + 1], int)
            # The tag may be the value of any discriminator key (``kind``, a policy's
            # ``name``): a string value of this mapping that is not one of its keys.
            tags = {v for v in current.values() if isinstance(v, str)}
            is_tag = part == current.get("kind") or (part in tags and part not in current)
            if not tag_skipped and is_tag and not is_field:
                tag_skipped = True
                continue
            if part == "duration_s" and part not in current and "duration" in current:
                part = "duration"
            key = part if part in current else str(part)
            if key in current:
                path.append(str(key))
                current, tag_skipped = current[key], False
                continue
            if part == "[key]":
                continue
        if isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            path.append(part)
            current, tag_skipped = current[part], False
        elif isinstance(part, str) and _is_field_name(part):
            path.append(part)  # a missing field: keep its name, nothing below it
            current = None
        # else: a tag pydantic adds (union member, validator name); not part of the file
    return tuple(path)


def _is_field_name(part: str) -> bool:
    return part.isidentifier() and not part[0].isupper() and part not in ("int", "float", "str")



def _nearest_line(loc: PathKey, lines: dict[PathKey, int]) -> int | None:
    for end in range(len(loc), -1, -1):
        line = lines.get(tuple(loc[:end]))
        if line is not None:
            return line
    return None
