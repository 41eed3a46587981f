"""POST /api/chat: one message in, the agent's reply out (the session is stored first)."""

from __future__ import annotations

from typing import Any

from oxios_hookspecs import IncomingMessage

from ..api import KB, Call, Endpoint, json_response
from ..errors import ApiError
from ..schemas import ChatRequest, ChatResponse

CHAT_BODY_LIMIT = 64 * KB


def chat_response(message: IncomingMessage, result: Any) -> ChatResponse:
    return ChatResponse(
        id=message.id,
        echo=message.content,
        reply=result.response,
        response=result.response,
        session_id=result.session_id,
        space_id=result.space_id,
        space_tag=result.space_tag,
        phase=result.phase_reached,
        seed_id=result.seed_id,
        agent_id=result.agent_id,
        evaluation_passed=result.evaluation_passed,
        exit_code=result.exit_code,
        duration_ms=result.duration_ms,
        error=result.error,
    )


def incoming(
    content: str | None,
    *,
    user_id: str,
    session_id: str | None,
    space_id: str | None,
    persona: str | None,
    message_id: str | None = None,
    role: str | None = None,
) -> IncomingMessage:
    """The gateway's message; ``role`` is the API token's, so the agent can do no more than its caller."""
    if content is None or not content.strip():
        raise ApiError(422, "content: required (the message text; `message` is accepted as an alias)")
    extra: dict[str, Any] = {"id": message_id} if message_id else {}
    if role:
        extra["metadata"] = {"role": role}
    return IncomingMessage(
        content=content,
        channel="web",
        user_id=user_id or "default",
        session_id=session_id or None,
        space_id=space_id or None,
        persona=persona or None,
        **extra,
    )


async def chat(call: Call) -> Any:
    body: ChatRequest = call.body
    if body.content is not None and body.message is not None and body.content != body.message:
        raise ApiError(422, "message: give either `content` or `message`, not both")
    message = incoming(
        body.content if body.content is not None else body.message,
        user_id=body.user_id,
        session_id=body.session_id,
        space_id=body.space_id,
        persona=body.persona,
        role=call.role,
    )
    gateway = call.service("gateway")
    result = await gateway.submit(message)
    out = chat_response(message, result)
    # The agent failed (provider down, cancelled ...): the session still holds both messages.
    return json_response(out, 200 if result.error is None else 502)


ENDPOINTS = [
    Endpoint(
        "POST",
        "/api/chat",
        chat,
        "Send a message and wait for the reply",
        "chat",
        body=ChatRequest,
        response=ChatResponse,
        body_limit=CHAT_BODY_LIMIT,
        errors=(413, 502),
        service="gateway",
        description="The session (created when `session_id` is unknown or absent) holds the message before "
        "the agent runs and the reply before this returns. 502 carries the same body with `error` set "
        "when the agent failed.",
    ),
]
