"""The gateway: the one door every channel uses to talk to agents.

``submit`` resolves (or creates) the session, routes the message to a space,
persists the user message *before* any agent runs, hands the work to the
Ouroboros protocol when that service exists and wants the message, otherwise
to a plain agent run through the supervisor, and persists the reply *before*
returning it. A channel therefore never loses a message, even when the agent
fails or is cancelled halfway.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from oxios_hookspecs import IncomingMessage

from .plugins import resolve

log = logging.getLogger(__name__)

TokenCallback = Callable[[str], Awaitable[None]]


class ChatResult(msgspec.Struct, kw_only=True):
    """What a channel gets back for one message (the seed's `oxios run --json` shape, plus ids)."""

    response: str
    session_id: str
    space_id: str | None = None
    space_tag: str | None = None
    seed_id: str | None = None
    agent_id: str | None = None
    phase_reached: str = "Execute"
    evaluation_passed: bool | None = None
    exit_code: int = 0
    duration_ms: int = 0
    message_id: str = ""
    error: str | None = None


class Gateway:
    """Channel-agnostic message hub (``kernel.services["gateway"]``)."""

    def __init__(self, kernel: Any) -> None:
        self.kernel = kernel
        self._limit = asyncio.Semaphore(max(1, kernel.config.gateway.max_concurrent_messages))
        # session id -> tasks currently answering a message of that session
        self._inflight: dict[str, set[asyncio.Task[Any]]] = {}
        self.submitted = 0

    async def submit(self, message: IncomingMessage, on_token: TokenCallback | None = None) -> ChatResult:
        """Run one message to its reply. Never raises for agent failures: they come back as ``error``."""
        started = time.monotonic()
        self.submitted += 1
        sessions = self.kernel.service("sessions")
        persona_error = self._check_persona(message.persona)
        session = sessions.resolve(
            message.session_id,
            user_id=message.user_id,
            channel=message.channel,
            persona=None if persona_error else message.persona,
        )
        space = self._route_space(session["id"], message)
        sessions.append(
            session["id"],
            "user",
            message.content,
            space_id=space["id"] if space else None,
            metadata={"message_id": message.id, "channel": message.channel, "user_id": message.user_id},
        )
        self.kernel.publish(
            "message.received",
            session_id=session["id"],
            channel=message.channel,
            message_id=message.id,
            space_id=space["id"] if space else None,
        )
        if persona_error is not None:  # a clear answer, and the user's words are kept
            result = ChatResult(response="", session_id=session["id"], exit_code=1, error=persona_error)
        else:
            result = await self._run_answer(sessions, message, session, space, on_token)
        result.session_id = session["id"]
        if space is not None:
            result.space_id = space["id"]
            result.space_tag = space.get("tag")
        result.message_id = message.id
        result.duration_ms = int((time.monotonic() - started) * 1000)
        self._persist_reply(sessions, session, space, result)
        return result

    def _check_persona(self, name: str | None) -> str | None:
        personas = self.kernel.services.get("personas")
        if not name or personas is None:
            return None
        try:
            personas.get(name)
        except LookupError as err:
            return str(err).strip("'\"")
        return None

    async def _run_answer(
        self,
        sessions: Any,
        message: IncomingMessage,
        session: dict[str, Any],
        space: dict[str, Any] | None,
        on_token: TokenCallback | None,
    ) -> ChatResult:
        # The answer runs in its own task so cancel() can stop it while submit still persists a reply.
        inner = asyncio.create_task(self._limited_answer(message, session, space, on_token), name=f"gateway-{message.id}")
        bucket = self._inflight.setdefault(session["id"], set())
        bucket.add(inner)
        try:
            result = await asyncio.shield(inner)
        except asyncio.CancelledError:
            if not inner.done():  # the caller cancelled submit itself: stop the work, keep the record
                inner.cancel()
                self._persist_reply(sessions, session, space, _cancelled(session["id"], message.id))
                raise
            result = _cancelled(session["id"], message.id)
        except Exception as err:  # an agent failure is an answer, not a crash of the channel
            log.exception("gateway: message %s failed", message.id)
            result = ChatResult(response="", session_id=session["id"], exit_code=1, error=f"{type(err).__name__}: {err}")
        finally:
            bucket.discard(inner)
            if not bucket:
                self._inflight.pop(session["id"], None)
        return result

    async def _limited_answer(
        self, message: IncomingMessage, session: dict[str, Any], space: dict[str, Any] | None, on_token: TokenCallback | None
    ) -> ChatResult:
        async with self._limit:
            return await self._answer(message, session, space, on_token)

    async def _answer(
        self, message: IncomingMessage, session: dict[str, Any], space: dict[str, Any] | None, on_token: TokenCallback | None
    ) -> ChatResult:
        ouroboros = self.kernel.services.get("ouroboros")
        if ouroboros is not None:
            wants = getattr(ouroboros, "should_handle", None)
            if wants is None or await resolve(wants(message, session)):
                return await ouroboros.handle(message, session, on_token)
        agents = self.kernel.service("agents")
        outcome = await agents.run_message(message, session=session, space=space, on_token=on_token)
        return ChatResult(
            response=outcome.response,
            session_id=session["id"],
            agent_id=outcome.agent_id,
            exit_code=0 if outcome.status == "completed" else 1,
            error=outcome.error,
        )

    def _route_space(self, session_id: str, message: IncomingMessage) -> dict[str, Any] | None:
        spaces = self.kernel.services.get("spaces")
        if spaces is None:
            return None
        try:
            return spaces.route(session_id, message.content, space_id=message.space_id)
        except LookupError:
            raise
        except Exception:  # routing is a convenience; a failure must not lose the message
            log.exception("gateway: space routing failed")
            return None

    def _persist_reply(self, sessions: Any, session: dict[str, Any], space: dict[str, Any] | None, result: ChatResult) -> None:
        meta = {
            "agent_id": result.agent_id,
            "seed_id": result.seed_id,
            "phase_reached": result.phase_reached,
            "evaluation_passed": result.evaluation_passed,
            "error": result.error,
            "reply_to": result.message_id,
        }
        content = result.response or (f"[{result.error}]" if result.error else "")
        sessions.append(session["id"], "assistant", content, space_id=space["id"] if space else None, metadata=meta)

    # -- cancellation -------------------------------------------------------

    async def cancel(self, session_id: str) -> bool:
        """Cancel whatever is answering ``session_id`` now; True when something was running."""
        hit = False
        agents = self.kernel.services.get("agents")
        if agents is not None:
            for record in agents.list(session_id=session_id):
                if record["status"] in ("queued", "running"):
                    hit = await agents.kill(record["id"], reason="cancelled") or hit
        for task in list(self._inflight.get(session_id, ())):
            if not task.done():
                task.cancel()
                hit = True
        return hit

    def status(self) -> dict[str, Any]:
        inflight = sum(len(t) for t in self._inflight.values())
        return {"healthy": True, "detail": None, "inflight": inflight, "submitted": self.submitted}


def _cancelled(session_id: str, message_id: str) -> ChatResult:
    return ChatResult(response="", session_id=session_id, message_id=message_id, exit_code=130, error="cancelled")


def start(kernel: Any) -> Gateway:
    """Service factory: ``kernel.services["gateway"]``."""
    return Gateway(kernel)
