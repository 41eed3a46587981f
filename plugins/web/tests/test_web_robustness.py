"""Bad requests on every route: malformed JSON, bodies of the wrong type or content type, oversized bodies, unknown ids.

The routes are taken from :data:`oxios_plugin_web.routes.ENDPOINTS`, so a route added later is
checked too. Every answer must be the documented status with a JSON ``{"error": ...}``, never a 500.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import pytest_asyncio
from oxios_plugin_web import create_app
from oxios_plugin_web.api import Endpoint
from oxios_plugin_web.routes import ENDPOINTS

from oxios.providers.scripted import ScriptedProvider

from .conftest import api_client, clean_env, web_kernel

pytestmark = pytest.mark.asyncio(loop_scope="module")

KB = 1024
JSON = {"content-type": "application/json"}
JSON_BODY_ENDPOINTS = [ep for ep in ENDPOINTS if ep.body is not None]
ID_ENDPOINTS = [ep for ep in ENDPOINTS if "{" in ep.path]


def label(ep: Endpoint) -> str:
    return f"{ep.method} {ep.path}"


def with_id(ep: Endpoint, value: str = "no-such-id-42") -> str:
    return re.sub(r"\{[^}]+\}", value, ep.path)


@pytest.fixture(scope="module")
def provider() -> ScriptedProvider:
    return ScriptedProvider()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def kernel(tmp_path_factory: pytest.TempPathFactory, provider: ScriptedProvider) -> Any:
    import oxios_plugin_git.plugin as git_plugin

    home = tmp_path_factory.mktemp("web-robustness")
    with clean_env(home):
        async with web_kernel(home, provider, {"security": {"rate_limit_per_minute": 0}}, plugins=[git_plugin]) as k:
            yield k


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(kernel: Any) -> Any:
    async with api_client(create_app(kernel)) as c:
        yield c


def error_of(r: Any, status: int) -> str:
    assert r.status_code == status, (r.request.method, r.request.url.path, r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("application/json")
    error = r.json()["error"]
    assert isinstance(error, str) and error
    return error


# -- malformed bodies ---------------------------------------------------------------------------


@pytest.mark.parametrize("ep", JSON_BODY_ENDPOINTS, ids=label)
async def test_malformed_json_is_400_naming_it(client: Any, ep: Endpoint) -> None:
    for body in (b"{", b"not json", b"{,}", b'{"', b"\xff\xfe{}"):
        error = error_of(await client.request(ep.method, with_id(ep), content=body, headers=JSON), 400)
        assert error.startswith("malformed JSON body"), error


@pytest.mark.parametrize("ep", JSON_BODY_ENDPOINTS, ids=label)
async def test_a_body_that_is_not_an_object_is_422(client: Any, ep: Endpoint) -> None:
    for body in (b"[1, 2]", b'"text"', b"42", b"null"):
        error = error_of(await client.request(ep.method, with_id(ep), content=body, headers=JSON), 422)
        assert "Expected `object`" in error, error


@pytest.mark.parametrize("ep", JSON_BODY_ENDPOINTS, ids=label)
async def test_a_json_body_sent_as_another_content_type_is_415(client: Any, ep: Endpoint) -> None:
    for content_type in ("text/plain", "multipart/form-data; boundary=x", "application/xml"):
        r = await client.request(ep.method, with_id(ep), content=b"{}", headers={"content-type": content_type})
        error = error_of(r, 415)
        assert "application/json" in error and content_type.split(";")[0] in error, error
    # A charset parameter, no Content-Type at all (scripts) and curl's `-d` default are still JSON.
    form = {"content-type": "application/x-www-form-urlencoded"}
    assert (await client.request(ep.method, with_id(ep), content=b"{", headers=form)).status_code == 400
    r = await client.request(ep.method, with_id(ep), content=b"{", headers={"content-type": "application/json; charset=utf-8"})
    assert r.status_code == 400
    assert (await client.request(ep.method, with_id(ep), content=b"{")).status_code == 400


async def test_415_is_in_the_openapi_document_of_json_body_routes(client: Any) -> None:
    document = (await client.get("/openapi.json")).json()
    for ep in JSON_BODY_ENDPOINTS:
        path = re.sub(r"\{([^}:]+):[^}]+\}", r"{\1}", ep.path)
        assert "415" in document["paths"][path][ep.method.lower()]["responses"], label(ep)


async def test_a_raw_body_route_takes_any_content_type(client: Any) -> None:
    r = await client.put("/api/workspace/file/notes/plain.txt", content=b"hello", headers={"content-type": "text/plain"})
    assert r.status_code == 200, r.text
    assert (await client.get("/api/workspace/file/notes/plain.txt")).content == b"hello"


async def test_validation_errors_start_with_the_field(client: Any) -> None:
    cases = [
        ("POST", "/api/memory", {}, "content: required"),
        ("POST", "/api/memory", {"content": "x", "colour": "red"}, "colour: unknown field"),
        ("POST", "/api/memory", {"content": "x", "tier": "lukewarm"}, "tier: "),
        ("POST", "/api/memory/search", {"query": "x", "k": "ten"}, "k: "),
        ("POST", "/api/skills", {"description": "d", "body": "b"}, "name: required"),
        (
            "POST",
            "/api/cron-jobs",
            {"name": "n", "schedule": "0 9 * * *", "goal": "g", "priorty": "low"},
            "priorty: unknown field",
        ),
    ]
    for method, path, body, start in cases:
        error = error_of(await client.request(method, path, json=body), 422)
        assert error.startswith(start), (path, body, error)


# -- oversized bodies -------------------------------------------------------------------------------

# The limits of docs/web.md; every other JSON route takes 1 MB.
LIMITS = {
    "POST /api/chat": 64 * KB,
    "POST /api/skills": 64 * KB,
    "POST /api/memory": 32 * KB,
    "PUT /api/memory/{id}": 32 * KB,
    "POST /api/memory/search": 32 * KB,
    "POST /api/memory/semantic": 32 * KB,
    "PUT /api/config": 64 * KB,
    "PUT /api/workspace/file/{path:path}": 10 * 1024 * KB,
}


@pytest.mark.parametrize("ep", [ep for ep in ENDPOINTS if ep.body is not None or ep.raw_body], ids=label)
async def test_body_limits_are_the_documented_ones(client: Any, ep: Endpoint) -> None:
    limit = LIMITS.get(label(ep), 1024 * KB)
    assert ep.body_limit == limit
    if ep.raw_body:
        return  # the 10 MB workspace limit is checked below, once

    async def streamed(size: int) -> Any:  # no Content-Length: the limit holds while reading
        yield b'{"content": "'
        sent = 13
        while sent < size:
            piece = min(16 * KB, size - sent)
            yield b"x" * piece
            sent += piece

    declared = await client.request(ep.method, with_id(ep), content=b"{" + b" " * limit + b"}", headers=JSON)
    assert "limit" in error_of(declared, 413)
    error = error_of(await client.request(ep.method, with_id(ep), content=streamed(limit + 1), headers=JSON), 413)
    assert f"limit {limit}" in error
    # At the limit the body is read (and then judged on its content, not its size).
    at_limit = await client.request(ep.method, with_id(ep), content=b"{" + b" " * (limit - 2) + b"}", headers=JSON)
    assert at_limit.status_code != 413


async def test_a_workspace_file_over_10_mb_is_413_and_not_written(client: Any, kernel: Any) -> None:
    limit = 10 * 1024 * KB

    async def chunks() -> Any:
        for _ in range(limit // (256 * KB) + 1):
            yield b"z" * (256 * KB)

    error = error_of(await client.put("/api/workspace/file/big.bin", content=chunks()), 413)
    assert f"limit {limit}" in error
    assert not (kernel.paths.workspace / "big.bin").exists()


async def test_an_oversized_chat_loses_nothing_and_runs_no_agent(client: Any, kernel: Any, provider: ScriptedProvider) -> None:
    sessions_before = len((await client.get("/api/sessions")).json()["items"])
    r = await client.post("/api/chat", json={"content": "y" * (64 * KB)})
    error_of(r, 413)
    assert len((await client.get("/api/sessions")).json()["items"]) == sessions_before
    assert provider.requests == [] or all("y" * 100 not in str(req) for req in provider.requests)


# -- unknown ids -------------------------------------------------------------------------------------

# Routes where an id that does not exist yet is not an error, and why.
NOT_404 = {
    "GET /api/budget/{agent_id}": "a budget is read for any agent id (unlimited until set)",
    "POST /api/budget/{agent_id}": "setting a budget creates it",
    "POST /api/budget/{agent_id}/reserve": "a reservation against the default (unlimited) budget",
    "POST /api/budget/{agent_id}/reset": "resetting an unset budget leaves it unset",
    "GET /api/permissions/{agent}": "the role's defaults apply to any agent id",
    "PUT /api/permissions/{agent}": "overrides may be set before the agent exists",
    "GET /api/audit/agent/{id}": "a filter over the chain: an empty page",
    "PUT /api/workspace/file/{path:path}": "PUT creates the file",
    "PUT /api/memory/{id}": "PUT creates the memory with that name",
}

# A valid body for routes that take one, so the id (not the body) decides the answer.
VALID_BODIES: dict[str, dict[str, Any]] = {
    "PUT /api/personas/{id}": {"description": "edited"},
    "POST /api/cron-jobs/{id}/edit": {"goal": "edited"},
    "POST /api/approvals/{id}/approve": {"reason": "fine"},
    "POST /api/approvals/{id}/reject": {"reason": "no"},
}


@pytest.mark.parametrize("ep", [ep for ep in ID_ENDPOINTS if label(ep) not in NOT_404], ids=label)
async def test_an_unknown_id_is_404_naming_it(client: Any, ep: Endpoint) -> None:
    body = VALID_BODIES.get(label(ep))
    r = await client.request(ep.method, with_id(ep), **({"json": body} if body is not None else {}))
    error = error_of(r, 404)
    assert "no-such-id-42" in error, error


@pytest.mark.parametrize("ep", [ep for ep in ID_ENDPOINTS if ep.method == "GET"], ids=label)
async def test_odd_ids_are_client_errors_never_500(client: Any, ep: Endpoint) -> None:
    for odd in ("%00", "..%2F..%2Fetc%2Fpasswd", "%F0%9F%90%8D" * 3, "x" * 4000, "a%20b", "%ff"):
        r = await client.get(with_id(ep, odd))
        assert r.status_code < 500, (label(ep), odd, r.status_code, r.text[:200])
        if r.status_code >= 400:
            error_of(r, r.status_code)


# -- the WebSocket chat ------------------------------------------------------------------------------


async def test_an_oversized_websocket_frame_is_an_error_frame_and_the_connection_lives(kernel: Any) -> None:
    import asyncio
    import json

    import websockets

    from .conftest import live_server

    async with live_server(kernel) as base, websockets.connect(base.replace("http", "ws", 1) + "/api/chat/stream") as ws:
        await ws.send(json.dumps({"type": "message", "id": "big", "content": "z" * (64 * KB)}))
        error = json.loads(await asyncio.wait_for(ws.recv(), 10))  # a guard against a hang, not a timing assert
        assert error["type"] == "error" and "frame too large (limit 65536 bytes)" in error["error"]
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10)) == {"type": "pong"}


# -- query values and ids that name nothing ----------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/api/agents", "created, queued, running, completed, stopped, failed, killed, zombie, lost"),
        ("/api/approvals", "pending, approved, rejected, cancelled, expired, all"),
    ],
)
async def test_an_unknown_status_filter_is_422_naming_the_allowed_values(client: Any, path: str, allowed: str) -> None:
    error = error_of(await client.get(f"{path}?status=bogus"), 422)
    assert error == f"status: must be one of {allowed}, got 'bogus'"
    for value in allowed.split(", "):  # every allowed value is still accepted
        assert (await client.get(f"{path}?status={value}")).status_code == 200, value
    document = (await client.get("/openapi.json")).json()
    status_param = next(p for p in document["paths"][path]["get"]["parameters"] if p["name"] == "status")
    assert status_param["schema"]["enum"] == allowed.split(", ")


async def test_the_agent_status_filter_knows_every_agent_state() -> None:
    from oxios_plugin_web.routes.agents import AGENT_STATUSES

    from oxios.agent.supervisor import ACTIVE, ENDED

    assert set(AGENT_STATUSES) == {*ACTIVE, *ENDED}


async def test_deleting_a_budget_is_404_unless_one_is_set(client: Any) -> None:
    error = error_of(await client.delete("/api/budget/never-budgeted"), 404)
    assert "never-budgeted" in error
    # Reading a budget does not create one to delete.
    assert (await client.get("/api/budget/never-budgeted")).status_code == 200
    error_of(await client.delete("/api/budget/never-budgeted"), 404)
    assert (await client.post("/api/budget/budgeted", json={"max_cost_usd": 2.5})).status_code == 200
    assert (await client.delete("/api/budget/budgeted")).json() == {"status": "deleted", "id": "budgeted"}
    assert (await client.get("/api/budget/budgeted")).json()["max_cost_usd"] == 0
    error_of(await client.delete("/api/budget/budgeted"), 404)  # already removed


async def test_git_log_of_an_unknown_ref_is_404_even_before_the_first_commit(
    tmp_path_factory: pytest.TempPathFactory, provider: ScriptedProvider
) -> None:
    import oxios_plugin_git.plugin as git_plugin

    home = tmp_path_factory.mktemp("web-empty-repo")
    with clean_env(home):
        async with web_kernel(home, provider, {"git": {"auto_commit": False}}, plugins=[git_plugin]) as kernel:
            async with api_client(create_app(kernel)) as c:
                assert (await c.get("/api/git/log")).json() == []  # an empty repository has an empty history
                assert (await c.get("/api/git/log?ref=HEAD")).json() == []
                for ref in ("no-such-branch", "HEAD~1", "deadbeef"):
                    error = error_of(await c.get("/api/git/log", params={"ref": ref}), 404)
                    assert ref in error, error
                (kernel.paths.workspace / "notes.txt").write_text("first\n")
                assert await kernel.service("git").commit("first")
                assert len((await c.get("/api/git/log")).json()) == 1
                error = error_of(await c.get("/api/git/log?ref=no-such-branch"), 404)
                assert "no-such-branch" in error
