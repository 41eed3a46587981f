"""The Starlette application: REST routes, SSE, WebSocket chat, OpenAPI and the UI.

``create_app(kernel)`` is all a test or another host needs; the web channel
(:mod:`oxios_plugin_web.plugin`) serves it with uvicorn inside the daemon.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from . import openapi
from .api import ENCODER, Endpoint, to_route
from .errors import error_response, json_error
from .metrics import WebMetrics
from .middleware import ApiGuard
from .routes import ENDPOINTS
from .settings import load_settings
from .sse import EventStreams, events_endpoint
from .ws import chat_stream

log = logging.getLogger("oxios.web")

STATIC_DIR = Path(__file__).parent / "static"
# The UI never loads anything from elsewhere; inline scripts are not needed either.
UI_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "
    "style-src 'self'; script-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _plugin_routes(kernel: Any) -> list[BaseRoute]:
    """Routes other plugins add through the optional ``register_routes(register, kernel)`` hook."""
    routes: list[BaseRoute] = []
    plugins = getattr(kernel, "plugins", None)
    caller = getattr(getattr(plugins, "hook", None), "register_routes", None)
    if caller is None:
        return routes
    for impl in caller.get_hookimpls():
        try:
            impl.function(**{k: v for k, v in {"register": routes.append, "kernel": kernel}.items() if k in impl.argnames})
        except Exception:
            log.exception("plugin %s failed in register_routes", plugins.plugin_of(impl.plugin))
    return routes


def create_app(kernel: Any, *, endpoints: list[Endpoint] | None = None) -> Starlette:
    endpoints = ENDPOINTS if endpoints is None else endpoints
    settings = load_settings(kernel.config)
    metrics = WebMetrics()
    document = openapi.build(endpoints, version=kernel.version, extra_paths=openapi.STREAM_PATHS)
    document_bytes = ENCODER.encode(document)
    streams = EventStreams()

    async def openapi_json(request: Request) -> Response:
        return Response(document_bytes, media_type="application/json")

    async def ui_index(request: Request) -> Response:
        return FileResponse(STATIC_DIR / "index.html", headers=UI_HEADERS)

    async def docs_page(request: Request) -> Response:
        return FileResponse(STATIC_DIR / "docs.html", headers=UI_HEADERS)

    async def chat_stream_over_http(request: Request) -> Response:
        return json_error(
            426, "GET /api/chat/stream is a WebSocket: connect with ws:// (see docs/web.md)", headers={"Upgrade": "websocket"}
        )

    async def api_not_found(request: Request) -> Response:
        return json_error(404, f"no such endpoint: {request.method} {request.url.path} (see /openapi.json)")

    routes: list[BaseRoute] = [to_route(ep) for ep in endpoints]
    routes += [
        Route("/api/events", events_endpoint, methods=["GET"]),
        WebSocketRoute("/api/chat/stream", chat_stream),
        Route("/api/chat/stream", chat_stream_over_http, methods=["GET"]),
        Route("/openapi.json", openapi_json, methods=["GET"]),
        Route("/docs", docs_page, methods=["GET"]),
        Route("/", ui_index, methods=["GET"]),
        Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
        *_plugin_routes(kernel),
        Route("/api/{rest:path}", api_not_found, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        streams.close_all()  # end open SSE streams so shutdown does not wait on them

    async def on_error(request: Request, exc: Exception) -> Response:
        return error_response(exc)

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(ApiGuard, kernel=kernel, settings=settings, metrics=metrics)],
        exception_handlers={Exception: on_error},
    )
    app.state.kernel = kernel
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.event_streams = streams
    app.state.openapi = document
    app.state.endpoints = endpoints
    kernel.events.add_listener(metrics.on_event)
    return app
