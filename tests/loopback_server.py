"""Test helper: an aiohttp application served on an ephemeral 127.0.0.1 port from a thread."""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from aiohttp import web


@contextmanager
def serve_in_thread(make_app: Callable[[], web.Application],
                    ssl_context: ssl.SSLContext | None = None) -> Iterator[str]:
    """Serve ``make_app()`` (built inside the server's own event loop) until the block ends;
    yields its base URL (``http://`` or, with ``ssl_context``, ``https://127.0.0.1:PORT``)."""
    ready = threading.Event()
    state: dict[str, Any] = {}

    async def serve() -> None:
        runner = web.AppRunner(make_app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
        await site.start()
        stop = asyncio.Event()
        scheme = "https" if ssl_context is not None else "http"
        state["url"] = f"{scheme}://127.0.0.1:{runner.addresses[0][1]}"
        state["stop"] = (asyncio.get_running_loop(), stop)
        ready.set()
        await stop.wait()
        await runner.cleanup()

    thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    thread.start()
    assert ready.wait(10.0), "the loopback server did not start within 10 s"
    try:
        yield str(state["url"])
    finally:
        loop, stop = state["stop"]
        loop.call_soon_threadsafe(stop.set)
        thread.join(10.0)
