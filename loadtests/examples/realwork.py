"""A target whose capacity is physical: every request does real CPU work in a fixed pool.

``GET /browse/{item_id}`` hashes (SHA-256, chained) ``iterations`` times in a pool of
``workers`` processes (or threads), so how many requests per second it serves depends on the
machine, not on a scenario. Requests wait FCFS for a free worker (the executor's queue); with
``max_queue`` set, a request finding more than ``workers + max_queue`` in the service is refused
at once with 503. ``GET /healthz`` answers without touching the pool (the trivial request that
calibration uses for the round trip). Listens on 127.0.0.1 only.

Threads share the GIL: chained hashing of 32-byte blocks holds it, so a thread pool serves
about one core's worth whatever its size; a process pool is the honest "N workers". Run::

    python -m loadtests.examples.realwork --iterations 20000 --workers 1 --port 8090
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import signal
import sys
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor

from aiohttp import web

MAX_ITERATIONS = 10_000_000
MAX_WORKERS = 64


def hash_work(item_id: int, iterations: int) -> str:
    """Chained SHA-256 of ``item_id``, ``iterations`` times (pure CPU, holds the GIL)."""
    digest = item_id.to_bytes(8, "big")
    for _ in range(iterations):
        digest = hashlib.sha256(digest).digest()
    return digest.hex()


class RealWork:
    """The application state: the pool, its size and the requests inside the service."""

    def __init__(self, executor: Executor, workers: int, iterations: int,
                 max_queue: int | None) -> None:
        self.executor = executor
        self.workers = workers
        self.iterations = iterations
        self.max_queue = max_queue
        self.in_service = 0

    async def browse(self, request: web.Request) -> web.Response:
        try:
            item_id = int(request.match_info["item_id"])
        except ValueError:
            return web.json_response({"error": "item_id must be an integer"}, status=400)
        if not 0 <= item_id < 2**63:
            return web.json_response({"error": "item_id out of range"}, status=400)
        if self.max_queue is not None and self.in_service >= self.workers + self.max_queue:
            return web.json_response({"error": "overloaded"}, status=503,
                                     headers={"Retry-After": "1"})
        self.in_service += 1
        try:
            loop = asyncio.get_running_loop()
            digest = await loop.run_in_executor(self.executor, hash_work, item_id,
                                                self.iterations)
        finally:
            self.in_service -= 1
        return web.json_response({"item_id": item_id, "digest": digest})

    async def healthz(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "in_service": self.in_service,
                                  "workers": self.workers})


def application(state: RealWork) -> web.Application:
    app = web.Application()
    app.router.add_get("/browse/{item_id}", state.browse)
    app.router.add_get("/healthz", state.healthz)
    return app


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8090, help="TCP port (0: any free)")
    parser.add_argument("--iterations", type=int, default=20_000,
                        help="SHA-256 rounds per request")
    parser.add_argument("--workers", type=int, default=1, help="pool size")
    parser.add_argument("--pool", choices=("process", "thread"), default="process")
    parser.add_argument("--max-queue", type=int, default=None,
                        help="waiting requests beyond which new ones get 503 (default: none)")
    args = parser.parse_args(argv)
    if not 1 <= args.iterations <= MAX_ITERATIONS:
        parser.error(f"--iterations must be 1..{MAX_ITERATIONS}")
    if not 1 <= args.workers <= MAX_WORKERS:
        parser.error(f"--workers must be 1..{MAX_WORKERS}")
    if not 0 <= args.port <= 65535:
        parser.error("--port must be 0..65535")
    if args.max_queue is not None and args.max_queue < 0:
        parser.error("--max-queue must be >= 0")
    return args


async def serve(args: argparse.Namespace) -> None:
    executor: Executor = (ProcessPoolExecutor(args.workers) if args.pool == "process"
                          else ThreadPoolExecutor(args.workers))
    # Start every worker now, so the first requests do not pay for process start-up.
    await asyncio.gather(*(asyncio.get_running_loop().run_in_executor(executor, hash_work, i, 1)
                           for i in range(args.workers)))
    state = RealWork(executor, args.workers, args.iterations, args.max_queue)
    runner = web.AppRunner(application(state), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", args.port)
    await site.start()
    port = runner.addresses[0][1]
    print(f"realwork listening on http://127.0.0.1:{port}", flush=True)
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        executor.shutdown(cancel_futures=True)


def main(argv: list[str] | None = None) -> None:
    args = parse(sys.argv[1:] if argv is None else argv)
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
