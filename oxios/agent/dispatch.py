"""Tool dispatch: validate, ask policy, run, audit, report; never crash the turn loop.

Calls keep the model's order, except that a run of consecutive read-tier
calls executes concurrently (reads do not depend on each other). Every
failure (unknown tool, invalid arguments, denial, an exception inside the
tool) becomes a tool error the model can read and correct.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import msgspec

from oxios_hookspecs import Action, ActionContext, ToolCallEvent, ToolResult, ToolResultBlock

from .authorize import audit_call, authorize

log = logging.getLogger(__name__)

MAX_RESULT_CHARS = 100_000


def _tier(kernel: Any, name: str) -> str | None:
    tool = kernel.tools.get(name)
    return tool.spec.tier if tool is not None else None


async def dispatch_calls(
    kernel: Any,
    calls: list[ToolCallEvent],
    context: ActionContext,
    allowed: set[str] | None = None,
    *,
    offered: list[str] | None = None,
) -> list[ToolResultBlock]:
    """Run the calls of one model turn; results in the calls' order.

    ``allowed`` is the caller's tool list (others are unknown to this agent);
    ``offered`` the names the model was shown, the only ones an error lists.
    """
    results: list[ToolResultBlock | None] = [None] * len(calls)
    i = 0
    while i < len(calls):
        j = i
        while j < len(calls) and _tier(kernel, calls[j].name) == "read":
            j += 1
        if j > i + 1:  # a run of independent reads: concurrently
            batch = await asyncio.gather(*(call_tool(kernel, c, context, allowed, offered) for c in calls[i:j]))
            results[i:j] = batch
            i = j
            continue
        results[i] = await call_tool(kernel, calls[i], context, allowed, offered)
        i += 1
    return [r for r in results if r is not None]


async def call_tool(
    kernel: Any,
    call: ToolCallEvent,
    context: ActionContext,
    allowed: set[str] | None = None,
    offered: list[str] | None = None,
) -> ToolResultBlock:
    result = await _run(kernel, call, context, allowed, offered)
    content = result.content
    if len(content) > MAX_RESULT_CHARS:
        content = content[:MAX_RESULT_CHARS] + f"\n[... result truncated: {len(content) - MAX_RESULT_CHARS} characters omitted]"
    return ToolResultBlock(tool_use_id=call.id, content=content, is_error=result.is_error)


async def _run(
    kernel: Any, call: ToolCallEvent, context: ActionContext, allowed: set[str] | None, offered: list[str] | None
) -> ToolResult:
    tool = kernel.tools.get(call.name)
    if tool is None or (allowed is not None and call.name not in allowed):
        # Name only what the model was offered: the list must not reveal tools its role hides.
        names = (
            sorted(offered) if offered is not None else sorted(n for n in kernel.tools.tools if allowed is None or n in allowed)
        )
        return ToolResult.error(f"unknown tool {call.name!r}; available tools: {', '.join(names)}")
    args = call.arguments if isinstance(call.arguments, dict) else {}
    parse = getattr(tool, "parse_args", None)
    if parse is not None:
        try:
            parse(args)
        except msgspec.ValidationError as err:
            return ToolResult.error(
                f"invalid arguments for {call.name}: {err}; expected schema: {msgspec.json.encode(tool.spec.parameters).decode()}"
            )
    action = Action(kind="tool", tool=call.name, tier=tool.spec.tier, args=args)
    auth = await authorize(kernel, action, context)
    if not auth.allowed:
        kernel.publish("tool.denied", agent_id=context.agent_id, tool=call.name, reason=auth.reason)
        return ToolResult.error(f"tool {call.name} denied by policy: {auth.reason}")
    kernel.publish("tool.started", agent_id=context.agent_id, session_id=context.session_id, tool=call.name, call_id=call.id)
    started = time.monotonic()
    progress = getattr(kernel.services.get("scheduler"), "progress", None)
    if progress is not None:
        progress()
    try:
        result = await tool.call(args, context)
        if not isinstance(result, ToolResult):
            result = ToolResult(content=str(result))
    except asyncio.CancelledError:
        raise
    except Exception as err:  # a tool bug is the model's information, not the loop's crash
        log.exception("tool %s failed", call.name)
        result = ToolResult.error(f"tool {call.name} failed: {type(err).__name__}: {err}")
    if progress is not None:
        progress()
    await audit_call(
        kernel,
        context,
        call.name,
        tool.spec.tier,
        not result.is_error,
        "error: " + result.content.split("\n", 1)[0][:120] if result.is_error else "ok",
    )
    kernel.publish(
        "tool.finished",
        agent_id=context.agent_id,
        session_id=context.session_id,
        tool=call.name,
        call_id=call.id,
        is_error=result.is_error,
        duration_ms=int((time.monotonic() - started) * 1000),
    )
    return result
