"""The "mcp" service: configured servers, their tools in the kernel's registry, calls.

Servers start lazily. A server's tool list is cached in the state store, so
after the first discovery its tools are registered at start-up without
starting the server; the server process starts on the first call. A server
never seen before is discovered in the background (start-up never waits).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from typing import Any

import msgspec

from oxios_hookspecs import Action, ActionContext, ToolResult, ToolSpec

from . import tool_name
from .client import McpConnection, McpUnavailable

log = logging.getLogger(__name__)

_KV = "mcp"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


class McpTool:
    """One MCP server tool as an Oxios tool (``mcp__SERVER__TOOL``)."""

    def __init__(self, manager: McpManager, server: str, tool: dict[str, Any], tier: str) -> None:
        self.manager = manager
        self.server = server
        self.remote_name = tool["name"]
        name = tool_name(server, _UNSAFE.sub("_", tool["name"]))[:128]
        schema = tool.get("input_schema") or {"type": "object", "properties": {}}
        description = (tool.get("description") or "").strip()
        self.spec = ToolSpec(
            name=name,
            description=f"[MCP server {server}] {description}".strip(),
            parameters=schema,
            tier=tier,  # type: ignore[arg-type]
            plugin="mcp",
        )

    async def call(self, args: dict[str, Any], context: ActionContext) -> ToolResult:
        return await self.manager.call(self.server, self.remote_name, args or {}, context)


def tool_result(result: Any) -> ToolResult:
    """An MCP CallToolResult as a ToolResult; ``is_error`` results stay errors."""
    parts: list[str] = []
    for block in result.content or []:
        kind = getattr(block, "type", "")
        if kind == "text":
            parts.append(block.text)
        elif kind in ("image", "audio"):
            parts.append(f"[{kind} {getattr(block, 'mime_type', '')}, {len(getattr(block, 'data', '') or '')} base64 characters]")
        elif kind == "resource_link":
            parts.append(f"[resource {block.uri}]")
        elif kind == "resource":
            inner = block.resource
            parts.append(getattr(inner, "text", None) or f"[resource {inner.uri}]")
        else:
            parts.append(f"[{kind or 'unknown'} content]")
    data = getattr(result, "structured_content", None)
    text = "\n".join(parts)
    if not text and data is not None:
        text = msgspec.json.encode(data).decode()
    return ToolResult(content=text, is_error=bool(result.is_error), data=data)


class McpManager:
    def __init__(self, kernel: Any) -> None:
        self.kernel = kernel
        allowlist = list(kernel.config.security.ssrf_allowlist)
        servers = kernel.config.mcp.servers if kernel.config.mcp.enabled else {}
        self.connections = {
            name: McpConnection(name, cfg, allowlist=allowlist, log_dir=kernel.paths.logs)
            for name, cfg in servers.items()
            if cfg.enabled
        }
        self.registered: dict[str, list[str]] = {name: [] for name in self.connections}
        self._discovery: list[asyncio.Task[Any]] = []

    def tier(self, server: str) -> str:
        conn = self.connections[server]
        return conn.config.tier or ("network" if conn.transport == "http" else "exec")

    def _cache_key(self, name: str) -> str:
        """Cached tool lists are only reused for the same command or URL."""
        cfg = self.connections[name].config
        identity = hashlib.sha256(json.dumps([cfg.url, cfg.command, cfg.args]).encode()).hexdigest()[:16]
        return f"tools.{name}.{identity}"

    async def start(self) -> None:
        for name in self.connections:
            cached = self.kernel.state.kv_get(_KV, self._cache_key(name)) if self.kernel.state else None
            if cached:
                self._register(name, cached)
            else:
                self._discovery.append(asyncio.create_task(self._discover(name), name=f"mcp-discover-{name}"))

    async def _discover(self, name: str) -> None:
        try:
            await self.refresh(name)
        except Exception as err:
            log.warning("mcp: discovering %s failed: %s", name, err)

    async def stop(self) -> None:
        for task in self._discovery:
            task.cancel()
        await asyncio.gather(*self._discovery, return_exceptions=True)
        await asyncio.gather(*(c.close() for c in self.connections.values()), return_exceptions=True)

    def status(self) -> dict[str, Any]:
        servers = {name: c.status() | {"tools": len(self.registered[name])} for name, c in self.connections.items()}
        healthy = all(s["failures"] == 0 or s["running"] for s in servers.values())
        return {"healthy": healthy, "detail": None, "servers": servers}

    # -- tools ---------------------------------------------------------------------------

    def _connection(self, server: str) -> McpConnection:
        conn = self.connections.get(server)
        if conn is None:
            from oxios import NotFound

            raise NotFound(f"no MCP server {server!r} (configured: {', '.join(sorted(self.connections)) or 'none'})")
        return conn

    def _register(self, server: str, tools: list[dict[str, Any]]) -> None:
        tier = self.tier(server)
        for old in self.registered[server]:
            self.kernel.tools.remove(old)
        names = []
        for tool in tools:
            t = McpTool(self, server, tool, tier)
            if self.kernel.tools.add(t):
                names.append(t.spec.name)
        self.registered[server] = names

    async def refresh(self, server: str) -> list[dict[str, Any]]:
        """Ask the server for its tools, register them and cache the list."""
        found = await self._connection(server).list_tools()
        tools = [{"name": t.name, "description": t.description or "", "input_schema": t.input_schema} for t in found]
        self._register(server, tools)
        if self.kernel.state is not None:
            self.kernel.state.kv_set(_KV, self._cache_key(server), tools)
        return tools

    # -- facade (CLI, RPC) ----------------------------------------------------------------

    def list(self) -> list[dict[str, Any]]:
        return [c.status() | {"tools": self.registered[n], "tier": self.tier(n)} for n, c in self.connections.items()]

    async def tools(self, server: str) -> list[dict[str, Any]]:
        return [t | {"oxios_name": tool_name(server, _UNSAFE.sub("_", t["name"]))} for t in await self.refresh(server)]

    async def call(self, server: str, tool: str, arguments: dict[str, Any], context: ActionContext | None = None) -> ToolResult:
        from mcp import MCPError

        conn = self._connection(server)
        context = context or self.kernel.context(agent_id="cli")
        if conn.transport == "http":
            # The remote endpoint is a URL like any other: SSRF policy, RBAC network, audit.
            auth = await self.kernel.authorize(Action(kind="url", url=conn.config.url, name=f"mcp.{server}"), context)
            allowed, reason = auth.allowed, auth.reason
            if not allowed:
                return ToolResult.error(f"MCP server {server} at {conn.config.url} denied: {reason}")
        try:
            return tool_result(await conn.call_tool(tool, arguments))
        except MCPError as err:
            return ToolResult.error(f"MCP server {server} refused {tool}: {err.message}")
        except McpUnavailable as err:
            return ToolResult.error(str(err))

    async def call_json(self, server: str, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """For the CLI through the control socket."""
        result = await self.call(server, tool, arguments)
        return {"content": result.content, "is_error": result.is_error, "data": result.data}


async def start(kernel: Any) -> McpManager:
    manager = McpManager(kernel)
    await manager.start()
    return manager
