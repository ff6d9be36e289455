"""The load generator's HTTP/1.1 pool (loadtests/http1.py through loadtests/target.py) against
a scripted server on loopback: keep-alive reuse, a kept connection the server closed, framing
(length, chunked, until close), bounds, timeouts, what is refused before sending, and the
connection cap."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import gevent
import pytest

from loadtests import http1
from loadtests.target import Target, TlsOptions

Script = Callable[[socket.socket, bytes, int], bool]
"""Answers one request (its head, its index on the connection); True: keep the connection."""

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}"


class ScriptedServer:
    """A thread per connection; counts connections, requests and the most open at once."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self.open_now = 0
        self.open_most = 0
        self.requests: list[bytes] = []
        self.lock = threading.Lock()
        self.running = True

    def serve(self) -> None:
        self.listener.settimeout(0.2)
        while self.running:
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self.lock:
                self.connections += 1
                self.open_now += 1
                self.open_most = max(self.open_most, self.open_now)
            threading.Thread(target=self._connection, args=(conn,), daemon=True).start()

    def _connection(self, conn: socket.socket) -> None:
        buffer = b""
        index = 0
        conn.settimeout(5.0)
        try:
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, buffer = buffer.split(b"\r\n\r\n", 1)
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                while len(buffer) < length:
                    buffer += conn.recv(65536)
                buffer = buffer[length:]
                with self.lock:
                    self.requests.append(head)
                if not self.script(conn, head, index):
                    return
                index += 1
        except OSError:
            return
        finally:
            conn.close()
            with self.lock:
                self.open_now -= 1


@contextmanager
def scripted(script: Script) -> Iterator[ScriptedServer]:
    server = ScriptedServer(script)
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.running = False
        thread.join(timeout=2.0)
        server.listener.close()


def _target(server: ScriptedServer, sockets: int = 4, timeout_s: float = 5.0) -> Target:
    return Target(f"http://127.0.0.1:{server.port}", TlsOptions(), timeout_s, sockets=sockets)


def _answer(raw: bytes, keep: bool = True) -> Script:
    def script(conn: socket.socket, _head: bytes, _index: int) -> bool:
        conn.sendall(raw)
        return keep

    return script


def test_a_kept_connection_serves_every_request() -> None:
    with scripted(_answer(OK)) as server:
        target = _target(server)
        answers = [target.send("POST", "/orders", {"X-Key": "k"}, b'{"a":1}') for _ in range(20)]
        assert [a.status for a in answers] == [200] * 20 and answers[0].content == b"{}"
        assert server.connections == 1 and len(server.requests) == 20
        assert server.requests[0].startswith(b"POST /orders HTTP/1.1\r\nHost: 127.0.0.1:")
        assert b"\r\nContent-Length: 7" in server.requests[0]
        target.close()


def test_a_connection_the_server_closed_is_replaced_and_the_request_sent_once() -> None:
    # the server answers once per connection, then closes it (a keep-alive timeout)
    with scripted(_answer(OK, keep=False)) as server:
        target = _target(server)
        for _ in range(5):
            gevent.sleep(0.05)  # the close reaches the client's kept socket first
            assert target.send("POST", "/pay", {}, b"x").status == 200
        assert len(server.requests) == 5 and server.connections == 5
        target.close()


@pytest.mark.parametrize(("raw", "body"), [
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
     b"abcde"),
    (b"HTTP/1.1 201 Created\r\nConnection: close\r\n\r\nuntil the end", b"until the end"),
])
def test_bodies_framed_by_chunks_or_by_the_end_of_the_stream(raw: bytes, body: bytes) -> None:
    keep = b"chunked" in raw
    with scripted(_answer(raw, keep=keep)) as server:
        target = _target(server)
        first, second = (target.send("GET", "/x", {}, None) for _ in range(2))
        assert first.content == body and second.content == body
        assert server.connections == (1 if keep else 2)
        target.close()


def test_head_answers_have_no_body_and_do_not_confuse_the_next_request() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
    with scripted(_answer(head, keep=False)) as server:
        target = _target(server)
        answer = target.send("HEAD", "/x", {}, None)
        assert answer.status == 200 and answer.content == b""
        target.close()
    with scripted(_answer(OK)) as server:
        assert _target(server).send("GET", "/x", {}, None).status == 200


@pytest.mark.parametrize(("raw", "reason"), [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", "answer: connection closed"),
    (b"HTTTP/9 abc\r\n\r\n", "answer: malformed answer"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + b"x" * 5000, "answer: answer body"),
])
def test_unreadable_answers_are_failed_attempts_with_a_reason(
        raw: bytes, reason: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http1, "MAX_BODY_BYTES", 1000)
    with scripted(_answer(raw, keep=False)) as server:
        answer = _target(server).send("GET", "/x", {}, None)
        assert answer.status == 0 and answer.error is not None
        assert answer.error.startswith(reason), answer.error


def test_a_silent_server_is_a_timeout_after_the_requests_own_limit() -> None:
    def silent(_conn: socket.socket, _head: bytes, _index: int) -> bool:
        threading.Event().wait(1.0)
        return False

    with scripted(silent) as server:
        target = _target(server, timeout_s=5.0)
        started = gevent.get_hub().loop.now()
        answer = target.send("GET", "/slow", {}, None, timeout_s=0.2)
        assert answer.timed_out and answer.status == 0 and answer.error == "timeout"
        assert gevent.get_hub().loop.now() - started < 1.0
        assert target.pool._idle == []  # the interrupted connection is not kept
        target.close()


def test_what_cannot_be_sent_is_refused_before_anything_is_written() -> None:
    with scripted(_answer(OK)) as server:
        target = _target(server)
        broken = target.send("GET", "/x", {"X-Id": "1\r\nX-Injected: yes"}, None)
        assert broken.status == 0 and broken.error is not None and "line break" in broken.error
        latin = target.send("GET", "/x", {"X-Name": "货物"}, None)
        assert latin.status == 0 and latin.error == "request: a header is not Latin-1 text"
        assert server.requests == []
        assert target.send("GET", "/items/a b/货", {}, None).status == 200
        assert server.requests[0].startswith(
            b"GET /items/a%20b/%E8%B4%A7 HTTP/1.1\r\n")
        target.close()


def test_the_pool_never_opens_more_connections_than_its_bound() -> None:
    def slowly(conn: socket.socket, _head: bytes, _index: int) -> bool:
        threading.Event().wait(0.02)
        conn.sendall(OK)
        return True

    with scripted(slowly) as server:
        target = _target(server, sockets=2)
        jobs = [gevent.spawn(target.send, "GET", f"/{i}", {}, None) for i in range(12)]
        gevent.joinall(jobs, timeout=10)
        assert [job.value.status for job in jobs] == [200] * 12
        assert server.open_most <= 2 and target.pool.opened == 2
        target.close()
