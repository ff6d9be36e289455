"""Running the shop: listen, serve until told to stop, shut down without losing a commit.

``running_shop`` is the async context manager used by tests and by anything that embeds the
shop (it yields the ``Shop`` and its URL); ``run_shop`` is the blocking entry point of
``peaksim shop``: it serves until SIGINT or SIGTERM, then stops accepting connections, lets
in-flight requests finish (up to ``ShopConfig.shutdown_timeout_s``), waits for the last SQLite
commit and closes the database (its WAL is checkpointed into the main file).

Background coroutines (``background``: e.g. the live autoscaler) get the ``Shop`` once it
listens and are cancelled before shutdown; one that returns stops the shop, one that fails
stops it too and its error is raised from ``run_shop``.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from loadtests.shop.app import Shop, ShopConfig
from loadtests.shop.protocol import ShopRunner
from loadtests.shop.store import Store
from sim.errors import PeaksimError
from sim.model import Scenario
from sim.runio import new_run_dir

DB_FILE = "shop.db"

Background = Callable[[Shop], Awaitable[None]]


class ShopError(PeaksimError):
    """The shop cannot start as asked (address in use, bad host)."""


@dataclass(frozen=True)
class ShopHandle:
    """A listening shop: ``url`` is ``http://host:port`` with the actual (ephemeral) port."""

    shop: Shop
    url: str
    host: str
    port: int
    db_path: Path


def default_db_path(scenario: Scenario) -> Path:
    """``shop.db`` in a new run directory ``reports/<scenario>/<run-id>-shop/``."""
    return new_run_dir(scenario.name, None, kind="shop") / DB_FILE


@asynccontextmanager
async def running_shop(
    scenario: Scenario,
    db_path: Path,
    host: str = "127.0.0.1",
    port: int = 0,
    config: ShopConfig | None = None,
) -> AsyncIterator[ShopHandle]:
    """Serve the shop for ``scenario`` on ``host:port`` (0: any free port) while inside."""
    config = config or ShopConfig()
    store = await Store.open(db_path)
    try:
        shop = Shop(scenario, store, config)
        runner = ShopRunner(
            shop.application(),
            limits=config.limits,
            stats=shop.metrics.connections,
            handle_signals=False,
            access_log=None,  # one log line per request would cost more than the request
            shutdown_timeout=config.shutdown_timeout_s,
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port)
            try:
                await site.start()
            except OSError as exc:
                raise ShopError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
            bound_port = int(runner.addresses[0][1])
            shown = f"[{host}]" if ":" in host else host
            yield ShopHandle(shop, f"http://{shown}:{bound_port}", host, bound_port, db_path)
        finally:
            await runner.cleanup()
            shop.close()
    finally:
        await store.close()


async def serve(
    scenario: Scenario,
    db_path: Path,
    host: str,
    port: int,
    on_ready: Callable[[ShopHandle], None],
    background: Sequence[Background] = (),
    config: ShopConfig | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve until ``stop`` is set (SIGINT/SIGTERM set it when we own the main thread)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        with suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop.set)
            installed.append(signum)
    try:
        async with running_shop(scenario, db_path, host, port, config) as handle:
            on_ready(handle)
            tasks = [asyncio.create_task(job(handle.shop)) for job in background]
            waiter = asyncio.create_task(stop.wait())
            try:
                await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (waiter, *tasks):
                    task.cancel()
                await asyncio.gather(waiter, *tasks, return_exceptions=True)
            for task in tasks:
                error = None if task.cancelled() else task.exception()
                if error is not None:
                    raise error
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)


def run_shop(
    scenario: Scenario,
    db_path: Path,
    host: str,
    port: int,
    on_ready: Callable[[ShopHandle], None],
    background: Sequence[Background] = (),
    config: ShopConfig | None = None,
) -> None:
    """Blocking: serve until SIGINT/SIGTERM, then shut down gracefully."""
    asyncio.run(serve(scenario, db_path, host, port, on_ready, background, config))
