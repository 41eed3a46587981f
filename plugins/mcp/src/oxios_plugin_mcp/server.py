"""Oxios as an MCP server: run a prompt, search and save memory, list skills.

``oxios mcp serve`` runs it over stdio against a kernel in that process. Each
call is an ``api`` action checked by the policy engine (role:
``security.default_role``) and audited, like a REST call.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from oxios_hookspecs import Action, IncomingMessage

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


class Refused(Exception):
    """Policy said no; the MCP client sees a tool error with the reason."""


def _clear_errors(fn: F) -> F:
    """MCPServer hides an exception's text unless it is a ToolError; ours are meant for the client."""
    from mcp.server.mcpserver.exceptions import ToolError

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return await fn(*args, **kwargs)
        except ToolError:
            raise
        except Exception as err:
            raise ToolError(str(err) or type(err).__name__) from err

    return wrapper  # type: ignore[return-value]


def build_server(kernel: Any) -> Any:
    import logging

    from mcp.server import MCPServer

    # MCPServer() calls logging.basicConfig, which would add its own (unredacting) handler
    # to the root logger of a process that has none yet; Oxios's logging stays in charge.
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    server = MCPServer("oxios", instructions="Oxios: an operating system for LLM agents. Run prompts, use its memory and skills.")
    root.handlers[:] = handlers
    root.setLevel(level)
    context = kernel.context(agent_id="mcp-client", interactive=False)

    async def allow(name: str, resource: str = "") -> None:
        auth = await kernel.authorize(Action(kind="api", name=f"mcp.{name}", resource=resource or name), context)
        allowed, reason = auth.allowed, auth.reason
        if not allowed:
            raise Refused(f"{name} denied: {reason}")

    @server.tool()
    @_clear_errors
    async def run_prompt(prompt: str, session_id: str = "", persona: str = "") -> str:
        """Run a prompt as an Oxios agent and return its answer. Pass session_id to continue a conversation."""
        await allow("run_prompt")
        gateway = kernel.service("gateway")
        message = IncomingMessage(
            content=prompt,
            channel="mcp",
            user_id="mcp",
            session_id=session_id or None,
            persona=persona or None,
            interactive=False,
        )
        result = await gateway.submit(message)
        if result.error:
            raise RuntimeError(f"the agent failed: {result.error}")
        return f"{result.response}\n\n[session_id: {result.session_id}]"

    @server.tool()
    @_clear_errors
    async def memory_search(query: str, k: int = 5, mode: str = "hybrid") -> list[dict[str, Any]]:
        """Search Oxios's memory (mode: keyword, semantic or hybrid)."""
        await allow("memory_search", query)
        hits = await kernel.service("memory").search(query, mode, k)
        return [
            {
                "id": h.record.id,
                "content": h.record.content,
                "score": round(h.score, 4),
                "category": h.record.category,
                "tier": h.record.tier,
            }
            for h in hits
        ]

    @server.tool()
    @_clear_errors
    async def memory_save(content: str, category: str = "", importance: float = 0.5) -> dict[str, Any]:
        """Save a fact to Oxios's memory; returns its id."""
        await allow("memory_save")
        record = await kernel.service("memory").put(content, category=category, importance=importance, source="mcp")
        return {"id": record.id, "type": record.type, "tier": record.tier}

    @server.tool()
    @_clear_errors
    async def list_skills() -> list[dict[str, Any]]:
        """List the skills installed in Oxios (name, description, eligibility)."""
        await allow("list_skills")
        rows = kernel.service("skills").list()
        return [{k: row.get(k) for k in ("name", "description", "eligible", "source") if k in row} for row in rows]

    return server


async def serve_stdio(kernel: Any) -> None:
    await build_server(kernel).run_stdio_async()
