"""Red-team cases for the browser: what a malicious page or model tries beyond the SSRF corpus.

Files the browser writes (screenshots, downloads) must land in the workspace
even when the model planted symbolic links where they go; one agent's cookies
must not ride along on another agent's requests through the shared network
guard; schemes other than http(s) never load.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from oxios_plugin_browser import plugin as browser_plugin

HTML = "text/html; charset=utf-8"


def require_binary(name: str) -> str:
    path = shutil.which(name) or (name if os.path.exists(name) else None)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is required in CI but is not installed")
        pytest.skip(f"{name} is not installed")
    return path


def config(**browser: Any) -> dict[str, Any]:
    browser.setdefault("action_timeout_secs", 2.0)
    return {"security": {"ssrf_allowlist": ["127.0.0.1"]}, "plugins": {"browser": browser}}


async def call(kernel: Any, tool: str, agent: str = "agent-1", **args: Any) -> Any:
    context = kernel.context(agent_id=agent, session_id="s-" + agent, interactive=False)
    return await kernel.tools.get(tool).call(args, context)


async def wait_for(predicate: Any, what: str, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)
    assert predicate(), what


class _Site(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        headers = {"content-type": HTML}
        if path == "/set":
            body = b"<html><head><title>Set</title></head><body>cookie set</body></html>"
            headers["set-cookie"] = "sid=AGENT1SECRET; Path=/"
        elif path == "/echo":
            cookie = self.headers.get("Cookie") or "none"
            body = f"<html><head><title>Echo</title></head><body><p>cookie: {cookie}</p></body></html>".encode()
        elif path == "/file.sh":
            headers = {"content-type": "application/octet-stream", "content-disposition": 'attachment; filename="run.sh"'}
            body = b"#!/bin/sh\necho pwned\n"
        elif path == "/dl":
            body = b'<html><head><title>DL</title></head><body><a id="dl" href="/file.sh">get</a></body></html>'
        else:
            body = b"<html><head><title>Page</title></head><body><p>page</p></body></html>"
        self.send_response(200)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Site)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


async def test_one_agents_cookies_never_reach_another_agents_requests(oxios_kernel_factory: Any, site: str) -> None:
    """The guard fetches for every agent with one httpx client: its cookie jar must stay empty."""
    require_binary("/usr/bin/chromium")
    async with oxios_kernel_factory(plugins=[browser_plugin], config=config(robots_txt=False)) as kernel:
        assert not (await call(kernel, "browse", agent="agent-1", url=site + "/set")).is_error
        own = await call(kernel, "browse", agent="agent-1", url=site + "/echo")
        assert "AGENT1SECRET" in own.content  # the owner's own browser context sends its cookie
        other = await call(kernel, "browse", agent="agent-2", url=site + "/echo")
        assert not other.is_error and "cookie: none" in other.content, other.content
        assert not list(kernel.services["browser"].guard.client.cookies.jar)


async def test_screenshot_never_writes_through_a_planted_link(oxios_kernel_factory: Any, site: str, tmp_path: Path) -> None:
    require_binary("/usr/bin/chromium")
    victim = tmp_path / "bashrc"
    victim.write_text("victim")
    outside_dir = tmp_path / "outside"
    outside_dir.mkdir()
    async with oxios_kernel_factory(plugins=[browser_plugin], config=config(robots_txt=False)) as kernel:
        ws: Path = kernel.paths.workspace
        (ws / "screenshots").mkdir()
        os.symlink(victim, ws / "screenshots" / "evil.png")
        assert not (await call(kernel, "browse", url=site + "/")).is_error
        shot = await call(kernel, "browser_screenshot", name="evil")
        assert victim.read_text() == "victim"
        if not shot.is_error:  # replacing the link itself is fine; writing through it is not
            assert not (ws / "screenshots" / "evil.png").is_symlink()
        os.rename(ws / "screenshots", ws / "old-shots")
        os.symlink(outside_dir, ws / "screenshots")
        moved = await call(kernel, "browser_screenshot", name="page")
        assert moved.is_error and os.listdir(outside_dir) == [], moved.content


async def test_download_never_lands_outside_through_a_link(oxios_kernel_factory: Any, site: str, tmp_path: Path) -> None:
    require_binary("/usr/bin/chromium")
    outside_dir = tmp_path / "outside"
    outside_dir.mkdir()
    async with oxios_kernel_factory(plugins=[browser_plugin], config=config(robots_txt=False)) as kernel:
        ws: Path = kernel.paths.workspace
        engine = kernel.services["browser"]
        (ws / "downloads").mkdir()
        os.symlink(outside_dir / "run.sh", ws / "downloads" / "run.sh")  # dangling: exists() says no
        assert not (await call(kernel, "browse", url=site + "/dl")).is_error
        await call(kernel, "browser_click", selector="#dl")
        session = engine.sessions["agent-1"]
        await wait_for(lambda: session.downloads, "download saved")
        assert os.listdir(outside_dir) == []
        saved = ws / session.downloads[0]
        assert saved.read_bytes().startswith(b"#!/bin/sh") and not saved.is_symlink()
        assert saved.parent == ws / "downloads"

        os.rename(ws / "downloads", ws / "old-downloads")
        os.symlink(outside_dir, ws / "downloads")
        await call(kernel, "browser_click", selector="#dl")
        await wait_for(lambda: engine.download_failures, "download refused")
        assert os.listdir(outside_dir) == []


@pytest.mark.parametrize(
    "url",
    [
        "chrome://settings",
        "chrome://gpu",
        "devtools://devtools/bundled/inspector.html",
        "view-source:file:///etc/passwd",
        "file:///etc/passwd",
        "data:text/html,<script>fetch('http://127.0.0.2/')</script>",
        "about:blank",
        "blob:http://127.0.0.1/x",
        "filesystem:http://127.0.0.1/temporary/x",
        "ws://127.0.0.2/",
        "ftp://127.0.0.1/",
    ],
)
async def test_only_http_urls_are_navigated(oxios_kernel_factory: Any, url: str) -> None:
    require_binary("/usr/bin/chromium")
    async with oxios_kernel_factory(plugins=[browser_plugin], config=config()) as kernel:
        result = await call(kernel, "browse", url=url)
        assert result.is_error and "root:" not in result.content, (url, result.content)
        assert not kernel.services["browser"].running


async def test_page_cannot_navigate_itself_to_local_files(oxios_kernel_factory: Any, site: str) -> None:
    require_binary("/usr/bin/chromium")
    async with oxios_kernel_factory(plugins=[browser_plugin], config=config(robots_txt=False)) as kernel:
        assert not (await call(kernel, "browse", url=site + "/")).is_error
        for target in ("file:///etc/passwd", "chrome://settings", "view-source:file:///etc/passwd"):
            await call(kernel, "browser_evaluate", js=f"location.href = {json.dumps(target)}; 1")
            read = await call(kernel, "browser_read")
            assert "root:" not in read.content and "chrome://settings" not in read.content.split("URL:")[-1][:40]
        fetched = await call(
            kernel, "browser_evaluate", js="fetch('file:///etc/passwd').then(r => r.text(), e => 'blocked: ' + e.message)"
        )
        assert "root:" not in fetched.content


async def test_websocket_goes_to_the_checked_address_not_a_rebound_one(
    oxios_kernel_factory: Any, site: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding against WebSockets: the guard's lookup says 127.0.0.1 (allowlisted); Chromium's own
    resolver (here pinned with --host-resolver-rules) says 127.0.0.2, the internal service. The socket
    must reach the address that was checked."""
    import socket

    import websockets
    from oxios_plugin_browser.settings import BrowserSettings

    require_binary("/usr/bin/chromium")
    probe = socket.socket()
    probe.bind(("127.0.0.2", 0))
    port = probe.getsockname()[1]
    probe.close()
    reached: list[str] = []

    async def internal(conn: Any) -> None:
        reached.append("internal")
        await conn.send("INTERNAL SECRET")

    async def public(conn: Any) -> None:
        async for message in conn:
            await conn.send(f"echo:{message}")

    original_args = BrowserSettings.launch_args
    monkeypatch.setattr(
        BrowserSettings, "launch_args", lambda self: [*original_args(self), "--host-resolver-rules=MAP rebind.test 127.0.0.2"]
    )
    original_lookup = asyncio.BaseEventLoop.getaddrinfo

    async def lookup(self: Any, host: Any, port_: Any, **kwargs: Any) -> Any:
        if host == "rebind.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port_))]
        return await original_lookup(self, host, port_, **kwargs)

    monkeypatch.setattr(asyncio.BaseEventLoop, "getaddrinfo", lookup)
    page = (
        "<html><head><title>ws</title></head><body><p id=out>waiting</p><script>"
        f"const ws = new WebSocket('ws://rebind.test:{port}/');"
        "ws.onopen = () => ws.send('hello');"
        "ws.onmessage = e => { document.getElementById('out').textContent = e.data; };"
        "</script></body></html>"
    )
    async with websockets.serve(internal, "127.0.0.2", port), websockets.serve(public, "127.0.0.1", port):
        async with oxios_kernel_factory(plugins=[browser_plugin], config=config(robots_txt=False)) as kernel:
            assert not (await call(kernel, "browse", url=site + "/")).is_error
            tab = await kernel.services["browser"].current_page("agent-1", create=False)
            await tab.set_content(page)  # as if the site had served it

            async def text() -> str:
                out = await call(kernel, "browser_evaluate", js="document.getElementById('out').textContent")
                return json.loads(out.content)

            async with asyncio.timeout(10):
                while (current := await text()) == "waiting":
                    await asyncio.sleep(0.05)
            assert current == "echo:hello", current
    assert reached == [], "the WebSocket reached the address Chromium resolved, not the checked one"
