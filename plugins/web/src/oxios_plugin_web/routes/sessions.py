"""Sessions (list, detail, delete, prune) and personas (+ the active one)."""

from __future__ import annotations

from typing import Any

from ..api import PAGING, ActionResult, Call, Endpoint, Page, Param, to_builtins
from ..errors import ApiError
from ..schemas import ActivePersona, Item, Persona, PersonaBody, Pruned, SessionDetail, SessionsPrune


async def list_sessions(call: Call) -> Page[Any]:
    page, limit = call.query["page"], call.query["limit"]
    svc = call.service("sessions")
    kwargs: dict[str, Any] = {"limit": limit, "offset": (page - 1) * limit}
    if call.query["user_id"]:
        kwargs["user_id"] = call.query["user_id"]
    items = svc.list(**kwargs)
    total = svc.count() if not call.query["user_id"] else len(svc.list(user_id=call.query["user_id"], limit=10**9))
    return Page(items=items, total=total, page=page, limit=limit)


async def get_session(call: Call) -> SessionDetail:
    """The seed's session shape: the messages, split into user messages and agent responses."""
    svc = call.service("sessions")
    session = svc.get(call.path["id"])
    messages = svc.messages(call.path["id"], limit=call.query["messages"])
    return SessionDetail(
        id=session["id"],
        user_id=session.get("user_id") or "default",
        space_id=session.get("space_id"),
        title=session.get("title") or "",
        persona=session.get("persona"),
        active_persona_id=session.get("persona"),
        active_seed_id=session.get("active_seed_id"),
        created_at=session["created_at"],
        updated_at=session["updated_at"],
        metadata=session.get("metadata") or {},
        messages=messages,
        user_messages=[m for m in messages if m["role"] == "user"],
        agent_responses=[m for m in messages if m["role"] == "assistant"],
    )


async def delete_session(call: Call) -> ActionResult:
    call.service("sessions").delete(call.path["id"])
    return ActionResult(status="deleted", id=call.path["id"])


async def prune_sessions(call: Call) -> Pruned:
    body: SessionsPrune = call.body
    for field in ("ttl_hours", "max_sessions"):
        value = getattr(body, field)
        if value is not None and value < 0:
            raise ApiError(422, f"{field}: must be >= 0")
    removed = call.service("sessions").prune(ttl_hours=body.ttl_hours, max_sessions=body.max_sessions)
    return Pruned(status="pruned", removed=removed)


def _persona_fields(body: PersonaBody) -> dict[str, Any]:
    return {k: v for k, v in to_builtins(body).items() if v is not None}


async def list_personas(call: Call) -> Page[Any]:
    return call.paginate(list(await call.call("personas", "list")))


async def create_persona(call: Call) -> Any:
    fields = _persona_fields(call.body)
    if not fields.get("name"):
        raise ApiError(422, "name: required")
    if not fields.get("system_prompt"):
        raise ApiError(422, "system_prompt: required")
    name = fields.pop("name")
    return await call.call("personas", "create", name, actor=call.actor, **fields)


async def get_persona(call: Call) -> Any:
    return await call.call("personas", "get", call.path["id"])


async def update_persona(call: Call) -> Any:
    fields = _persona_fields(call.body)
    if "name" in fields and fields.pop("name") != call.path["id"]:
        raise ApiError(422, "name: a persona cannot be renamed")
    if not fields:
        raise ApiError(422, "body: nothing to change")
    return await call.call("personas", "update", call.path["id"], actor=call.actor, **fields)


async def delete_persona(call: Call) -> ActionResult:
    await call.call("personas", "delete", call.path["id"], actor=call.actor)
    return ActionResult(status="deleted", id=call.path["id"])


async def get_active(call: Call) -> Any:
    active = await call.call("personas", "active")
    if active is None:
        raise ApiError(404, "no persona is active (PUT /api/personas/active sets one)")
    return active


async def clear_active(call: Call) -> ActionResult:
    await call.call("personas", "deactivate")
    return ActionResult(status="cleared", id="active")


async def set_active(call: Call) -> Any:
    body: ActivePersona = call.body
    key = body.id or body.name
    if not key:
        raise ApiError(422, "id: required (the persona id or name)")
    return await call.call("personas", "activate", key)


ENDPOINTS = [
    Endpoint(
        "GET",
        "/api/sessions",
        list_sessions,
        "List sessions (most recent first)",
        "sessions",
        response=Page[Item],
        service="sessions",
        query=(*PAGING, Param("user_id", str, "only this user's sessions")),
    ),
    Endpoint(
        "POST",
        "/api/sessions/prune",
        prune_sessions,
        "Prune old sessions now (TTL, then count)",
        "sessions",
        body=SessionsPrune,
        response=Pruned,
        service="sessions",
    ),
    Endpoint(
        "GET",
        "/api/sessions/{id}",
        get_session,
        "A session with its messages",
        "sessions",
        response=SessionDetail,
        service="sessions",
        query=(Param("messages", int, "how many of the newest messages", 200, minimum=1, maximum=10000),),
    ),
    Endpoint(
        "DELETE",
        "/api/sessions/{id}",
        delete_session,
        "Delete a session and its messages",
        "sessions",
        response=ActionResult,
        service="sessions",
    ),
    Endpoint(
        "GET",
        "/api/personas",
        list_personas,
        "List personas",
        "personas",
        response=Page[Persona],
        query=PAGING,
        service="personas",
    ),
    Endpoint(
        "POST",
        "/api/personas",
        create_persona,
        "Create a persona",
        "personas",
        body=PersonaBody,
        response=Persona,
        status=201,
        errors=(409,),
        service="personas",
    ),
    Endpoint(
        "GET",
        "/api/personas/active",
        get_active,
        "The active persona (404 when none is)",
        "personas",
        response=Persona,
        errors=(404,),
        service="personas",
    ),
    Endpoint(
        "PUT",
        "/api/personas/active",
        set_active,
        "Set the active persona",
        "personas",
        body=ActivePersona,
        response=Persona,
        errors=(404,),
        service="personas",
    ),
    Endpoint(
        "DELETE",
        "/api/personas/active",
        clear_active,
        "Clear the active persona (messages that name none get no persona)",
        "personas",
        response=ActionResult,
        service="personas",
    ),
    Endpoint("GET", "/api/personas/{id}", get_persona, "One persona", "personas", response=Persona, service="personas"),
    Endpoint(
        "PUT",
        "/api/personas/{id}",
        update_persona,
        "Update a persona",
        "personas",
        body=PersonaBody,
        response=Persona,
        service="personas",
    ),
    Endpoint(
        "DELETE", "/api/personas/{id}", delete_persona, "Delete a persona", "personas", response=ActionResult, service="personas"
    ),
]
