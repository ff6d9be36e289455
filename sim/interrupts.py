"""Ctrl-C while there is nothing to clean up: end the process at once with exit code 130.

A ``KeyboardInterrupt`` raised in the middle of an import can surface as something else (a C
extension reports ``ImportError: initialization failed``, a library converts it), so the
phases that only import modules and check input run under ``quit_on_sigint``: SIGINT there
flushes the standard streams, says ``interrupted`` and exits 130 without unwinding. Code that
starts processes or writes files must not run under it (it relies on ``KeyboardInterrupt``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType

INTERRUPTED_EXIT = 130


def exit_interrupted(message: str = "") -> None:
    """Flush the standard streams, print ``message`` and leave with exit code 130 at once
    (no clean-up runs: only for a process with none left to do)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    if message:
        with contextlib.suppress(OSError):
            os.write(2, message.encode() + b"\n")
    os._exit(INTERRUPTED_EXIT)


def quit_now(_signum: int, _frame: FrameType | None) -> None:
    """SIGINT handler of ``quit_on_sigint``."""
    exit_interrupted("interrupted")


@contextlib.contextmanager
def quit_on_sigint() -> Iterator[None]:
    """Within the block, SIGINT calls ``quit_now`` (on the main thread; elsewhere, or when
    whoever started the process ignored SIGINT, a no-op)."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is signal.SIG_IGN):
        yield
        return
    previous = signal.signal(signal.SIGINT, quit_now)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
