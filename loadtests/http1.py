"""A lean HTTP/1.1 keep-alive connection pool for the replay's hot path.

gevent sockets carry the bytes; ``httptools`` (Python bindings of llhttp, the parser of
Node.js, used by uvicorn) parses the answers. Why not geventhttpclient, the client of Locust's
``FastHttpUser``: measured on one core against the bench's aiohttp server, it spends 62-70 µs
of CPU on a small JSON POST (header objects, a ``select()`` liveness probe of every pooled
socket before each use, a timer per socket operation); this pool spends ~23 µs on the same
request, and the replay sends its requests through nothing else.

What it does: a request is written as one buffer; an answer is complete when the parser says
so (Content-Length, chunked) or, without either, when the server closes the connection. A
connection is kept when the answer allows it (``should_keep_alive``) and reused last-in,
first-out. A kept connection the server has closed meanwhile (its keep-alive timeout) shows
up as a failed write or an end of stream before the first byte of the answer: the request is
then written once more on a new connection — the server never saw it. Limits: at most
``size`` connections (callers wait for one), answers' heads at most ``MAX_HEAD_BYTES`` and
bodies at most ``MAX_BODY_BYTES``. Time limits are the caller's (one ``gevent.Timeout``
around a whole exchange); a connection an exchange was interrupted in is closed.

Imports gevent, not Locust.
"""

from __future__ import annotations

import socket as std_socket
from typing import Any

import httptools
from gevent import socket as gsocket
from gevent import ssl as gssl
from gevent.lock import BoundedSemaphore

MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 16 * 1024 * 1024
_RECV_BYTES = 65536


class AnswerError(Exception):
    """The answer could not be read (malformed, too large, cut short); a short reason."""


class _Stale(Exception):
    """A kept connection was closed by the server before this request reached it."""


class _Reader:
    """httptools callbacks: the status, body and framing of one answer."""

    __slots__ = ("chunks", "done", "headers_done", "size", "framed", "keep", "parser")

    def __init__(self) -> None:
        self.parser: Any = None
        self.keep = False
        """The answer lets the connection be reused (read at its end: the parser forgets it
        once the message is over)."""
        self.chunks: list[bytes] = []
        self.done = False
        self.headers_done = False
        self.size = 0
        self.framed = False
        """Content-Length or Transfer-Encoding given (else the body ends with the stream)."""

    def on_header(self, name: bytes, _value: bytes) -> None:
        if len(name) in (14, 17) and name.lower() in (b"content-length", b"transfer-encoding"):
            self.framed = True

    def on_headers_complete(self) -> None:
        self.headers_done = True

    def on_body(self, data: bytes) -> None:
        self.size += len(data)
        self.chunks.append(data)

    def on_message_complete(self) -> None:
        self.done = True
        self.keep = self.parser.should_keep_alive()


def tls_context(insecure: bool, ca_bundle: str | None) -> gssl.SSLContext:
    """A cooperative TLS context: verified against the default CAs (or ``ca_bundle``), or
    not verified at all with ``insecure``."""
    if insecure:
        context = gssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = gssl.CERT_NONE
        return context
    return gssl.create_default_context(cafile=ca_bundle)


class ConnectionPool:
    """Keep-alive connections to one ``host:port`` (TLS with ``tls``), at most ``size``."""

    def __init__(self, host: str, port: int, tls: gssl.SSLContext | None, size: int,
                 connect_timeout_s: float) -> None:
        self.host = host
        self.port = port
        self.tls = tls
        self.connect_timeout_s = connect_timeout_s
        self._idle: list[Any] = []
        self._address: tuple[Any, ...] | None = None
        self._slots = BoundedSemaphore(max(1, size))
        self.opened = 0
        """Connections opened so far (a pool that keeps its connections opens few)."""

    def exchange(self, payload: bytes, head_only: bool = False) -> tuple[int, bytes]:
        """Write ``payload`` (a whole request) and read its answer: (status, body). Raises
        ``OSError`` for network trouble and ``AnswerError`` for an unreadable answer."""
        self._slots.acquire()
        try:
            while True:
                reused = bool(self._idle)
                sock = self._idle.pop() if reused else self._connect()
                try:
                    status, body, keep = _exchange(sock, payload, head_only)
                except _Stale:
                    sock.close()
                    if reused:
                        continue  # the server had closed it: the request never reached it
                    raise ConnectionResetError("connection closed before an answer") from None
                except BaseException:
                    sock.close()  # interrupted mid-exchange: its state is unknown
                    raise
                if keep:
                    self._idle.append(sock)
                else:
                    sock.close()
                return status, body
        finally:
            self._slots.release()

    def warm(self, count: int) -> int:
        """Open up to ``count`` connections ahead of the first requests (a replay's users all
        send at once when it starts); returns how many were opened. Network trouble is left
        to the requests themselves."""
        opened = 0
        while opened < count and len(self._idle) < self._slots.counter:
            try:
                self._idle.append(self._connect())
            except OSError:
                break
            opened += 1
        return opened

    def _connect(self) -> Any:
        if self._address is None:  # resolved once: a host name costs a resolver call
            family, kind, proto, _name, address = gsocket.getaddrinfo(
                self.host, self.port, 0, gsocket.SOCK_STREAM)[0]
            self._address = (family, kind, proto, address)
        family, kind, proto, address = self._address
        sock = gsocket.socket(family, kind, proto)
        sock.settimeout(self.connect_timeout_s)
        try:
            sock.connect(address)
        except BaseException:
            sock.close()
            raise
        sock.settimeout(None)  # an exchange is bounded by its caller's timeout
        sock.setsockopt(std_socket.IPPROTO_TCP, std_socket.TCP_NODELAY, 1)
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_hostname=self.host)
        self.opened += 1
        return sock

    def close(self) -> None:
        """Close the idle connections (those in use close when their exchange ends)."""
        while self._idle:
            self._idle.pop().close()


def _exchange(sock: Any, payload: bytes, head_only: bool) -> tuple[int, bytes, bool]:
    """(status, body, keep the connection) of one request on ``sock``."""
    try:
        # one send() takes a small request whole; sendall's chunking loop only when not
        sent = sock.send(payload)
        if sent < len(payload):
            sock.sendall(payload[sent:])
    except (BrokenPipeError, ConnectionResetError):
        raise _Stale from None
    reader = _Reader()
    parser = reader.parser = httptools.HttpResponseParser(reader)
    received = 0
    while not reader.done:
        try:
            data = sock.recv(_RECV_BYTES)
        except ConnectionResetError:
            if received == 0:
                raise _Stale from None
            raise
        if not data:
            if received == 0:
                raise _Stale
            if reader.headers_done and not reader.framed:
                break  # the body ends with the stream
            raise AnswerError("connection closed mid-answer")
        received += len(data)
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            raise AnswerError("the server switched protocols") from None
        except httptools.HttpParserError as exc:
            raise AnswerError(f"malformed answer: {exc}") from None
        if head_only and reader.headers_done:
            return parser.get_status_code(), b"", False
        if not reader.headers_done and received > MAX_HEAD_BYTES:
            raise AnswerError(f"answer head over {MAX_HEAD_BYTES // 1024} KiB")
        if reader.size > MAX_BODY_BYTES:
            raise AnswerError(f"answer body over {MAX_BODY_BYTES // (1024 * 1024)} MiB")
    keep = reader.done and reader.keep
    body = reader.chunks[0] if len(reader.chunks) == 1 else b"".join(reader.chunks)
    return parser.get_status_code(), body, keep
