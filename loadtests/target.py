"""The HTTP side of a replay: one pooled keep-alive client per generator process.

Every user of a process sends through one ``loadtests.http1.ConnectionPool`` of at most
``SOCKETS_PER_PROCESS`` connections (a bound on the process's file descriptors, whatever the
user count). A request is written as one buffer: request line, ``Host``, the rendered headers,
``Content-Length`` and the body. Redirects are not followed (a 3xx is the answer); TLS verifies
certificates unless ``insecure``; ``ca_bundle`` replaces the default CA file. Every attempt is
bounded by one timer: the client's timeout, or the request's own ``timeout_s`` if shorter.
A path is sent as rendered, with characters HTTP does not allow in a request line
percent-encoded; a header that would break the request (a line break, a character outside
Latin-1) fails that attempt with its reason and sends nothing.

Imports gevent (it runs inside the Locust processes); no Locust.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from importlib import metadata
from typing import NamedTuple

import gevent

from loadtests.http1 import AnswerError, ConnectionPool, tls_context

SOCKETS_PER_PROCESS = 800
"""Most connections one generator process opens (file descriptors stay well below 1024, with
room for logs, pipes and the Locust master channel)."""
_NOT_IN_REQUEST_LINE = re.compile(r"[^\x21-\x7e]")
_BREAKS = re.compile(r"[\r\n\x00]")
_WITH_BODY = frozenset(("POST", "PUT", "PATCH"))


@dataclass(frozen=True)
class TlsOptions:
    """How HTTPS targets are checked: ``insecure`` skips verification; ``ca_bundle`` is a PEM
    file of CA certificates to trust instead of the default bundle."""

    insecure: bool = False
    ca_bundle: str | None = None


class Answer(NamedTuple):
    """One attempt's outcome: HTTP status (0: none), client timeout, body, failure text.
    (A named tuple: one is made per request, and it is the cheapest immutable record.)"""

    status: int
    timed_out: bool
    content: bytes
    error: str | None = None


def _user_agent() -> str:
    try:
        return f"peaksim/{metadata.version('peaksim')}"
    except metadata.PackageNotFoundError:
        return "peaksim"


class Target:
    """The system under test at ``base_url`` (``http(s)://host[:port][/prefix]``)."""

    def __init__(self, base_url: str, tls: TlsOptions, timeout_s: float,
                 sockets: int = SOCKETS_PER_PROCESS) -> None:
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http(s) URL with a host, got {base_url!r}")
        secure = parts.scheme == "https"
        port = parts.port or (443 if secure else 80)
        self.prefix = parts.path.rstrip("/")
        self.timeout_s = timeout_s
        self.pool = ConnectionPool(parts.hostname, port,
                                   tls_context(tls.insecure, tls.ca_bundle) if secure else None,
                                   sockets, timeout_s)
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        default_port = port == (443 if secure else 80)
        self._host = f"{host}" if default_port else f"{host}:{port}"
        self._agent = _user_agent()

    def send(self, method: str, path: str, headers: dict[str, str], body: bytes | None,
             timeout_s: float | None = None) -> Answer:
        """One request; never raises for network trouble (it is an answer with status 0)."""
        try:
            payload = self._payload(method, path, headers, body)
        except ValueError as exc:
            return Answer(0, False, b"", f"request: {exc}")
        limit = gevent.Timeout(self.timeout_s if timeout_s is None
                               else min(timeout_s, self.timeout_s))
        limit.start()
        try:
            status, content = self.pool.exchange(payload, head_only=method == "HEAD")
            return Answer(status, False, content)
        except gevent.Timeout as exc:
            if exc is not limit:
                raise  # someone else's timeout (the user is being stopped)
            return Answer(0, True, b"", "timeout")
        except TimeoutError:
            return Answer(0, True, b"", "timeout")
        except AnswerError as exc:
            return Answer(0, False, b"", f"answer: {exc}")
        except OSError as exc:
            return Answer(0, False, b"", f"connection: {type(exc).__name__}")
        finally:
            limit.close()

    def _payload(self, method: str, path: str, headers: dict[str, str],
                 body: bytes | None) -> bytes:
        """The request's bytes; ``ValueError`` naming what cannot be sent."""
        target = self.prefix + path
        if _NOT_IN_REQUEST_LINE.search(target):
            target = urllib.parse.quote(target, safe="/?&=%:@!$'()*+,;~#[]-._")
        lines = [f"{method} {target} HTTP/1.1\r\nHost: {self._host}\r\n"]
        agent = True
        for name, value in headers.items():
            if _BREAKS.search(name) or _BREAKS.search(value):
                raise ValueError(f"header {name!r} contains a line break")
            if agent and name.lower() == "user-agent":
                agent = False
            lines.append(f"{name}: {value}\r\n")
        if agent:
            lines.append(f"User-Agent: {self._agent}\r\n")
        if body is not None or method in _WITH_BODY:
            lines.append(f"Content-Length: {len(body) if body else 0}\r\n")
        lines.append("\r\n")
        try:
            head = "".join(lines).encode("latin-1")
        except UnicodeEncodeError:
            raise ValueError("a header is not Latin-1 text") from None
        return head + body if body else head

    def close(self) -> None:
        self.pool.close()
