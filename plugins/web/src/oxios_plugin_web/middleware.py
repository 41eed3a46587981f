"""The guard in front of every ``/api`` route: metrics, origin, rate limit, auth.

A pure ASGI middleware (it wraps HTTP and WebSocket alike and never buffers
a streamed response). In order:

0. (every path, the UI too) while the server listens on a loopback address,
   the ``Host`` header must name a loopback host (or one of
   ``channels.web.allowed_hosts``): a DNS-rebinding page that made the
   browser believe ``evil.example`` is 127.0.0.1 is refused before it can
   read conversations;
1. requests are counted and timed for ``/api/metrics`` (by route template);
2. a browser request from a foreign ``Origin`` that would change state (or
   open the chat socket) is refused: a web page elsewhere must not drive
   the local agent (CSRF, cross-site WebSocket hijacking). This one holds for
   every path, plugin routes (``/a2a``, ``/mcp``) included;
3. each client (by address) gets ``security.rate_limit_per_minute``
   requests per rolling minute, then 429 with ``Retry-After``;
4. with ``security.auth_enabled`` a bearer token is required
   (``Authorization: Bearer`` or, for EventSource and WebSocket clients
   that cannot set headers, ``?token=``) and checked by the ``tokens``
   service, which audits failures. ``/health`` and the UI stay open.
   Open streams check their token again before each event or frame
   (:func:`still_authorized`), so a revoked token ends them.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from oxios.plugins import resolve

from .errors import json_error

log = logging.getLogger("oxios.web")

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
LOOPBACK_NAMES = {"127.0.0.1", "localhost", "::1"}
QUERY_TOKEN_PATHS = ("/api/events", "/api/chat/stream")


class RateLimiter:
    """A rolling one-minute window of request times per client."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._hits: dict[str, deque[float]] = {}

    def check(self, client: str) -> float:
        """0 when allowed (and counted), else the seconds until the next request is."""
        if self.per_minute <= 0:
            return 0.0
        now = self.clock()
        hits = self._hits.setdefault(client, deque())
        while hits and now - hits[0] >= 60.0:
            hits.popleft()
        if len(hits) >= self.per_minute:
            return max(0.001, 60.0 - (now - hits[0]))
        hits.append(now)
        if len(self._hits) > 10_000:  # forget idle clients so the table stays small
            for key in [k for k, v in self._hits.items() if not v or now - v[-1] >= 60.0]:
                del self._hits[key]
        return 0.0


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key == name:
            return value.decode("latin-1")
    return None


def _host_name(scope: Scope) -> str:
    """The Host header's name without the port (``[::1]:4200`` -> ``::1``); "" when absent."""
    host = (_header(scope, b"host") or "").strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _same_origin(scope: Scope, origin: str, allowed: list[str]) -> bool:
    if origin in allowed:
        return True
    host = _header(scope, b"host")
    parts = urlsplit(origin)
    return bool(host) and parts.netloc == host and parts.scheme in ("http", "https")


def bearer_token(scope: Scope) -> str | None:
    auth = _header(scope, b"authorization")
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    if scope["path"] in QUERY_TOKEN_PATHS or scope["type"] == "websocket":
        values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
        if values:
            return values[0]
    return None


async def still_authorized(kernel: Any, scope: Scope) -> bool:
    """Whether the token a long-lived stream (SSE, WebSocket) was opened with is still valid.

    Streams call this before each event or frame: revoking a token (also from
    the CLI, in another process) ends the streams opened with it. A failure is
    audited by the token service, as at the door.
    """
    if not kernel.config.security.auth_enabled:
        return True
    tokens = kernel.services.get("tokens")
    if tokens is None:
        return False
    return bool(await resolve(tokens.verify(bearer_token(scope))))


class ApiGuard:
    def __init__(self, app: ASGIApp, kernel: Any, settings: Any, metrics: Any) -> None:
        self.app = app
        self.kernel = kernel
        self.settings = settings
        self.metrics = metrics
        self.limiter = RateLimiter(kernel.config.security.rate_limit_per_minute)
        self.loopback_only = kernel.config.gateway.host in LOOPBACK_NAMES or kernel.config.gateway.host.startswith("127.")

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if not self._host_allowed(scope):
            self.metrics.denials.labels(reason="host").inc()
            refusal = json_error(400, "invalid Host header (add the name to channels.web.allowed_hosts)")
            if scope["type"] == "websocket":
                await _reject_websocket(scope, receive, send, refusal)
            else:
                await refusal(scope, receive, send)
            return
        if not scope["path"].startswith("/api"):
            # Plugin routes (A2A at /a2a, MCP at /mcp) run agents too: no cross-site page may drive them.
            refusal = await self._refuse_origin(scope)
            if refusal is None:
                await self.app(scope, receive, send)
            elif scope["type"] == "websocket":
                await _reject_websocket(scope, receive, send, refusal)
            else:
                await refusal(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 0}

        async def send_wrapper(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            refusal = await self._refuse(scope)
            if refusal is not None:
                status["code"] = refusal.status_code
                if scope["type"] == "websocket":
                    await _reject_websocket(scope, receive, send, refusal)
                else:
                    await refusal(scope, receive, send)
                return
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "WS")
            code = status["code"] or (101 if scope["type"] == "websocket" else 500)
            self.metrics.observe_request(method, template, code, time.perf_counter() - started)

    def _host_allowed(self, scope: Scope) -> bool:
        if not self.loopback_only:
            return not self.settings.allowed_hosts or _host_name(scope) in self.settings.allowed_hosts
        name = _host_name(scope)
        return name in LOOPBACK_NAMES or name in self.settings.allowed_hosts

    async def _refuse_origin(self, scope: Scope) -> Any:
        origin = _header(scope, b"origin")
        method = scope.get("method", "GET")
        if origin and (scope["type"] == "websocket" or method not in SAFE_METHODS):
            if not _same_origin(scope, origin, self.settings.allowed_origins):
                await self._audit(scope, "origin.refused", False, f"cross-origin request from {origin}")
                self.metrics.denials.labels(reason="origin").inc()
                return json_error(403, f"cross-origin request from {origin} refused (add it to channels.web.allowed_origins)")
        return None

    async def _refuse(self, scope: Scope) -> Any:
        refusal = await self._refuse_origin(scope)
        if refusal is not None:
            return refusal
        client = scope.get("client")
        wait = self.limiter.check(client[0] if client else "unknown")
        if wait:
            self.metrics.denials.labels(reason="rate_limit").inc()
            return json_error(
                429,
                "rate limit exceeded (security.rate_limit_per_minute); retry later",
                headers={"Retry-After": str(math.ceil(wait))},
            )
        if not self.kernel.config.security.auth_enabled:
            return None
        tokens = self.kernel.services.get("tokens")
        if tokens is None:
            return json_error(501, "tokens is not available: security.auth_enabled needs the API token service")
        token = bearer_token(scope)
        # The token service audits every failure itself (no token, unknown or revoked token).
        role = await resolve(tokens.verify(token))
        if not role:
            self.metrics.denials.labels(reason="auth").inc()
            if token is None:
                return json_error(
                    401,
                    "authentication required: send Authorization: Bearer <token>",
                    headers={"WWW-Authenticate": 'Bearer realm="oxios"'},
                )
            return json_error(401, "invalid or revoked token", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        scope["oxios.role"] = role if isinstance(role, str) else getattr(role, "name", str(role))
        return None

    async def _audit(self, scope: Scope, action: str, allowed: bool, reason: str) -> None:
        audit = self.kernel.services.get("audit")
        if audit is None:
            return
        client = scope.get("client")
        try:
            await resolve(
                audit.append(
                    "web",
                    action,
                    f"{scope.get('method', 'WS')} {scope['path']}",
                    allowed,
                    reason,
                    {"client": client[0] if client else ""},
                )
            )
        except Exception:  # auditing must not turn a 401 into a 500
            log.exception("could not audit %s", action)


async def _reject_websocket(scope: Scope, receive: Any, send: Any, response: Any) -> None:
    """Refuse a WebSocket handshake with the HTTP status and JSON body (ASGI denial response)."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    if "websocket.http.response" in (scope.get("extensions") or {}):
        await send(
            {
                "type": "websocket.http.response.start",
                "status": response.status_code,
                "headers": [(k.encode(), v.encode()) for k, v in response.headers.items()],
            }
        )
        await send({"type": "websocket.http.response.body", "body": response.body})
    else:  # the server lacks the denial-response extension: close (clients see 403)
        await send({"type": "websocket.close", "code": 1008})
