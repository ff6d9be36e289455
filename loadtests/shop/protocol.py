"""The shop's HTTP connections: read deadlines, a connection cap and JSON protocol errors.

aiohttp answers what its parser rejects (a broken request line or header, a bad chunk size)
in plain text before any middleware runs, keeps an idle or half-sent connection for an hour,
accepts any number of connections, and drops the responses of valid requests that were
pipelined in the same read as a malformed one (aio-libs/aiohttp#3287 asks for a hook; there is
none). This module closes those gaps at the connection level:

- ``ShopRequestHandler`` (one per connection) answers protocol errors with the shop's JSON
  error body (``{"error": {"code", "message"}}``, 4xx), feeds the parser one header block at
  a time so requests that precede a malformed one are answered first, and enforces the header
  deadline: a request's line and headers must be complete ``header_timeout_s`` after its first
  byte (or after the connection opened); then it gets 408 and the connection is closed.
- ``ShopServer`` caps open connections at ``max_connections``: one over the cap is answered
  503 ``too_many_connections`` (``Retry-After: 1``) and closed without reaching the app.
- ``ShopRunner`` is ``web.AppRunner`` serving through ``ShopServer``.

The body deadline (``body_timeout_s`` from the end of the headers) is enforced where the body
is read, in the app's middleware (``loadtests.shop.app``). Idle keep-alive connections are
closed after ``keepalive_timeout_s`` (aiohttp's own keep-alive timer).
"""

from __future__ import annotations

import asyncio
import json
import re
import resource
import weakref
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError
from aiohttp.web_request import BaseRequest

from loadtests.shop.api import http_error_response
from loadtests.shop.metrics import ConnectionStats

LINGER_S = 2.0
"""After an error answer, how long the rest of an unread body is read and discarded so that
the client sees the answer rather than a connection reset."""

_FD_RESERVE = 64
"""File descriptors kept free for the database, logs and the listening socket."""


@dataclass(frozen=True)
class ServerLimits:
    """Per-connection limits of the shop's HTTP server (defaults: ``peaksim shop --help``)."""

    header_timeout_s: float = 10.0
    """A request's line and headers must arrive within this many seconds of its first byte
    (the first request's: of the connection opening); else 408 and the connection closes."""
    body_timeout_s: float = 10.0
    """A request's body must arrive within this many seconds of its headers; else 408."""
    keepalive_timeout_s: float = 75.0
    """An idle keep-alive connection (no request in progress) is closed after this long."""
    max_connections: int = 4096
    """Open connections above this are answered 503 ``too_many_connections`` and closed."""

    def __post_init__(self) -> None:
        for name in ("header_timeout_s", "body_timeout_s", "keepalive_timeout_s"):
            value = getattr(self, name)
            if not 0.0 < value <= 3600.0:
                raise ValueError(f"{name} must be in (0, 3600] seconds, got {value!r}")
        if not 1 <= self.max_connections <= 1_000_000:
            raise ValueError(f"max_connections must be 1..1000000, got {self.max_connections}")


def fit_connection_cap(requested: int) -> int:
    """``requested``, or fewer if the process cannot open that many files.

    Raises the soft ``RLIMIT_NOFILE`` up to the hard one when needed (as servers do at start);
    returns the cap that the final limit allows, keeping ``_FD_RESERVE`` descriptors free.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = requested + _FD_RESERVE
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass  # keep the current limit; the cap shrinks below
    if soft == resource.RLIM_INFINITY:
        return requested
    return max(1, min(requested, soft - _FD_RESERVE))


def error_body(code: str, message: str) -> bytes:
    """The JSON error body the shop uses for every error answer."""
    return json.dumps({"error": {"code": code, "message": message}},
                      separators=(",", ":")).encode()


def raw_error(status: int, reason: str, code: str, message: str,
              extra_headers: str = "") -> bytes:
    """A complete HTTP/1.1 error response that closes the connection (written directly to a
    transport, where no request object exists)."""
    body = error_body(code, message)
    head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n{extra_headers}\r\n")
    return head.encode("ascii") + body


def _snake(name: str) -> str:
    """``InvalidURLError`` -> ``invalid_url``; ``BadHttpMessage`` -> ``bad_http_message``."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()
    return words.removesuffix("_error")


class _ParserWatch:
    """Wraps aiohttp's request parser: records what it returned and turns any exception it
    raises (a URL that yarl refuses raises ``ValueError``) into ``BadHttpMessage``."""

    def __init__(self, parser: Any) -> None:
        self._parser = parser
        self.failed = False
        self.parsed = 0
        self.last_payload: Any = None

    def feed_data(self, data: bytes) -> Any:
        try:
            result = self._parser.feed_data(data)
        except Exception as exc:
            self.failed = True
            self.parsed += 1  # aiohttp queues one error answer for it
            if isinstance(exc, HttpProcessingError):
                raise
            raise BadHttpMessage(f"{type(exc).__name__}: {exc}") from exc
        messages = result[0]
        if messages:
            self.parsed += len(messages)
            self.last_payload = messages[-1][1]
        return result

    def in_body(self) -> bool:
        payload = self.last_payload
        return payload is not None and not payload.is_eof()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._parser, name)


class ShopRequestHandler(web.RequestHandler):
    """One HTTP connection of the shop (see the module docstring)."""

    def __init__(self, manager: ShopServer, *, limits: ServerLimits, stats: ConnectionStats,
                 **kwargs: Any) -> None:
        super().__init__(manager, keepalive_timeout=limits.keepalive_timeout_s,
                         lingering_time=LINGER_S, **kwargs)
        self._limits = limits
        self._stats = stats
        self._watch = _ParserWatch(self._parser)
        self._parser = self._watch
        self._finished = 0
        self._carry = b""
        self._header_timer: asyncio.TimerHandle | None = None
        self._header_bytes = False
        self._heads = 0

    # ---------------------------------------------------------------- connection lifecycle

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._stats.open += 1
        self._arm_header_timer()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._manager is not None:  # once only (aiohttp clears it below)
            self._stats.open -= 1
        self._cancel_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not data or self._watch.failed:
            if not data:
                super().data_received(data)  # aiohttp re-parses its buffer this way
            return
        for piece in self._pieces(data):
            was_in_body = self._watch.in_body()
            super().data_received(piece)
            if self._watch.failed:
                self._cancel_header_timer()
                if self._watch.in_body():  # its handler must not wait for the rest
                    self._watch.last_payload.set_exception(
                        RequestPayloadError("the request body breaks HTTP framing"))
                return
            self._track_headers(was_in_body)

    def _pieces(self, data: bytes) -> list[bytes]:
        """``data`` cut right after each end of a header block (``\\r\\n\\r\\n``, also one
        that started in the previous read), so that the parser completes at most one request
        head per call and an error later in ``data`` cannot discard it."""
        carry = self._carry
        window = carry + data
        self._carry = window[-3:]
        cuts = []
        start = window.find(b"\r\n\r\n")
        while start != -1:
            cut = start + 4 - len(carry)
            if 0 < cut < len(data):
                cuts.append(cut)
            start = window.find(b"\r\n\r\n", start + 1)
        if not cuts:
            return [data]
        bounds = [0, *cuts, len(data)]
        return [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if b > a]

    def _track_headers(self, was_in_body: bool) -> None:
        """Keep the header deadline armed while a request head is incomplete.

        A piece ends where a head ends (see ``_pieces``), so a head completed in it leaves no
        head bytes behind. Bytes that follow the end of a body in the same piece are not seen
        as head bytes: that connection is bounded by the keep-alive timeout instead.
        """
        if self._watch.parsed > self._heads:
            self._heads = self._watch.parsed
            self._header_bytes = False
            self._cancel_header_timer()
        elif not was_in_body and not self._watch.in_body():
            self._header_bytes = True
            self._arm_header_timer()

    # ---------------------------------------------------------------- deadlines

    def _arm_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self._loop.call_later(self._limits.header_timeout_s,
                                                       self._header_timeout)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if self._watch.parsed > self._finished:
            # A response is still being produced: finish it, then close (a half-sent request
            # behind it will never be read).
            self._stats.events["header_timeout"] += 1
            self.close()
            return
        if self._header_bytes:
            self._stats.events["header_timeout"] += 1
            seconds = f"{self._limits.header_timeout_s:g}"
            transport.write(raw_error(408, "Request Timeout", "header_timeout",
                                      f"request line and headers not received within "
                                      f"{seconds} s"))
        else:
            self._stats.events["idle_timeout"] += 1
        self.force_close()

    async def finish_response(self, request: BaseRequest, resp: web.StreamResponse,
                              start_time: float | None) -> tuple[web.StreamResponse, bool]:
        if isinstance(resp, web.HTTPException) and resp.status >= 400:
            # raised before the app's middleware could answer it (an unknown ``Expect``)
            resp = http_error_response(resp)
        try:
            return await super().finish_response(request, resp, start_time)
        finally:
            self._finished += 1

    # ---------------------------------------------------------------- error answers

    def log_exception(self, *args: Any, **kw: Any) -> None:
        # aiohttp re-raises a body's parse error while discarding the body after the answer
        # ("Unhandled exception"): the client's mistake, already answered with a 4xx.
        exc = kw.get("exc_info")
        if isinstance(exc, RequestPayloadError | ConnectionError):
            self.log_debug(*args, **kw)
        else:
            super().log_exception(*args, **kw)

    def handle_error(self, request: BaseRequest, status: int = 500,
                     exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        """The JSON answer to what aiohttp could not parse (4xx) or could not handle (5xx)."""
        if request.writer.output_size > 0:
            raise ConnectionError("a response was already started: no room for an error")
        if isinstance(exc, ConnectionError):
            self.log_debug("the client went away: %s", exc)
            code, text = "client_gone", "connection lost"
        elif 400 <= status < 500:
            self.log_debug("refused a malformed request: %s", exc)
            self._stats.events["bad_request"] += 1
            code = _snake(type(exc).__name__) if isinstance(exc, HttpProcessingError) \
                else "bad_request"
            text = (exc.message if isinstance(exc, HttpProcessingError) else message) or ""
            text = " ".join(str(text).split())[:200] or "malformed HTTP request"
        else:
            self.log_exception("error handling a request", exc_info=exc)
            code, text = ("timeout", "no response in time") if status == 504 \
                else ("internal_error", "internal error")
        response = web.Response(body=error_body(code, text), status=status,
                                content_type="application/json")
        response.force_close()
        return response


class _Refusal(asyncio.Protocol):
    """A connection over the cap: answered 503 at once, then closed."""

    def __init__(self, server: ShopServer) -> None:
        self._server = server
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._server.refusals.add(self)
        cap = self._server.limits.max_connections
        transport.write(raw_error(503, "Service Unavailable", "too_many_connections",
                                  f"the shop serves at most {cap} connections at once",
                                  "Retry-After: 1\r\n"))
        if transport.can_write_eof():
            transport.write_eof()
        # The client closes on seeing the answer; one that does not is cut off.
        self._timer = asyncio.get_running_loop().call_later(LINGER_S, transport.abort)

    def data_received(self, data: bytes) -> None:
        pass  # its request is not read

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._server.refusals.discard(self)

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()


class ShopServer(web.Server):
    """``web.Server`` whose connections are ``ShopRequestHandler`` and capped in number."""

    def __init__(self, handler: Any, *, limits: ServerLimits, stats: ConnectionStats,
                 loop: asyncio.AbstractEventLoop, **kwargs: Any) -> None:
        super().__init__(handler, loop=loop, **kwargs)
        self.limits = limits
        self.stats = stats
        self.refusals: set[_Refusal] = set()
        self._event_loop = loop
        self._handler_kwargs = {k: v for k, v in kwargs.items()
                                if k not in ("request_factory", "handler_cancellation")}
        self._live: weakref.WeakSet[ShopRequestHandler] = weakref.WeakSet()

    def __call__(self) -> Any:
        if len(self._live) >= self.limits.max_connections:
            self.stats.events["refused"] += 1
            return _Refusal(self)
        handler = ShopRequestHandler(self, loop=self._event_loop, limits=self.limits,
                                     stats=self.stats, **self._handler_kwargs)
        self._live.add(handler)
        return handler

    def connection_lost(self, handler: web.RequestHandler,
                        exc: BaseException | None = None) -> None:
        self._live.discard(handler)  # type: ignore[arg-type]
        super().connection_lost(handler, exc)

    async def shutdown(self, timeout: float | None = None) -> None:
        for refusal in list(self.refusals):
            refusal.abort()
        await super().shutdown(timeout)


class ShopRunner(web.AppRunner):
    """``web.AppRunner`` serving the app through ``ShopServer`` (same options otherwise)."""

    def __init__(self, app: web.Application, *, limits: ServerLimits, stats: ConnectionStats,
                 access_log: Any = None, **kwargs: Any) -> None:
        super().__init__(app, access_log=access_log, **kwargs)
        self._limits = limits
        self._stats = stats
        self._access_log = access_log

    async def _make_server(self) -> web.Server:
        base = await super()._make_server()  # freezes the app and runs its startup hooks
        return ShopServer(base.request_handler, limits=self._limits, stats=self._stats,
                          loop=asyncio.get_running_loop(),
                          request_factory=base.request_factory,
                          handler_cancellation=base.handler_cancellation,
                          access_log=self._access_log)
