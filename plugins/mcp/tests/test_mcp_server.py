"""Oxios as an MCP server, checked with the SDK's own client (in-process and over stdio)."""

from __future__ import annotations

import sys
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
    import asyncio
    import socket

    import httpx
    import pytest
    import uvicorn
    from mcp import Client

    web = pytest.importorskip("oxios_plugin_web.app")
    async with oxios_kernel_factory(plugins=[mcp_plugin], config={"security": {"auth_enabled": True}}) as kernel:
        token = kernel.services["tokens"].create("mcp-peer")["token"]
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"
        server = uvicorn.Server(uvicorn.Config(web.create_app(kernel), log_level="warning", lifespan="off"))
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            async with asyncio.timeout(10):
                while not server.started:
                    await asyncio.sleep(0.02)
            async with httpx.AsyncClient() as http:
                anonymous = await http.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
                assert anonymous.status_code == 401
            import httpx2
            from mcp.client.streamable_http import streamable_http_client

            authed = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"})
            async with Client(streamable_http_client(url, http_client=authed)) as client:
                assert {t.name for t in (await client.list_tools()).tools} == EXPECTED_TOOLS
                saved = await client.call_tool("memory_save", {"content": "saved over HTTP MCP"})
                assert not saved.is_error, text(saved)
        finally:
            server.should_exit = True
            await serving


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
