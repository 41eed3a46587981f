"""GET /api/chat/stream: chat over a WebSocket (seed 004's protocol, fixed).

Client frames::

    {"type": "message", "content": "...", "session_id": "optional", "space_id": "optional",
     "persona": "optional", "id": "optional client message id"}
    {"type": "cancel", "id": "message id"}
    {"type": "ping"}

Server frames, each carrying the ``id`` of the user message it answers::

    {"type": "accepted", "id", "session_id"}
    {"type": "token", "id", "content", "session_id", "space_id"}      (zero or more)
    {"type": "done", "id", "session_id", "space_id", "phase", "evaluation_passed", "reply", ...}
    {"type": "error", "id", "error"}                                    (instead of done)
    {"type": "pong"}

Every message runs in its own task, so several can be in flight on one
connection and each is answered under its own id (the seed kept one pending
slot per connection, which mixed up concurrent replies). Frames go through a
per-connection queue drained by one writer: the agent never waits for a slow
client, and queued tokens of the same message are merged, so a slow reader
gets fewer, larger frames and loses nothing. The gateway stores the session
before it returns, so ``done`` is only sent once the reply is on disk.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from starlette.websockets import WebSocket, WebSocketDisconnect

from oxios_hookspecs import new_id

from .middleware import still_authorized
from .routes.chat import CHAT_BODY_LIMIT, incoming

log = logging.getLogger("oxios.web.ws")


class ClientMessage(msgspec.Struct, tag="message", tag_field="type", kw_only=True, forbid_unknown_fields=True):
    content: str
    id: str | None = None
    session_id: str | None = None
    space_id: str | None = None
    persona: str | None = None
    user_id: str = "web-user"


class ClientCancel(msgspec.Struct, tag="cancel", tag_field="type", kw_only=True, forbid_unknown_fields=True):
    id: str


class ClientPing(msgspec.Struct, tag="ping", tag_field="type", kw_only=True):
    pass


ClientFrame = ClientMessage | ClientCancel | ClientPing
_DECODER = msgspec.json.Decoder(ClientFrame)
_ENCODER = msgspec.json.Encoder()


class Connection:
    """One WebSocket: its in-flight messages and its outgoing frame queue."""

    def __init__(
        self, websocket: WebSocket, gateway: Any, max_inflight: int, authorized: Callable[[], Awaitable[bool]] | None = None
    ) -> None:
        self.ws = websocket
        self.gateway = gateway
        self.max_inflight = max_inflight
        self.authorized = authorized
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.sessions: dict[str, str] = {}
        self._out: deque[dict[str, Any]] = deque()
        self._wake = asyncio.Event()
        self._closed = False
        self._side_tasks: set[asyncio.Task[Any]] = set()

    # -- outgoing -------------------------------------------------------------------

    def send(self, frame: dict[str, Any]) -> None:
        """Queue a frame; a token right after a queued token of the same message is merged into it."""
        if self._closed:
            return
        last = self._out[-1] if self._out else None
        if last is not None and frame["type"] == "token" and last["type"] == "token" and last["id"] == frame["id"]:
            last["content"] += frame["content"]
        else:
            self._out.append(dict(frame))
        self._wake.set()

    async def writer(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._out and not await self.still_authorized():
                await self.revoked()
                return
            while self._out:
                await self.ws.send_text(_ENCODER.encode(self._out.popleft()).decode())
            if self._closed and not self._out:
                return

    async def still_authorized(self) -> bool:
        return self.authorized is None or await self.authorized()

    async def revoked(self) -> None:
        """The token was revoked: stop the answers in flight and close the socket (policy violation)."""
        self._closed = True
        self._out.clear()
        for message_id in list(self.tasks):
            session_id = self.sessions.get(message_id)
            if session_id is not None:
                task = asyncio.create_task(self.gateway.cancel(session_id), name=f"ws-revoked-{message_id}")
                self._side_tasks.add(task)
                task.add_done_callback(self._side_tasks.discard)
            self.tasks[message_id].cancel()
        try:
            await self.ws.close(code=1008, reason="the API token was revoked")
        except RuntimeError:  # already closed
            pass

    # -- incoming -------------------------------------------------------------------

    def handle(self, raw: str) -> None:
        if len(raw.encode()) > CHAT_BODY_LIMIT:
            self.send({"type": "error", "id": None, "error": f"frame too large (limit {CHAT_BODY_LIMIT} bytes)"})
            return
        try:
            frame = _DECODER.decode(raw)
        except msgspec.ValidationError as err:
            self.send({"type": "error", "id": None, "error": f"invalid frame: {err}"})
            return
        except msgspec.DecodeError as err:
            self.send({"type": "error", "id": None, "error": f"malformed JSON: {err}"})
            return
        if isinstance(frame, ClientPing):
            self.send({"type": "pong"})
        elif isinstance(frame, ClientCancel):
            self._cancel(frame.id)
        else:
            self._start(frame)

    def _start(self, frame: ClientMessage) -> None:
        message_id = frame.id or new_id()
        if message_id in self.tasks:
            self.send({"type": "error", "id": message_id, "error": "a message with this id is already in flight"})
            return
        if len(self.tasks) >= self.max_inflight:
            self.send({"type": "error", "id": message_id, "error": f"too many messages in flight (limit {self.max_inflight})"})
            return
        # Choose the session id now when the client has none, so token frames can carry it.
        session_id = frame.session_id or new_id()
        try:
            message = incoming(
                frame.content,
                user_id=frame.user_id,
                session_id=session_id,
                space_id=frame.space_id,
                persona=frame.persona,
                message_id=message_id,
                role=self.ws.scope.get("oxios.role"),
            )
        except Exception as err:  # an ApiError naming the field
            self.send({"type": "error", "id": message_id, "error": getattr(err, "message", str(err))})
            return
        self.sessions[message_id] = session_id
        self.send({"type": "accepted", "id": message_id, "session_id": session_id})
        task = asyncio.create_task(self._answer(message), name=f"ws-{message_id}")
        self.tasks[message_id] = task
        task.add_done_callback(lambda _t, mid=message_id: self._finished(mid))

    def _finished(self, message_id: str) -> None:
        self.tasks.pop(message_id, None)
        self.sessions.pop(message_id, None)

    def _cancel(self, message_id: str) -> None:
        task = self.tasks.get(message_id)
        if task is None:
            self.send({"type": "error", "id": message_id, "error": "no message with this id is in flight"})
            return
        session_id = self.sessions.get(message_id)
        if session_id is not None:
            task = asyncio.create_task(self.gateway.cancel(session_id), name=f"ws-cancel-{message_id}")
            self._side_tasks.add(task)
            task.add_done_callback(self._side_tasks.discard)

    async def _answer(self, message: Any) -> None:
        space_id = message.space_id

        async def on_token(text: str) -> None:
            if text:
                self.send(
                    {"type": "token", "id": message.id, "content": text, "session_id": message.session_id, "space_id": space_id}
                )

        try:
            result = await self.gateway.submit(message, on_token=on_token)
        except asyncio.CancelledError:
            raise
        except Exception as err:
            log.exception("websocket message %s failed", message.id)
            self.send(
                {
                    "type": "error",
                    "id": message.id,
                    "session_id": message.session_id,
                    "error": f"internal error: {type(err).__name__}",
                }
            )
            return
        if result.error is not None:
            self.send(
                {
                    "type": "error",
                    "id": message.id,
                    "session_id": result.session_id,
                    "space_id": result.space_id,
                    "error": result.error,
                    "reply": result.response,
                }
            )
            return
        self.send(
            {
                "type": "done",
                "id": message.id,
                "session_id": result.session_id,
                "space_id": result.space_id,
                "space_tag": result.space_tag,
                "phase": result.phase_reached,
                "evaluation_passed": result.evaluation_passed,
                "seed_id": result.seed_id,
                "agent_id": result.agent_id,
                "reply": result.response,
                "duration_ms": result.duration_ms,
            }
        )

    async def close(self) -> None:
        """The client left: in-flight answers keep running to completion (their sessions get the reply)."""
        self._closed = True
        self._wake.set()


async def chat_stream(websocket: WebSocket) -> None:
    kernel = websocket.app.state.kernel
    gateway = kernel.services.get("gateway")
    await websocket.accept()
    if gateway is None:
        await websocket.send_text(_ENCODER.encode({"type": "error", "id": None, "error": "gateway is not available"}).decode())
        await websocket.close(code=1011)
        return
    settings = websocket.app.state.settings

    async def authorized() -> bool:
        return await still_authorized(kernel, websocket.scope)

    conn = Connection(websocket, gateway, settings.ws_max_inflight, authorized)
    writer = asyncio.create_task(conn.writer(), name="ws-writer")
    try:
        while True:
            try:
                raw = await websocket.receive_text()
            except (WebSocketDisconnect, RuntimeError):  # RuntimeError: the writer closed it
                break
            except KeyError:  # a binary frame
                conn.send({"type": "error", "id": None, "error": "send JSON text frames"})
                continue
            if not await conn.still_authorized():
                await conn.revoked()
                break
            conn.handle(raw)
    finally:
        await conn.close()
        writer.cancel()
        try:
            await writer
        except (asyncio.CancelledError, Exception):
            pass
