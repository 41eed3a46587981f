"""Every REST route against a real kernel (SQLite, real services, scripted model), in-process over ASGI."""

from __future__ import annotations

import asyncio
import logging
import tomllib
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from oxios_plugin_web import create_app

from oxios.config import ExecConfig
from oxios.providers.scripted import ScriptedProvider
from oxios_hookspecs import Action

from .conftest import api_client, clean_env, web_kernel

pytestmark = pytest.mark.asyncio(loop_scope="module")

SECRET = "sk-test-supersecret-0123456789"


@pytest.fixture(scope="module")
def provider() -> ScriptedProvider:
    return ScriptedProvider()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def kernel(tmp_path_factory: pytest.TempPathFactory, provider: ScriptedProvider) -> Any:
    import oxios_plugin_git.plugin as git_plugin

    home = tmp_path_factory.mktemp("web-rest")
    with clean_env(home):
        config = {
            "providers": {"scripted": {"kind": "scripted", "default_model": "scripted-model", "api_key": SECRET}},
            "security": {"rate_limit_per_minute": 0},
        }
        async with web_kernel(home, provider, config, plugins=[git_plugin]) as k:
            yield k


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client(kernel: Any) -> Any:
    async with api_client(create_app(kernel)) as c:
        yield c


# -- system ---------------------------------------------------------------------------------


async def test_health_is_open_and_versioned(client: Any, kernel: Any) -> None:
    r = await client.get("/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "version": kernel.version}


async def test_status_and_readiness(client: Any) -> None:
    status = (await client.get("/api/status")).json()
    assert status["service"] == "oxios" and status["status"] == "running"
    assert "gateway" in status["components"]
    r = await client.get("/api/ready")
    assert r.status_code == 200, r.text  # the scripted provider is usable, so every component is healthy
    assert r.json()["status"] == "healthy"
    assert (await client.get("/api/readiness")).json()["components"].keys() == r.json()["components"].keys()


async def test_config_get_redacts_secrets(client: Any) -> None:
    r = await client.get("/api/config")
    assert r.status_code == 200
    assert r.json()["providers"]["scripted"]["api_key"] == "***"
    assert SECRET not in r.text


def _text(path: Path) -> str:
    return path.read_text() if path.exists() else ""


async def test_config_put_validates_then_writes(client: Any, kernel: Any) -> None:
    path = Path(kernel.paths.config_file)
    before = _text(path)
    bad = await client.put("/api/config", json={"gateway": {"port": "not-a-port"}})
    assert bad.status_code == 422
    assert "gateway.port" in bad.json()["error"]
    unknown = await client.put("/api/config", json={"gatway": {"port": 1}})
    assert unknown.status_code == 422 and "gatway" in unknown.json()["error"]
    assert _text(path) == before  # nothing written on a refusal
    ok = await client.put("/api/config", json={"scheduler": {"max_concurrent": 7}, "providers": {"scripted": {"api_key": "***"}}})
    assert ok.status_code == 200, ok.text
    assert ok.json()["changed"] == ["scheduler.max_concurrent"]
    saved = tomllib.loads(_text(path))
    assert saved["scheduler"]["max_concurrent"] == 7
    assert (await client.put("/api/config", content=b"{not json")).status_code == 400
    assert (await client.put("/api/config", json={})).status_code == 422


async def test_config_put_reloads_the_running_daemon(client: Any, kernel: Any) -> None:
    events = kernel.subscribe(types={"config.reloaded"})
    port = kernel.config.gateway.port
    r = await client.put(
        "/api/config",
        json={"exec": {"allowed_commands": ["ls", "make"]}, "scheduler": {"max_concurrent": 3}, "gateway": {"port": port + 1}},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["changed"] == ["exec.allowed_commands", "scheduler.max_concurrent", "gateway.port"]
    assert body["applied"] == ["exec.allowed_commands", "scheduler.max_concurrent"]
    assert body["restart_required"] == ["gateway.port"]
    # `config` is what runs: the new allowlist, the old port until a restart; secrets stay redacted.
    assert body["config"]["exec"]["allowed_commands"] == ["ls", "make"]
    assert body["config"]["gateway"]["port"] == port and body["config"]["providers"]["scripted"]["api_key"] == "***"
    assert kernel.services["scheduler"].stats()["max_concurrent"] == 3
    make = Action(kind="exec", argv=["make", "--version"], mode="structured", tool="exec")
    assert (await kernel.check_action(make, kernel.context(agent_id="web-test"))).verdict == "allow"
    event = await events.get(timeout=5)
    assert event is not None and event.data["actor"] == "web:local" and event.data["restart_required"] == ["gateway.port"]
    [entry] = kernel.services["audit"].entries(action="config.reload", limit=1)
    assert entry["actor"] == "web:local" and entry["metadata"]["applied"] == ["exec.allowed_commands", "scheduler.max_concurrent"]
    # The environment layer is part of the check: a file the daemon could not run with is never written.
    before = _text(Path(kernel.paths.config_file))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OXIOS__PROVIDERS__EXTRA__BASE_URL", "http://127.0.0.1:9/v1")  # [providers.extra] without its kind
        bad = await client.put("/api/config", json={"scheduler": {"max_concurrent": 4}})
    assert bad.status_code == 422 and "providers.extra.kind" in bad.json()["error"]
    assert _text(Path(kernel.paths.config_file)) == before
    assert kernel.services["scheduler"].stats()["max_concurrent"] == 3
    # null resets to the default, live as well (the module's other tests run with the defaults)
    reset = await client.put("/api/config", json={"exec": {"allowed_commands": None}, "gateway": {"port": None}})
    assert reset.status_code == 200 and reset.json()["applied"] == ["exec.allowed_commands"]
    assert reset.json()["restart_required"] == []  # the port is back to the one that runs
    assert kernel.config.exec.allowed_commands == ExecConfig().allowed_commands


async def test_metrics_are_prometheus_text(client: Any) -> None:
    await client.get("/api/status")
    r = await client.get("/api/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert 'oxios_http_requests_total{method="GET",route="/api/status",status="200"}' in r.text
    for name in (
        "oxios_agents_active",
        "oxios_llm_tokens_total",
        "oxios_tool_calls_total",
        "oxios_denials_total",
        "oxios_circuit_breaker_state",
    ):
        assert f"# TYPE {name.removesuffix('_total')}" in r.text
    assert 'oxios_circuit_breaker_state{provider="scripted"} 0.0' in r.text


async def test_metrics_count_kernel_events(client: Any, kernel: Any) -> None:
    kernel.publish("tool.finished", agent_id="a", tool="ls", is_error=False)
    kernel.publish("tool.finished", agent_id="a", tool="exec", is_error=True)
    kernel.publish("tool.denied", agent_id="a", tool="exec", reason="not allowlisted")
    kernel.publish("token.usage", agent_id="a", model="m", input_tokens=120, output_tokens=30)
    kernel.publish("provider.breaker", provider="flaky", state="open", reason="5 failures")
    text = (await client.get("/api/metrics")).text
    assert 'oxios_tool_calls_total{status="ok",tool="ls"} 1.0' in text
    assert 'oxios_tool_calls_total{status="error",tool="exec"} 1.0' in text
    assert 'oxios_denials_total{reason="policy"} 1.0' in text
    assert 'oxios_circuit_breaker_state{provider="flaky"} 2.0' in text
    input_tokens = next(line for line in text.splitlines() if line.startswith('oxios_llm_tokens_total{direction="input"}'))
    assert float(input_tokens.split()[-1]) >= 120


async def test_unknown_api_route_is_json_404(client: Any) -> None:
    r = await client.get("/api/no-such-thing")
    assert r.status_code == 404 and "no such endpoint" in r.json()["error"]


# -- chat -------------------------------------------------------------------------------------


async def test_chat_reply_and_session_persisted(client: Any, kernel: Any, provider: ScriptedProvider) -> None:
    provider.enqueue_text("Hello from the scripted model.")
    r = await client.post("/api/chat", json={"content": "Build a TODO app", "user_id": "user1"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["reply"] == body["response"] == "Hello from the scripted model."
    assert body["echo"] == "Build a TODO app" and body["phase"] == "Execute"
    assert {"id", "session_id", "space_id"} <= body.keys()
    session = (await client.get(f"/api/sessions/{body['session_id']}")).json()
    assert [m["content"] for m in session["messages"]] == ["Build a TODO app", "Hello from the scripted model."]
    assert session["user_id"] == "user1"
    assert session["agent_responses"][0]["content"] == "Hello from the scripted model."
    # The channel guide's alias: {"message": ..., "session_id": ...} continues the session.
    provider.enqueue_text("Second answer.")
    r2 = await client.post("/api/chat", json={"message": "and then?", "session_id": body["session_id"]})
    assert r2.json()["session_id"] == body["session_id"] and r2.json()["reply"] == "Second answer."


async def test_chat_validation(client: Any) -> None:
    missing = await client.post("/api/chat", json={"user_id": "u"})
    assert missing.status_code == 422 and missing.json()["error"].startswith("content")
    typo = await client.post("/api/chat", json={"content": "hi", "sesion_id": "x"})
    assert typo.status_code == 422 and "sesion_id" in typo.json()["error"]
    wrong_type = await client.post("/api/chat", json={"content": 5})
    assert wrong_type.status_code == 422 and "content" in wrong_type.json()["error"]
    malformed = await client.post("/api/chat", content=b'{"content": ', headers={"content-type": "application/json"})
    assert malformed.status_code == 400 and "malformed" in malformed.json()["error"]


async def test_chat_body_limit_is_enforced_while_reading(client: Any) -> None:
    big = b'{"content": "' + b"x" * (64 * 1024) + b'"}'
    assert (await client.post("/api/chat", content=big)).status_code == 413

    async def chunks() -> Any:  # no Content-Length: the limit must hold while streaming
        yield b'{"content": "'
        for _ in range(100):
            yield b"y" * 1024
        yield b'"}'

    r = await client.post("/api/chat", content=chunks())
    assert r.status_code == 413 and "limit 65536" in r.json()["error"]


async def test_chat_agent_failure_is_502_and_keeps_the_session(client: Any, provider: ScriptedProvider) -> None:
    from oxios.providers import ProviderUnavailableError

    for _ in range(5):
        provider.enqueue_error(ProviderUnavailableError("model down", status=500))
    r = await client.post("/api/chat", json={"content": "will fail"})
    assert r.status_code == 502, r.text
    assert r.json()["error"]
    session = (await client.get(f"/api/sessions/{r.json()['session_id']}")).json()
    assert session["messages"][0]["content"] == "will fail"
    provider._queue.clear()
    provider.exhausted = None


# -- agents, groups, scheduler, budget, resources -----------------------------------------------


async def test_agents_list_get_kill(client: Any, provider: ScriptedProvider) -> None:
    provider.enqueue_text("done")
    await client.post("/api/chat", json={"content": "spawn an agent"})
    page = (await client.get("/api/agents?status=completed")).json()
    assert page["total"] >= 1 and {"items", "total", "page", "limit"} == page.keys()
    agent = page["items"][0]
    assert (await client.get(f"/api/agents/{agent['id']}")).json()["id"] == agent["id"]
    assert (await client.post(f"/api/agents/{agent['id']}/kill")).status_code == 409  # already finished
    assert (await client.post("/api/agents/nope/kill")).status_code == 404
    assert (await client.get("/api/agents?page=0")).status_code == 422
    assert (await client.get("/api/agents?limit=abc")).status_code == 422


async def test_kill_a_running_agent(client: Any, kernel: Any, provider: ScriptedProvider) -> None:
    provider.enqueue_hang("thinking")
    task = asyncio.create_task(client.post("/api/chat", json={"content": "hang"}))
    for _ in range(200):
        running = (await client.get("/api/agents?status=running")).json()["items"]
        if running:
            break
        await asyncio.sleep(0.01)
    assert running
    r = await client.post(f"/api/agents/{running[0]['id']}/kill")
    assert r.json() == {"status": "killed", "id": running[0]["id"]}
    reply = await task
    assert reply.status_code == 502  # the chat answers with the agent's end, the session keeps it


async def test_agent_groups(client: Any) -> None:
    assert (await client.get("/api/agent-groups")).json()["items"] == []
    assert (await client.get("/api/agent-groups/nope")).status_code == 404


async def test_scheduler(client: Any) -> None:
    stats = (await client.get("/api/scheduler/stats")).json()
    assert stats["backend"] == "local" and "max_concurrent" in stats
    tasks = (await client.get("/api/scheduler/tasks")).json()
    assert tasks["total"] >= 1


async def test_budget(client: Any) -> None:
    r = await client.post("/api/budget/agent-x", json={"max_tokens": 1000})
    assert r.status_code == 200 and r.json()["max_tokens"] == 1000
    assert (await client.get("/api/budget/agent-x")).json()["max_tokens"] == 1000
    assert (await client.post("/api/budget/agent-x/reserve", json={"tokens": 400})).json()["reserved_tokens"] == 400
    over = await client.post("/api/budget/agent-x/reserve", json={"tokens": 5000})
    assert over.status_code == 422 and "exceeds" in over.json()["error"]
    assert (await client.post("/api/budget/agent-x/reset")).json()["reserved_tokens"] == 0
    assert (await client.post("/api/budget/agent-x", json={"max_tokens": -1})).status_code == 422
    assert (await client.post("/api/budget/agent-x", json={})).status_code == 422
    assert (await client.delete("/api/budget/agent-x")).json() == {"status": "deleted", "id": "agent-x"}
    assert (await client.get("/api/budget/agent-x")).json()["max_tokens"] == 0


async def test_resources(client: Any) -> None:
    snap = (await client.get("/api/resources")).json()
    assert "cpu_percent" in snap and "memory_percent" in snap
    assert isinstance((await client.get("/api/resources/history?limit=5")).json(), list)
    overload = (await client.get("/api/resources/overload")).json()
    assert overload["overloaded"] in (True, False) and "cpu_percent" in overload["snapshot"]


# -- workspace ------------------------------------------------------------------------------------


async def test_workspace_write_read_tree(client: Any, kernel: Any) -> None:
    w = await client.put("/api/workspace/file/notes/todo.md", content=b"# TODO\n- ship\n")
    assert w.status_code == 200 and w.json() == {"status": "written", "path": "notes/todo.md", "size": 14}
    r = await client.get("/api/workspace/file/notes/todo.md")
    assert r.status_code == 200 and r.content == b"# TODO\n- ship\n"
    tree = (await client.get("/api/workspace/tree")).json()
    notes = next(c for c in tree["children"] if c["name"] == "notes")
    assert notes["children"][0] == {"name": "todo.md", "path": "notes/todo.md", "type": "file", "size": 14}
    assert (await client.get("/api/workspace/file/notes/missing.md")).status_code == 404
    assert (await client.get("/api/workspace/tree?path=nope")).status_code == 404


async def test_workspace_serves_active_content_as_text(client: Any) -> None:
    await client.put("/api/workspace/file/page.html", content=b"<script>alert(1)</script>")
    r = await client.get("/api/workspace/file/page.html")
    assert r.headers["content-type"].startswith("text/plain")
    assert r.headers["content-security-policy"] == "sandbox"


@pytest.mark.parametrize("path", ["..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "notes/..%2F..%2F..%2Fsecret"])
async def test_workspace_traversal_is_refused(client: Any, path: str) -> None:
    assert (await client.get(f"/api/workspace/file/{path}")).status_code == 403
    assert (await client.put(f"/api/workspace/file/{path}", content=b"owned")).status_code == 403


async def test_workspace_symlink_escape_is_refused(client: Any, kernel: Any, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("secret")
    (Path(kernel.paths.workspace) / "link.txt").symlink_to(outside)
    assert (await client.get("/api/workspace/file/link.txt")).status_code == 403
    assert (await client.put("/api/workspace/file/link.txt", content=b"x")).status_code == 403
    assert outside.read_text() == "secret"


async def test_workspace_policy_denial_is_403(client: Any, kernel: Any) -> None:
    """The security policies vote on path actions: a denied path inside the workspace is refused too."""
    from oxios_hookspecs import Decision, hookimpl

    class DenyPrivate:
        @hookimpl
        def check_action(self, action: Action, context: Any) -> Decision | None:
            if action.kind == "path" and "private" in action.path:
                return Decision(verdict="deny", reason="private files are off limits", policy="test")
            return None

    kernel.plugins.register(DenyPrivate(), name="deny-private")
    try:
        r = await client.put("/api/workspace/file/private/x.txt", content=b"x")
        assert r.status_code == 403 and "off limits" in r.json()["error"]
    finally:
        kernel.plugins.unregister("deny-private")


# -- skills and seeds -------------------------------------------------------------------------------


async def test_skills_crud(client: Any) -> None:
    page = (await client.get("/api/skills")).json()
    assert any(s["name"] == "code-review" for s in page["items"])
    created = await client.post("/api/skills", json={"name": "greet", "description": "Say hello nicely", "body": "Be kind."})
    assert created.status_code == 201, created.text
    assert (await client.post("/api/skills", json={"name": "greet", "description": "again"})).status_code == 409
    assert (await client.get("/api/skills/greet")).json()["name"] == "greet"
    content = (await client.get("/api/skills/greet/content")).json()
    assert content["name"] == "greet" and "Be kind." in content["content"]
    assert (await client.post("/api/skills/greet/disable")).json()["status"] == "disabled"
    assert (await client.post("/api/skills/greet/enable")).json()["status"] != "disabled"
    assert (await client.delete("/api/skills/greet")).status_code == 200
    assert (await client.get("/api/skills/greet")).status_code == 404
    bad = await client.post("/api/skills", json={"name": "Bad Name!", "description": "x"})
    assert bad.status_code == 422 and "name" in bad.json()["error"]
    huge = await client.post("/api/skills", json={"name": "big", "description": "d", "body": "x" * 70_000})
    assert huge.status_code == 413


async def test_seeds(client: Any, kernel: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from oxios.ouroboros.seed import Seed, SeedStore

    if "seeds" not in kernel.services and "ouroboros" not in kernel.services:
        r = await client.get("/api/seeds")
        assert r.status_code == 501 and r.json()["error"].startswith("seeds is not available")
        monkeypatch.setitem(kernel.services, "seeds", SeedStore(kernel))
    store = kernel.services.get("seeds") or kernel.services["ouroboros"].seeds
    first = store.save(_seed(Seed, goal="Build a TODO app", generation=1))
    second = store.save(_seed(Seed, goal="Build a TODO app with tags", generation=2, parent_id=first.id))
    page = (await client.get("/api/seeds")).json()
    assert page["total"] >= 2 and {s["id"] for s in page["items"]} >= {first.id, second.id}
    got = (await client.get(f"/api/seeds/{first.id}")).json()
    assert got["id"] == first.id and got["goal"] == "Build a TODO app" and "evaluation" in got
    evolution = (await client.get(f"/api/seeds/{second.id}/evolution")).json()
    assert [g["id"] for g in evolution] == [first.id, second.id]
    assert (await client.get("/api/seeds/nope")).status_code == 404


def _seed(seed_type: Any, **fields: Any) -> Any:
    import msgspec

    return msgspec.convert({"session_id": "s-seed", **fields}, seed_type)


# -- memory -----------------------------------------------------------------------------------------


async def test_memory(client: Any, kernel: Any) -> None:
    if "memory" not in kernel.services:
        r = await client.get("/api/memory")
        assert r.status_code == 501 and "memory is not available" in r.json()["error"]
        return
    # The user guide's curl example as pasted: `curl -X PUT .../api/memory/my-note -d '{...}'` (no -H).
    put = await client.put(
        "/api/memory/my-note",
        content=b'{"category": "notes", "content": "Important info about rockets"}',
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert put.status_code == 200, put.text
    again = await client.put("/api/memory/my-note", json={"category": "notes", "content": "Updated info about rockets"})
    assert again.json()["id"] == put.json()["id"]
    created = await client.post("/api/memory", json={"content": "The launch is on Friday", "category": "plans"})
    assert created.status_code == 201
    assert (await client.get(f"/api/memory/{created.json()['id']}")).json()["content"] == "The launch is on Friday"
    assert (await client.get("/api/memory/my-note")).json()["content"] == "Updated info about rockets"
    listed = (await client.get("/api/memory")).json()
    assert listed["total"] >= 2
    hits = (await client.post("/api/memory/search", json={"query": "rockets"})).json()["hits"]
    assert hits and "rockets" in hits[0]["record"]["content"]
    assert (await client.post("/api/memory/semantic", json={"query": "launch day"})).status_code == 200
    assert (await client.get("/api/memory/search?q=friday&mode=keyword")).json()["hits"]
    assert (await client.get("/api/memory/tiers")).status_code == 200
    assert (await client.get("/api/memory/nope")).status_code == 404
    assert (await client.post("/api/memory", json={"content": ""})).status_code == 422
    assert (await client.post("/api/memory", json={"content": "x" * 40_000})).status_code == 413
    assert (await client.delete(f"/api/memory/{created.json()['id']}")).status_code == 200


# -- sessions and personas -------------------------------------------------------------------------------


async def test_sessions(client: Any, provider: ScriptedProvider) -> None:
    provider.enqueue_text("ok")
    sid = (await client.post("/api/chat", json={"content": "session test"})).json()["session_id"]
    page = (await client.get("/api/sessions?limit=100")).json()
    assert any(s["id"] == sid for s in page["items"]) and page["total"] >= 1
    assert (await client.delete(f"/api/sessions/{sid}")).json() == {"status": "deleted", "id": sid}
    assert (await client.get(f"/api/sessions/{sid}")).status_code == 404
    assert (await client.delete(f"/api/sessions/{sid}")).status_code == 404
    pruned = await client.post("/api/sessions/prune", json={"max_sessions": 1})
    assert pruned.status_code == 200 and pruned.json()["status"] == "pruned"
    assert (await client.get("/api/sessions")).json()["total"] <= 1
    assert (await client.post("/api/sessions/prune", json={"max_sessions": -1})).status_code == 422


async def test_personas(client: Any) -> None:
    page = (await client.get("/api/personas")).json()
    assert page["total"] >= 1
    created = await client.post("/api/personas", json={"name": "pirate", "system_prompt": "Talk like a pirate."})
    assert created.status_code == 201, created.text
    assert (await client.post("/api/personas", json={"name": "pirate", "system_prompt": "x"})).status_code == 409
    assert (await client.post("/api/personas", json={"name": "nobody"})).status_code == 422
    assert (await client.get("/api/personas/pirate")).json()["system_prompt"] == "Talk like a pirate."
    assert (await client.put("/api/personas/pirate", json={"description": "Arr"})).json()["description"] == "Arr"
    assert (await client.put("/api/personas/active", json={"name": "pirate"})).json()["name"] == "pirate"
    assert (await client.get("/api/personas/active")).json()["name"] == "pirate"
    assert (await client.put("/api/personas/active", json={"name": "ghost"})).status_code == 404
    assert (await client.delete("/api/personas/active")).json()["status"] == "cleared"
    assert (await client.get("/api/personas/active")).status_code == 404
    assert (await client.delete("/api/personas/pirate")).status_code == 200
    assert (await client.get("/api/personas/pirate")).status_code == 404


# -- cron -------------------------------------------------------------------------------------------------


async def test_cron_jobs(client: Any) -> None:
    job = {"name": "news-summary", "schedule": "0 9 * * *", "goal": "Summarize top tech news"}
    r = await client.post("/api/cron-jobs", json=job)
    assert r.status_code == 201, r.text
    assert (await client.post("/api/cron-jobs", json=job)).status_code == 409
    assert any(j["name"] == "news-summary" for j in (await client.get("/api/cron-jobs")).json()["items"])
    got = (await client.get("/api/cron-jobs/news-summary")).json()
    assert got["schedule"] == "0 9 * * *" and got["runs"] == []
    edited = await client.post("/api/cron-jobs/news-summary/edit", json={"schedule": "30 8 * * 1-5"})
    assert edited.json()["schedule"] == "30 8 * * 1-5"
    bad = await client.post("/api/cron-jobs", json={**job, "name": "bad", "schedule": "every day"})
    assert bad.status_code == 422 and bad.json()["error"].startswith("schedule")
    assert (await client.post("/api/cron-jobs", json={**job, "nmae": "x"})).status_code == 422
    assert (await client.get("/api/cron-jobs/missing")).status_code == 404
    assert (await client.delete("/api/cron-jobs/news-summary")).json()["status"] == "deleted"
    assert (await client.get("/api/cron-jobs/news-summary")).status_code == 404


async def test_cron_trigger(client: Any, kernel: Any, provider: ScriptedProvider) -> None:
    await client.post("/api/cron-jobs", json={"name": "now", "schedule": "0 0 1 1 *", "goal": "say hi"})
    provider.enqueue_text("hi from cron")
    r = await client.post("/api/cron-jobs/now/trigger")
    assert r.status_code == 200, r.text
    assert r.json()["trigger"] == "manual"
    await kernel.services["cron"].wait_idle()
    assert (await client.post("/api/cron-jobs/missing/trigger")).status_code == 404
    runs = (await client.get("/api/cron-jobs/now/runs")).json()
    assert runs["total"] == 1 and runs["items"][0]["status"] == "succeeded" and runs["items"][0]["output"] == "hi from cron"
    assert (await client.get("/api/cron-jobs/missing/runs")).status_code == 404
    paused = await client.post("/api/cron-jobs/now/pause")
    assert paused.status_code == 200 and paused.json()["paused"] is True and paused.json()["state"] == "paused"
    assert (await client.post("/api/cron-jobs/now/resume")).json()["paused"] is False
    assert (await client.post("/api/cron-jobs/missing/pause")).status_code == 404


# -- audit, approvals, permissions ----------------------------------------------------------------------------


async def test_audit(client: Any, kernel: Any) -> None:
    kernel.services["audit"].append("agent-7", "exec", "git status", True, "allowlisted", {})
    page = (await client.get("/api/audit/entries")).json()
    assert page["total"] >= 1 and page["items"][0]["action"] == "exec"
    assert (await client.get("/api/audit")).json()["total"] == page["total"]
    mine = (await client.get("/api/audit/agent/agent-7")).json()
    assert mine["total"] == 1 and mine["items"][0]["resource"] == "git status"
    verify = (await client.get("/api/audit/verify")).json()
    assert verify["valid"] is True
    export = await client.post("/api/audit/export", json={"format": "jsonl"})
    assert export.headers["content-type"].startswith("application/x-ndjson")
    assert len(export.text.strip().splitlines()) == page["total"]
    assert isinstance((await client.post("/api/audit/export", json={"format": "json"})).json(), list)
    assert (await client.post("/api/audit/export", json={"format": "xml"})).status_code == 422
    assert (await client.post("/api/audit/flush")).status_code == 200


async def test_approvals(client: Any, kernel: Any) -> None:
    approvals = kernel.services["approvals"]
    context = kernel.context(agent_id="agent-9", session_id="s-1")
    waiting = asyncio.create_task(approvals.request(Action(kind="exec", argv=["rm", "-rf", "build"]), context, "rm is risky"))
    for _ in range(200):
        pending = (await client.get("/api/approvals")).json()["items"]
        if pending:
            break
        await asyncio.sleep(0.01)
    assert pending and pending[0]["agent_id"] == "agent-9"
    approval_id = pending[0]["id"]
    r = await client.post(f"/api/approvals/{approval_id}/approve", json={"reason": "fine"})
    assert r.status_code == 200 and r.json()["status"] == "approved"
    verdict = await asyncio.wait_for(waiting, 5)
    assert verdict.verdict == "allow"
    assert (await client.post(f"/api/approvals/{approval_id}/reject", json={})).status_code == 409
    assert (await client.post("/api/approvals/nope/approve", json={})).status_code == 404
    assert (await client.post(f"/api/approvals/{approval_id}/approve", json={"scope": "forever"})).status_code == 422


async def test_permissions(client: Any) -> None:
    got = (await client.get("/api/permissions/agent-1")).json()
    assert got["agent_id"] == "agent-1" and "effective" in got
    put = await client.put("/api/permissions/agent-1", json={"network": True})
    assert put.status_code == 200 and put.json()["effective"]["network"] is True
    unknown_role = await client.put("/api/permissions/agent-1", json={"role": "emperor"})
    assert unknown_role.status_code == 422 and "role" in unknown_role.json()["error"]
    assert (await client.put("/api/permissions/agent-1", json={})).status_code == 422
    assert (await client.put("/api/permissions/agent-1", json={"netwrk": True})).status_code == 422


# -- git ------------------------------------------------------------------------------------------------------


async def test_git(client: Any, kernel: Any) -> None:
    git = kernel.services["git"]
    (Path(kernel.paths.workspace) / "a.txt").write_text("one")
    first = await git.commit("first")
    (Path(kernel.paths.workspace) / "a.txt").write_text("two")
    await git.commit("second")
    log = (await client.get("/api/git/log?limit=5")).json()
    assert [c["message"].strip() for c in log[:2]] == ["second", "first"]
    assert isinstance((await client.get("/api/git/tags")).json(), list)
    assert (await client.post("/api/git/verify")).status_code == 200
    restored = await client.post("/api/git/restore", json={"commit": first})
    assert restored.status_code == 200, restored.text
    assert (Path(kernel.paths.workspace) / "a.txt").read_text() == "one"
    assert (await client.post("/api/git/restore", json={"ref": "deadbeef"})).status_code == 404
    assert (await client.post("/api/git/restore", json={})).status_code == 422


# -- errors: 501 and 500 -------------------------------------------------------------------------------------------


async def test_missing_service_is_501_naming_it(client: Any, kernel: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(kernel.services, "cron")
    r = await client.get("/api/cron-jobs")
    assert r.status_code == 501 and r.json()["error"].startswith("cron is not available")


async def test_unexpected_error_is_500_with_id_and_no_trace(
    client: Any, kernel: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken:
        def stats(self) -> dict[str, Any]:
            raise RuntimeError("kaboom in the scheduler")

    monkeypatch.setitem(kernel.services, "scheduler", Broken())
    with caplog.at_level(logging.ERROR, logger="oxios.web"):
        r = await client.get("/api/scheduler/stats")
    assert r.status_code == 500
    body = r.json()
    assert "kaboom" not in r.text and "Traceback" not in r.text
    assert body["error_id"] in body["error"]
    assert any(body["error_id"] in rec.getMessage() and rec.exc_info for rec in caplog.records)
