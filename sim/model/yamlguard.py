"""Limits on a scenario file's YAML, checked on the event stream before anything is built.

PyYAML builds documents recursively and expands aliases by reference, so a hostile or broken
file can exhaust the stack (nesting 500 deep), loop (an alias inside its own anchor), or ask
for gigabytes (an "alias bomb": nine levels of nine aliases each are 9^9 nodes once a
validator walks them). The parser itself is an iterative state machine, so the checks here
walk its events: document size, nesting depth, aliases to unfinished anchors, the number of
nodes after alias expansion, and numbers too long to convert. Each refusal is one ``Problem``
naming the file, the line and the limit.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from sim.errors import Problem, ScenarioError

MAX_FILE_BYTES = 1_000_000
"""A scenario file is at most 1 MB (the shipped ones are under 10 kB)."""
MAX_DEPTH = 32
"""Mappings and lists nest at most 32 deep (scenarios need about 8)."""
MAX_NODES = 100_000
"""At most 100,000 values once aliases are expanded."""
MAX_NUMBER_DIGITS = 100
"""A plain number has at most 100 characters (Python refuses integers past 4,300 digits)."""

_NUMBER = re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)?$")


def check_size(size_bytes: int, file: str) -> None:
    """Refuse a file larger than ``MAX_FILE_BYTES``."""
    if size_bytes > MAX_FILE_BYTES:
        raise ScenarioError([Problem(file, "", f"file is {size_bytes:,} bytes; a scenario file "
                                               f"may be at most {MAX_FILE_BYTES:,} bytes")])


def check_shape(loader: Any, file: str) -> None:
    """Walk the events of ``loader`` (a fresh ``yaml`` loader over the text) and refuse the
    document if it breaks a limit. YAML syntax errors are left to the caller's parse."""
    stack: list[list[Any]] = []  # [anchor, expanded size] per open collection
    sizes: dict[str, int] = {}
    total = 0
    while True:
        event = loader.get_event()
        if event is None or isinstance(event, yaml.StreamEndEvent):
            return
        line = event.start_mark.line + 1
        if isinstance(event, yaml.CollectionStartEvent):
            if len(stack) >= MAX_DEPTH:
                _refuse(file, line, f"nesting deeper than {MAX_DEPTH} levels")
            stack.append([event.anchor, 1])
            continue
        if isinstance(event, yaml.CollectionEndEvent):
            anchor, size = stack.pop()
            if anchor is not None:
                sizes[anchor] = size
            if stack:
                stack[-1][1] += size
            continue
        if isinstance(event, yaml.AliasEvent):
            if event.anchor not in sizes:
                if any(entry[0] == event.anchor for entry in stack):
                    _refuse(file, line, f"alias *{event.anchor} refers to its own anchor "
                                        f"&{event.anchor} (a recursive structure)")
                continue  # an undefined alias: the parse reports it
            size = sizes[event.anchor]
        elif isinstance(event, yaml.ScalarEvent):
            if (event.style is None and len(event.value) > MAX_NUMBER_DIGITS
                    and _NUMBER.match(event.value)):
                _refuse(file, line, f"a number of {len(event.value):,} characters; numbers "
                                    f"have at most {MAX_NUMBER_DIGITS}")
            size = 1
            if event.anchor is not None:
                sizes[event.anchor] = 1
        else:
            continue
        total += size
        if stack:
            stack[-1][1] += size
        if total > MAX_NODES or (stack and stack[-1][1] > MAX_NODES):
            _refuse(file, line, f"more than {MAX_NODES:,} values once aliases are expanded "
                                f"(an alias bomb?)")


def reader_problem(exc: yaml.reader.ReaderError, text: str, file: str) -> Problem:
    """A character YAML does not accept, with its line."""
    line = text.count("\n", 0, max(0, exc.position)) + 1
    char = exc.character
    code = f"#x{ord(char):04x}" if isinstance(char, str) else f"#x{char:02x}"
    return Problem(file, "", f"YAML syntax error: unacceptable character {code} "
                             f"(control characters are not allowed)", line)


def _refuse(file: str, line: int, message: str) -> None:
    raise ScenarioError([Problem(file, "", message, line)])
