"""Auth (API tokens), roles, the per-client rate limit and the origin check, with attack cases."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import pytest_asyncio
import websockets
from oxios_plugin_web import create_app

from oxios.providers.scripted import ScriptedProvider

from .conftest import api_client, clean_env, live_server, web_kernel

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module")
def provider() -> ScriptedProvider:
    return ScriptedProvider()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def kernel(tmp_path_factory: pytest.TempPathFactory, provider: ScriptedProvider) -> Any:
    home = tmp_path_factory.mktemp("web-auth")
    with clean_env(home):
        config = {"security": {"auth_enabled": True, "rate_limit_per_minute": 0, "roles": {"reader": {"tools": ["tier:read"]}}}}
        async with web_kernel(home, provider, config) as k:
            yield k


@pytest.fixture(scope="module")
def tokens(kernel: Any) -> dict[str, str]:
    store = kernel.services["tokens"]
    return {"admin": store.create("ops", role="admin")["token"], "user": store.create("viewer", role="user")["token"]}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(kernel: Any) -> Any:
    async with api_client(create_app(kernel)) as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_health_and_ui_stay_open(client: Any) -> None:
    assert (await client.get("/health")).status_code == 200
    assert (await client.get("/")).status_code == 200
    assert (await client.get("/static/app.js")).status_code == 200


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic b3hpb3M6eA=="}, {"Authorization": "Bearer "}]
)
async def test_api_needs_a_valid_token(client: Any, headers: dict[str, str]) -> None:
    r = await client.get("/api/status", headers=headers)
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert "error" in r.json()


async def test_valid_token_passes_and_failures_are_audited(client: Any, kernel: Any, tokens: dict[str, str]) -> None:
    before = kernel.services["audit"].count(action="auth.failure")
    await client.get("/api/agents", headers={"Authorization": "Bearer forged-token"})
    assert kernel.services["audit"].count(action="auth.failure") == before + 1
    r = await client.get("/api/status", headers=bearer(tokens["user"]))
    assert r.status_code == 200
    assert tokens["user"] not in json.dumps(kernel.services["audit"].entries(limit=50))


async def test_query_token_only_for_streams(client: Any, tokens: dict[str, str]) -> None:
    # ?token= would leak into logs and Referer headers; only EventSource and WebSocket clients need it.
    assert (await client.get(f"/api/status?token={tokens['admin']}")).status_code == 401


async def test_revoked_token_is_refused(client: Any, kernel: Any) -> None:
    store = kernel.services["tokens"]
    token = store.create("temp", role="admin")["token"]
    assert (await client.get("/api/status", headers=bearer(token))).status_code == 200
    store.revoke("temp")
    assert (await client.get("/api/status", headers=bearer(token))).status_code == 401


async def test_role_capabilities_gate_operator_actions(client: Any, tokens: dict[str, str]) -> None:
    user = await client.put("/api/config", json={"scheduler": {"max_concurrent": 3}}, headers=bearer(tokens["user"]))
    assert user.status_code == 403 and "manage_config" in user.json()["error"]
    admin = await client.put("/api/config", json={"scheduler": {"max_concurrent": 3}}, headers=bearer(tokens["admin"]))
    assert admin.status_code == 200
    assert (await client.post("/api/audit/flush", headers=bearer(tokens["user"]))).status_code == 403
    assert (await client.put("/api/permissions/a1", json={"network": True}, headers=bearer(tokens["user"]))).status_code == 403


async def test_tokens_unavailable_fails_closed(client: Any, kernel: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(kernel.services, "tokens")
    r = await client.get("/api/status", headers={"Authorization": "Bearer anything"})
    assert r.status_code == 501 and r.json()["error"].startswith("tokens is not available")


async def test_cross_origin_writes_are_refused(client: Any, tokens: dict[str, str]) -> None:
    evil = {**bearer(tokens["admin"]), "Origin": "http://evil.example"}
    r = await client.post("/api/chat", json={"content": "exfiltrate"}, headers=evil)
    assert r.status_code == 403 and "cross-origin" in r.json()["error"]
    # Reads carry no side effects; the same origin is always fine.
    assert (await client.get("/api/status", headers=evil)).status_code == 200
    same = {**bearer(tokens["admin"]), "Origin": "http://127.0.0.1:4200"}
    assert (await client.put("/api/config", json={"scheduler": {"max_concurrent": 4}}, headers=same)).status_code == 200


async def test_streams_over_the_network_with_query_tokens(
    kernel: Any, tokens: dict[str, str], provider: ScriptedProvider
) -> None:
    async with live_server(kernel) as base:
        async with httpx.AsyncClient(timeout=10) as http:
            assert (await http.get(f"{base}/api/events")).status_code == 401
            async with http.stream("GET", f"{base}/api/events?token={tokens['user']}") as stream:
                assert stream.status_code == 200
        ws_base = base.replace("http://", "ws://") + "/api/chat/stream"
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(ws_base):
                pass
        assert refused.value.response.status_code == 401
        with pytest.raises(websockets.InvalidStatus) as hijack:
            async with websockets.connect(f"{ws_base}?token={tokens['user']}", origin="http://evil.example"):
                pass
        assert hijack.value.response.status_code == 403
        provider.enqueue_text("authorized reply")
        async with websockets.connect(f"{ws_base}?token={tokens['user']}") as ws:
            await ws.send(json.dumps({"type": "message", "id": "a", "content": "hi"}))
            while (frame := json.loads(await ws.recv()))["type"] != "done":
                assert frame["type"] in ("accepted", "token")
            assert frame["reply"] == "authorized reply"


async def test_chat_runs_under_the_tokens_role(kernel: Any, client: Any, provider: ScriptedProvider) -> None:
    """An agent started through the API can do no more than the token that started it."""
    reader = kernel.services["tokens"].create("dashboard", role="reader")["token"]
    user = kernel.services["tokens"].create("chatter", role="user")["token"]

    def offered() -> set[str]:
        return {t.name for t in provider.requests[-1].tools}

    provider.enqueue_tool_call("write", {"path": "planted.txt", "content": "x"}).enqueue_text("could not write")
    r = await client.post("/api/chat", json={"content": "write a file"}, headers=bearer(reader))
    assert r.status_code == 200 and r.json()["response"] == "could not write"
    assert "read" in offered() and "write" not in offered()
    assert not (kernel.paths.workspace / "planted.txt").exists()
    provider.enqueue_text("writer")
    assert (await client.post("/api/chat", json={"content": "hi"}, headers=bearer(user))).status_code == 200
    assert "write" in offered()
    async with live_server(kernel) as base:
        provider.enqueue_text("over the socket")
        ws_url = base.replace("http://", "ws://") + f"/api/chat/stream?token={reader}"
        async with websockets.connect(ws_url) as ws:
            await ws.send(json.dumps({"type": "message", "id": "r1", "content": "hi"}))
            while (frame := json.loads(await ws.recv()))["type"] != "done":
                pass
    assert frame["reply"] == "over the socket" and "write" not in offered()


async def test_rate_limit_per_client(tmp_path_factory: pytest.TempPathFactory, provider: ScriptedProvider) -> None:
    home = tmp_path_factory.mktemp("web-rate")
    with clean_env(home):
        async with web_kernel(home, provider, {"security": {"rate_limit_per_minute": 3}}) as k:
            app = create_app(k)
            async with api_client(app) as c:
                codes = [(await c.get("/api/status")).status_code for _ in range(4)]
                assert codes == [200, 200, 200, 429]
                limited = await c.get("/api/agents")
                assert limited.status_code == 429 and 1 <= int(limited.headers["retry-after"]) <= 60
                assert (await c.get("/health")).status_code == 200  # never limited
            other = httpx.ASGITransport(app=app, client=("10.0.0.9", 1234))
            async with httpx.AsyncClient(transport=other, base_url="http://127.0.0.1:4200") as c2:
                assert (await c2.get("/api/status")).status_code == 200  # the limit is per client


@pytest.mark.parametrize("host", ["evil.example", "evil.example:4200", "127.0.0.1.nip.io:4200"])
async def test_dns_rebinding_hosts_are_refused(client: Any, tokens: dict[str, str], host: str) -> None:
    for path in ("/", "/health", "/api/status"):
        r = await client.get(path, headers={**bearer(tokens["admin"]), "Host": host})
        assert r.status_code == 400 and "Host" in r.json()["error"]


@pytest.mark.parametrize("host", ["127.0.0.1:4200", "localhost:4200", "[::1]:4200", "localhost"])
async def test_loopback_hosts_are_served(client: Any, host: str) -> None:
    assert (await client.get("/health", headers={"Host": host})).status_code == 200
