"""The command blocks of README.md and docs/*.md, as the docs test runs them.

A fenced block tagged ``bash`` (or ``sh``, ``shell``, ``console``) is a command block: the docs
test runs it, as written, with ``bash -e -o pipefail`` (so every command must succeed), from a
copy of the repository's layout with its own ``reports/``, each block within 30 minutes;
whatever a block leaves running is stopped afterwards. An HTML comment on the line
right before the fence (invisible on GitHub) changes how:

- ``<!-- docs-test: skip: REASON -->`` — not run (commands for other machines, the test suite
  itself); the reason is required and shown in the test report. Keep this rare.
- ``<!-- docs-test: servers -->`` — each command is a server: it must start and keep running
  (or finish with exit 0) until it is stopped with Ctrl-C, after which it must exit 0 or 130.
- ``<!-- docs-test: exit N -->`` — the block is expected to exit with N (a ``--gate`` that
  fails on purpose).
- ``<!-- docs-test: file NAME -->`` before any other block (e.g. a ``yaml`` one): its text is
  written to NAME first, so that later blocks can use the file the docs describe.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
SHELL_TAGS = frozenset({"bash", "sh", "shell", "console"})

_FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
_MARK = re.compile(r"<!--\s*docs-test:\s*(.*?)\s*-->\s*$")
_KINDS = ("skip", "servers", "exit", "file")


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its language tag, text and docs-test directive."""

    path: Path
    line: int
    tag: str
    text: str
    directive: str = ""

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def kind(self) -> str:
        """``run`` (the default), ``skip``, ``servers``, ``exit`` or ``file``."""
        return self.directive.split()[0].rstrip(":") if self.directive else "run"

    @property
    def argument(self) -> str:
        """What follows the directive's kind: the skip reason, exit code or file name."""
        parts = self.directive.split(None, 1)
        return parts[1].strip() if len(parts) > 1 else ""

    @property
    def is_command(self) -> bool:
        return self.tag in SHELL_TAGS


def blocks(path: Path) -> list[Block]:
    """Every fenced block of ``path`` with the directive on the line before it (if any)."""
    text = path.read_text(encoding="utf-8")
    found = []
    for match in _FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        before = text[:match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        mark = _MARK.search(before)
        found.append(Block(path, line, match.group(1), match.group(2),
                           mark.group(1) if mark else ""))
    return found


def all_blocks() -> list[Block]:
    return [b for path in DOCS for b in blocks(path)]


def directive_problem(block: Block) -> str | None:
    """Why a block's directive is malformed, or None."""
    if not block.directive:
        return None
    if block.kind not in _KINDS:
        return f"unknown docs-test directive {block.directive!r}; expected one of {_KINDS}"
    if block.kind == "skip" and not block.argument:
        return "a skipped block must say why: <!-- docs-test: skip: REASON -->"
    if block.kind == "exit" and not block.argument.isdigit():
        return "expected <!-- docs-test: exit N --> with a number N"
    if block.kind == "file" and (not block.argument or "/" in block.argument):
        return "expected <!-- docs-test: file NAME --> with a plain file name"
    if block.kind in ("servers", "exit") and not block.is_command:
        return f"'{block.kind}' applies to command blocks only (```bash)"
    return None


def commands(block: Block) -> list[str]:
    """The block's commands: continuation lines joined, comments and blank lines dropped."""
    joined: list[str] = []
    pending = ""
    for raw in block.text.splitlines():
        line = raw.rstrip()
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        if line.strip() and not line.lstrip().startswith("#"):
            joined.append(line.strip())
    return joined


def peaksim_invocations(block: Block) -> list[list[str]]:
    """Each ``peaksim ...`` call in the block as its arguments (after ``peaksim``), up to the
    first shell operator or comment."""
    calls = []
    for command in commands(block):
        lexer = shlex.shlex(command, posix=True, punctuation_chars=";&|<>")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        words = list(lexer)
        for i, word in enumerate(words):
            if word == "peaksim":
                args = []
                for arg in words[i + 1:]:
                    if arg and set(arg) <= set(";&|<>"):
                        break
                    args.append(arg)
                calls.append(args)
    return calls
