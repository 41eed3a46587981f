"""The A2A server: agent card, JSON-RPC endpoint, and each task an Oxios agent run.

The SDK (a2a-sdk 1.x) does the protocol: ``SendMessage``, ``SendStreamingMessage``
(SSE), ``GetTask``, ``CancelTask``, the task store and the event queues. Oxios
supplies the card and an :class:`OxiosExecutor` that hands the message to the
gateway, streams the agent's text as status updates and ends the task with the
answer as an artifact.
"""

from __future__ import annotations

import logging
from typing import Any

from a2a.server.agent_execution import AgentExecutor

from oxios_hookspecs import Action, IncomingMessage

from .settings import A2ASettings

log = logging.getLogger(__name__)

_KV = "a2a"
MAX_SKILLS = 100


def build_card(kernel: Any, settings: A2ASettings) -> Any:
    """Oxios's personas and skills as A2A skills."""
    from a2a.types import AgentCapabilities, AgentCard, AgentInterface, AgentSkill

    skills: list[AgentSkill] = []
    personas = kernel.services.get("personas")
    if settings.list_personas and personas is not None:
        for p in personas.list()[:MAX_SKILLS]:
            skills.append(
                AgentSkill(
                    id=f"persona:{p['name']}",
                    name=p["name"],
                    description=p.get("description") or f"Oxios persona {p['name']}",
                    tags=["persona"],
                )
            )
    catalog = kernel.services.get("skills")
    if settings.list_skills and catalog is not None:
        for s in catalog.list()[:MAX_SKILLS]:
            skills.append(
                AgentSkill(id=f"skill:{s['name']}", name=s["name"], description=s.get("description") or s["name"], tags=["skill"])
            )
    if not skills:
        skills.append(
            AgentSkill(id="chat", name="chat", description="Ask Oxios anything; it runs an agent to answer.", tags=["general"])
        )
    return AgentCard(
        name=settings.name,
        description=settings.description,
        version=kernel.version,
        supported_interfaces=[
            AgentInterface(url=settings.base_url(kernel) + settings.rpc_path, protocol_binding="JSONRPC", protocol_version="1.0")
        ],
        capabilities=AgentCapabilities(streaming=True),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=skills,
    )


class OxiosExecutor(AgentExecutor):
    """An A2A AgentExecutor whose tasks are Oxios agent runs through the gateway."""

    def __init__(self, kernel: Any) -> None:
        self.kernel = kernel

    def _session_for(self, context_id: str) -> str | None:
        """One Oxios session per A2A context, so follow-up messages continue the conversation."""
        state = self.kernel.state
        return state.kv_get(_KV, f"context.{context_id}") if state is not None and context_id else None

    async def execute(self, context: Any, event_queue: Any) -> None:
        from a2a.helpers import new_task_from_user_message, new_text_message
        from a2a.server.tasks import TaskUpdater
        from a2a.types import Part, Role, TaskState

        if context.current_task is None:
            task = new_task_from_user_message(context.message)
            await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, context.task_id, context.context_id)
        text = context.get_user_input().strip()
        if not text:
            await updater.reject(new_text_message("the message has no text part", role=Role.ROLE_AGENT))
            return
        ctx = self.kernel.context(agent_id="a2a-client", session_id=context.context_id, interactive=False)
        auth = await self.kernel.authorize(Action(kind="api", name="a2a.send_message", resource=context.task_id), ctx)
        allowed, reason = auth.allowed, auth.reason
        if not allowed:
            await updater.reject(new_text_message(f"refused: {reason}", role=Role.ROLE_AGENT))
            return
        await updater.start_work()
        persona = _persona_from(context)

        async def on_token(delta: str) -> None:
            if delta:
                await updater.update_status(TaskState.TASK_STATE_WORKING, new_text_message(delta, role=Role.ROLE_AGENT))

        message = IncomingMessage(
            content=text,
            channel="a2a",
            user_id="a2a",
            chat_id=context.context_id,
            session_id=self._session_for(context.context_id),
            persona=persona,
            interactive=False,
            metadata={"a2a_task_id": context.task_id, "a2a_context_id": context.context_id},
        )
        result = await self.kernel.service("gateway").submit(message, on_token=on_token)
        if self.kernel.state is not None and context.context_id:
            self.kernel.state.kv_set(_KV, f"context.{context.context_id}", result.session_id)
        if result.error or result.exit_code:
            await updater.failed(new_text_message(f"the agent failed: {result.error or result.exit_code}", role=Role.ROLE_AGENT))
            return
        await updater.add_artifact([Part(text=result.response)], name="response")
        await updater.complete(new_text_message(result.response, role=Role.ROLE_AGENT))

    async def cancel(self, context: Any, event_queue: Any) -> None:
        from a2a.server.tasks import TaskUpdater

        session = self._session_for(context.context_id)
        gateway = self.kernel.services.get("gateway")
        if session and gateway is not None:
            await gateway.cancel(session)
        await TaskUpdater(event_queue, context.task_id, context.context_id).cancel()


def _persona_from(context: Any) -> str | None:
    """A persona named in the message metadata (``persona`` or ``skill`` = ``persona:NAME``)."""
    meta = dict(context.metadata or {})
    message = context.message
    if message is not None and message.HasField("metadata"):
        from google.protobuf.json_format import MessageToDict

        meta |= MessageToDict(message.metadata)
    persona = meta.get("persona") or ""
    skill = str(meta.get("skill") or "")
    if not persona and skill.startswith("persona:"):
        persona = skill.split(":", 1)[1]
    return str(persona) or None


class TokenGuard:
    """With ``security.auth_enabled`` the JSON-RPC endpoint wants an API token
    (``Authorization: Bearer ...``), like the REST API; the card stays public."""

    def __init__(self, app: Any, kernel: Any) -> None:
        self.app = app
        self.kernel = kernel

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self.kernel.config.security.auth_enabled:
            header = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
            token = header[7:].strip() if header.lower().startswith("bearer ") else None
            tokens = self.kernel.services.get("tokens")
            if tokens is None or not token or tokens.verify(token) is None:
                from starlette.responses import JSONResponse

                body = {"jsonrpc": "2.0", "id": None, "error": {"code": -32001, "message": "a valid API token is required"}}
                await JSONResponse(body, status_code=401, headers={"WWW-Authenticate": "Bearer"})(scope, receive, send)
                return
        await self.app(scope, receive, send)


def build_routes(kernel: Any, settings: A2ASettings) -> list[Any]:
    """Starlette routes: the card at /.well-known/agent-card.json and JSON-RPC at rpc_path."""
    from a2a.server.request_handlers import DefaultRequestHandler
    from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
    from a2a.server.tasks import InMemoryTaskStore
    from starlette.routing import Route

    card = build_card(kernel, settings)

    async def fresh_card(_: Any) -> Any:
        return build_card(kernel, settings)  # personas and skills change at run time

    handler = DefaultRequestHandler(agent_executor=OxiosExecutor(kernel), task_store=InMemoryTaskStore(), agent_card=card)
    rpc = [Route(r.path, TokenGuard(r.app, kernel), methods=r.methods) for r in create_jsonrpc_routes(handler, settings.rpc_path)]
    return [*create_agent_card_routes(card, card_modifier=fresh_card), *rpc]


def build_app(kernel: Any, settings: A2ASettings) -> Any:
    from starlette.applications import Starlette

    return Starlette(routes=build_routes(kernel, settings))
