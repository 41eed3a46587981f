"""The security surface: audit chain, approvals (human in the loop) and agent permissions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.responses import Response

from ..api import PAGING, Call, Endpoint, Page, Param, to_builtins
from ..errors import ApiError
from ..guard import require_capability
from ..schemas import ApprovalDecision, AuditExport, AuditVerify, Item, PermissionsUpdate


def _seed_shape(entry: Any) -> Any:
    """The user guide's audit fields (``timestamp``, ``agent_name``) next to the chain's own."""
    entry = to_builtins(entry)
    if isinstance(entry, dict) and "ts" in entry:
        stamp = datetime.fromtimestamp(float(entry["ts"]), tz=UTC).isoformat().replace("+00:00", "Z")
        entry = {"timestamp": stamp, "agent_name": entry.get("actor"), **entry}
    return entry


async def _entries(call: Call, agent: str | None) -> Page[Any]:
    page, limit = call.query["page"], call.query["limit"]
    kwargs: dict[str, Any] = {"limit": limit, "offset": (page - 1) * limit}
    if agent:
        kwargs["agent"] = agent
    if call.query.get("action"):
        kwargs["action"] = call.query["action"]
    items = [_seed_shape(e) for e in await call.call("audit", "entries", **kwargs)]
    count_kwargs = {k: v for k, v in kwargs.items() if k not in ("limit", "offset")}
    total = await call.call("audit", "count", **count_kwargs)
    return Page(items=items, total=int(total), page=page, limit=limit)


async def audit_entries(call: Call) -> Page[Any]:
    return await _entries(call, call.query.get("agent"))


async def audit_agent(call: Call) -> Page[Any]:
    return await _entries(call, call.path["id"])


async def audit_verify(call: Call) -> Any:
    report = to_builtins(await call.call("audit", "verify"))
    return {"valid": bool(report.get("ok")), **report}


async def audit_export(call: Call) -> Response:
    await require_capability(call, "manage_audit")
    body: AuditExport = call.body
    entries = list(await call.call("audit", "export", agent=body.agent, since=body.since, limit=body.limit))
    from ..api import ENCODER

    if body.format == "json":
        return Response(ENCODER.encode(entries), media_type="application/json")
    lines = b"".join(ENCODER.encode(e) + b"\n" for e in entries)
    return Response(
        lines, media_type="application/x-ndjson", headers={"Content-Disposition": 'attachment; filename="oxios-audit.jsonl"'}
    )


async def audit_flush(call: Call) -> Any:
    await require_capability(call, "manage_audit")
    return await call.call("audit", "flush")


# What the approvals service can filter on ("expired" covers timed-out ones; "all" is every approval).
APPROVAL_STATUSES = ("pending", "approved", "rejected", "cancelled", "expired", "all")


async def list_approvals(call: Call) -> Page[Any]:
    status = call.query["status"]
    return call.paginate(list(await call.call("approvals", "list", status=status)))


def _decided(approval_id: str, result: Any) -> Any:
    if result is False:
        raise ApiError(409, f"approval {approval_id} is no longer pending (already decided or expired)")
    return result


async def approve(call: Call) -> Any:
    # The human in the loop is an operator: a token of a weaker role (maybe the one the agent runs under) cannot answer.
    await require_capability(call, "manage_agents")
    body: ApprovalDecision = call.body
    approval_id = call.path["id"]
    result = await call.call(
        "approvals",
        "approve",
        approval_id,
        scope=body.scope,
        pattern=body.pattern,
        expires_secs=body.expires_secs,
        by=f"web:{call.role or 'local'}",
        reason=body.reason,
    )
    return _decided(approval_id, result)


async def reject(call: Call) -> Any:
    await require_capability(call, "manage_agents")
    body: ApprovalDecision = call.body
    approval_id = call.path["id"]
    if body.scope != "once" or body.pattern or body.expires_secs:
        raise ApiError(422, "scope: a rejection has no scope, pattern or expiry")
    result = await call.call("approvals", "reject", approval_id, by=f"web:{call.role or 'local'}", reason=body.reason)
    return _decided(approval_id, result)


async def get_permissions(call: Call) -> Any:
    return await call.call("rbac", "get", call.path["agent"])


async def put_permissions(call: Call) -> Any:
    await require_capability(call, "manage_agents")
    body: PermissionsUpdate = call.body
    overrides = {k: v for k, v in to_builtins(body).items() if k != "role" and v is not None}
    if body.role is None and not overrides:
        raise ApiError(422, "role: give a role and/or capability overrides")
    try:
        return await call.call("rbac", "put", call.path["agent"], role=body.role, overrides=overrides or None, actor=call.actor)
    except LookupError as err:
        raise ApiError(422, f"role: {err}") from None


ENDPOINTS = [
    Endpoint(
        "GET",
        "/api/audit",
        audit_entries,
        "Audit log entries (newest first)",
        "audit",
        response=Page[Item],
        query=(*PAGING, Param("agent", str, "only this agent's entries"), Param("action", str, "only this action")),
        service="audit",
    ),
    Endpoint(
        "GET",
        "/api/audit/entries",
        audit_entries,
        "Audit log entries (newest first)",
        "audit",
        response=Page[Item],
        service="audit",
        query=(*PAGING, Param("agent", str, "only this agent's entries"), Param("action", str, "only this action")),
    ),
    Endpoint(
        "GET",
        "/api/audit/verify",
        audit_verify,
        "Verify the audit chain (hashes and links)",
        "audit",
        response=AuditVerify,
        service="audit",
    ),
    Endpoint(
        "GET",
        "/api/audit/agent/{id}",
        audit_agent,
        "Audit entries of one agent",
        "audit",
        response=Page[Item],
        query=PAGING,
        service="audit",
    ),
    Endpoint(
        "POST",
        "/api/audit/export",
        audit_export,
        "Export the audit log (JSON or JSON lines)",
        "audit",
        body=AuditExport,
        response=list[Item],
        service="audit",
        errors=(403,),
    ),
    Endpoint(
        "POST",
        "/api/audit/flush",
        audit_flush,
        "Write a checkpoint of the audit chain to disk",
        "audit",
        response=Item,
        service="audit",
        errors=(403,),
    ),
    Endpoint(
        "GET",
        "/api/approvals",
        list_approvals,
        "Approval requests (pending by default)",
        "approvals",
        response=Page[Item],
        service="approvals",
        query=(
            *PAGING,
            Param(
                "status",
                str,
                "only approvals in this state: " + ", ".join(APPROVAL_STATUSES),
                "pending",
                choices=APPROVAL_STATUSES,
            ),
        ),
    ),
    Endpoint(
        "POST",
        "/api/approvals/{id}/approve",
        approve,
        "Approve a pending request",
        "approvals",
        body=ApprovalDecision,
        response=Item,
        errors=(409,),
        service="approvals",
    ),
    Endpoint(
        "POST",
        "/api/approvals/{id}/reject",
        reject,
        "Reject a pending request",
        "approvals",
        body=ApprovalDecision,
        response=Item,
        errors=(409,),
        service="approvals",
    ),
    Endpoint(
        "GET",
        "/api/permissions/{agent}",
        get_permissions,
        "An agent's role and effective capabilities",
        "permissions",
        response=Item,
        service="rbac",
    ),
    Endpoint(
        "PUT",
        "/api/permissions/{agent}",
        put_permissions,
        "Assign a role and/or capability overrides",
        "permissions",
        body=PermissionsUpdate,
        response=Item,
        service="rbac",
        errors=(403,),
    ),
]
