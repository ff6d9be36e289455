"""Measure the shop under slowloris clients: /healthz latency without and with N clients that
send a request head one byte every 0.5 s, and how long the shop keeps those clients.

    python scripts/slowloris_probe.py scenarios/mmc-check.yaml [--clients 40] [--requests 300]

Starts ``peaksim shop`` on an ephemeral loopback port with its default limits (a fresh
database in a temporary directory), prints two lines and stops it. Latency is measured by one
keep-alive client, sequentially: it is noisy on a shared machine, so compare runs made together.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HEAD = b"GET /healthz HTTP/1.1\r\nHost: probe\r\nX-Slow: " + b"a" * 200
BYTE_EVERY_S = 0.5


def healthz_ms(port: int, requests: int) -> tuple[float, float]:
    """p50 and p99 of ``requests`` sequential GET /healthz on one connection, ms."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        connection.request("GET", "/healthz")
        connection.getresponse().read()
        samples.append((time.perf_counter() - started) * 1000.0)
    connection.close()
    samples.sort()
    return samples[len(samples) // 2], samples[int(len(samples) * 0.99)]


def slow_client(port: int, lifetimes_s: list[float]) -> None:
    """Send HEAD a byte at a time until the shop answers or closes; record how long it took."""
    sock = socket.create_connection(("127.0.0.1", port))
    started = time.monotonic()
    sock.settimeout(BYTE_EVERY_S)
    try:
        for byte in HEAD:
            sock.sendall(bytes([byte]))
            try:
                if sock.recv(4096) is not None:  # an answer (408) or the close
                    break
            except TimeoutError:
                continue
    except OSError:
        pass  # closed by the shop while sending
    finally:
        lifetimes_s.append(time.monotonic() - started)
        sock.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", type=Path)
    parser.add_argument("--clients", type=int, default=40)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        shop = subprocess.Popen(
            [sys.executable, "-m", "sim", "shop", str(args.scenario), "--port", "0", "--db",
             str(Path(tmp) / "shop.db")], stdout=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
        try:
            assert shop.stdout is not None
            match = re.search(r"127\.0\.0\.1:(\d+)", shop.stdout.readline())
            if match is None:
                raise SystemExit("the shop did not start")
            port = int(match.group(1))
            alone = healthz_ms(port, args.requests)
            lifetimes_s: list[float] = []
            clients = [threading.Thread(target=slow_client, args=(port, lifetimes_s))
                       for _ in range(args.clients)]
            for client in clients:
                client.start()
            time.sleep(1.0)
            loaded = healthz_ms(port, args.requests)
            for client in clients:
                client.join(timeout=len(HEAD) * BYTE_EVERY_S + 10)
        finally:
            shop.terminate()
            shop.wait(timeout=30)
    print(f"/healthz p50 / p99: {alone[0]:.2f} / {alone[1]:.2f} ms alone, {loaded[0]:.2f} / "
          f"{loaded[1]:.2f} ms with {args.clients} slowloris clients connected")
    print(f"the shop closed the {len(lifetimes_s)} slowloris clients after "
          f"{min(lifetimes_s):.1f}-{max(lifetimes_s):.1f} s (a full head would take "
          f"{len(HEAD) * BYTE_EVERY_S:.0f} s)")


if __name__ == "__main__":
    main()
