"""The shop's connections under hostile clients: fixed cases on raw sockets.

Content codings that do not decode, protocol errors answered in JSON, pipelined requests before
a malformed one, the header, body and keep-alive deadlines, slowloris clients and the connection
cap. Deadlines are set short here (fractions of a second) so the tests wait little; every
wait is bounded by ``rawhttp.exchange``'s deadline.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from rawhttp import exchange
from test_shop_support import prometheus_value, run, write_scenario, zero_time

from loadtests.shop import ShopConfig, ShopHandle, check_db, running_shop
from loadtests.shop.protocol import LINGER_S, ServerLimits, fit_connection_cap
from sim.model import load_scenario

TRIO = {"browse": zero_time(), "order": zero_time(), "payment": zero_time()}
ORDER = json.dumps({"user_id": "u", "items": [{"item_id": 2, "qty": 1}]}).encode()
PAY = json.dumps({"order_id": "ord_missing", "amount": 1}).encode()
SCALE = json.dumps({"service": "browse", "instances": 1}).encode()
HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: s\r\n\r\n"


def post(path: str, body: bytes, *headers: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: s", f"Content-Length: {len(body)}",
             "Idempotency-Key: k", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@asynccontextmanager
async def shop(tmp_path: Path, limits: ServerLimits | None = None) -> AsyncIterator[ShopHandle]:
    scenario = load_scenario(write_scenario(tmp_path, TRIO))
    config = ShopConfig(limits=limits or ServerLimits())
    async with running_shop(scenario, tmp_path / "shop.db", config=config) as handle:
        yield handle


@pytest.mark.parametrize("path,body", [("/order", ORDER), ("/pay", PAY), ("/admin/scale", SCALE)])
def test_content_codings_that_do_not_decode_are_4xx(tmp_path: Path, path: str,
                                                    body: bytes) -> None:
    cases = [
        ("gzip", body, 400, "bad_content_encoding"),                   # not gzip at all
        ("gzip", gzip.compress(body)[:12], 400, "malformed_json"),    # cut short
        ("deflate", b"\x00\x01garbage", 400, "bad_content_encoding"),
        ("br", body, 415, "unsupported_content_encoding"),
        ("gzip, gzip", gzip.compress(gzip.compress(body)), 415, "unsupported_content_encoding"),
        ("x-unknown", body, 415, "unsupported_content_encoding"),
        ("gzip", gzip.compress(b" " * 100_000 + body), 413, "request_entity_too_large"),
    ]

    async def main() -> None:
        async with shop(tmp_path) as handle:
            for coding, payload, status, code in cases:
                got = await exchange(handle.host, handle.port,
                                     [post(path, payload, f"Content-Encoding: {coding}")])
                (response,) = got.responses
                assert (response.status, response.json()["error"]["code"]) == (status, code), (
                    coding, response.body)
                if status == 415:
                    assert response.headers["accept-encoding"] == "identity, gzip, deflate"
            # The codings that are supported work.
            for coding, packed in (("gzip", gzip.compress(body)), ("deflate", zlib.compress(body))):
                got = await exchange(handle.host, handle.port,
                                     [post(path, packed, f"Content-Encoding: {coding}")])
                assert got.responses[0].status in (201, 202, 404), got.responses[0].body

    run(main)


PROTOCOL_ERRORS = [
    (b"NOT HTTP AT ALL\r\n\r\n", "bad_http_method"),
    (b"GET /healthz HTTP/9.9\r\n\r\n", "bad_status_line"),
    (b"POST /order HTTP/1.1\r\nHost: s\r\nContent-Length: -5\r\n\r\n", "bad_http_message"),
    (b"POST /order HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
     "bad_http_message"),
    (b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\n\r\n", "line_too_long"),
    (b"GET / HTTP/1.1\r\nX: " + b"v" * 20_000 + b"\r\n\r\n", "line_too_long"),
    (b"GET / HTTP/1.1\r\n" + b"X-A: 1\r\n" * 200 + b"\r\n", "bad_http_message"),
    (b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", "bad_http_message"),
    (b"GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n", "bad_http_message"),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", "bad_http_method"),
    (b"POST /order HTTP/1.1\r\nHost: s\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
     "malformed_body"),
    (b"POST /order HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", "bad_http_message"),
    (b"GET http://[::1 HTTP/1.1\r\n\r\n", "invalid_url"),
]


def test_protocol_errors_are_json_4xx_and_counted(tmp_path: Path) -> None:
    async def main() -> None:
        async with shop(tmp_path) as handle:
            for payload, code in PROTOCOL_ERRORS:
                got = await exchange(handle.host, handle.port, [payload])
                (response,) = got.responses
                assert 400 <= response.status < 500, payload[:60]
                assert response.headers["content-type"].startswith("application/json")
                assert response.json()["error"]["code"] == code, (payload[:60], response.body)
                assert got.closed  # nothing after a broken request can be trusted
            events = handle.shop.metrics.connections.events
            assert events["bad_request"] >= len(PROTOCOL_ERRORS) - 1  # one is a body error
            assert (await exchange(handle.host, handle.port, [HEALTHZ])).responses[0].status == 200

    run(main)


def test_errors_aiohttp_raises_outside_the_app_are_json_too(tmp_path: Path) -> None:
    cases = [
        (post("/order", ORDER, "Expect: weird"), 417, "expectation_failed"),
        (b"GET /nowhere HTTP/1.1\r\nHost: s\r\nExpect: 12-monkeys\r\n\r\n", 417,
         "expectation_failed"),
        (b"GET /nowhere HTTP/1.1\r\nHost: s\r\n\r\n", 404, "not_found"),
        (b"DELETE /order HTTP/1.1\r\nHost: s\r\n\r\n", 405, "method_not_allowed"),
    ]

    async def main() -> None:
        async with shop(tmp_path) as handle:
            for payload, status, code in cases:
                (response,) = (await exchange(handle.host, handle.port, [payload])).responses
                assert response.headers["content-type"].startswith("application/json")
                assert (response.status, response.json()["error"]["code"]) == (status, code)
            got = await exchange(handle.host, handle.port,
                                 [post("/order", ORDER, "Expect: 100-continue")])
            assert [r.status for r in got.responses] == [201]  # after its 100 Continue

    run(main)


def test_valid_requests_pipelined_before_a_malformed_one_are_answered(tmp_path: Path) -> None:
    valid = [HEALTHZ, b"GET /browse/7 HTTP/1.1\r\nHost: s\r\n\r\n", post("/order", ORDER)]
    wire = b"".join(valid) + b"BAD\x00REQUEST / HTTP/1.1\r\n\r\n"

    async def main() -> None:
        async with shop(tmp_path) as handle:
            got = await exchange(handle.host, handle.port, [wire], expect=4)
            assert [r.status for r in got.responses] == [200, 200, 201, 400]
            assert got.responses[3].json()["error"]["code"] == "bad_http_method"
            # Whatever the reads look like: the request split at every few bytes, including
            # inside the blank line that ends a head.
            for cut in range(3, len(wire), 11):
                got = await exchange(handle.host, handle.port, [wire[:cut], wire[cut:]],
                                     expect=4, pause_s=0.01)
                assert [r.status for r in got.responses] == [200, 200, 201, 400], cut
        consistency = check_db(tmp_path / "shop.db")
        assert consistency.ok and consistency.counts["orders"] == 1 + len(range(3, len(wire), 11))

    run(main)


def test_header_body_and_idle_deadlines(tmp_path: Path) -> None:
    limits = ServerLimits(header_timeout_s=0.3, body_timeout_s=0.3, keepalive_timeout_s=0.5)

    async def main() -> None:
        async with shop(tmp_path, limits) as handle:
            host, port = handle.host, handle.port
            half_head = await exchange(host, port, [b"GET /healthz HTTP/1.1\r\nHost: s\r\n"])
            assert [r.status for r in half_head.responses] == [408] and half_head.closed
            assert half_head.responses[0].json()["error"]["code"] == "header_timeout"
            half_body = await exchange(host, port, [post("/order", ORDER)[:-5]],
                                       quiet_s=LINGER_S + 1.0)
            assert [r.status for r in half_body.responses] == [408] and half_body.closed
            assert half_body.responses[0].json()["error"]["code"] == "body_timeout"
            silent = await exchange(host, port, [b""])
            assert silent.closed and not silent.responses  # never sent a byte: just closed
            idle = await exchange(host, port, [HEALTHZ], quiet_s=5.0)
            assert [r.status for r in idle.responses] == [200] and idle.closed
            # The next request's head arriving after a body, split over reads, is still timed.
            trailing = await exchange(host, port, [HEALTHZ + b"GET /heal", b"thz HT"],
                                      expect=2, pause_s=0.1)
            assert [r.status for r in trailing.responses] == [200, 408]
            events = handle.shop.metrics.connections.events
            assert (events["header_timeout"], events["body_timeout"]) == (2, 1)
            text = handle.shop.metrics.render([], 0.0)
            assert prometheus_value(text, "peaksim_shop_connection_events_total",
                                    event="body_timeout") == 1

    run(main)


def test_slowloris_clients_are_cut_off_and_healthz_is_served_meanwhile(tmp_path: Path) -> None:
    limits = ServerLimits(header_timeout_s=1.0, body_timeout_s=1.0)
    head = b"GET /healthz HTTP/1.1\r\nHost: s\r\nX-Slow: " + b"a" * 40

    async def main() -> None:
        async with shop(tmp_path, limits) as handle:
            host, port = handle.host, handle.port
            # 40 clients sending their head one byte every 50 ms (it would take 3 s).
            slow = [asyncio.create_task(exchange(host, port, [bytes([b]) for b in head],
                                                 pause_s=0.05, deadline_s=8.0))
                    for _ in range(40)]
            await asyncio.sleep(0.3)
            assert handle.shop.metrics.connections.open >= 40
            answers = [await exchange(host, port, [HEALTHZ]) for _ in range(5)]
            assert all([r.status for r in a.responses] == [200] for a in answers)
            cut = await asyncio.gather(*slow)
            for got in cut:
                assert got.closed and [r.status for r in got.responses] in ([408], [])
            assert handle.shop.metrics.connections.events["header_timeout"] == 40
            assert handle.shop.metrics.connections.open == 0

    run(main)


def test_connections_over_the_cap_get_503_until_one_closes(tmp_path: Path) -> None:
    limits = ServerLimits(max_connections=8, header_timeout_s=30.0)

    async def main() -> None:
        async with shop(tmp_path, limits) as handle:
            host, port = handle.host, handle.port
            idle = [await asyncio.open_connection(host, port) for _ in range(8)]
            await asyncio.sleep(0.05)
            over = await exchange(host, port, [HEALTHZ])
            (response,) = over.responses
            assert response.status == 503 and response.headers["retry-after"] == "1"
            assert response.json()["error"]["code"] == "too_many_connections"
            assert over.closed
            _, writer = idle.pop()
            writer.close()
            await writer.wait_closed()
            await asyncio.sleep(0.05)
            again = await exchange(host, port, [HEALTHZ])
            assert [r.status for r in again.responses] == [200]
            assert handle.shop.metrics.connections.events["refused"] == 1
            for _, writer in idle:
                writer.close()

    run(main)


def test_the_cap_fits_the_open_file_limit() -> None:
    assert fit_connection_cap(100) == 100
    assert 1 <= fit_connection_cap(10**9) < 10**9  # no process opens a billion files
    with pytest.raises(ValueError, match="max_connections"):
        ServerLimits(max_connections=0)
    with pytest.raises(ValueError, match="header_timeout_s"):
        ServerLimits(header_timeout_s=0.0)
