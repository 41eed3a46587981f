"""The A2A server: agent card, JSON-RPC endpoint, and each task an Oxios agent run.

The SDK (a2a-sdk 1.x) does the protocol: ``SendMessage``, ``SendStreamingMessage``
(SSE), ``GetTask``, ``CancelTask`` and the event queues. Oxios supplies the
card, the task store (in its state database, :mod:`.tasks`) and an
:class:`OxiosExecutor` that hands the message to the gateway, streams the
agent's text as status updates and ends the task with the answer as an
artifact. With ``security.auth_enabled`` each call carries the caller (the API
token's name and role): its runs run under that role, its tasks and A2A
contexts are its own, and the audit chain names it.
"""

from __future__ import annotations

import logging
from typing import Any

from a2a.auth.user import UnauthenticatedUser, User
from a2a.server.agent_execution import AgentExecutor
from a2a.server.routes.common import DefaultServerCallContextBuilder

from oxios_hookspecs import Action, IncomingMessage

from .settings import A2ASettings

log = logging.getLogger(__name__)

_KV = "a2a"
MAX_SKILLS = 100
CALLER_SCOPE_KEY = "oxios.a2a.caller"  # set by TokenGuard: the verified token's public record
TOKEN_SCHEME = "oxios_token"


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
    security: dict[str, Any] = {}
    if kernel.config.security.auth_enabled:
        from a2a.types import HTTPAuthSecurityScheme, SecurityRequirement, SecurityScheme, StringList

        # Declared, so SDK clients with an AuthInterceptor send their credential unasked.
        scheme = HTTPAuthSecurityScheme(scheme="bearer", description="An Oxios API token (oxios auth token create)")
        security = {
            "security_schemes": {TOKEN_SCHEME: SecurityScheme(http_auth_security_scheme=scheme)},
            "security_requirements": [SecurityRequirement(schemes={TOKEN_SCHEME: StringList()})],
        }
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
        **security,
    )


class Caller(User):
    """The API token a call was made with (``security.auth_enabled``): its name and role."""

    def __init__(self, name: str, role: str) -> None:
        self.name = name
        self.role = role

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def user_name(self) -> str:
        return self.name  # the task store's owner


class CallerContextBuilder(DefaultServerCallContextBuilder):
    """The SDK's call context, with the caller TokenGuard verified as its user."""

    def build(self, request: Any) -> Any:
        context = super().build(request)
        context.state.get("headers", {}).pop("authorization", None)  # the SDK logs the context at debug level
        return context

    def build_user(self, request: Any) -> User:
        record = request.scope.get(CALLER_SCOPE_KEY)
        return Caller(record["name"], record["role"]) if record else UnauthenticatedUser()


def caller_of(call_context: Any) -> Caller | None:
    user = getattr(call_context, "user", None)
    return user if isinstance(user, Caller) else None


def _context_key(owner: str, context_id: str) -> str:
    # Length-prefixed so no owner/context pair can spell another's key.
    return f"context.{context_id}" if not owner else f"context.{len(owner)}.{owner}.{context_id}"


class OxiosExecutor(AgentExecutor):
    """An A2A AgentExecutor whose tasks are Oxios agent runs through the gateway."""

    def __init__(self, kernel: Any) -> None:
        self.kernel = kernel

    def _session_for(self, owner: str, context_id: str) -> str | None:
        """One Oxios session per caller and A2A context, so follow-up messages continue the conversation."""
        state = self.kernel.state
        return state.kv_get(_KV, _context_key(owner, context_id)) if state is not None and context_id else None

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
        caller = caller_of(context.call_context)
        owner = caller.name if caller is not None else ""
        actor = f"a2a:{caller.name}" if caller is not None else "a2a-client"
        role = caller.role if caller is not None else None
        ctx = self.kernel.context(agent_id=actor, role=role, session_id=context.context_id, interactive=False)
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

        metadata: dict[str, Any] = {"a2a_task_id": context.task_id, "a2a_context_id": context.context_id}
        if caller is not None:
            metadata |= {"role": caller.role, "token_name": caller.name}  # the run's role is the token's
        message = IncomingMessage(
            content=text,
            channel="a2a",
            user_id=actor if caller is not None else "a2a",
            chat_id=context.context_id,
            session_id=self._session_for(owner, context.context_id),
            persona=persona,
            interactive=False,
            metadata=metadata,
        )
        result = await self.kernel.service("gateway").submit(message, on_token=on_token)
        if self.kernel.state is not None and context.context_id:
            self.kernel.state.kv_set(_KV, _context_key(owner, context.context_id), result.session_id)
        failed = bool(result.error or result.exit_code)
        await self.kernel.audit(
            actor,
            "a2a.run",
            context.task_id,
            not failed,
            result.error or "answered",
            agent_id=result.agent_id,
            session_id=result.session_id,
            role=ctx.role,
        )
        if failed:
            await updater.failed(new_text_message(f"the agent failed: {result.error or result.exit_code}", role=Role.ROLE_AGENT))
            return
        await updater.add_artifact([Part(text=result.response)], name="response")
        await updater.complete(new_text_message(result.response, role=Role.ROLE_AGENT))

    async def cancel(self, context: Any, event_queue: Any) -> None:
        from a2a.server.tasks import TaskUpdater

        caller = caller_of(context.call_context)
        session = self._session_for(caller.name if caller is not None else "", context.context_id)
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
    (``Authorization: Bearer ...``), like the REST API; the card stays public.
    The token's public record (name, role) goes into the request scope for
    :class:`CallerContextBuilder`."""

    def __init__(self, app: Any, kernel: Any) -> None:
        self.app = app
        self.kernel = kernel

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self.kernel.config.security.auth_enabled:
            header = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
            token = header[7:].strip() if header.lower().startswith("bearer ") else None
            tokens = self.kernel.services.get("tokens")
            record = tokens.identify(token) if tokens is not None and token else None
            if record is None:
                from starlette.responses import JSONResponse

                body = {"jsonrpc": "2.0", "id": None, "error": {"code": -32001, "message": "a valid API token is required"}}
                await JSONResponse(body, status_code=401, headers={"WWW-Authenticate": "Bearer"})(scope, receive, send)
                return
            scope[CALLER_SCOPE_KEY] = {"name": record["name"], "role": record["role"]}
        else:
            scope.pop(CALLER_SCOPE_KEY, None)  # only this guard may set it
        await self.app(scope, receive, send)


def build_routes(kernel: Any, settings: A2ASettings) -> list[Any]:
    """Starlette routes: the card at /.well-known/agent-card.json and JSON-RPC at rpc_path."""
    from a2a.server.request_handlers import DefaultRequestHandler
    from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
    from starlette.routing import Route

    from .tasks import task_store

    card = build_card(kernel, settings)

    async def fresh_card(_: Any) -> Any:
        return build_card(kernel, settings)  # personas and skills change at run time

    store = task_store(kernel)
    handler = DefaultRequestHandler(agent_executor=OxiosExecutor(kernel), task_store=store, agent_card=card)
    store.add_handler(handler)  # its runs are closed, and marked interrupted, when the kernel stops
    routes = create_jsonrpc_routes(handler, settings.rpc_path, context_builder=CallerContextBuilder())
    rpc = [Route(r.path, TokenGuard(r.app, kernel), methods=r.methods) for r in routes]
    return [*create_agent_card_routes(card, card_modifier=fresh_card), *rpc]


def build_app(kernel: Any, settings: A2ASettings) -> Any:
    from starlette.applications import Starlette

    return Starlette(routes=build_routes(kernel, settings))
