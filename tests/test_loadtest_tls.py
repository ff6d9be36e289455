"""HTTPS targets: verified by default, ``--insecure`` skips it, ``--ca-bundle`` trusts a CA.

A self-signed certificate for 127.0.0.1 (made with ``cryptography``) serves a tiny aiohttp app
over TLS in a thread; the pre-run reachability check and the generator's pooled client
(``loadtests.target``) are held to the same three cases.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from loopback_server import serve_in_thread

from loadtests.hosts import tls_context
from loadtests.procs import check_reachable
from loadtests.target import Target, TlsOptions
from sim.errors import LoadTestError


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@contextmanager
def tls_server(cert: Path, key: Path) -> Iterator[str]:
    async def hello(_request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    def make_app() -> web.Application:
        app = web.Application()
        app.router.add_get("/{tail:.*}", hello)
        return app

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    with serve_in_thread(make_app, context) as url:
        yield url


def test_https_is_verified_unless_told_otherwise(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    with tls_server(cert, key) as url:
        with pytest.raises(LoadTestError, match="CERTIFICATE_VERIFY_FAILED|certificate verify"):
            check_reachable(url, context=tls_context(False, None))
        check_reachable(url, context=tls_context(True, None))
        check_reachable(url, context=tls_context(False, cert))
        refused = Target(url, TlsOptions(), 5.0, sockets=2).send("GET", "/x", {}, None)
        assert refused.status == 0 and refused.error is not None
        assert "SSL" in refused.error or "Certificate" in refused.error
        insecure = Target(url, TlsOptions(insecure=True), 5.0, sockets=2)
        assert insecure.send("GET", "/x", {}, None).status == 200
        trusted = Target(url, TlsOptions(ca_bundle=str(cert)), 5.0, sockets=2)
        answer = trusted.send("GET", "/x", {}, None)
        assert answer.status == 200 and answer.content == b'{"ok": true}'
        for target in (insecure, trusted):
            target.close()
