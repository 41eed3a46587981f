"""The SSRF-guarded httpx transport against a real local HTTP server."""

from __future__ import annotations

import datetime
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from oxios.security.ssrf import guarded_client, guarded_sync_client


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        port = self.server.server_address[1]
        targets = {
            "/to-loopback": f"http://127.0.0.2:{port}/hello",
            "/to-decimal": f"http://2130706434:{port}/hello",
            "/to-metadata": "http://169.254.169.254/latest/meta-data/",
            "/to-file": "file:///etc/passwd",
            "/to-self": f"http://127.0.0.1:{port}/hello",
        }
        if self.path in targets:
            self.send_response(302)
            self.send_header("Location", targets[self.path])
            self.end_headers()
            return
        body = f"host={self.headers.get('Host')}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


async def test_loopback_blocked_without_allowlist(server: int) -> None:
    async with guarded_client([]) as client:
        with pytest.raises(httpx.ConnectError, match="SSRF"):
            await client.get(f"http://127.0.0.1:{server}/hello")
        with pytest.raises(httpx.ConnectError, match="SSRF"):
            await client.get(f"http://localhost:{server}/hello")


async def test_connects_to_checked_address_keeping_host(server: int) -> None:
    async with guarded_client(["127.0.0.1"]) as client:
        response = await client.get(f"http://localhost:{server}/hello")
    assert response.status_code == 200
    assert response.text == f"host=localhost:{server}"


@pytest.mark.parametrize("path", ["/to-loopback", "/to-decimal", "/to-metadata"])
async def test_every_redirect_is_checked(server: int, path: str) -> None:
    async with guarded_client(["127.0.0.1"]) as client:
        with pytest.raises(httpx.ConnectError, match="SSRF"):
            await client.get(f"http://127.0.0.1:{server}{path}")


async def test_redirect_to_other_scheme_refused(server: int) -> None:
    async with guarded_client(["127.0.0.1"]) as client:
        with pytest.raises((httpx.ConnectError, httpx.UnsupportedProtocol)):
            await client.get(f"http://127.0.0.1:{server}/to-file")


async def test_allowed_redirect_followed(server: int) -> None:
    async with guarded_client(["127.0.0.1"]) as client:
        response = await client.get(f"http://127.0.0.1:{server}/to-self")
    assert response.status_code == 200 and len(response.history) == 1


def test_sync_client_blocks_redirect(server: int) -> None:
    with guarded_sync_client(["127.0.0.1"]) as client:
        assert client.get(f"http://127.0.0.1:{server}/hello").status_code == 200
        with pytest.raises(httpx.ConnectError, match="SSRF"):
            client.get(f"http://127.0.0.1:{server}/to-loopback")


async def test_dns_failure_denies() -> None:
    async with guarded_client([]) as client:
        with pytest.raises(httpx.ConnectError, match="cannot resolve"):
            await client.get("http://no-such-host.invalid/")


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    """A certificate for "localhost" only (not for 127.0.0.1), so TLS succeeds only if SNI keeps the name."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp / "cert.pem", tmp / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


async def test_https_pinned_address_keeps_tls_name(tmp_path: Path) -> None:
    cert_file, key_file = _self_signed(tmp_path)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert_file, key_file)
    httpd.socket = server_ctx.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    port = httpd.server_address[1]
    client_ctx = ssl.create_default_context(cafile=str(cert_file))
    try:
        async with guarded_client(["127.0.0.1"], verify=client_ctx) as client:
            response = await client.get(f"https://localhost:{port}/hello")
            assert response.status_code == 200 and response.text == f"host=localhost:{port}"
            # Addressed by IP, the certificate (for "localhost") does not match: verification is really on.
            with pytest.raises(httpx.ConnectError):
                await client.get(f"https://127.0.0.1:{port}/hello")
    finally:
        httpd.shutdown()
        httpd.server_close()
