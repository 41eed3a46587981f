"""One place where an agent's action meets policy, approvals and the audit chain.

``authorize`` asks every policy (``kernel.check_action``); an "ask" verdict
goes to the approvals service when there is one, and is a deny when there is
none (a headless run has nobody to ask). The kernel facade audits every
decision; ``audit_call`` adds each tool call's outcome (names only, never the
arguments: they may hold secrets).
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec

from oxios_hookspecs import Action, ActionContext

from ..plugins import resolve

log = logging.getLogger(__name__)


class Authorization(msgspec.Struct, kw_only=True):
    allowed: bool
    reason: str
    policy: str = ""
    asked: bool = False


def _approval_allowed(answer: Any) -> tuple[bool, str]:
    """Approvals may answer with a bool, a verdict string or an object with ``verdict``/``allowed``."""
    if isinstance(answer, bool):
        return answer, "approved" if answer else "rejected"
    if isinstance(answer, str):
        return answer in ("allow", "approved", "approve"), answer
    verdict = getattr(answer, "verdict", None) or (answer.get("verdict") if isinstance(answer, dict) else None)
    if verdict is not None:
        reason = getattr(answer, "reason", None) or (answer.get("reason") if isinstance(answer, dict) else None)
        ok = verdict in ("allow", "approved", "approve")
        return ok, str(reason or verdict)
    allowed = getattr(answer, "allowed", None)
    if allowed is not None:
        return bool(allowed), str(getattr(answer, "reason", "") or ("approved" if allowed else "rejected"))
    return False, f"unrecognised approval answer {answer!r}"


async def authorize(kernel: Any, action: Action, context: ActionContext) -> Authorization:
    """Policy verdict (the kernel facade audits it), with "ask" resolved through approvals."""
    verdict = await kernel.check_action(action, context)
    result = Authorization(allowed=verdict.verdict == "allow", reason=verdict.reason, policy=verdict.policy)
    if verdict.verdict == "ask":
        result.asked = True
        approvals = kernel.services.get("approvals")
        if approvals is None:
            kernel.publish(
                "approval.requested",
                agent_id=context.agent_id,
                session_id=context.session_id,
                kind=action.kind,
                resource=action.describe(),
                reason=verdict.reason,
                answered="deny: no approval queue",
            )
            result.allowed = False
            result.reason = f"needs approval ({verdict.reason}) but no approval queue is running"
        else:
            try:
                answer = await approvals.request(action, context, verdict.reason)
            except TimeoutError:
                answer = False
            result.allowed, why = _approval_allowed(answer)
            result.reason = why if why.startswith(verdict.reason) else f"{why} ({verdict.reason})"
    return result


async def audit_call(kernel: Any, context: ActionContext, tool: str, tier: str | None, ok: bool, detail: str) -> None:
    """Append one tool call's outcome to the audit chain (names only; arguments may hold secrets)."""
    trail = kernel.services.get("audit")
    if trail is None:
        return
    metadata = {"session": context.session_id, "tier": tier, "role": context.role}
    try:
        await resolve(trail.append(context.agent_id or "system", "tool.call", tool, ok, detail, metadata))
    except Exception:  # the call already happened; a failing trail is logged loudly
        log.exception("audit append failed")
