"""Oxios's MCP server over streamable HTTP, mounted in the web plugin at ``/mcp``.

The SDK's session manager needs a running task group; it is started in a
task of its own on the first request and stopped with the kernel. With
``security.auth_enabled`` a request needs an Oxios API token, as on the REST API;
the token's name and role go into the request scope for the tools (see
:func:`.server.caller_of`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from .server import CALLER_SCOPE_KEY, build_server

MCP_PATH = "/mcp"


class McpHttpEndpoint:
    def __init__(self, kernel: Any) -> None:
        self.kernel = kernel
        server = build_server(kernel)
        # Builds (and keeps) the session manager; stateless: no per-client state to lose on restart.
        server.streamable_http_app(stateless_http=True, host=kernel.config.gateway.host)
        self.manager = server.session_manager
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._start_lock = asyncio.Lock()

    async def _run(self) -> None:
        async with self.manager.run():
            self._ready.set()
            await self._stop.wait()

    async def _ensure_running(self) -> None:
        async with self._start_lock:
            if self._task is None:
                self._task = asyncio.create_task(self._run(), name="oxios-mcp-http")
        await self._ready.wait()

    def _authorized(self, scope: Any) -> bool:
        """Whether the request may pass; with auth, the token's name and role are put into ``scope``."""
        scope.pop(CALLER_SCOPE_KEY, None)  # only this check may set it
        if not self.kernel.config.security.auth_enabled:
            return True
        header = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
        token = header[7:].strip() if header.lower().startswith("bearer ") else None
        tokens = self.kernel.services.get("tokens")
        record = tokens.identify(token) if tokens is not None and token else None
        if record is None:
            return False
        scope[CALLER_SCOPE_KEY] = {"name": record["name"], "role": record["role"]}
        return True

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if not self._authorized(scope):
            from starlette.responses import JSONResponse

            body = {"jsonrpc": "2.0", "id": None, "error": {"code": -32001, "message": "a valid API token is required"}}
            await JSONResponse(body, status_code=401, headers={"WWW-Authenticate": "Bearer"})(scope, receive, send)
            return
        await self._ensure_running()
        await self.manager.handle_request(scope, receive, send)

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=10)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()


def routes(kernel: Any) -> list[Any]:
    from starlette.routing import Route

    endpoint = McpHttpEndpoint(kernel)
    kernel.services["mcp_http"] = endpoint  # stopped with the kernel
    return [Route(MCP_PATH, endpoint, methods=["GET", "POST", "DELETE"])]
