"""One scenario YAML document read into data, the line of every key and its duplicate keys,
within the limits of ``sim.model.yamlguard``.

YAML 1.1 as PyYAML reads it, with two changes: clock times such as ``23:00`` stay strings (not
base-60 numbers), and libyaml parses when PyYAML was built with it, falling back to the
pure-Python parser for the wording of a syntax error.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from sim.errors import Problem, ScenarioError
from sim.model.yamlguard import check_shape, check_size, reader_problem

PathKey = tuple[str | int, ...]
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"


class _Loader(yaml.SafeLoader):
    """YAML 1.1 safe loader that keeps ``23:00`` a string.

    YAML 1.1 reads unquoted ``23:00`` as the base-60 integer 1380 (and ``1:30.5`` as a float):
    a clock time that silently turned into a number of seconds. Scenario files hold clock
    times, so the base-60 forms are left out of the int and float resolvers.
    """


# libyaml's parser (about ten times faster) when PyYAML was built with it; its error messages
# differ, so a file it rejects is parsed again by the pure-Python loader for the message.
_CSafe: Any = getattr(yaml, "CSafeLoader", None)
_FastLoader: Any = (type("_FastLoader", (_CSafe,), {}) if _CSafe is not None else None)


def _number_resolvers(cls: Any) -> None:
    """Integers and floats without the base-60 forms (see ``_Loader``)."""
    cls.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag not in (_INT_TAG, _FLOAT_TAG)]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    cls.add_implicit_resolver(
        _INT_TAG,
        re.compile(r"""^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)"""
                   r"""|[-+]?0x[0-9a-fA-F_]+)$"""),
        list("-+0123456789"),
    )
    cls.add_implicit_resolver(
        _FLOAT_TAG,
        re.compile(
            r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?"""
            r"""|\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"""
        ),
        list("-+0123456789."),
    )


_number_resolvers(_Loader)
if _FastLoader is not None:
    _number_resolvers(_FastLoader)


def read_yaml(text: str, file: str) -> tuple[Any, dict[PathKey, int], list[Problem]]:
    """(data, line of every key, duplicate-key problems) of one YAML document, within the
    limits of ``sim.yamlguard`` (size, depth, aliases, long numbers)."""
    check_size(len(text.encode("utf-8", errors="replace")), file)
    if _FastLoader is not None:
        try:
            return _parse(text, file, _FastLoader)
        except ScenarioError:
            pass
    return _parse(text, file, _Loader)  # the same limits; messages in PyYAML's words


def _parse(text: str, file: str, kind: Any) -> tuple[Any, dict[PathKey, int], list[Problem]]:
    try:
        shape = kind(text)
        try:
            check_shape(shape, file)
        except yaml.YAMLError:
            pass  # a syntax error: the parse below reports it with its context
        finally:
            shape.dispose()
        loader = kind(text)
    except yaml.reader.ReaderError as exc:
        raise ScenarioError([reader_problem(exc, text, file)]) from None
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.reader.ReaderError as exc:
        raise ScenarioError([reader_problem(exc, text, file)]) from None
    except yaml.YAMLError as exc:
        raise ScenarioError([_yaml_problem(exc, file)]) from None
    except (ValueError, OverflowError, TypeError) as exc:  # e.g. a date such as 2026-13-45
        raise ScenarioError([Problem(file, "", f"YAML value cannot be read: {exc}")]) from None
    finally:
        loader.dispose()
    lines: dict[PathKey, int] = {}
    duplicates: list[Problem] = []
    if node is not None:
        lines[()] = node.start_mark.line + 1
        _walk(node, (), lines, duplicates, file)
    return data, lines, duplicates


def _yaml_problem(exc: yaml.YAMLError, file: str) -> Problem:
    mark = getattr(exc, "problem_mark", None)
    line = mark.line + 1 if mark is not None else None
    what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    context_mark = getattr(exc, "context_mark", None)
    if context and what.startswith("but "):
        what = f"{context}, {what}"  # "expected a single document ..., but found another"
    elif context and context_mark is not None and context_mark.line + 1 != line:
        what = f"{what} ({context} that starts on line {context_mark.line + 1})"
    return Problem(file, "", f"YAML syntax error: {what}", line)


def _walk(
    node: yaml.Node, path: PathKey, lines: dict[PathKey, int], duplicates: list[Problem],
    file: str,
) -> None:
    """Record the 1-based line of every mapping key and sequence item, by its path."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = str(key_node.value)
            child = (*path, key)
            line = key_node.start_mark.line + 1
            if child in lines and key != "<<":
                duplicates.append(Problem(
                    file, dotted(child), f"duplicate key '{key}' (first given on line "
                    f"{lines[child]}); YAML would keep only the last one", line))
                continue
            lines[child] = line
            _walk(value_node, child, lines, duplicates, file)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[(*path, i)] = item.start_mark.line + 1
            _walk(item, (*path, i), lines, duplicates, file)


def dotted(loc: PathKey) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def yaml_value(text: str) -> Any:
    """A value written on a command line, read as the same value in a scenario file would be
    (``23:30`` stays a clock time, ``8`` is a number, ``[1, 2]`` a list)."""
    loader = _Loader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()
