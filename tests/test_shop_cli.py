"""``peaksim shop`` as users run it: a subprocess that prints its URL, serves, and on SIGTERM or
SIGINT finishes in-flight requests and exits 0 without losing an acknowledged order."""

from __future__ import annotations

import asyncio
import re
import select
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import aiohttp
from test_shop_support import BOUND_S, service, write_scenario
from typer.testing import CliRunner

from loadtests.shop import check_db
from sim.cli import app

CLIENTS = 8
ACKS_BEFORE_STOP = 60
MAX_REQUESTS_PER_CLIENT = 2_000


def start(args: list[str], cwd: Path) -> tuple[subprocess.Popen[str], str, str]:
    """Start ``peaksim shop ARGS``; return it with the URL and its start line."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "from sim.cli import app; app()", "shop", *args],
        cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    ready, _, _ = select.select([proc.stdout], [], [], BOUND_S)
    line = proc.stdout.readline() if ready and proc.stdout else ""
    match = re.search(r"http://127\.0\.0\.1:\d+", line)
    if match is None:
        proc.kill()
        raise AssertionError(f"no start line: {line!r} {proc.communicate()[1]!r}")
    return proc, match.group(0), line


def stop(proc: subprocess.Popen[str], signum: int) -> tuple[int, str]:
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=BOUND_S)
    assert not err.strip(), err
    return proc.returncode, out


async def order_until_refused(url: str, acked: list[str], enough: asyncio.Event) -> None:
    """POST orders until the shop stops answering; record every acknowledged order id."""
    body = {"user_id": "u", "items": [{"item_id": 4, "qty": 1}]}
    timeout = aiohttp.ClientTimeout(total=BOUND_S)
    async with aiohttp.ClientSession(url, timeout=timeout) as session:
        for _ in range(MAX_REQUESTS_PER_CLIENT):
            try:
                async with session.post("/order", json=body) as response:
                    if response.status == 201:
                        acked.append((await response.json())["order_id"])
                        if len(acked) >= ACKS_BEFORE_STOP:
                            enough.set()
            except (TimeoutError, aiohttp.ClientError):
                return


def test_sigterm_under_load_loses_no_acknowledged_order(tmp_path: Path) -> None:
    scenario = write_scenario(tmp_path, {"order": service(20.0, workers=4)})
    db = tmp_path / "shop.db"
    proc, url, _ = start([str(scenario), "--port", "0", "--db", str(db)], tmp_path)
    acked: list[str] = []
    acked_before_signal = 0

    async def main() -> int:
        nonlocal acked_before_signal
        enough = asyncio.Event()
        clients = [asyncio.create_task(order_until_refused(url, acked, enough))
                   for _ in range(CLIENTS)]
        await asyncio.wait_for(enough.wait(), BOUND_S)
        acked_before_signal = len(acked)
        proc.send_signal(signal.SIGTERM)  # while every client has a request in flight
        await asyncio.wait_for(asyncio.gather(*clients), BOUND_S)
        return await asyncio.get_running_loop().run_in_executor(None, proc.wait, BOUND_S)

    try:
        returncode = asyncio.run(main())
    finally:
        if proc.poll() is None:
            proc.kill()
    out, err = proc.communicate(timeout=BOUND_S)
    assert returncode == 0, err
    assert "peaksim shop: stopped" in out
    assert len(acked) > acked_before_signal >= ACKS_BEFORE_STOP  # in-flight ones finished
    with sqlite3.connect(db) as conn:
        stored = {row[0] for row in conn.execute("SELECT order_id FROM orders")}
    conn.close()
    assert set(acked) <= stored
    assert check_db(db).ok


def test_sigint_stops_cleanly_and_default_db_is_in_a_run_dir(tmp_path: Path) -> None:
    scenario = write_scenario(tmp_path, {"browse": service(1.0)})
    proc, _, line = start([str(scenario), "--port", "0"], tmp_path)
    try:
        returncode, out = stop(proc, signal.SIGINT)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert returncode == 0 and "peaksim shop: stopped" in out
    assert re.search(r"\(db reports/shop-test/\d{8}T\d{6}Z-[0-9a-f]{4}-shop/shop\.db\)", line)
    assert check_db(tmp_path / "reports" / "shop-test" / "latest" / "shop.db").ok


def test_port_in_use_is_a_usage_error(tmp_path: Path, runner: CliRunner) -> None:
    scenario = write_scenario(tmp_path, {"browse": service(1.0)})
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = runner.invoke(app, ["shop", str(scenario), "--port", str(port),
                                     "--db", str(tmp_path / "s.db")])
    assert result.exit_code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.output


def test_bad_scenario_is_a_usage_error(tmp_path: Path, runner: CliRunner) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nseed: -1\n")
    result = runner.invoke(app, ["shop", str(bad), "--port", "0"])
    assert result.exit_code == 2 and "seed" in result.output
