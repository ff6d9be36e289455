"""Raw-socket HTTP for the hostile-input tests of the shop (helpers, no tests here).

``exchange`` writes bytes to a fresh connection and reads until the server closes it, or
until the expected number of final responses has arrived and the line stays quiet, or until
a deadline; ``parse_responses`` splits what came back into responses (1xx skipped).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class RawResponse:
    """One HTTP response as it came over the wire."""

    version: bytes
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Exchange:
    """What a connection returned: the responses, whether the server closed it, leftovers."""

    responses: list[RawResponse] = field(default_factory=list)
    closed: bool = False
    rest: bytes = b""
    seconds: float = 0.0


def parse_responses(data: bytes, heads: frozenset[int] = frozenset()) -> tuple[
        list[RawResponse], bytes]:
    """Complete responses at the start of ``data`` and the unparsed rest. The responses at the
    (0-based) indices in ``heads`` answer HEAD requests: they have no body."""
    responses: list[RawResponse] = []
    while True:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            return responses, data
        lines = data[:end].split(b"\r\n")
        version, _, rest = lines[0].partition(b" ")
        status = int(rest[:3])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.decode("latin-1").strip().lower()] = value.decode("latin-1").strip()
        bodiless = status < 200 or (  # a HEAD answer, unless the request did not parse
            len(responses) in heads and not data[end + 4:].startswith(b"{"))
        length = 0 if bodiless else int(headers.get("content-length", "0"))
        if len(data) < end + 4 + length:
            return responses, data
        if status >= 200:
            responses.append(RawResponse(version, status, headers,
                                         data[end + 4:end + 4 + length]))
        data = data[end + 4 + length:]


async def exchange(host: str, port: int, chunks: list[bytes], expect: int = 1,
                   heads: frozenset[int] = frozenset(), quiet_s: float = 0.2,
                   deadline_s: float = 10.0, pause_s: float = 0.0) -> Exchange:
    """Send ``chunks`` (``pause_s`` apart) on a new connection and collect the answers."""
    started = time.monotonic()
    reader, writer = await asyncio.open_connection(host, port)
    result = Exchange()
    data = b""
    try:
        for index, chunk in enumerate(chunks):
            if index and pause_s:
                await asyncio.sleep(pause_s)
            writer.write(chunk)
            try:
                await writer.drain()
            except ConnectionError:
                break
        while time.monotonic() - started < deadline_s:
            responses, _ = parse_responses(data, heads)
            wait_s = deadline_s - (time.monotonic() - started)
            if len(responses) >= expect:
                wait_s = min(wait_s, quiet_s)
            try:
                chunk = await asyncio.wait_for(reader.read(65536), max(wait_s, 0.001))
            except TimeoutError:
                if len(responses) >= expect:
                    break
                continue
            except ConnectionError:
                result.closed = True
                break
            if not chunk:
                result.closed = True
                break
            data += chunk
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    result.responses, result.rest = parse_responses(data, heads)
    result.seconds = time.monotonic() - started
    return result
