"""The A2A client side: fetch a remote agent's card, send it a task, collect the answer.

Every HTTP request (card, JSON-RPC, SSE stream, and any URL the remote card
points at) goes through Oxios's SSRF-guarded httpx transport.

A target is a URL or the name of a configured remote
(``[plugins.a2a.remotes.NAME]``). A remote's credentials come from environment
variables and are put on requests to the remote's own origin only: not on a
URL its card points elsewhere, not across a redirect to another host. They
never appear in errors or logs.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any, NamedTuple

import httpx

from .settings import RemoteAgent


class A2AFailure(Exception):
    """The remote agent could not be reached or did not finish the task (with why)."""


class Target(NamedTuple):
    url: str
    remote: str  # the configured remote's name, "" for a bare URL
    headers: dict[str, str]  # credentials: never logged, never in an error

    def __repr__(self) -> str:  # keep the secrets out of tracebacks and debug output
        return f"Target(url={self.url!r}, remote={self.remote!r}, headers={sorted(self.headers)!r})"


def _secret(env: str, what: str) -> str:
    value = os.environ.get(env, "").strip()
    if not value:
        raise A2AFailure(f"environment variable {env} ({what}) is not set")
    return value


def resolve_target(target: str, remotes: dict[str, RemoteAgent], *, token_env: str = "") -> Target:
    """The URL and credentials for ``target`` (a URL, or a remote's name).

    A URL equal to a configured remote's URL gets that remote's credentials;
    ``token_env`` (``--token-env``) names a variable holding a bearer token
    that replaces the remote's.
    """
    target = target.strip()
    if "://" in target:
        url = target.rstrip("/")
        remote = next((name for name, r in remotes.items() if r.url.rstrip("/") == url), "")
    elif target in remotes:
        remote, url = target, remotes[target].url.rstrip("/")
    else:
        configured = ", ".join(sorted(remotes)) or "none"
        raise A2AFailure(f"{target!r} is neither a URL nor a remote agent in [plugins.a2a.remotes] (configured: {configured})")
    headers: dict[str, str] = {}
    if remote:
        config = remotes[remote]
        if config.token_env and not token_env:
            headers["Authorization"] = "Bearer " + _secret(config.token_env, f"remotes.{remote}.token_env")
        for header, env in config.headers_env.items():
            headers[header] = _secret(env, f"remotes.{remote}.headers_env.{header}")
    if token_env:
        headers["Authorization"] = "Bearer " + _secret(token_env, "--token-env")
    for header, value in headers.items():
        if "\r" in value or "\n" in value:
            raise A2AFailure(f"the value for header {header} holds a line break")
    return Target(url, remote, headers)


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return (url.scheme, url.host, url.port or {"http": 80, "https": 443}.get(url.scheme))


def _credential_hook(target: Target) -> Any:
    """A request hook (run on every hop, redirects too): the credentials go to the target's origin only."""
    origin = _origin(httpx.URL(target.url))

    async def hook(request: httpx.Request) -> None:
        same_origin = _origin(request.url) == origin
        for header, value in target.headers.items():
            if same_origin:
                request.headers[header] = value
            else:
                request.headers.pop(header, None)

    return hook


def _http_client(allowlist: list[str], timeout: float, target: Target | None = None) -> httpx.AsyncClient:
    from oxios.security.ssrf import guarded_client

    hooks = {"request": [_credential_hook(target)]} if target is not None and target.headers else {}
    return guarded_client(allowlist, timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)), event_hooks=hooks)


def _refused(err: BaseException, target: Target) -> str | None:
    """A clear message when the remote answered 401/403: which credentials to configure or fix."""
    cause: BaseException | None = err
    while cause is not None and not isinstance(cause, httpx.HTTPStatusError):
        cause = cause.__cause__
    code = cause.response.status_code if isinstance(cause, httpx.HTTPStatusError) else None
    if code not in (401, 403):
        return None
    if target.headers:
        return f"{target.url} refused the credentials (HTTP {code}): check the token in the environment variable"
    return (
        f"{target.url} requires authentication (HTTP {code}): configure [plugins.a2a.remotes.NAME] with "
        f"url and token_env (or headers_env), or pass --token-env VAR"
    )


def _to_dict(message: Any) -> dict[str, Any]:
    from google.protobuf.json_format import MessageToDict

    return MessageToDict(message)


def _as_target(target: Target | str) -> Target:
    return target if isinstance(target, Target) else Target(target.rstrip("/"), "", {})


async def fetch_card(target: Target | str, *, allowlist: list[str], timeout: float = 30.0) -> dict[str, Any]:
    from a2a.client import A2ACardResolver
    from a2a.client.errors import AgentCardResolutionError

    target = _as_target(target)
    async with _http_client(allowlist, timeout, target) as http:
        try:
            card = await A2ACardResolver(http, target.url).get_agent_card()
        except (AgentCardResolutionError, httpx.HTTPError) as err:
            refused = _refused(err, target)
            raise A2AFailure(refused or f"cannot fetch the agent card of {target.url}: {err}") from None
    return _to_dict(card)


async def send(
    target: Target | str, text: str, *, allowlist: list[str], timeout: float = 120.0, context_id: str = ""
) -> dict[str, Any]:
    """Send ``text`` as a new task and wait for the final answer (streaming when offered)."""
    from a2a.client import ClientConfig, create_client
    from a2a.client.errors import A2AClientError
    from a2a.types import Message, Part, Role, SendMessageRequest, TaskState

    target = _as_target(target)
    url = target.url
    message = Message(role=Role.ROLE_USER, message_id=str(uuid.uuid4()), parts=[Part(text=text)])
    if context_id:
        message.context_id = context_id
    async with _http_client(allowlist, timeout, target) as http:
        try:
            async with asyncio.timeout(timeout):
                client = await create_client(url, client_config=ClientConfig(httpx_client=http, streaming=True))
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
            raise A2AFailure(_refused(err, target) or f"A2A request to {url} failed: {err}") from None
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
