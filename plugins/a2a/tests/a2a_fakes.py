"""Shared pieces of the A2A tests: an agent built with the SDK alone (optionally wanting a bearer
token) served on loopback, and small helpers around the SDK's client."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import uvicorn
from a2a.server.agent_execution import AgentExecutor
from a2a.types import Message, Part, Role, SendMessageRequest

SECRET = "s3cret-a2a-token-value"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bound_socket() -> tuple[socket.socket, str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


def user_message(text: str, context_id: str = "") -> SendMessageRequest:
    message = Message(role=Role.ROLE_USER, message_id=str(uuid.uuid4()), parts=[Part(text=text)])
    if context_id:
        message.context_id = context_id
    return SendMessageRequest(message=message)


async def wait_for(predicate: Any, what: str, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)
    assert predicate(), what


async def sdk_client(base: str, *, streaming: bool, polling: bool = False, token: str = "") -> Any:
    """The SDK's own client; with ``token``, every request carries it as a bearer token."""
    import httpx
    from a2a.client import ClientConfig, create_client

    http = httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}) if token else None
    return await create_client(base, client_config=ClientConfig(streaming=streaming, polling=polling, httpx_client=http))


class EchoExecutor(AgentExecutor):
    """An agent built with the SDK alone: answers with a completed task echoing the text."""

    async def execute(self, context: Any, event_queue: Any) -> None:
        from a2a.helpers import new_task_from_user_message, new_text_message
        from a2a.server.tasks import TaskUpdater

        if context.current_task is None:
            await event_queue.enqueue_event(new_task_from_user_message(context.message))
        updater = TaskUpdater(event_queue, context.task_id, context.context_id)
        text = context.get_user_input()
        if text == "fail":
            await updater.failed(new_text_message("refusing to work", role=Role.ROLE_AGENT))
            return
        await updater.add_artifact([Part(text=f"echo: {text}")], name="echo")
        await updater.complete()

    async def cancel(self, context: Any, event_queue: Any) -> None:
        pass


class BearerGuard:
    """Plain ASGI: everything but the card wants ``Authorization: Bearer SECRET``; records what came in."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.token = token
        self.seen: list[tuple[str, str, str]] = []  # (host header, path, authorization header)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            authorization = headers.get(b"authorization", b"").decode("latin-1")
            self.seen.append((headers.get(b"host", b"").decode(), scope["path"], authorization))
            if not scope["path"].startswith("/.well-known/") and authorization != f"Bearer {self.token}":
                from starlette.responses import JSONResponse

                body = {"jsonrpc": "2.0", "id": None, "error": {"code": -32001, "message": "unauthorized"}}
                await JSONResponse(body, status_code=401, headers={"WWW-Authenticate": "Bearer"})(scope, receive, send)
                return
        await self.app(scope, receive, send)


def sdk_app(base: str, *, token: str = "", interface_base: str = "") -> Any:
    """The SDK-built agent. ``token``: the JSON-RPC endpoint wants it (and the card says so);
    ``interface_base``: the card names this base for its JSON-RPC interface instead of ``base``."""
    from a2a.server.request_handlers import DefaultRequestHandler
    from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
    from a2a.server.tasks import InMemoryTaskStore
    from a2a.types import (
        AgentCapabilities,
        AgentCard,
        AgentInterface,
        AgentSkill,
        HTTPAuthSecurityScheme,
        SecurityRequirement,
        SecurityScheme,
        StringList,
    )
    from starlette.applications import Starlette

    security: dict[str, Any] = {}
    if token:
        security = {
            "security_schemes": {"bearer": SecurityScheme(http_auth_security_scheme=HTTPAuthSecurityScheme(scheme="bearer"))},
            "security_requirements": [SecurityRequirement(schemes={"bearer": StringList()})],
        }
    card = AgentCard(
        name="Echo",
        description="echoes",
        version="1.0",
        supported_interfaces=[
            AgentInterface(url=(interface_base or base) + "/rpc", protocol_binding="JSONRPC", protocol_version="1.0")
        ],
        capabilities=AgentCapabilities(streaming=True),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[AgentSkill(id="echo", name="echo", description="echo text", tags=["echo"])],
        **security,
    )
    handler = DefaultRequestHandler(agent_executor=EchoExecutor(), task_store=InMemoryTaskStore(), agent_card=card)
    app = Starlette(routes=[*create_agent_card_routes(card), *create_jsonrpc_routes(handler, "/rpc")])
    return BearerGuard(app, token) if token else app


@contextlib.asynccontextmanager
async def serve(make_app: Any) -> AsyncIterator[tuple[str, Any]]:
    """Serve ``make_app(base)`` on loopback in this event loop; yields (base URL, app)."""
    sock, base = bound_socket()
    app = make_app(base)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await wait_for(lambda: server.started, "sdk server started")
        yield base, app
    finally:
        server.should_exit = True
        await task


@contextlib.contextmanager
def serve_in_thread(make_app: Any) -> Iterator[str]:
    """The same in a thread, for CLI tests (the CLI runs its own event loop)."""
    sock, base = bound_socket()
    server = uvicorn.Server(uvicorn.Config(make_app(base), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(10)
