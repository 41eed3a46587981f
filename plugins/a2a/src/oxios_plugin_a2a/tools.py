"""``a2a_delegate``: hand a task to a remote A2A agent and return its answer."""

from __future__ import annotations

from oxios_hookspecs import Action, ActionContext, ToolResult

from .client import A2AFailure, resolve_target, send
from .settings import A2ASettings


async def a2a_delegate(url: str, message: str, context: ActionContext, context_id: str = "") -> ToolResult:
    """Send a task to another agent that speaks the A2A protocol and return its answer. url = its
    base URL (where /.well-known/agent-card.json lives) or the name of a remote agent configured
    in [plugins.a2a.remotes] (which also holds its credentials). Pass the returned context_id
    to continue the same conversation."""
    kernel = context.kernel
    if not message.strip():
        return ToolResult.error("message is empty")
    settings = A2ASettings.from_kernel(kernel)
    try:
        target = resolve_target(url, settings.remotes)
    except A2AFailure as err:
        return ToolResult.error(str(err))
    auth = await kernel.authorize(Action(kind="url", url=target.url, name="a2a.delegate"), context)
    allowed, reason = auth.allowed, auth.reason
    if not allowed:
        return ToolResult.error(f"delegating to {target.url} denied: {reason}")
    try:
        result = await send(
            target, message, allowlist=kernel.config.security.ssrf_allowlist, timeout=settings.timeout_secs, context_id=context_id
        )
    except A2AFailure as err:
        return ToolResult.error(str(err))
    kernel.publish(
        "a2a.delegated",
        url=target.url,
        remote=target.remote,
        state=result["state"],
        task_id=result["task_id"],
        agent_id=context.agent_id,
    )
    if result["state"] != "completed":
        return ToolResult(
            content=f"the remote agent ended in state {result['state']}: {result['text']}", is_error=True, data=result
        )
    return ToolResult(content=result["text"], data=result)
