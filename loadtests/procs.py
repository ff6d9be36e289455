"""Processes of a load test: the reference shop, the Locust master and workers.

Every child runs in its own session (process group), so a Ctrl-C in the terminal reaches only
the runner, which then stops the children in order: Locust first (SIGINT: it stops its users,
writes its CSV/HTML and exits), the shop last. Every wait is bounded; a child that does not stop
within its grace time is killed.

Ctrl-C never leaves a child behind: it is held while a child is being started (between the
fork and the moment its handle is kept, ``sigint_deferred``) and raised right after; while the
children are being stopped, another Ctrl-C kills the remaining ones at once
(``sigint_kills``) instead of abandoning them; while the report is written, a first Ctrl-C
lets it finish and a second one stops at once (``sigint_postponed``).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import FrameType

from sim.errors import LoadTestError

LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
_READY = re.compile(r"on (http://\S+)")
STOP_GRACE_S = 15.0


def check_host(url: str) -> str:
    """``url`` without a trailing slash, if it is an http(s) URL with a host; else an error."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LoadTestError(f"--host {url!r}: expected an http:// or https:// URL with a host "
                            f"(e.g. http://127.0.0.1:8099)")
    return url.rstrip("/")


def check_reachable(url: str, timeout_s: float = 3.0,
                    context: ssl.SSLContext | None = None) -> None:
    """Raise ``LoadTestError`` unless something answers HTTP at ``url`` (any status will do:
    the check is for a listening server, not for a healthy one). ``context``: how HTTPS is
    verified (the load test's own TLS options)."""
    try:
        with urllib.request.urlopen(url + "/", timeout=timeout_s, context=context):
            return
    except urllib.error.HTTPError:
        return  # it answered
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise LoadTestError(f"cannot reach {url}: {reason}; is the system under test running? "
                            f"(--local-shop starts the reference shop)") from None


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now (for the Locust master's worker channel)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _sigint_handled() -> bool:
    """Whether SIGINT reaches Python here: on the main thread, unless whoever started the
    process ignored it (a background job), which is then respected."""
    return (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN)


@contextlib.contextmanager
def sigint_deferred() -> Iterator[None]:
    """Hold SIGINT while the block runs and raise ``KeyboardInterrupt`` once it is over (on
    the main thread; elsewhere signals do not arrive and this does nothing)."""
    current = signal.getsignal(signal.SIGINT) \
        if threading.current_thread() is threading.main_thread() else None
    if current in (None, signal.SIG_IGN) or getattr(current, "holds_sigint", False):
        yield  # not the main thread, SIGINT ignored by whoever started us, or nested
        return
    pending: list[int] = []

    def hold(signum: int, _frame: FrameType | None) -> None:
        pending.append(signum)

    hold.holds_sigint = True  # type: ignore[attr-defined]
    previous = signal.signal(signal.SIGINT, hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if pending:
        raise KeyboardInterrupt


@contextlib.contextmanager
def sigint_postponed() -> Iterator[list[int]]:
    """Within the block a first Ctrl-C is only noted (in the yielded list) and the block goes
    on; a second one raises ``KeyboardInterrupt`` at once. For work that is worth finishing,
    such as writing the report of what was measured."""
    pressed: list[int] = []
    if not _sigint_handled():
        yield pressed
        return

    def note(signum: int, _frame: FrameType | None) -> None:
        pressed.append(signum)
        if len(pressed) > 1:
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, note)
    try:
        yield pressed
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def sigint_kills(
        processes: Callable[[], Iterable[subprocess.Popen[bytes]]]) -> Iterator[list[int]]:
    """While the block stops ``processes()`` gracefully, a Ctrl-C SIGKILLs the ones still
    running (the waits then return at once) rather than interrupting the stopping; the Ctrl-Cs
    are noted in the yielded list."""
    pressed: list[int] = []
    if not _sigint_handled():
        yield pressed
        return

    def hurry(signum: int, _frame: FrameType | None) -> None:
        pressed.append(signum)
        for process in processes():
            if process.poll() is None:
                _signal(process, signal.SIGKILL)

    previous = signal.signal(signal.SIGINT, hurry)
    try:
        yield pressed
    finally:
        signal.signal(signal.SIGINT, previous)


def stop_all(steps: Iterable[Callable[[], object]],
             processes: Callable[[], Iterable[subprocess.Popen[bytes]]]) -> bool:
    """Run the idempotent stopping ``steps`` in order under ``sigint_kills(processes)``; True
    when a Ctrl-C came meanwhile. A Ctrl-C that lands just before or after that handler is in
    place repeats the step rather than skipping it, so no child is left running."""
    interrupted = False
    for step in steps:
        while True:
            try:
                with sigint_kills(processes) as pressed:
                    step()
                interrupted = interrupted or bool(pressed)
                break
            except KeyboardInterrupt:
                interrupted = True
    return interrupted


def spawn(command: list[str], log_path: Path, cwd: Path | None = None) -> subprocess.Popen[bytes]:
    """Start ``command`` in its own session, stdout and stderr appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log, sigint_deferred():
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=cwd,
                                stdin=subprocess.DEVNULL, start_new_session=True)


def stop(process: subprocess.Popen[bytes], grace_s: float = STOP_GRACE_S,
         signum: signal.Signals = signal.SIGTERM) -> int:
    """Send ``signum``, wait up to ``grace_s``, then SIGKILL; the exit code. (Locust takes
    SIGINT as Ctrl-C: it stops its users and still writes its HTML report; on SIGTERM it
    skips the HTML.)"""
    if process.poll() is None:
        _signal(process, signum)
        try:
            return process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            _signal(process, signal.SIGKILL)
    return process.wait()


def _signal(process: subprocess.Popen[bytes], signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone
        os.kill(process.pid, signum)


class ShopProcess:
    """``peaksim shop`` as a child process on an ephemeral loopback port.

    Constructing it starts the process and waits until it listens (``url``); on any failure
    or Ctrl-C meanwhile it stops the process again. With ``wait=False`` it only starts it
    (construct it under ``sigint_deferred`` so that the handle is kept whatever happens) and
    ``wait_ready`` waits. A thread copies the shop's output into ``log_path`` and signals the
    line that announces its URL (or the end of its output, if it dies first). ``stop`` it in
    every case.
    """

    url: str | None = None

    def __init__(self, scenario_path: Path, db_path: Path, log_path: Path,
                 ready_timeout_s: float = 30.0, wait: bool = True) -> None:
        command = [sys.executable, "-c", "from sim.cli import app; app(prog_name='peaksim')",
                   "shop", str(scenario_path), "--host", "127.0.0.1", "--port", "0",
                   "--db", str(db_path)]
        self.log_path = log_path
        self._url: str | None = None
        self._seen = threading.Event()
        with sigint_deferred():
            self.process = subprocess.Popen(command, stdout=subprocess.PIPE,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True)
            self._copier = threading.Thread(target=self._copy, name="peaksim-shop-log",
                                            daemon=True)
            self._copier.start()
        if wait:
            try:
                self.wait_ready(ready_timeout_s)
            except BaseException:  # Ctrl-C included: the caller never got the handle
                stop_all([self.stop], lambda: [self.process])
                raise

    def _copy(self) -> None:
        assert self.process.stdout is not None
        with self.log_path.open("ab") as log:
            for line in self.process.stdout:
                log.write(line)
                log.flush()
                if self._url is None and (match := _READY.search(line.decode(errors="replace"))):
                    self._url = match.group(1)
                    self._seen.set()
        self._seen.set()  # end of output: the shop exited

    def wait_ready(self, timeout_s: float = 30.0) -> str:
        """The shop's URL once it listens; ``LoadTestError`` if it dies or takes too long."""
        self._seen.wait(timeout_s)
        if self._url is not None:
            self.url = self._url
            return self._url
        if self.process.poll() is None:
            raise LoadTestError(f"the reference shop did not listen within {timeout_s:g} s "
                                f"(log: {self.log_path})")
        self.process.wait()
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        tail = " | ".join(text.strip().splitlines()[-3:])
        raise LoadTestError(f"the reference shop did not start (exit code "
                            f"{self.process.returncode}): {tail}")

    def stop(self) -> int:
        """Stop the shop (SIGTERM: it finishes in-flight requests); run it under
        ``stop_all`` so that a Ctrl-C meanwhile kills it."""
        code = stop(self.process)
        self._copier.join(timeout=STOP_GRACE_S)
        return code
