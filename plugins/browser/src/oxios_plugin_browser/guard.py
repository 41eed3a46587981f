"""Every request Chromium makes goes through here: SSRF check, then fetched by us.

Chromium's own network stack would resolve a host a second time after our
check (a DNS-rebinding window), so the page's requests are not continued:
the guard fetches them with the SSRF-guarded httpx transport, which connects
to the very address it checked, and hands the response to Chromium with
``route.fulfill``. Redirects are passed back to Chromium as 3xx responses, so
Redirects need care: Chromium does NOT route the request that follows a
redirect (playwright routes only the first URL), so a 3xx is never handed to
Chromium. A subresource's redirects are followed here, each hop checked; a
document's redirect becomes a small page linking to the target, and the
navigation tools follow it as a fresh, checked and authorized navigation.
Robots.txt rules are fetched through the same guarded client.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from html import escape
from typing import Any
from urllib.parse import urljoin, urlsplit
from urllib.robotparser import RobotFileParser

import httpx

from oxios.security.ssrf import GuardedTransport, SSRFError, acheck_url

log = logging.getLogger(__name__)

# Hop-by-hop and encoding headers: httpx already decoded the body.
_DROP_RESPONSE_HEADERS = {"content-encoding", "content-length", "transfer-encoding", "connection", "keep-alive"}
_DROP_REQUEST_HEADERS = {"host", "connection", "content-length", "accept-encoding"}
_LOCAL_SCHEMES = ("data:", "blob:", "about:")


def _redirect_page(status: int, target: str) -> bytes:
    link = escape(target, quote=True)
    return f'<html><head><title>Redirect</title></head><body><p>HTTP {status} redirect to <a href="{link}">{link}</a></p></body></html>'.encode()


class Blocked(Exception):
    """A URL the guard refuses, with the reason."""


class NetworkGuard:
    def __init__(self, allowlist: list[str], *, max_response_bytes: int, timeout: float, user_agent: str) -> None:
        self.allowlist = list(allowlist)
        self.max_response_bytes = max_response_bytes
        self.user_agent = user_agent
        self.client = httpx.AsyncClient(
            transport=GuardedTransport(self.allowlist),
            follow_redirects=False,
            trust_env=False,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        )
        self.blocked: deque[dict[str, Any]] = deque(maxlen=200)
        self.requests_seen = 0
        self._robots: dict[str, tuple[float, RobotFileParser | None]] = {}
        # document URL -> where it redirected (followed by the navigation tools)
        self.redirects: dict[str, str] = {}

    async def aclose(self) -> None:
        await self.client.aclose()

    async def check(self, url: str) -> None:
        """Raise :class:`Blocked` unless ``url`` is http(s) to an allowed address."""
        try:
            await acheck_url(url, self.allowlist)
        except SSRFError as err:
            raise Blocked(str(err)) from None

    def _record_block(self, url: str, reason: str, owner: str) -> None:
        self.blocked.append({"url": url[:500], "reason": reason, "owner": owner, "time": time.time()})
        log.info("browser: blocked %s (%s)", url[:200], reason)

    # -- page requests -------------------------------------------------------------

    async def handle_route(self, route: Any, owner: str) -> None:
        request = route.request
        url = request.url
        self.requests_seen += 1
        if url.startswith(_LOCAL_SCHEMES):
            await route.continue_()
            return
        try:
            await self.check(url)
        except Blocked as err:
            self._record_block(url, str(err), owner)
            await route.abort("blockedbyclient")
            return
        document = request.resource_type == "document"
        try:
            status, headers, body = await self._fetch(request, follow_redirects=not document)
        except Blocked as err:
            self._record_block(url, str(err), owner)
            await route.abort("blockedbyclient")
            return
        except (httpx.HTTPError, OSError) as err:
            log.debug("browser: %s failed: %s", url[:200], err)
            await route.abort("failed")
            return
        if document and 300 <= status < 400 and "location" in headers:
            target = urljoin(url, headers["location"])
            if len(self.redirects) > 1000:
                self.redirects.clear()
            self.redirects[url] = target
            status, headers, body = 200, {"content-type": "text/html; charset=utf-8"}, _redirect_page(status, target)
        await route.fulfill(status=status, headers=headers, body=body)

    async def _fetch(self, request: Any, *, follow_redirects: bool) -> tuple[int, dict[str, str], bytes]:
        headers = {
            k: v
            for k, v in (await request.all_headers()).items()
            if k.lower() not in _DROP_REQUEST_HEADERS and not k.startswith(":")
        }
        body = request.post_data_buffer
        async with self.client.stream(
            request.method, request.url, headers=headers, content=body, follow_redirects=follow_redirects
        ) as response:
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self.max_response_bytes:
                    raise Blocked(f"response larger than {self.max_response_bytes} bytes")
                chunks.append(chunk)
            out_headers: dict[str, str] = {}
            for key, value in response.headers.multi_items():
                k = key.lower()
                if k in _DROP_RESPONSE_HEADERS:
                    continue
                # Several Set-Cookie headers travel as one, newline-separated (playwright's convention).
                out_headers[k] = f"{out_headers[k]}\n{value}" if k in out_headers else value
            return response.status_code, out_headers, b"".join(chunks)

    async def handle_websocket(self, ws: Any, owner: str) -> None:
        http_url = "http" + ws.url[2:] if ws.url.startswith("ws") else ws.url
        try:
            await self.check(http_url)
        except Blocked as err:
            self._record_block(ws.url, str(err), owner)
            await ws.close(code=1008, reason="blocked by the SSRF guard")
            return
        ws.connect_to_server()

    # -- robots.txt ----------------------------------------------------------------

    async def robots_allows(self, url: str, agent: str) -> bool:
        """RFC 9309: 4xx means no rules, 5xx means everything is disallowed."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        cached = self._robots.get(origin)
        if cached is None or time.monotonic() - cached[0] > 3600:
            parser: RobotFileParser | None = RobotFileParser()
            try:
                response = await asyncio.wait_for(
                    self.client.get(origin + "/robots.txt", headers={"user-agent": self.user_agent}, follow_redirects=True), 15
                )
                if response.status_code >= 500:
                    parser.disallow_all = True
                elif response.status_code >= 400:
                    parser = None
                else:
                    parser.parse(response.text[:500_000].splitlines())
            except (httpx.HTTPError, OSError, TimeoutError):
                parser = None  # unreachable: the navigation itself will report the failure
            cached = (time.monotonic(), parser)
            self._robots[origin] = cached
        parser = cached[1]
        return True if parser is None else parser.can_fetch(agent, url)
