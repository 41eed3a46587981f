"""Oxios as an MCP server: run a prompt, search and save memory, list skills.

``oxios mcp serve`` runs it over stdio against a kernel in that process. Each
call is an ``api`` action checked by the policy engine and audited, like a
REST call. Over HTTP with ``security.auth_enabled`` the endpoint puts the
caller's API token (name and role) into the request scope: the policy checks
and the agent runs of that request use the token's role, and the audit chain
names the token. Otherwise (stdio, no auth) the role is ``security.default_role``.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

# The tools' ``ctx: Context`` annotations are resolved against this module's globals.
from mcp.server.mcpserver import Context

from oxios_hookspecs import Action, IncomingMessage

CALLER_SCOPE_KEY = "oxios.mcp.caller"  # set by the HTTP endpoint: the verified token's name and role

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


class Refused(Exception):
    """Policy said no; the MCP client sees a tool error with the reason."""


def caller_of(ctx: Context | None) -> dict[str, str] | None:
    """The API token behind this request (HTTP with auth), or None (stdio, in-process, no auth)."""
    try:
        request = ctx.request_context.request if ctx is not None else None
    except ValueError:  # outside a request
        return None
    scope = getattr(request, "scope", None)
    return scope.get(CALLER_SCOPE_KEY) if isinstance(scope, dict) else None


def _owner_of_session(kernel: Any, session_id: str) -> str | None:
    """The user a session belongs to, or None when there is no such session (yet)."""
    try:
        return kernel.service("sessions").get(session_id)["user_id"]
    except LookupError:
        return None


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

    def context_for(caller: dict[str, str] | None) -> Any:
        if caller is None:
            return kernel.context(agent_id="mcp-client", interactive=False)
        return kernel.context(agent_id=f"mcp:{caller['name']}", role=caller["role"], interactive=False)

    async def allow(ctx: Context | None, name: str, resource: str = "") -> Any:
        """The policy context of this request, once the policy allowed ``name``."""
        context = context_for(caller_of(ctx))
        auth = await kernel.authorize(Action(kind="api", name=f"mcp.{name}", resource=resource or name), context)
        allowed, reason = auth.allowed, auth.reason
        if not allowed:
            raise Refused(f"{name} denied: {reason}")
        return context

    @server.tool()
    @_clear_errors
    async def run_prompt(prompt: str, ctx: Context, session_id: str = "", persona: str = "") -> str:
        """Run a prompt as an Oxios agent and return its answer. Pass session_id to continue a conversation."""
        context = await allow(ctx, "run_prompt")
        caller = caller_of(ctx)
        metadata: dict[str, Any] = {}
        if caller is not None:
            metadata = {"role": caller["role"], "token_name": caller["name"]}  # the run's role is the token's
            if session_id and _owner_of_session(kernel, session_id) not in (None, context.agent_id):
                raise Refused(f"session {session_id} belongs to another caller")
        gateway = kernel.service("gateway")
        message = IncomingMessage(
            content=prompt,
            channel="mcp",
            user_id=context.agent_id if caller is not None else "mcp",
            session_id=session_id or None,
            persona=persona or None,
            interactive=False,
            metadata=metadata,
        )
        result = await gateway.submit(message)
        await kernel.audit(
            context.agent_id,
            "mcp.run",
            result.session_id,
            not result.error,
            result.error or "answered",
            agent_id=result.agent_id,
            role=context.role,
        )
        if result.error:
            raise RuntimeError(f"the agent failed: {result.error}")
        return f"{result.response}\n\n[session_id: {result.session_id}]"

    @server.tool()
    @_clear_errors
    async def memory_search(query: str, ctx: Context, k: int = 5, mode: str = "hybrid") -> list[dict[str, Any]]:
        """Search Oxios's memory (mode: keyword, semantic or hybrid)."""
        await allow(ctx, "memory_search", query)
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
    async def memory_save(content: str, ctx: Context, category: str = "", importance: float = 0.5) -> dict[str, Any]:
        """Save a fact to Oxios's memory; returns its id."""
        await allow(ctx, "memory_save")
        record = await kernel.service("memory").put(content, category=category, importance=importance, source="mcp")
        return {"id": record.id, "type": record.type, "tier": record.tier}

    @server.tool()
    @_clear_errors
    async def list_skills(ctx: Context) -> list[dict[str, Any]]:
        """List the skills installed in Oxios (name, description, eligibility)."""
        await allow(ctx, "list_skills")
        rows = kernel.service("skills").list()
        return [{k: row.get(k) for k in ("name", "description", "eligible", "source") if k in row} for row in rows]

    return server


async def serve_stdio(kernel: Any) -> None:
    await build_server(kernel).run_stdio_async()
