"""GET /api/events: the kernel's event bus as Server-Sent Events.

Each event goes out with its bus id (``id:``), a seed-003 event name
(``event:``) and sanitized JSON data. A client reconnecting with
``Last-Event-ID`` gets what it missed from the bus's replay ring; when the
ring no longer holds everything it missed, or the client's queue overflowed
(``bus.lagged``), it gets a ``resync`` event and should reload its state
over REST. A comment line every ``sse_keepalive_secs`` keeps proxies from
closing an idle stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from oxios.logs import redact

from .errors import json_error
from .middleware import still_authorized

# Kernel event types renamed to the names of the channel guide (seed 003); others pass unchanged.
SSE_NAMES = {
    "agent.spawned": "agent.started",
    "agent.stopped": "agent.completed",
    "agent.finished": "agent.completed",
    "agent.failed": "agent.completed",
    "agent.killed": "agent.completed",
    "agent.step": "agent.progress",
    "agent.turn": "agent.progress",
    "evaluation.completed": "evaluation.result",
    "ouroboros.evaluated": "evaluation.result",
    "tool.called": "tool.started",
    "tool.completed": "tool.finished",
    "approval.created": "approval.requested",
    "bus.lagged": "resync",
}
# What the terminal agent events imply about success when the payload does not say.
_SUCCESS = {"agent.finished": True, "agent.failed": False, "agent.killed": False}

_SECRET_KEYS = ("api_key", "apikey", "token", "secret", "password", "authorization", "cookie", "credential")
_SECRET_TABLES = {"env", "headers"}
# Payload keys that may carry raw model output or user content at length.
OUTPUT_KEYS = {
    "output",
    "response",
    "reply",
    "text",
    "delta",
    "content",
    "raw",
    "messages",
    "prompt",
    "result",
    "stdout",
    "stderr",
}
MAX_STRING = 2000
_ENCODER = msgspec.json.Encoder()


def sse_name(event_type: str) -> str:
    return SSE_NAMES.get(event_type, event_type)


def sanitize(value: Any, *, include_output: bool, key: str = "", depth: int = 0) -> Any:
    """A copy safe to show a browser: no credentials, no raw LLM output unless configured."""
    if depth > 6:
        return "..."
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            k = str(k)
            lowered = k.lower()
            if lowered in _SECRET_TABLES or (
                any(s in lowered for s in _SECRET_KEYS) and not lowered.endswith(("_tokens", "_env"))
            ):
                out[k] = "[REDACTED]"
            elif not include_output and lowered in OUTPUT_KEYS and isinstance(v, str | list | dict):
                out[f"{k}_chars"] = len(v) if isinstance(v, str) else len(_ENCODER.encode(v))
            else:
                out[k] = sanitize(v, include_output=include_output, key=k, depth=depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [sanitize(v, include_output=include_output, key=key, depth=depth + 1) for v in value[:200]]
    if isinstance(value, str):
        text = redact(value)
        return text if len(text) <= MAX_STRING else text[:MAX_STRING] + "..."
    if isinstance(value, int | float | bool) or value is None:
        return value
    return redact(str(value))[:MAX_STRING]


def format_event(event: Any, *, include_output: bool) -> str:
    data = sanitize(dict(event.data), include_output=include_output)
    if event.type in _SUCCESS and "success" not in data:
        data["success"] = _SUCCESS[event.type]
    elif event.type == "agent.stopped" and "success" not in data:
        data["success"] = data.get("status") == "completed"
    name = sse_name(event.type)
    if name != event.type:
        data.setdefault("kind", event.type)  # the kernel's own name, for clients that care
    data.setdefault("ts", event.ts)
    return f"id: {event.id}\nevent: {name}\ndata: {_ENCODER.encode(data).decode()}\n\n"


def format_resync(reason: str, **extra: Any) -> str:
    data = {"reason": reason, **extra}
    return f"event: resync\ndata: {_ENCODER.encode(data).decode()}\n\n"


def _wanted(patterns: list[str], event_type: str) -> bool:
    if not patterns:
        return True
    name = sse_name(event_type)
    for pattern in patterns:
        if pattern.endswith("*"):
            if event_type.startswith(pattern[:-1]) or name.startswith(pattern[:-1]):
                return True
        elif pattern in (event_type, name):
            return True
    return False


class EventStreams:
    """The open SSE streams of one app, so shutdown can end them at once."""

    def __init__(self) -> None:
        self.subscriptions: set[Any] = set()

    def close_all(self) -> None:
        for sub in list(self.subscriptions):
            sub.close()


async def events_endpoint(request: Request) -> Response:
    kernel = request.app.state.kernel
    settings = request.app.state.settings
    raw_last = request.headers.get("last-event-id") or request.query_params.get("last_event_id") or ""
    last_id: int | None = None
    if raw_last:
        if not raw_last.strip().isdigit():
            return json_error(400, f"Last-Event-ID: expected an event id (an integer), got {raw_last!r}")
        last_id = int(raw_last.strip())
    patterns = [p.strip() for p in request.query_params.get("types", "").split(",") if p.strip()]
    bus = kernel.events
    # Subscribe before reading the ring, so no event falls between replay and live.
    sub = bus.subscribe(maxsize=settings.sse_queue_size)
    streams: EventStreams = request.app.state.event_streams
    streams.subscriptions.add(sub)
    include_output = settings.sse_include_output
    keepalive = settings.sse_keepalive_secs

    async def stream() -> AsyncIterator[str]:
        try:
            yield f"retry: {settings.sse_retry_ms}\n\n"
            sent = bus.last_id if last_id is None else last_id
            if last_id is not None:
                missed, lost = bus.since(last_id)
                if lost or last_id > bus.last_id:
                    yield format_resync("replay_gap" if lost else "unknown_id", last_event_id=last_id, current_id=bus.last_id)
                for event in missed:
                    if _wanted(patterns, event.type):
                        yield format_event(event, include_output=include_output)
                    sent = max(sent, event.id)
            while True:
                event = await sub.get(timeout=keepalive)
                if not await still_authorized(kernel, request.scope):
                    return  # the token was revoked while the stream was open
                if event is None:
                    if sub.closed:
                        return
                    yield ": keepalive\n\n"
                    continue
                if event.type == "bus.lagged":
                    yield format_resync("lagged", missed=event.data.get("missed", 0), current_id=bus.last_id)
                    continue
                if event.id <= sent or not _wanted(patterns, event.type):
                    continue  # already replayed, or filtered out
                sent = event.id
                yield format_event(event, include_output=include_output)
        except asyncio.CancelledError:
            raise
        finally:
            sub.close()
            streams.subscriptions.discard(sub)

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Connection": "keep-alive"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)
