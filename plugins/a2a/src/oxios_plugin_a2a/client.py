"""The A2A client side: fetch a remote agent's card, send it a task, collect the answer.

Every HTTP request (card, JSON-RPC, SSE stream, and any URL the remote card
points at) goes through Oxios's SSRF-guarded httpx transport.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx


class A2AFailure(Exception):
    """The remote agent could not be reached or did not finish the task (with why)."""


def _http_client(allowlist: list[str], timeout: float) -> httpx.AsyncClient:
    from oxios.security.ssrf import guarded_client

    return guarded_client(allowlist, timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)))


def _to_dict(message: Any) -> dict[str, Any]:
    from google.protobuf.json_format import MessageToDict

    return MessageToDict(message)


async def fetch_card(url: str, *, allowlist: list[str], timeout: float = 30.0) -> dict[str, Any]:
    from a2a.client import A2ACardResolver
    from a2a.client.errors import AgentCardResolutionError

    async with _http_client(allowlist, timeout) as http:
        try:
            card = await A2ACardResolver(http, url.rstrip("/")).get_agent_card()
        except (AgentCardResolutionError, httpx.HTTPError) as err:
            raise A2AFailure(f"cannot fetch the agent card of {url}: {err}") from None
    return _to_dict(card)


async def send(url: str, text: str, *, allowlist: list[str], timeout: float = 120.0, context_id: str = "") -> dict[str, Any]:
    """Send ``text`` as a new task and wait for the final answer (streaming when offered)."""
    from a2a.client import ClientConfig, create_client
    from a2a.client.errors import A2AClientError
    from a2a.types import Message, Part, Role, SendMessageRequest, TaskState

    message = Message(role=Role.ROLE_USER, message_id=str(uuid.uuid4()), parts=[Part(text=text)])
    if context_id:
        message.context_id = context_id
    async with _http_client(allowlist, timeout) as http:
        try:
            async with asyncio.timeout(timeout):
                client = await create_client(url.rstrip("/"), client_config=ClientConfig(httpx_client=http, streaming=True))
                task: Any = None
                reply: Any = None
                try:
                    async for event in client.send_message(SendMessageRequest(message=message)):
                        kind = event.WhichOneof("payload")
                        if kind == "task":
                            task = event.task
                        elif kind == "message":
                            reply = event.message
                        elif kind == "status_update" and task is not None:
                            task.status.CopyFrom(event.status_update.status)
                        elif kind == "artifact_update" and task is not None:
                            task.artifacts.append(event.artifact_update.artifact)
                finally:
                    await client.close()
        except TimeoutError:
            raise A2AFailure(f"{url} did not finish within {timeout:.0f}s") from None
        except (A2AClientError, httpx.HTTPError, ValueError) as err:
            raise A2AFailure(f"A2A request to {url} failed: {err}") from None
    if reply is not None:
        return {"state": "completed", "text": _text(reply.parts), "task_id": "", "context_id": reply.context_id}
    if task is None:
        raise A2AFailure(f"{url} answered with neither a task nor a message")
    state = TaskState.Name(task.status.state).removeprefix("TASK_STATE_").lower()
    answer = "\n".join(_text(a.parts) for a in task.artifacts) or (
        _text(task.status.message.parts) if task.status.HasField("message") else ""
    )
    return {"state": state, "text": answer, "task_id": task.id, "context_id": task.context_id}


def _text(parts: Any) -> str:
    return "\n".join(p.text for p in parts if p.WhichOneof("content") == "text")
