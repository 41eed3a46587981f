"""One connection to one configured MCP server, kept alive and restarted with backoff.

The SDK's ``Client`` is an async context manager built on anyio task groups,
which must be exited by the task that entered them; so each connection owns a
runner task that holds the context open until the connection is closed or
breaks. Calls from any task go through the open client.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from typing import Any

from .guard import guarded_http_client

log = logging.getLogger(__name__)

MAX_BACKOFF_SECS = 60.0
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class McpUnavailable(Exception):
    """The server cannot be reached or started (with the reason)."""


def expand_env(value: str) -> str:
    """``${NAME}`` from Oxios's environment, so secrets never have to sit in config.toml."""
    return _ENV_REF.sub(lambda m: os.environ.get(m.group(1), ""), value)


class McpConnection:
    def __init__(self, name: str, config: Any, *, allowlist: list[str], log_dir: Any = None) -> None:
        self.name = name
        self.log_dir = log_dir
        self.config = config
        self.allowlist = allowlist
        self.transport = "http" if config.url else "stdio"
        self.timeout = float(config.timeout_secs)
        self.start_timeout = float(config.start_timeout_secs)
        self.client: Any = None
        self.starts = 0
        self.failures = 0
        self.last_error: str | None = None
        self._next_attempt = 0.0
        self._lock = asyncio.Lock()
        self._runner: asyncio.Task[None] | None = None
        self._closing: asyncio.Event | None = None
        self._errlog: Any = None
        self._http: Any = None

    # -- lifecycle -------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return self.client is not None and self._runner is not None and not self._runner.done()

    def status(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "transport": self.transport,
            "target": self.config.url or " ".join([self.config.command, *self.config.args]),
            "env": sorted(self.config.env),  # names only: values may be secrets
            "running": self.alive,
            "starts": self.starts,
            "failures": self.failures,
            "last_error": self.last_error,
        }

    def _server_spec(self) -> Any:
        if self.transport == "http":
            from mcp.client.streamable_http import streamable_http_client

            headers = {k: expand_env(v) for k, v in self.config.headers.items()}
            # Ours to close: the SDK leaves a client it was given open.
            self._http = guarded_http_client(self.allowlist, headers=headers, timeout=self.timeout)
            return streamable_http_client(self.config.url, http_client=self._http)
        from mcp import StdioServerParameters

        if not self.config.command:
            raise McpUnavailable(f"mcp.servers.{self.name} needs either command (stdio) or url (streamable HTTP)")
        from mcp.client.stdio import stdio_client

        params = StdioServerParameters(
            command=self.config.command,
            args=list(self.config.args),
            # Merged over the SDK's minimal default environment: Oxios's own secrets are not inherited.
            env={k: expand_env(v) for k, v in self.config.env.items()} or None,
            cwd=self.config.cwd or None,
        )
        if self.log_dir is None:
            return params
        # The server's stderr goes to its own log file, not into the daemon's terminal.
        self._errlog = open(self.log_dir / f"mcp-{self.name}.log", "a", encoding="utf-8")
        return stdio_client(params, errlog=self._errlog)

    async def ensure(self) -> Any:
        """The open client, starting (or restarting after backoff) the server if needed."""
        async with self._lock:
            if self.alive:
                return self.client
            wait = self._next_attempt - time.monotonic()
            if wait > self.timeout:
                raise McpUnavailable(f"MCP server {self.name} failed ({self.last_error}); next restart in {wait:.0f}s")
            if wait > 0:
                await asyncio.sleep(wait)
            if self.transport == "http":
                from oxios.security.ssrf import SSRFError, acheck_url

                try:
                    await acheck_url(self.config.url, self.allowlist)
                except SSRFError as err:
                    self._failed(f"blocked by the SSRF guard: {err}")
                    raise McpUnavailable(f"MCP server {self.name}: {self.last_error}") from None
            ready: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._closing = asyncio.Event()
            self.starts += 1
            self._runner = asyncio.create_task(self._run(ready, self._closing), name=f"mcp-{self.name}")
            try:
                return await asyncio.wait_for(asyncio.shield(ready), timeout=self.start_timeout)
            except TimeoutError:
                await self._stop_runner()
                self._failed(f"did not start within {self.start_timeout:.0f}s (start_timeout_secs)")
            except Exception as err:
                await self._stop_runner()
                self._failed(_describe(err))
            raise McpUnavailable(f"MCP server {self.name} is unavailable: {self.last_error}")

    async def _run(self, ready: asyncio.Future[Any], closing: asyncio.Event) -> None:
        from mcp import Client
        from mcp.types import Implementation

        try:
            async with Client(
                self._server_spec(),
                read_timeout_seconds=self.timeout,
                client_info=Implementation(name="oxios", version="0.1.0"),
            ) as client:
                self.client = client
                if not ready.done():
                    ready.set_result(client)
                await closing.wait()
        except BaseException as err:
            if not ready.done():
                ready.set_exception(err if isinstance(err, Exception) else McpUnavailable(_describe(err)))
            elif not closing.is_set():
                self._failed(_describe(err))
            if isinstance(err, asyncio.CancelledError):
                raise
        finally:
            self.client = None
            if self._errlog is not None:
                self._errlog.close()
                self._errlog = None
            if self._http is not None:
                http, self._http = self._http, None
                await http.aclose()

    def _failed(self, reason: str) -> None:
        self.failures += 1
        self.last_error = reason
        backoff = min(MAX_BACKOFF_SECS, 0.5 * 2 ** min(self.failures - 1, 8))
        self._next_attempt = time.monotonic() + backoff
        log.warning("mcp: server %s failed: %s (restart in %.1fs)", self.name, reason, backoff)

    async def mark_dead(self, reason: str) -> None:
        """A call found the connection broken: close it; the next call restarts it after backoff."""
        async with self._lock:
            self._failed(reason)
            await self._stop_runner()

    async def _stop_runner(self) -> None:
        runner, self._runner = self._runner, None
        if self._closing is not None:
            self._closing.set()
        if runner is not None and not runner.done():
            try:
                await asyncio.wait_for(runner, timeout=10)
            except (TimeoutError, asyncio.CancelledError, Exception):
                runner.cancel()
        self.client = None

    async def close(self) -> None:
        async with self._lock:
            await self._stop_runner()

    # -- calls -------------------------------------------------------------------------

    async def list_tools(self) -> list[Any]:
        client = await self.ensure()
        tools: list[Any] = []
        cursor: str | None = None
        for _ in range(100):  # a paginator that never ends must not hang us
            page = await self._guarded(client.list_tools(cursor=cursor))
            tools.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                break
        return tools

    async def call_tool(self, tool: str, arguments: dict[str, Any]) -> Any:
        client = await self.ensure()
        return await self._guarded(client.call_tool(tool, arguments, read_timeout_seconds=self.timeout))

    async def _guarded(self, awaitable: Any) -> Any:
        """Server errors (MCPError) pass through; a broken transport marks the connection dead."""
        from mcp import MCPError
        from mcp_types import CONNECTION_CLOSED

        try:
            return await asyncio.wait_for(awaitable, timeout=self.timeout + 1)
        except MCPError as err:
            if err.code != CONNECTION_CLOSED:
                raise
            await self.mark_dead("the connection closed (the server exited?)")
            raise McpUnavailable(
                f"MCP server {self.name} stopped ({self.last_error}); it is restarted on the next call"
            ) from None
        except TimeoutError:
            raise McpUnavailable(f"MCP server {self.name} did not answer within {self.timeout:.0f}s") from None
        except Exception as err:
            await self.mark_dead(_describe(err))
            raise McpUnavailable(
                f"MCP server {self.name} stopped ({self.last_error}); it is restarted on the next call"
            ) from None


def _describe(err: BaseException) -> str:
    """The innermost meaningful message (anyio wraps errors in exception groups)."""
    while isinstance(err, BaseExceptionGroup) and err.exceptions:
        err = err.exceptions[0]
    text = str(err) or type(err).__name__
    return f"{type(err).__name__}: {text}" if text != type(err).__name__ else text
