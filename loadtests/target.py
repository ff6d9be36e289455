"""The HTTP side of a replay: one pooled keep-alive client per generator process.

Every user of a process sends through one ``geventhttpclient.HTTPClient`` whose pool holds at
most ``SOCKETS_PER_PROCESS`` connections. That bound matters: geventhttpclient checks an idle
pooled connection with ``select()``, which fails for file descriptors >= 1024, and then closes
and reopens the connection after every request (thousands of reconnects a second, listen-queue
overflows at the target, one-second SYN-retransmit tails). With the bound, a process never
holds more sockets than it can poll. Redirects are not followed (a 3xx is the answer); TLS
verifies certificates unless ``insecure``; ``ca_bundle`` replaces the default CA file.

Imports gevent (it runs inside the Locust processes); no Locust.
"""

from __future__ import annotations

import http.client
import ssl
import urllib.parse
from dataclasses import dataclass
from typing import Any, NamedTuple

import gevent
from geventhttpclient import HTTPClient

SOCKETS_PER_PROCESS = 800
"""Most connections one generator process opens (file descriptors stay well below 1024, with
room for logs, pipes and the Locust master channel)."""


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


def _insecure_context(**_kw: Any) -> ssl.SSLContext:
    context = gevent.ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class Target:
    """The system under test at ``base_url`` (``http(s)://host[:port][/prefix]``)."""

    def __init__(self, base_url: str, tls: TlsOptions, timeout_s: float,
                 sockets: int = SOCKETS_PER_PROCESS) -> None:
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http(s) URL with a host, got {base_url!r}")
        self.prefix = parts.path.rstrip("/")
        self.timeout_s = timeout_s
        options: dict[str, Any] = {}
        if parts.scheme == "https":
            options["ssl"] = True
            if tls.insecure:
                options["ssl_context_factory"] = _insecure_context
                options["insecure"] = True
            elif tls.ca_bundle:
                options["ssl_options"] = {"ca_certs": tls.ca_bundle}
        self.client = HTTPClient(parts.hostname, port=parts.port, concurrency=max(1, sockets),
                                 connection_timeout=timeout_s, network_timeout=timeout_s,
                                 **options)

    def send(self, method: str, path: str, headers: dict[str, str], body: bytes | None,
             timeout_s: float | None = None) -> Answer:
        """One request; never raises for network trouble (it is an answer with status 0)."""
        limit = None
        if timeout_s is not None and timeout_s < self.timeout_s:
            limit = gevent.Timeout(timeout_s)
            limit.start()
        try:
            response = self.client.request(method, self.prefix + path, body=body or b"",
                                           headers=headers)
            try:
                content = response.read()
            finally:
                response.release()
            return Answer(response.status_code, False, content)
        except gevent.Timeout as exc:
            if exc is not limit:
                raise  # someone else's timeout (the user is being stopped)
            return Answer(0, True, b"", "timeout")
        except TimeoutError:
            return Answer(0, True, b"", "timeout")
        except (OSError, http.client.HTTPException, ValueError) as exc:
            return Answer(0, False, b"", f"connection: {type(exc).__name__}")
        finally:
            if limit is not None:
                limit.close()

    def close(self) -> None:
        self.client.close()
