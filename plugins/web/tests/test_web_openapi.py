"""The OpenAPI document is valid, complete, and matches what the server really does."""

from __future__ import annotations

import re
from typing import Any

import pytest
import pytest_asyncio
from oxios_plugin_web import create_app
from oxios_plugin_web.openapi import openapi_path
from starlette.routing import Route, WebSocketRoute

from oxios.providers.scripted import ScriptedProvider

from .conftest import api_client, clean_env, web_kernel

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    home = tmp_path_factory.mktemp("web-openapi")
    with clean_env(home):
        async with web_kernel(home, ScriptedProvider(), {"security": {"rate_limit_per_minute": 0}}) as kernel:
            yield create_app(kernel)


def served(app: Any) -> set[tuple[str, str]]:
    """(METHOD, path) of every API route the app serves (UI and static files aside)."""
    out: set[tuple[str, str]] = set()
    for route in app.routes:
        path = openapi_path(route.path)
        if path == "/api/{rest}" or not (path.startswith("/api") or path in ("/health", "/openapi.json")):
            continue
        if isinstance(route, WebSocketRoute):
            out.add(("GET", path))
        elif isinstance(route, Route):
            out |= {(m, path) for m in route.methods or () if m != "HEAD"}
    return out


async def test_document_validates(app: Any) -> None:
    from openapi_spec_validator import validate

    async with api_client(app) as client:
        document = (await client.get("/openapi.json")).json()
    assert document["openapi"].startswith("3.1")
    validate(document)


async def test_every_route_is_documented_and_every_documented_route_exists(app: Any) -> None:
    documented = {(method.upper(), path) for path, item in app.state.openapi["paths"].items() for method in item}
    assert served(app) == documented


async def test_the_seed_rest_table_is_covered(app: Any) -> None:
    """Every endpoint of the README's REST table (seed 001) is served."""
    table = """
    POST /api/chat; GET /api/chat/stream; GET /api/agents; POST /api/agents/{id}/kill; GET /api/agent-groups;
    GET /api/agent-groups/{id}; GET /health; GET /api/status; GET /api/config; PUT /api/config; GET /api/metrics;
    GET /api/workspace/tree; GET /api/workspace/file/{path}; PUT /api/workspace/file/{path}; GET /api/seeds;
    GET /api/seeds/{id}; GET /api/seeds/{id}/evolution; GET /api/skills; GET /api/skills/{name}; POST /api/skills;
    DELETE /api/skills/{name}; POST /api/skills/{name}/enable; POST /api/skills/{name}/disable;
    GET /api/skills/{name}/content; GET /api/memory; POST /api/memory; GET /api/memory/{id}; POST /api/memory/search;
    POST /api/memory/semantic; GET /api/memory/tiers; GET /api/scheduler/stats; GET /api/scheduler/tasks;
    GET /api/audit/entries; GET /api/audit/verify; GET /api/audit/agent/{id}; POST /api/audit/export;
    POST /api/audit/flush; GET /api/permissions/{agent}; PUT /api/permissions/{agent}; GET /api/sessions;
    GET /api/sessions/{id}; DELETE /api/sessions/{id}; GET /api/events; GET /api/personas; POST /api/personas;
    GET /api/personas/{id}; PUT /api/personas/{id}; DELETE /api/personas/{id}; GET /api/personas/active;
    PUT /api/personas/active; GET /api/cron-jobs; POST /api/cron-jobs; GET /api/cron-jobs/{id};
    DELETE /api/cron-jobs/{id}; POST /api/cron-jobs/{id}/edit; POST /api/cron-jobs/{id}/trigger; GET /api/approvals;
    POST /api/approvals/{id}/approve; POST /api/approvals/{id}/reject; GET /api/git/log; GET /api/git/tags;
    POST /api/git/verify; POST /api/git/restore; GET /api/budget/{agent_id}; POST /api/budget/{agent_id};
    DELETE /api/budget/{agent_id}; POST /api/budget/{agent_id}/reserve; POST /api/budget/{agent_id}/reset;
    GET /api/resources; GET /api/resources/history; GET /api/resources/overload;
    PUT /api/memory/{id}; POST /api/sessions/prune; GET /api/ready; GET /api/audit
    """
    wanted = {tuple(item.split()) for item in re.split(r";", table) if item.strip()}
    assert len(wanted) == 75
    assert wanted - served(app) == set()


async def test_documented_reads_answer_as_documented(app: Any) -> None:
    """Each parameterless GET answers with a status its operation documents (never an undocumented one)."""
    async with api_client(app) as client:
        for path, item in app.state.openapi["paths"].items():
            op = item.get("get")
            if op is None or "{" in path or path == "/api/events":  # an endless stream
                continue
            if any(p.get("required") for p in op.get("parameters", [])):
                continue
            r = await client.get(path)
            assert str(r.status_code) in op["responses"], (path, r.status_code, r.text[:200])
            content = op["responses"][str(r.status_code)].get("content", {})
            if r.status_code < 300 and "application/json" in content:
                assert r.headers["content-type"].startswith("application/json"), path


async def test_docs_page_is_served(app: Any) -> None:
    async with api_client(app) as client:
        page = await client.get("/docs")
        assert page.status_code == 200 and "/static/docs.js" in page.text
        assert (await client.get("/static/docs.js")).status_code == 200


async def test_persona_schemas_carry_tools_as_served(app: Any) -> None:
    """PersonaBody takes ``tools``; the documented Persona has exactly the fields a persona answers with."""
    document = app.state.openapi
    schemas = document["components"]["schemas"]
    assert schemas["PersonaBody"]["properties"]["tools"]["anyOf"][0] == {"type": "array", "items": {"type": "string"}}
    for path, method, status in (("/api/personas/{id}", "get", "200"), ("/api/personas", "post", "201")):
        content = document["paths"][path][method]["responses"][status]["content"]["application/json"]
        assert content["schema"]["$ref"].endswith("/Persona")
    persona = schemas["Persona"]
    assert persona["properties"]["tools"] == {"type": "array", "items": {"type": "string"}, "default": []}
    async with api_client(app) as client:
        review = (await client.get("/api/personas/Review")).json()
        assert set(review) == set(persona["properties"]) and set(persona["required"]) <= set(review)
        assert review["tools"] == ["tier:read", "skill"]
        body = {"name": "lookout", "system_prompt": "Only look.", "tools": ["tier:read", "!grep"]}
        created = await client.post("/api/personas", json=body)
        assert created.status_code == 201 and created.json()["tools"] == ["tier:read", "!grep"]
        listed = {p["name"]: p["tools"] for p in (await client.get("/api/personas")).json()["items"]}
        assert listed["lookout"] == ["tier:read", "!grep"]
        bad = await client.put("/api/personas/lookout", json={"tools": ["tier:root"]})
        assert bad.status_code == 422 and bad.json()["error"].startswith("tools: unknown tier")
        assert "422" in document["paths"]["/api/personas/{id}"]["put"]["responses"]
        assert (await client.put("/api/personas/lookout", json={"tools": "grep"})).status_code == 422
        cleared = await client.put("/api/personas/lookout", json={"tools": []})
        assert cleared.json()["tools"] == []
        assert (await client.delete("/api/personas/lookout")).status_code == 200
