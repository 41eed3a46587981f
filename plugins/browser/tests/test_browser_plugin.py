"""The browser plugin in real Chromium against pages served on loopback.

Two servers: the "site" on 127.0.0.1 (allowlisted for the test, as a user
would allowlist an intranet host) and an "internal" service on 127.0.0.2
that is NOT allowlisted and stands for everything private (metadata
endpoints, admin panels). Pages on the site try every way to reach it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psutil
import pytest
from oxios_plugin_browser import plugin as browser_plugin


def require_binary(name: str) -> str:
    path = shutil.which(name) or (name if os.path.exists(name) else None)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is required in CI but is not installed")
        pytest.skip(f"{name} is not installed")
    return path


def make_server(host: str, pages: dict[str, tuple[int, dict[str, str], bytes]], hits: list[str]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            path = self.path.split("?", 1)[0]
            status, headers, body = pages.get(path, (404, {"content-type": "text/plain"}, b"not found"))
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((host, 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


HTML = {"content-type": "text/html; charset=utf-8"}


@pytest.fixture
def servers() -> Iterator[dict[str, Any]]:
    internal_hits: list[str] = []
    internal = make_server("127.0.0.2", {"/secret": (200, {"content-type": "text/plain"}, b"TOP SECRET")}, internal_hits)
    secret = f"http://127.0.0.2:{internal.server_address[1]}/secret"
    site_pages: dict[str, tuple[int, dict[str, str], bytes]] = {}
    site_hits: list[str] = []
    site = make_server("127.0.0.1", site_pages, site_hits)
    base = f"http://127.0.0.1:{site.server_address[1]}"
    site_pages.update(
        {
            "/": (
                200,
                HTML,
                b"""<html><head><title>Oxios Test Page</title><style>.x{}</style></head><body>
<nav><a href="/nav-only">Nav link</a></nav>
<main><h1>Welcome</h1><p>Some <strong>readable</strong> text with <a href="/next.html">the next page</a>.</p>
<ul><li>first item</li><li>second item</li></ul>
<table id="prices"><tr><th>Fruit</th><th>Price</th></tr><tr><td>Apple</td><td>1.20</td></tr></table>
<form id="search" action="/search" method="get"><input name="q" id="q"><select id="size" name="size">
<option value="s">Small</option><option value="l">Large</option></select><button type="submit">Go</button></form>
<a id="dl" href="/file.csv">download data</a><p hidden>invisible text</p><script>var hidden = 'script text';</script>
</main></body></html>""",
            ),
            "/next.html": (200, HTML, b"<html><head><title>Next</title></head><body><p>Second page</p></body></html>"),
            "/search": (200, HTML, b"<html><head><title>Results</title></head><body><p>results</p></body></html>"),
            "/file.csv": (
                200,
                {"content-type": "text/csv", "content-disposition": 'attachment; filename="data.csv"'},
                b"a,b\n1,2\n",
            ),
            "/robots.txt": (200, {"content-type": "text/plain"}, b"User-agent: *\nDisallow: /private\n"),
            "/private/page.html": (200, HTML, b"<html><head><title>Private</title></head><body>private</body></html>"),
            "/redirect-internal": (302, {"location": secret}, b""),
            "/redirect-ok": (301, {"location": "/next.html"}, b""),
            "/attack.html": (
                200,
                HTML,
                f"""<html><head><title>Attack</title><link rel="stylesheet" href="{secret}?css"></head><body>
<img src="{secret}?img"><iframe src="{secret}?iframe"></iframe><img src="http://169.254.169.254/latest/meta-data">
<script src="{secret}?script"></script><script>fetch("{secret}?fetch").catch(() => {{}});
try {{ new WebSocket("{secret.replace("http://", "ws://")}?ws"); }} catch (e) {{}}</script>
<p>attack page</p></body></html>""".encode(),
            ),
        }
    )
    yield {"base": base, "secret": secret, "internal_hits": internal_hits, "site_hits": site_hits}
    site.shutdown()
    internal.shutdown()


def config(**browser: Any) -> dict[str, Any]:
    browser.setdefault("action_timeout_secs", 2.0)
    return {"security": {"ssrf_allowlist": ["127.0.0.1"]}, "plugins": {"browser": browser}}


def ctx(kernel: Any, agent: str = "agent-1") -> Any:
    return kernel.context(agent_id=agent, session_id="s-" + agent, interactive=False)


async def call(kernel: Any, tool: str, agent: str = "agent-1", **args: Any) -> Any:
    return await kernel.tools.get(tool).call(args, ctx(kernel, agent))


def chromium_processes() -> list[psutil.Process]:
    out = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "chrom" in child.name():
                out.append(child)
        except psutil.NoSuchProcess:
            continue
    return out


async def wait_for(predicate: Any, what: str, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)
    assert predicate(), what


async def test_browse_and_interact(oxios_kernel_factory: Any, servers: dict[str, Any]) -> None:
    require_binary("/usr/bin/chromium")
    base = servers["base"]
    async with oxios_kernel_factory(plugins=[browser_plugin], config=config()) as kernel:
        assert kernel.tools.get("browse").spec.tier == "network"
        page = await call(kernel, "browse", url=base + "/")
        assert not page.is_error, page.content
        text = page.content
        assert text.startswith("# Oxios Test Page") and "# Welcome" in text
        assert "Some **readable** text with [the next page][1]" in text
        assert "- first item" in text and "| Apple | 1.20 |" in text
        assert f"[1]: {base}/next.html" in text
        assert "script text" not in text and "invisible text" not in text and "Nav link" not in text

        extracted = json.loads((await call(kernel, "browser_extract", selector="#prices")).content)
        assert extracted[0]["rows"] == [["Fruit", "Price"], ["Apple", "1.20"]]
        options = json.loads((await call(kernel, "browser_extract", selector="#size")).content)[0]["options"]
        assert [o["value"] for o in options] == ["s", "l"]
        assert (
            json.loads((await call(kernel, "browser_evaluate", js="document.title + ' ' + (1 + 2)")).content)
            == "Oxios Test Page 3"
        )
        bad_js = await call(kernel, "browser_evaluate", js="throw new Error('boom')")
        assert bad_js.is_error and "boom" in bad_js.content

        assert not (await call(kernel, "browser_select", selector="#size", value="Large")).is_error
        typed = await call(kernel, "browser_type", selector="#q", text="hello world", submit=True)
        assert not typed.is_error, typed.content
        assert json.loads(typed.content)["title"] == "Results"
        assert any(h.startswith("/search?q=hello+world&size=l") for h in servers["site_hits"])

        moved = await call(kernel, "browser_goto", url=base + "/redirect-ok")
        assert json.loads(moved.content) == {"url": base + "/next.html", "status": 200, "title": "Next"}

        await call(kernel, "browser_goto", url=base + "/")
        clicked = await call(kernel, "browser_click", selector="text=the next page")
        assert json.loads(clicked.content)["url"] == base + "/next.html"
        assert "Second page" in (await call(kernel, "browser_read")).content
        missing = await call(kernel, "browser_click", selector="#does-not-exist")
        assert missing.is_error

        shot = await call(kernel, "browser_screenshot", name="../../escape me")
        rel = shot.data["path"]
        assert rel == "screenshots/escape_me.png" and (kernel.paths.workspace / rel).read_bytes()[:4] == b"\x89PNG"

        await call(kernel, "browser_goto", url=base + "/")
        await call(kernel, "browser_click", selector="#dl")
        engine = kernel.services["browser"]
        session = engine.sessions["agent-1"]
        await wait_for(lambda: session.downloads, "download saved")
        assert session.downloads == ["downloads/data.csv"]
        assert (kernel.paths.workspace / "downloads" / "data.csv").read_text() == "a,b\n1,2\n"

        # Another agent gets its own tabs.
        await call(kernel, "browser_goto", agent="agent-2", url=base + "/next.html")
        tabs1 = json.loads((await call(kernel, "browser_tabs")).content)["tabs"]
        tabs2 = json.loads((await call(kernel, "browser_tabs", agent="agent-2")).content)["tabs"]
        assert tabs1[0]["url"] == base + "/" and tabs2[0]["url"] == base + "/next.html"
        assert servers["internal_hits"] == []
    assert chromium_processes() == [], "Chromium must be closed when the kernel stops"


async def test_ssrf_guard_blocks_private_addresses(oxios_kernel_factory: Any, servers: dict[str, Any]) -> None:
    require_binary("/usr/bin/chromium")
    base, secret = servers["base"], servers["secret"]
    async with oxios_kernel_factory(plugins=[browser_plugin], config=config()) as kernel:
        engine = kernel.services["browser"]
        for url in (
            secret,
            "http://169.254.169.254/latest/meta-data",
            "http://0x7f000002:80/",
            "http://[::1]/",
            "file:///etc/passwd",
            "javascript:alert(1)",
        ):
            result = await call(kernel, "browse", url=url)
            assert result.is_error, (url, kernel.config.security.ssrf_allowlist, result)
        assert not engine.running, "refused URLs must not even start Chromium"

        page = await call(kernel, "browse", url=base + "/attack.html")
        assert not page.is_error and "attack page" in page.content

        def blocked() -> set[str]:
            urls = [b["url"].replace("ws://", "http://", 1) for b in engine.guard.blocked]
            return {u.split("?")[-1] for u in urls if u.startswith(secret)}

        await wait_for(
            lambda: {"css", "img", "iframe", "script", "fetch", "ws"} <= blocked(), f"all six blocked, got {blocked()}"
        )
        assert any("169.254.169.254" in b["url"] for b in engine.guard.blocked)

        redirect = await call(kernel, "browse", url=base + "/redirect-internal")
        assert redirect.is_error and "127.0.0.2" in redirect.content, redirect.content
        img = await call(kernel, "browser_evaluate", js=f"fetch('{base}/redirect-internal').then(r => 'LEAK', e => 'blocked')")
        assert json.loads(img.content) == "blocked"

        js = f"fetch('{secret}?evaluate').then(r => r.text()).then(t => 'LEAK ' + t, e => 'blocked: ' + e.message)"
        answer = json.loads((await call(kernel, "browser_evaluate", js=js)).content)
        assert answer.startswith("blocked")
        nav = await call(kernel, "browser_evaluate", js=f"location.href = '{secret}?location'; 1")
        assert not nav.is_error
        await wait_for(lambda: "location" in blocked(), "script navigation blocked")
        assert servers["internal_hits"] == [], "nothing may reach the internal service"


async def test_robots_txt_and_policy(oxios_kernel_factory: Any, servers: dict[str, Any]) -> None:
    require_binary("/usr/bin/chromium")
    base = servers["base"]
    async with oxios_kernel_factory(plugins=[browser_plugin], config=config()) as kernel:
        refused = await call(kernel, "browse", url=base + "/private/page.html")
        assert refused.is_error and "robots.txt" in refused.content
        assert "/private/page.html" not in servers["site_hits"]
    async with oxios_kernel_factory(plugins=[browser_plugin], config=config(robots_txt=False)) as kernel:
        allowed = await call(kernel, "browse", url=base + "/private/page.html")
        assert not allowed.is_error and "private" in allowed.content
    no_network = config()
    no_network["security"]["roles"] = {"user": {"network": False}}
    async with oxios_kernel_factory(plugins=[browser_plugin], config=no_network) as kernel:
        denied = await call(kernel, "browse", url=base + "/")
        assert denied.is_error and "denied" in denied.content and "network" in denied.content
    async with oxios_kernel_factory(plugins=[browser_plugin], config=config(executable="/nonexistent/chromium")) as kernel:
        broken = await call(kernel, "browse", url=base + "/")
        assert broken.is_error and "Chromium not found at /nonexistent/chromium" in broken.content


async def test_limits_idle_timeout_and_relaunch(oxios_kernel_factory: Any, servers: dict[str, Any]) -> None:
    require_binary("/usr/bin/chromium")
    base = servers["base"]
    # A long idle timeout keeps the sessions alive while limits are checked on a busy machine;
    # the test then ages them by hand instead of sleeping.
    settings = config(max_pages=3, max_pages_per_agent=2, idle_timeout_secs=60.0, robots_txt=False)
    async with oxios_kernel_factory(plugins=[browser_plugin], config=settings) as kernel:
        engine = kernel.services["browser"]
        assert not (await call(kernel, "browser_goto", url=base + "/")).is_error
        assert not (await call(kernel, "browser_goto", url=base + "/next.html", new_tab=True)).is_error
        third = await call(kernel, "browser_goto", url=base + "/", new_tab=True)
        assert third.is_error and "tabs open" in third.content
        await call(kernel, "browser_goto", agent="agent-2", url=base + "/")
        over = await call(kernel, "browser_goto", agent="agent-2", url=base + "/", new_tab=True)
        assert over.is_error and "open pages" in over.content
        assert engine.page_count() == 3

        assert await engine.close_idle(now=time.monotonic() + 30) == 0  # not idle long enough
        assert await engine.close_idle(now=time.monotonic() + 120) == 2  # both agents' sessions
        assert not engine.sessions and engine.page_count() == 0
        assert engine.page_count() == 0 and engine.running

        # Chromium dies under us: the next call relaunches it.
        # Kill every Chromium process, not only the main one: its helpers come and go while
        # we look, so picking the main one out by its parent races with them exiting.
        victims = chromium_processes()
        assert victims, "expected Chromium processes started by playwright"
        for proc in victims:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        await wait_for(lambda: not engine.running, "browser noticed it died")
        again = await call(kernel, "browse", url=base + "/next.html")
        assert not again.is_error, again.content
        assert engine.launches == 2
