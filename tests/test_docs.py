"""The docs cannot drift from the tool: every command block of README.md and docs/*.md runs as
written (slow: in CI and ``pytest -m slow``), and every documented ``peaksim`` call and option
exists (fast). How blocks are marked: ``tests/docs_blocks.py``."""

from __future__ import annotations

import os
import re
import select
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import typer
from docs_blocks import (
    ROOT,
    Block,
    all_blocks,
    commands,
    directive_problem,
    peaksim_invocations,
)

from sim.cli import app

BLOCK_TIMEOUT_S = 1800.0
"""Most a command block may take: the load-test examples take one to two minutes each, the
five schedules of docs/planning.md more than 15 minutes on a busy two-core machine."""
SERVER_START_S = 30.0
SERVER_STOP_S = 20.0
NOT_IN_SANDBOX = {"reports", ".git"}
COPIED_INTO_SANDBOX = {"scenarios"}
"""Directories the docs' commands write into (``plan --write-variant``): copied, so that the
repository itself is never changed by the test."""

COMMAND_BLOCKS = [b for b in all_blocks() if b.is_command]


def click_group() -> Any:
    """The CLI as the (typer-vendored) click group: ``.commands`` maps names to commands."""
    return typer.main.get_command(app)


def options_of(command: Any) -> set[str]:
    return {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)
            if opt.startswith("--")}


def test_every_docs_test_directive_is_valid() -> None:
    problems = [f"{b.id}: {directive_problem(b)}" for b in all_blocks() if directive_problem(b)]
    assert not problems
    # Skipping stays rare: most command blocks run.
    skipped = [b for b in COMMAND_BLOCKS if b.kind == "skip"]
    assert len(skipped) * 3 <= len(COMMAND_BLOCKS), [b.id for b in skipped]


def test_documented_peaksim_calls_name_real_commands_and_options() -> None:
    group = click_group()
    calls = [(b.id, call) for b in COMMAND_BLOCKS for call in peaksim_invocations(b)]
    assert len(calls) >= 15  # the parser found the docs' examples
    for where, args in calls:
        if not args or args[0].startswith("--"):
            assert not args or args[0] in options_of(group), (where, args)
            continue
        assert args[0] in group.commands, f"{where}: no command {args[0]!r}"
        known = options_of(group.commands[args[0]])
        for arg in args[1:]:
            if arg.startswith("--"):
                assert arg.split("=", 1)[0] in known, f"{where}: {args[0]} has no {arg}"


def readme_rows() -> dict[str, str]:
    """README's command table: command name -> its whole row."""
    rows: dict[str, str] = {}
    for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines():
        match = re.match(r"\| `peaksim (\w+)", line)
        if match:
            rows[match.group(1)] = rows.get(match.group(1), "") + line
    return rows


def test_readme_command_table_lists_every_command_and_option() -> None:
    group, rows = click_group(), readme_rows()
    for name, command in group.commands.items():
        assert name in rows, f"README's command table has no row for peaksim {name}"
        row = rows[name]
        linked = " ".join((ROOT / page).read_text(encoding="utf-8")
                          for page in re.findall(r"\((docs/[\w-]+\.md)[#)\w-]*", row))
        text = row + " " + linked
        missing = [param.opts for param in command.params
                   if "--help" not in param.opts and param.param_type_name == "option"
                   and not any(re.search(re.escape(opt) + r"(?![\w-])", text)
                               for opt in (*param.opts, *param.secondary_opts))]
        assert not missing, f"peaksim {name}: README row (or the page it links) lacks {missing}"


def test_the_block_parser_joins_continuations_and_reads_directives(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("text\n<!-- docs-test: exit 1 -->\n```bash\n# comment\npeaksim run a.yaml \\\n"
                    "    --gate   # fails\npeaksim curve --out /tmp/x | tail -1\n```\n",
                    encoding="utf-8")
    from docs_blocks import blocks

    (block,) = blocks(page)
    assert block.kind == "exit" and block.argument == "1" and block.line == 3
    assert commands(block) == ["peaksim run a.yaml      --gate   # fails",
                               "peaksim curve --out /tmp/x | tail -1"]
    assert peaksim_invocations(block) == [["run", "a.yaml", "--gate"],
                                          ["curve", "--out", "/tmp/x"]]


# ----------------------------------------------------------------------- running the blocks


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository's layout (symlinks; copies of what the docs write into) with its own
    reports/ and the docs' example files."""
    root = tmp_path_factory.mktemp("docs-sandbox")
    for entry in ROOT.iterdir():
        if entry.name in COPIED_INTO_SANDBOX:
            shutil.copytree(entry, root / entry.name)
        elif entry.name not in NOT_IN_SANDBOX:
            (root / entry.name).symlink_to(entry)
    (root / "reports").mkdir()
    for block in all_blocks():
        if block.kind == "file":
            (root / block.argument).write_text(block.text, encoding="utf-8")
    return root


def sandbox_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("GITHUB_STEP_SUMMARY", "COLUMNS", "FORCE_COLOR")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + str(ROOT / "tests")
    env["COLUMNS"] = "100"
    return env


def stop_group(process: subprocess.Popen[str], signum: int = signal.SIGTERM) -> None:
    """Stop what a block left running (its servers in the background)."""
    try:
        os.killpg(process.pid, signum)
        process.wait(timeout=SERVER_STOP_S)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def run_script(block: Block, cwd: Path) -> None:
    expected = int(block.argument) if block.kind == "exit" else 0
    # Output goes to a file, not a pipe: a server the block left in the background (say,
    # after a failing command stopped bash before its `kill %1`) must not keep the test
    # waiting for the pipe to close. The block ends when bash does; its group is stopped.
    with tempfile.TemporaryFile("w+", encoding="utf-8") as log:
        process = subprocess.Popen(["bash", "-e", "-o", "pipefail", "-c", block.text], cwd=cwd,
                                   env=sandbox_env(), stdout=log, stderr=subprocess.STDOUT,
                                   text=True, start_new_session=True)
        try:
            process.wait(timeout=BLOCK_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            stop_group(process, signal.SIGKILL)
            pytest.fail(f"{block.id}: still running after {BLOCK_TIMEOUT_S:.0f} s")
        finally:
            stop_group(process)
        log.seek(0)
        output = log.read()
    assert process.returncode == expected, f"{block.id} exited {process.returncode}:\n{output}"


def run_server(command: str, cwd: Path, where: str) -> None:
    """Start ``command``, wait for its first line of output, stop it with Ctrl-C."""
    process = subprocess.Popen(["bash", "-c", command], cwd=cwd, env=sandbox_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    assert process.stdout is not None
    deadline = time.monotonic() + SERVER_START_S
    first = ""
    try:
        while not first and process.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([process.stdout], [], [], 0.5)
            if ready:
                first = process.stdout.readline()
        if process.poll() is not None:  # finished by itself: a one-shot command of the block
            rest = process.stdout.read()
            assert process.returncode == 0, f"{where}: {command!r} exited " \
                                            f"{process.returncode}:\n{first}{rest}"
            return
        assert first, f"{where}: {command!r} printed nothing in {SERVER_START_S:.0f} s"
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=SERVER_STOP_S)
        assert process.returncode in (0, 130), f"{where}: {command!r} stopped with " \
                                               f"{process.returncode}"
    finally:
        stop_group(process)


@pytest.mark.slow
@pytest.mark.parametrize("block", [b for b in COMMAND_BLOCKS], ids=lambda b: b.id)
def test_docs_command_block_runs_as_written(block: Block, sandbox: Path) -> None:
    if block.kind == "skip":
        pytest.skip(block.argument)
    if block.kind == "servers":
        for command in commands(block):
            run_server(command, sandbox, block.id)
        return
    run_script(block, sandbox)
