"""Generated broken HTTP on raw sockets: the shop answers every request with a JSON 4xx (or its
normal answer), never a 5xx, never drops the answers of valid requests pipelined before a broken
one, never hangs a connection past its deadlines, logs no error, and its database stays
consistent.

A Hypothesis strategy takes a valid request to ``/order``, ``/pay`` or ``/admin/scale`` and
breaks one to three of its parts: the request line (methods, targets, versions), line endings,
headers (malformed names and values, conflicting framing, content codings, upgrades,
expectations), the body (JSON, gzip and deflate that are or are not compressed, truncated,
oversized, garbage) and framing (Content-Length short, long, absent or invalid; chunked that is
valid or not), optionally after valid pipelined requests. Capacity is ample, so any 5xx is a
bug, not emulated overload. 25 derandomized examples x 64 requests = 1,600 requests.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from rawhttp import Exchange, exchange
from test_shop_support import write_scenario, zero_time

from loadtests.shop import ShopConfig, check_db, running_shop
from loadtests.shop.protocol import ServerLimits
from sim.model import load_scenario

pytestmark = pytest.mark.slow

EXAMPLES = 25
PER_EXAMPLE = 64
LIMITS = ServerLimits(header_timeout_s=0.4, body_timeout_s=0.4, keepalive_timeout_s=0.4,
                      max_connections=4096)
"""Short deadlines so that requests that never complete are answered within a second."""
DEADLINE_S = 8.0
"""A connection still open without its answers after this long counts as a hang."""

TRIO = {"browse": zero_time(512), "order": zero_time(512), "payment": zero_time(512)}
VALID_BODIES = {
    b"/order": {"user_id": "u", "items": [{"item_id": 3, "qty": 2}]},
    b"/pay": {"order_id": "ord_x", "amount": 100},
    b"/admin/scale": {"service": "browse", "instances": 1},
}
PREFIX = b"GET /healthz HTTP/1.1\r\nHost: shop\r\n\r\n"


@dataclass(frozen=True)
class Hostile:
    """One generated request: its wire bytes, valid requests before it, whether it is HEAD."""

    wire: bytes
    prefix: int
    head: bool


methods = st.one_of(
    st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE", b"HEAD", b"OPTIONS", b"PATCH",
                     b"POST", b"POST", b"POST"]),
    st.sampled_from([b"get", b"G ET", b"", b"CONNECT", b"TRACE", b"\x16\x03\x01", b"POST\x00",
                     b"PRI", b"POST\t", b"\xff\xfe"]),
    st.binary(min_size=1, max_size=6),
)
targets = st.one_of(
    st.sampled_from([b"/order", b"/pay", b"/admin/scale"] * 3),
    st.sampled_from([b"/browse/1", b"/browse/x", b"/healthz", b"/orders/ord_1", b"/metrics",
                     b"*", b"http://shop/order", b"/%00", b"/..%2f..", b"", b"order",
                     b"/" + b"a" * 9000, b"/browse/%F0%9F", b"/order?x=%zz", b"/order#f",
                     b"//order", b"/pay\x00"]),
    st.binary(max_size=24).map(lambda raw: b"/" + raw),
)
versions = st.sampled_from([b"HTTP/1.1"] * 6 + [b"HTTP/1.0", b"HTTP/2.0", b"HTTP/9.9", b"",
                                                b"HTTP/1", b"http/1.1", b"HTTP/1.1 x",
                                                b"HTTP/1.1\x00", b"HTTP/1.10"])
GOOD_HEADERS = [b"Host: shop", b"Content-Type: application/json", b"Connection: close",
                b"Connection: keep-alive", b"X-Shadow-Traffic: 1", b"Idempotency-Key: k-1",
                b"Expect: 100-continue", b"Accept: */*", b"User-Agent: fuzz", b"Expect: weird"]
BAD_HEADERS = [b"NoColon", b"Bad Name: x", b": empty-name", b"X-Null: a\x00b",
               b"X-Long: " + b"a" * 9000, b" folded: continuation", b"Expect: weird",
               b"Upgrade: websocket", b"Connection: Upgrade", b"Sec-WebSocket-Key1: x",
               b"Host: a\rb", b"X-\xff: \xfe", b"X-Shadow-Traffic: maybe",
               b"Idempotency-Key: ", b"Content-Type: text/plain; charset=klingon",
               b"Transfer-Encoding: chunked, gzip", b"Transfer-Encoding: identity",
               b"Transfer-Encoding: gzip", b"Content-Length: 0", b"Content-Length: 3",
               b"Content-Length: -1", b"Content-Length: abc", b"Content-Length: 1, 2",
               b"Content-Length: 99999999999999999999", b"Content-Length: +5"]
CODINGS = [b"gzip", b"deflate", b"br", b"zstd", b"identity", b"gzip, gzip", b"x-gzip",
           b"GZIP", b"compress", b"", b"gzip;q=1"]
headers = st.lists(st.one_of(st.sampled_from(GOOD_HEADERS), st.sampled_from(BAD_HEADERS),
                             st.binary(max_size=20)), max_size=5)


@st.composite
def bodies(draw: st.DrawFn, target: bytes) -> tuple[bytes, bytes | None]:
    """A body and the ``Content-Encoding`` it is sent with (None: no such header)."""
    valid = json.dumps(VALID_BODIES.get(target, VALID_BODIES[b"/order"])).encode()
    kind = draw(st.sampled_from(["json", "json", "gzip", "deflate", "fake-gzip", "fake-deflate",
                                 "truncated-gzip", "garbage", "empty", "nan", "huge", "deep",
                                 "coded-any"]))
    if kind == "json":
        return valid, None
    if kind == "gzip":
        return gzip.compress(valid), b"gzip"
    if kind == "deflate":
        return zlib.compress(valid), b"deflate"
    if kind == "fake-gzip":
        return valid, b"gzip"
    if kind == "fake-deflate":
        return draw(st.binary(min_size=1, max_size=64)), b"deflate"
    if kind == "truncated-gzip":
        packed = gzip.compress(valid)
        return packed[:draw(st.integers(1, len(packed) - 1))], b"gzip"
    if kind == "garbage":
        return draw(st.binary(min_size=1, max_size=200)), None
    if kind == "empty":
        return b"", None
    if kind == "nan":
        return b'{"user_id": "u", "items": [{"item_id": NaN, "qty": Infinity}]}', None
    if kind == "huge":
        return gzip.compress(b" " * 200_000 + valid), b"gzip"  # 64 KiB limit, decoded
    if kind == "deep":
        depth = draw(st.integers(100, 5000))
        return b"[" * depth + b"]" * depth, None
    return draw(st.binary(max_size=64)), draw(st.sampled_from(CODINGS))


@st.composite
def framed(draw: st.DrawFn, body: bytes) -> tuple[list[bytes], bytes]:
    """Framing headers and the bytes that follow the head."""
    how = draw(st.sampled_from(["exact", "exact", "exact", "none", "short", "long", "chunked",
                                "chunked-bad", "chunked-open", "both"]))
    if how == "exact":
        return [b"Content-Length: %d" % len(body)], body
    if how == "none":
        return [], body
    if how == "short":
        cut = draw(st.integers(0, max(0, len(body) - 1)))
        return [b"Content-Length: %d" % cut], body
    if how == "long":
        return [b"Content-Length: %d" % (len(body) + draw(st.integers(1, 100)))], body
    chunks = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body) if body else b"0\r\n\r\n"
    if how == "chunked":
        return [b"Transfer-Encoding: chunked"], chunks
    if how == "chunked-bad":
        bad = draw(st.sampled_from([b"zz\r\nabc\r\n0\r\n\r\n", b"5\r\nabc\r\n0\r\n\r\n",
                                    b"-1\r\n\r\n", b"1;ext=\x00\r\na\r\n0\r\n\r\n",
                                    b"ffffffffffffffffff\r\n", b"3\nabc\n0\n\n"]))
        return [b"Transfer-Encoding: chunked"], bad
    if how == "chunked-open":
        return [b"Transfer-Encoding: chunked"], b"%x\r\n%s\r\n" % (len(body) + 1, body)
    return [b"Transfer-Encoding: chunked", b"Content-Length: %d" % len(body)], chunks


BREAKS = ("method", "target", "version", "eol", "headers", "body", "body", "framing")


@st.composite
def hostile_requests(draw: st.DrawFn) -> Hostile:
    """A valid request to a body endpoint with one to three of its parts broken."""
    breaks = draw(st.sets(st.sampled_from(BREAKS), min_size=1, max_size=3))
    method = draw(methods) if "method" in breaks else b"POST"
    target = draw(targets) if "target" in breaks else draw(st.sampled_from(list(VALID_BODIES)))
    version = draw(versions) if "version" in breaks else b"HTTP/1.1"
    eol = draw(st.sampled_from([b"\n", b"\r", b"\n\r"])) if "eol" in breaks else b"\r\n"
    body, coding = draw(bodies(target)) if "body" in breaks else (
        json.dumps(VALID_BODIES.get(target, VALID_BODIES[b"/order"])).encode(), None)
    framing, tail = draw(framed(body)) if "framing" in breaks else (
        [b"Content-Length: %d" % len(body)], body)
    lines = [b" ".join(part for part in (method, target, version) if part),
             b"Host: shop", b"Content-Type: application/json", b"Idempotency-Key: k-1",
             *framing, *(draw(headers) if "headers" in breaks else [])]
    if coding is not None:
        lines.append(b"Content-Encoding: " + coding)
    if draw(st.booleans()):
        lines.append(b"Connection: close")
    prefix = draw(st.integers(0, 2))
    wire = PREFIX * prefix + eol.join(lines) + eol + eol + tail
    return Hostile(wire, prefix, method == b"HEAD")


class _Errors(logging.Handler):
    """Collects every ERROR logged by the server stack (an unhandled exception is one)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def shop_files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    directory = tmp_path_factory.mktemp("wire-fuzz")
    yield write_scenario(directory, TRIO), directory / "shop.db"


@pytest.fixture(scope="module")
def logged_errors() -> Iterator[_Errors]:
    handler = _Errors()
    loggers = [logging.getLogger(name) for name in ("aiohttp", "asyncio", "peaksim")]
    for logger in loggers:
        logger.addHandler(handler)
    yield handler
    for logger in loggers:
        logger.removeHandler(handler)


def check(request: Hostile, got: Exchange) -> None:
    """The contract for one connection (see the module docstring)."""
    where = f"{request.wire[:300]!r} -> {[r.status for r in got.responses]} {got.rest[:200]!r}"
    assert got.closed or len(got.responses) > request.prefix, f"no answer: {where}"
    assert not got.rest, f"a partial response: {where}"
    for index, response in enumerate(got.responses):
        assert response.status < 500, f"5xx: {where} {response.body[:300]!r}"
        if index < request.prefix:
            assert response.status == 200 and response.json()["status"] == "ok", where
        elif response.status >= 400 and response.body:
            assert response.headers.get("content-type", "").startswith("application/json") \
                and b'"error"' in response.body, f"not a JSON error: {where} {response.body!r}"
        elif response.status >= 400:
            assert request.head and index == request.prefix, f"an empty error: {where}"


async def fire(batch: list[Hostile], db_path: Path, scenario_path: Path) -> list[Exchange]:
    scenario = load_scenario(scenario_path)
    async with running_shop(scenario, db_path, config=ShopConfig(limits=LIMITS)) as shop:
        gate = asyncio.Semaphore(32)

        async def one(request: Hostile) -> Exchange:
            heads = frozenset({request.prefix}) if request.head else frozenset()
            async with gate:
                return await exchange(shop.host, shop.port, [request.wire],
                                      expect=request.prefix + 1, heads=heads,
                                      deadline_s=DEADLINE_S)

        results = await asyncio.gather(*(one(r) for r in batch))
        after = await exchange(shop.host, shop.port, [PREFIX])  # still serving
        assert [r.status for r in after.responses] == [200]
        assert shop.shop.metrics.connections.open <= 1  # every hostile connection ended
    return results


@settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
          phases=[Phase.explicit, Phase.generate],  # a failing batch is reported whole
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(batch=st.lists(hostile_requests(), min_size=PER_EXAMPLE, max_size=PER_EXAMPLE))
def test_generated_broken_http_gets_json_4xx_and_no_5xx(
        batch: list[Hostile], shop_files: tuple[Path, Path], logged_errors: _Errors) -> None:
    scenario_path, db_path = shop_files
    results = asyncio.run(fire(batch, db_path, scenario_path))
    failures = []
    for request, got in zip(batch, results, strict=True):
        try:
            check(request, got)
        except AssertionError as exc:
            failures.append(str(exc))
    assert not failures, f"{len(failures)} of {len(batch)} failed, e.g.\n" + "\n".join(
        failures[:5])
    assert not logged_errors.records, [r.getMessage() for r in logged_errors.records[:3]]
    consistency = check_db(db_path)  # what went through is whole
    assert consistency.ok, consistency.violations
