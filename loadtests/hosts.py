"""Which system a load test may hit, and how: host safety, TLS, the user's own locustfile.

A load test must never hit a host by accident: the target is given explicitly (``--host`` or
``loadtest.host``), said before the start, and refused unless every address it resolves to is
a loopback address, or ``--allow-remote`` is given. No Locust and no gevent here (the runner
uses it before any Locust process starts).
"""

from __future__ import annotations

import ast
import ipaddress
import socket
import ssl
import urllib.parse
from pathlib import Path

from sim.errors import LoadTestError


def check_target(url: str, allow_remote: bool) -> str:
    """``url`` without a trailing slash if it is an http(s) URL this run may hit; else a
    ``LoadTestError`` saying why."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LoadTestError(f"--host {url!r}: expected an http:// or https:// URL with a host "
                            f"(e.g. http://127.0.0.1:8099)")
    try:
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        raise LoadTestError(f"--host {url!r}: the port is not a number 0..65535") from None
    if not allow_remote and not is_loopback(parts.hostname):
        raise LoadTestError(f"--host {url}: {parts.hostname} is not a loopback address; a load "
                            f"test against another machine needs --allow-remote")
    return url.rstrip("/")


def is_loopback(hostname: str) -> bool:
    """True when every address ``hostname`` resolves to is a loopback address."""
    try:
        return ipaddress.ip_address(hostname.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(hostname, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return False
    addresses = {info[4][0] for info in infos}
    return bool(addresses) and all(
        ipaddress.ip_address(str(a).split("%")[0]).is_loopback for a in addresses)


def tls_context(insecure: bool, ca_bundle: Path | None) -> ssl.SSLContext:
    """The TLS context of the pre-run checks, as strict as the load generator's."""
    if insecure:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if ca_bundle is not None and not Path(ca_bundle).is_file():
        raise LoadTestError(f"--ca-bundle {ca_bundle}: file not found")
    return ssl.create_default_context(cafile=str(ca_bundle) if ca_bundle else None)


def custom_services(path: Path) -> set[str]:
    """The ``peaksim_service`` names the classes of a locustfile declare, read without running
    it (the Locust processes import it; this only plans the run)."""
    file = Path(path)
    try:
        tree = ast.parse(file.read_text(encoding="utf-8"), str(file))
    except FileNotFoundError:
        raise LoadTestError(f"--locustfile {path}: file not found") from None
    except (OSError, UnicodeDecodeError, SyntaxError) as exc:
        raise LoadTestError(f"--locustfile {path}: cannot read it: {exc}") from None
    found: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.ClassDef):
            continue
        for statement in node.body:
            if (isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Constant)
                    and isinstance(statement.value.value, str)
                    and any(isinstance(t, ast.Name) and t.id == "peaksim_service"
                            for t in statement.targets)):
                found.add(statement.value.value)
    if not found:
        raise LoadTestError(f"--locustfile {path}: no class sets peaksim_service = \"NAME\" "
                            f"(the scenario service it drives)")
    return found
