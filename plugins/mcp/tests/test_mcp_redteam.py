"""Red-team cases for MCP over HTTP: the SDK's HTTP client behind the SSRF guard.

A configured server URL (or anything it redirects to) on a private address is
refused unless allowlisted; the connection goes to the address that was
checked, not to a second DNS answer; a redirect is judged against the
configured name, not the address it was pinned to.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx2
import pytest
from mcp.shared._httpx_utils import request_within_origin
from oxios_plugin_mcp.guard import guarded_http_client


class _Who(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/hop":
            self.send_response(307)
            self.send_header("Location", "/mcp")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path == "/away":
            self.send_response(307)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = f"{self.server.server_address[0]} {self.path} host={self.headers.get('Host')}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def servers() -> Iterator[int]:
    """The same port on 127.0.0.2 (the checked, allowlisted answer) and 127.0.0.3 (the rebound one)."""
    probe = socket.socket()
    probe.bind(("127.0.0.2", 0))
    port = probe.getsockname()[1]
    probe.close()
    running = [ThreadingHTTPServer((ip, port), _Who) for ip in ("127.0.0.2", "127.0.0.3")]
    for server in running:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield port
    for server in running:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:9/mcp", "http://169.254.169.254/mcp", "http://2130706433/mcp", "http://[::1]/mcp", "http://10.1.2.3/"],
)
async def test_private_server_urls_are_refused(url: str) -> None:
    async with guarded_http_client([], headers={}, timeout=5) as client:
        with pytest.raises(httpx2.ConnectError, match="SSRF"):
            await client.get(url)


async def test_connection_goes_to_the_checked_address_and_redirects_keep_the_name(
    servers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers: list[str] = []

    async def rebinding(self: Any, host: Any, port: Any, **kwargs: Any) -> Any:
        ip = "127.0.0.3" if answers else "127.0.0.2"
        answers.append(ip)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))]

    monkeypatch.setattr(asyncio.BaseEventLoop, "getaddrinfo", rebinding)
    # The operator allowlisted the server by name: it may resolve anywhere, but is connected where checked.
    async with guarded_http_client(["mcp.internal"], headers={}, timeout=5) as client:
        first = await client.get(f"http://mcp.internal:{servers}/mcp")
        assert first.text == f"127.0.0.2 /mcp host=mcp.internal:{servers}"
        hopped = await request_within_origin(client, "GET", f"http://mcp.internal:{servers}/hop")
        assert hopped.status_code == 200 and str(hopped.url) == f"http://mcp.internal:{servers}/mcp"
        away = await request_within_origin(client, "GET", f"http://mcp.internal:{servers}/away")
        assert away.status_code == 307  # another origin: not followed, and never fetched
