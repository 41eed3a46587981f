"""Oxios as an MCP server, checked with the SDK's own client (in-process and over stdio)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from oxios_plugin_mcp import plugin as mcp_plugin
from oxios_plugin_mcp.server import build_server

from oxios_hookspecs import Action, ActionContext, Decision, hookimpl

EXPECTED_TOOLS = {"run_prompt", "memory_search", "memory_save", "list_skills"}


class DenyMemoryWrites:
    @hookimpl
    def check_action(self, action: Action, context: ActionContext) -> Decision | None:
        if action.kind == "api" and action.name == "mcp.memory_save":
            return Decision(verdict="deny", reason="memory is read-only for MCP clients", policy="test")
        return None


def text(result: Any) -> str:
    return "".join(getattr(block, "text", "") for block in result.content)


@contextlib.asynccontextmanager
async def web_mcp_endpoint(kernel: Any) -> AsyncIterator[str]:
    """The web plugin's app on uvicorn on a free loopback port; yields the URL of its /mcp endpoint."""
    import pytest
    import uvicorn

    web = pytest.importorskip("oxios_plugin_web.app")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(web.create_app(kernel), log_level="warning", lifespan="off"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(10):
            while not server.started:
                await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"
    finally:
        server.should_exit = True
        await serving


async def test_sdk_client_in_process(oxios_kernel_factory: Any, scripted_provider: Any) -> None:
    from mcp import Client

    scripted_provider.enqueue_text("Paris is the capital of France.")
    plugins = [scripted_provider.plugin(), mcp_plugin]
    async with oxios_kernel_factory(plugins=plugins, config=scripted_provider.config()) as kernel:
        async with Client(build_server(kernel)) as client:
            listed = await client.list_tools()
            assert {t.name for t in listed.tools} == EXPECTED_TOOLS
            schema = next(t for t in listed.tools if t.name == "run_prompt").input_schema
            assert schema["required"] == ["prompt"]

            answer = await client.call_tool("run_prompt", {"prompt": "What is the capital of France?"})
            assert not answer.is_error, text(answer)
            assert "Paris is the capital of France." in text(answer) and "session_id" in text(answer)
            assert scripted_provider.requests[-1].messages[-1].text == "What is the capital of France?"

            saved = await client.call_tool(
                "memory_save", {"content": "The deploy window is Tuesday 14:00 UTC.", "category": "ops"}
            )
            assert not saved.is_error, text(saved)
            memory_id = saved.structured_content["id"]
            found = await client.call_tool("memory_search", {"query": "deploy window", "k": 3, "mode": "keyword"})
            hits = found.structured_content["result"]
            assert hits and hits[0]["id"] == memory_id

            bad_mode = await client.call_tool("memory_search", {"query": "x", "mode": "telepathy"})
            assert bad_mode.is_error and "telepathy" in text(bad_mode)
            skills = await client.call_tool("list_skills", {})
            assert not skills.is_error and isinstance(skills.structured_content["result"], list)


async def test_policy_applies_to_mcp_clients(oxios_kernel_factory: Any) -> None:
    from mcp import Client

    async with oxios_kernel_factory(plugins=[mcp_plugin, DenyMemoryWrites()]) as kernel:
        async with Client(build_server(kernel)) as client:
            denied = await client.call_tool("memory_save", {"content": "should not be stored"})
            assert denied.is_error and "read-only for MCP clients" in text(denied)
            search = await client.call_tool("memory_search", {"query": "should not be stored", "mode": "keyword"})
            assert search.structured_content["result"] == []


async def test_oxios_mcp_serve_over_stdio(oxios_home: Path) -> None:
    from mcp import Client, StdioServerParameters
    from mcp.client.stdio import stdio_client

    oxios = Path(sys.executable).with_name("oxios")
    params = StdioServerParameters(command=str(oxios), args=["mcp", "serve"], env={"OXIOS_HOME": str(oxios_home)})
    # errlog explicitly: the SDK's default is whatever sys.stderr was when it was imported.
    errlog = (oxios_home / "serve.stderr").open("w")
    async with Client(stdio_client(params, errlog=errlog), read_timeout_seconds=60) as client:
        assert {t.name for t in (await client.list_tools()).tools} >= EXPECTED_TOOLS
        saved = await client.call_tool("memory_save", {"content": "Oxios speaks MCP over stdio."})
        assert not saved.is_error, text(saved)
        found = await client.call_tool("memory_search", {"query": "MCP stdio", "mode": "keyword"})
        assert found.structured_content["result"][0]["content"] == "Oxios speaks MCP over stdio."
        no_provider = await client.call_tool("run_prompt", {"prompt": "hello"})
        assert no_provider.is_error  # no LLM provider is configured in this home: a clear error, no crash
    errlog.close()


async def test_http_endpoint_in_the_web_plugin(oxios_kernel_factory: Any) -> None:
    import httpx
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    async with oxios_kernel_factory(plugins=[mcp_plugin], config={"security": {"auth_enabled": True}}) as kernel:
        token = kernel.services["tokens"].create("mcp-peer")["token"]
        async with web_mcp_endpoint(kernel) as url:
            async with httpx.AsyncClient() as http:
                anonymous = await http.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
                assert anonymous.status_code == 401
            authed = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"})
            async with Client(streamable_http_client(url, http_client=authed)) as client:
                assert {t.name for t in (await client.list_tools()).tools} == EXPECTED_TOOLS
                saved = await client.call_tool("memory_save", {"content": "saved over HTTP MCP"})
                assert not saved.is_error, text(saved)


def test_building_the_server_leaves_the_root_logger_alone() -> None:
    """The SDK's MCPServer() calls logging.basicConfig; Oxios's handlers (which redact secrets) must stay the only ones."""
    import logging
    from types import SimpleNamespace

    from oxios_plugin_mcp.server import build_server

    root = logging.getLogger()
    before = list(root.handlers)
    kernel = SimpleNamespace(context=lambda **kw: None)
    build_server(kernel)
    assert root.handlers == before


async def test_http_runs_under_the_tokens_role(oxios_kernel_factory: Any, scripted_provider: Any) -> None:
    """A token whose role may only read gets an agent that is not offered `write` and cannot use it; the audit names it."""
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    security = {"auth_enabled": True, "roles": {"reader": {"tools": ["tier:read"]}}}
    config = scripted_provider.config({"security": security})
    async with oxios_kernel_factory(plugins=[scripted_provider.plugin(), mcp_plugin], config=config) as kernel:
        reader = kernel.services["tokens"].create("ide-reader", "reader")["token"]
        ops = kernel.services["tokens"].create("ops", "user")["token"]
        async with web_mcp_endpoint(kernel) as url:
            scripted_provider.enqueue_tool_call("write", {"path": "owned.txt", "content": "pwned"}).enqueue_text("done")
            http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {reader}"})
            async with Client(streamable_http_client(url, http_client=http)) as client:
                answer = await client.call_tool("run_prompt", {"prompt": "write a file"})
            assert not answer.is_error, text(answer)
            readers_session = text(answer).rsplit("[session_id: ", 1)[1].rstrip("]")
            offered = {t.name for t in scripted_provider.requests[0].tools}
            assert "read" in offered and "write" not in offered
            assert not (kernel.paths.workspace / "owned.txt").exists()
            audit = kernel.services["audit"].export()
            run = next(e for e in audit if e["action"] == "mcp.run")
            assert run["actor"] == "mcp:ide-reader" and run["metadata"]["role"] == "reader"
            agent = kernel.services["agents"].get(run["metadata"]["agent_id"])
            assert agent["role"] == "reader"
            denied = [e for e in audit if e["actor"] == agent["id"] and e["metadata"].get("tool") == "write"]
            assert denied and not denied[0]["allowed"]
            assert any(e["actor"] == "mcp:ide-reader" and e["resource"] == "run_prompt" for e in audit)

            # The same server, another token: its role (user) is offered `write`.
            scripted_provider.enqueue_text("ok")
            http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {ops}"})
            async with Client(streamable_http_client(url, http_client=http)) as client:
                assert not (await client.call_tool("run_prompt", {"prompt": "hello"})).is_error
                foreign = await client.call_tool("run_prompt", {"prompt": "what did they ask?", "session_id": readers_session})
                assert foreign.is_error and "belongs to another caller" in text(foreign)
            assert "write" in {t.name for t in scripted_provider.requests[-1].tools}
            runs = [e["actor"] for e in kernel.services["audit"].export() if e["action"] == "mcp.run"]
            assert runs == ["mcp:ide-reader", "mcp:ops"]
