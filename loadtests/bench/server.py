"""The bench's target: a minimal aiohttp server on loopback (every path answers small JSON).

    python -m loadtests.bench.server PORT

It does as little as an HTTP server can, so that the generator, not the server, is what the
bench measures.
"""

from __future__ import annotations

import gc
import sys

from aiohttp import web

BODY = b'{"ok":true,"id":"it-1","status":"ok"}'


async def _answer(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(body=BODY, content_type="application/json")


def main(port: int) -> None:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", _answer)
    # A steady target: full collections of the server's heap held every answer for ~0.2 s a
    # few times a run, which the bench would count against the generator (late sends while
    # all its users waited). Start-up objects are frozen; young ones are collected rarely.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 1000)
    print(f"listening on http://127.0.0.1:{port}", flush=True)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main(int(sys.argv[1]))
