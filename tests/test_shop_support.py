"""Helpers shared by the reference-shop tests (no tests here): small scenarios written to a
temporary directory and a shop served in-process on an ephemeral loopback port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import yaml

from loadtests.shop import ShopConfig, ShopHandle, running_shop
from sim.model import load_scenario

T = TypeVar("T")

BOUND_S = 20.0
"""Upper bound on any single wait in these tests (they never sleep to synchronise)."""


def service(
    mean_ms: float = 1.0,
    workers: int = 64,
    instances: int | dict[str, int] = 1,
    dist: str = "constant",
    **extra: Any,
) -> dict[str, Any]:
    """A scenario ``services`` entry."""
    return {"service_time": {"dist": dist, "mean_ms": mean_ms}, "workers": workers,
            "instances": instances, **extra}


def zero_time(workers: int = 256, instances: int = 1) -> dict[str, Any]:
    """A service whose every request takes 0 ms (an empirical distribution of one 0)."""
    return {"service_time": {"dist": "empirical", "samples_ms": [0.0]}, "workers": workers,
            "instances": instances}


def write_scenario(tmp_path: Path, services: dict[str, dict[str, Any]], seed: int = 1) -> Path:
    """Write a scenario with ``services`` (constant 1 rps each) and return its path."""
    data = {
        "name": "shop-test",
        "seed": seed,
        "duration_s": 60,
        "traffic": {"kind": "constant", "rps": {name: 1 for name in services}},
        "services": services,
    }
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def run(main: Callable[[], Awaitable[T]]) -> T:
    """Run an async test body on a fresh event loop."""
    return asyncio.run(main())


@asynccontextmanager
async def shop_session(
    tmp_path: Path,
    services: dict[str, dict[str, Any]],
    config: ShopConfig | None = None,
) -> AsyncIterator[tuple[ShopHandle, aiohttp.ClientSession]]:
    """A shop for ``services`` on 127.0.0.1:<ephemeral> and a client session for it."""
    scenario = load_scenario(write_scenario(tmp_path, services))
    async with running_shop(scenario, tmp_path / "shop.db", "127.0.0.1", 0, config) as handle:
        timeout = aiohttp.ClientTimeout(total=BOUND_S)
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(
            handle.url, timeout=timeout, connector=connector
        ) as session:
            yield handle, session


async def call(
    session: aiohttp.ClientSession,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any, dict[str, str]]:
    """(status, parsed JSON body or text, headers) of one request."""
    async with session.request(method, path, json=body, headers=headers) as response:
        text = await response.text()
        parsed: Any = text
        if response.content_type == "application/json":
            parsed = await response.json()
        return response.status, parsed, dict(response.headers)


def prometheus_value(text: str, name: str, **labels: str) -> float:
    """The value of the sample ``name{labels}`` in a Prometheus exposition (0 when absent)."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        metric, _, raw_labels = head.partition("{")
        if metric != name:
            continue
        pairs = dict(
            part.split("=", 1) for part in raw_labels.rstrip("}").split(",") if part
        )
        if all(pairs.get(k) == f'"{v}"' for k, v in labels.items()):
            return float(value)
    return 0.0
