"""MCP client: a real server from PyPI over stdio, a local stdio server, a local HTTP server."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import sys
import textwrap
from pathlib import Path
from typing import Any

import psutil
import pytest
from oxios_plugin_mcp import plugin as mcp_plugin

TIME_SERVER = shutil.which("mcp-server-time") or str(Path(sys.executable).with_name("mcp-server-time"))
TIME_SERVER_INSTALLED = Path(TIME_SERVER).exists()

# A small stdio server of our own: shows its environment, fails on demand, hangs on demand.
LOCAL_SERVER = textwrap.dedent(
    """
    import asyncio, os
    from mcp.server import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

    server = MCPServer("local-test")

    @server.tool()
    def env(name: str) -> str:
        \"\"\"The value of an environment variable, or <unset>.\"\"\"
        return os.environ.get(name, "<unset>")

    @server.tool()
    def explode(reason: str) -> str:
        \"\"\"Always fails.\"\"\"
        raise ToolError("exploded: " + reason)

    @server.tool()
    async def hang() -> str:
        \"\"\"Never answers in time.\"\"\"
        await asyncio.sleep(60)
        return "late"

    server.run("stdio")
    """
)


def ctx(kernel: Any) -> Any:
    return kernel.context(agent_id="agent-mcp", session_id="s", interactive=False)


async def wait_for(predicate: Any, what: str, timeout: float = 60.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)
    assert predicate(), what


def server_processes(marker: str) -> list[psutil.Process]:
    out = []
    for child in psutil.Process().children(recursive=True):
        try:
            if any(marker in part for part in child.cmdline()):
                out.append(child)
        except psutil.NoSuchProcess:
            continue
    return out


async def test_time_server_from_pypi_over_stdio(oxios_kernel_factory: Any) -> None:
    assert TIME_SERVER_INSTALLED, "mcp-server-time must be installed (pip install mcp-server-time)"
    config = {"mcp": {"servers": {"time": {"command": TIME_SERVER, "timeout_secs": 15}}}}
    async with oxios_kernel_factory(plugins=[mcp_plugin], config=config) as kernel:
        await wait_for(lambda: kernel.tools.get("mcp__time__get_current_time") is not None, "time tools registered")
        tool = kernel.tools.get("mcp__time__get_current_time")
        assert tool.spec.tier == "exec" and tool.spec.parameters["required"] == ["timezone"]
        assert "mcp__time__convert_time" in kernel.tools.tools
        now = await tool.call({"timezone": "Europe/Berlin"}, ctx(kernel))
        assert not now.is_error and json.loads(now.content)["timezone"] == "Europe/Berlin"
        assert now.data["timezone"] == "Europe/Berlin"
        bad = await tool.call({"timezone": "Mars/Olympus"}, ctx(kernel))
        assert bad.is_error and "Mars/Olympus" in bad.content
        unknown = await kernel.services["mcp"].call("time", "no_such_tool", {})
        assert unknown.is_error and "no_such_tool" in unknown.content

        # The server dies: the call that finds out says so, the next one restarts it.
        victims = server_processes("mcp-server-time")
        assert victims
        for proc in victims:
            proc.kill()
        died = await tool.call({"timezone": "UTC"}, ctx(kernel))
        assert died.is_error and "restarted on the next call" in died.content
        again = await tool.call({"timezone": "UTC"}, ctx(kernel))
        assert not again.is_error, again.content
        status = kernel.status()["components"]["mcp"]["servers"]["time"]
        assert status["starts"] == 2 and status["failures"] == 1 and status["running"]
    assert server_processes("mcp-server-time") == [], "servers stop with the kernel"

    # Next start: the tools come from the cache and the server starts only when called.
    async with oxios_kernel_factory(plugins=[mcp_plugin], config=config) as kernel:
        tool = kernel.tools.get("mcp__time__get_current_time")
        assert tool is not None and server_processes("mcp-server-time") == []
        assert not (await tool.call({"timezone": "UTC"}, ctx(kernel))).is_error
        assert len(server_processes("mcp-server-time")) == 1


async def test_local_stdio_server_env_errors_timeouts(
    oxios_kernel_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "local_server.py"
    script.write_text(LOCAL_SERVER)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-oxios-own-secret")
    monkeypatch.setenv("LOCAL_TOKEN", "token-for-the-server")
    config = {
        "mcp": {
            "servers": {
                "local": {
                    "command": sys.executable,
                    "args": [str(script)],
                    "env": {"SERVER_TOKEN": "${LOCAL_TOKEN}"},
                    "timeout_secs": 3,
                    "tier": "read",
                },
                "broken": {"command": str(tmp_path / "does-not-exist"), "timeout_secs": 3},
            }
        }
    }
    async with oxios_kernel_factory(plugins=[mcp_plugin], config=config) as kernel:
        manager = kernel.services["mcp"]
        await wait_for(lambda: kernel.tools.get("mcp__local__env") is not None, "local tools registered")
        env = kernel.tools.get("mcp__local__env")
        assert env.spec.tier == "read"
        assert (await env.call({"name": "SERVER_TOKEN"}, ctx(kernel))).content == "token-for-the-server"
        assert (await env.call({"name": "OPENAI_API_KEY"}, ctx(kernel))).content == "<unset>"
        assert "token-for-the-server" not in json.dumps(manager.list())  # env values never shown

        boom = await kernel.tools.get("mcp__local__explode").call({"reason": "test"}, ctx(kernel))
        assert boom.is_error and "exploded: test" in boom.content
        wrong = await env.call({"nam": "x"}, ctx(kernel))
        assert wrong.is_error
        hung = await kernel.tools.get("mcp__local__hang").call({}, ctx(kernel))
        assert hung.is_error and ("timed out" in hung.content.lower() or "did not answer" in hung.content)
        assert not (await env.call({"name": "HOME"}, ctx(kernel))).is_error  # still usable after a timeout

        failed = await manager.call("broken", "anything", {})
        assert failed.is_error and "unavailable" in failed.content
        assert manager.status()["servers"]["broken"]["last_error"]
        with pytest.raises(LookupError):
            await manager.call("nope", "x", {})


async def test_a_slow_starting_server_gets_its_start_timeout_not_the_call_timeout(
    oxios_kernel_factory: Any, tmp_path: Path
) -> None:
    """Starting may take longer than a call (an interpreter loading, npx fetching): timeout_secs is per call only."""
    script = tmp_path / "slow_server.py"
    script.write_text("import time\ntime.sleep(2)\n" + LOCAL_SERVER)
    server = {"command": sys.executable, "args": [str(script)], "timeout_secs": 1, "start_timeout_secs": 60, "tier": "read"}
    async with oxios_kernel_factory(plugins=[mcp_plugin], config={"mcp": {"servers": {"slow": server}}}) as kernel:
        await wait_for(lambda: kernel.tools.get("mcp__slow__env") is not None, "slow server's tools registered")
        answer = await kernel.tools.get("mcp__slow__env").call({"name": "HOME"}, ctx(kernel))
        assert not answer.is_error, answer.content
        assert kernel.services["mcp"].status()["servers"]["slow"]["starts"] == 1


def free_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


async def test_streamable_http_server_behind_ssrf_guard(oxios_kernel_factory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn
    from mcp.server import MCPServer

    remote = MCPServer("remote-test")

    @remote.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    sock = free_socket()
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(remote.streamable_http_app(), log_level="warning", lifespan="on"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await wait_for(lambda: server.started, "uvicorn started")
        url = f"http://127.0.0.1:{port}/mcp"
        monkeypatch.setenv("REMOTE_KEY", "k-123")
        allowed = {
            "security": {"ssrf_allowlist": ["127.0.0.1"]},
            "mcp": {
                "servers": {"remote": {"url": url, "headers": {"Authorization": "Bearer ${REMOTE_KEY}"}, "timeout_secs": 10}}
            },
        }
        async with oxios_kernel_factory(plugins=[mcp_plugin], config=allowed) as kernel:
            await wait_for(lambda: kernel.tools.get("mcp__remote__add") is not None, "remote tools registered")
            add_tool = kernel.tools.get("mcp__remote__add")
            assert add_tool.spec.tier == "network" and set(add_tool.spec.parameters["properties"]) == {"a", "b"}
            result = await add_tool.call({"a": 2, "b": 40}, ctx(kernel))
            assert not result.is_error and result.content == "42"

        # No allowlist: loopback is private. The cached tools of "remote" stay listed but every call is denied.
        blocked = {"mcp": {"servers": {"remote": {"url": url, "timeout_secs": 5}, "other": {"url": url, "timeout_secs": 5}}}}
        async with oxios_kernel_factory(plugins=[mcp_plugin], config=blocked) as kernel:
            manager = kernel.services["mcp"]
            denied = await kernel.tools.get("mcp__remote__add").call({"a": 1, "b": 1}, ctx(kernel))
            assert denied.is_error and "denied" in denied.content and "127.0.0.1" in denied.content
            with pytest.raises(Exception, match="SSRF"):
                await manager.tools("other")
            assert kernel.tools.get("mcp__other__add") is None
    finally:
        server.should_exit = True
        await serving
