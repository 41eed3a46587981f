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
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any
from urllib.parse import urljoin, urlsplit
from urllib.robotparser import RobotFileParser

import httpx

from oxios.security.ssrf import GuardedTransport, SSRFError, acheck_url, host_allowlisted, parse_numeric_host

log = logging.getLogger(__name__)

# Hop-by-hop and encoding headers: httpx already decoded the body.
_DROP_RESPONSE_HEADERS = {"content-encoding", "content-length", "transfer-encoding", "connection", "keep-alive"}
_DROP_REQUEST_HEADERS = {"host", "connection", "content-length", "accept-encoding"}
_LOCAL_SCHEMES = ("data:", "blob:", "about:")
_CLOSED = object()  # the page closed its WebSocket


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
            # One client fetches for every agent: a cookie it kept from one agent's response would go
            # out with another agent's requests. Chromium keeps each context's cookies and sends them.
            cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
        )
        self.blocked: deque[dict[str, Any]] = deque(maxlen=200)
        self.requests_seen = 0
        self._robots: dict[str, tuple[float, RobotFileParser | None]] = {}
        # document URL -> where it redirected (followed by the navigation tools)
        self.redirects: dict[str, str] = {}
        self._relays: set[asyncio.Task[None]] = set()  # WebSockets relayed to the checked address

    async def aclose(self) -> None:
        for task in list(self._relays):
            task.cancel()
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
        """Check a page's WebSocket; connect it to the very address that was checked.

        Chromium would resolve a host name again when it connects (a DNS
        rebinding window), so only an IP literal or a name allowlisted as such
        is left to Chromium; any other socket is relayed here, over a
        connection to the checked address (Host header and TLS name kept).
        The relay carries messages only: no cookies and no subprotocols.
        """
        http_url = "http" + ws.url[2:] if ws.url.startswith("ws") else ws.url
        try:
            addresses = await acheck_url(http_url, self.allowlist)
        except SSRFError as err:
            self._record_block(ws.url, str(err), owner)
            await ws.close(code=1008, reason="blocked by the SSRF guard")
            return
        host = urlsplit(ws.url).hostname or ""
        if parse_numeric_host(host) is not None or host_allowlisted(host, self.allowlist):
            ws.connect_to_server()
            return
        inbox: asyncio.Queue[Any] = asyncio.Queue()
        ws.on_message(inbox.put_nowait)
        ws.on_close(lambda code, reason: inbox.put_nowait(_CLOSED))
        task = asyncio.create_task(self._relay(ws, str(addresses[0]), inbox), name="oxios-browser-ws-relay")
        self._relays.add(task)
        task.add_done_callback(self._relays.discard)

    async def _relay(self, ws: Any, address: str, inbox: asyncio.Queue[Any]) -> None:
        import websockets

        parts = urlsplit(ws.url)
        port = parts.port or (443 if parts.scheme == "wss" else 80)
        try:
            upstream = await websockets.connect(
                ws.url, host=address, port=port, proxy=None, max_size=self.max_response_bytes, user_agent_header=self.user_agent
            )
        except Exception as err:  # refused, TLS, handshake: the page sees a closed socket
            log.debug("browser: websocket %s via %s failed: %s", ws.url[:200], address, err)
            await ws.close(code=1011, reason="could not connect")
            return

        async def to_server() -> None:
            while (message := await inbox.get()) is not _CLOSED:
                await upstream.send(message)
            await upstream.close()

        sender = asyncio.create_task(to_server())
        try:
            async for message in upstream:
                ws.send(message)
            await ws.close(code=upstream.close_code or 1000, reason=upstream.close_reason or "")
        except Exception as err:  # the page went away, or the server broke the connection
            log.debug("browser: websocket relay %s ended: %s", ws.url[:200], err)
        finally:
            sender.cancel()
            await upstream.close()

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
