"""Processes of a load test: the reference shop, the Locust master and workers.

Every child runs in its own session (process group), so a Ctrl-C in the terminal reaches only
the runner, which then stops the children in order: Locust first (SIGTERM: it stops its users,
writes its CSV/HTML and exits), the shop last. Every wait is bounded; a child that does not stop
within its grace time is killed.
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
from pathlib import Path

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


def spawn(command: list[str], log_path: Path, cwd: Path | None = None) -> subprocess.Popen[bytes]:
    """Start ``command`` in its own session, stdout and stderr appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
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

    A thread copies the shop's output into ``log_path`` and signals the line that announces
    its URL (or the end of its output, if it dies first).
    """

    def __init__(self, scenario_path: Path, db_path: Path, log_path: Path,
                 ready_timeout_s: float = 30.0) -> None:
        command = [sys.executable, "-c", "from sim.cli import app; app(prog_name='peaksim')",
                   "shop", str(scenario_path), "--host", "127.0.0.1", "--port", "0",
                   "--db", str(db_path)]
        self.log_path = log_path
        self._url: str | None = None
        self._seen = threading.Event()
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        start_new_session=True)
        self._copier = threading.Thread(target=self._copy, name="peaksim-shop-log", daemon=True)
        self._copier.start()
        self.url = self._wait_ready(ready_timeout_s)

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

    def _wait_ready(self, timeout_s: float) -> str:
        self._seen.wait(timeout_s)
        if self._url is not None:
            return self._url
        if self.process.poll() is None:
            self.stop()
            raise LoadTestError(f"the reference shop did not listen within {timeout_s:g} s "
                                f"(log: {self.log_path})")
        self.process.wait()
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        tail = " | ".join(text.strip().splitlines()[-3:])
        raise LoadTestError(f"the reference shop did not start (exit code "
                            f"{self.process.returncode}): {tail}")

    def stop(self) -> int:
        code = stop(self.process)
        self._copier.join(timeout=STOP_GRACE_S)
        return code
