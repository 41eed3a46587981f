"""The web channel inside a kernel: discovered by entry point, serving on gateway.host:gateway.port."""

from __future__ import annotations

import socket
from importlib import metadata
from typing import Any

import httpx

from oxios.providers.scripted import ScriptedProvider

from .conftest import clean_env, web_kernel


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_entry_point_is_registered() -> None:
    names = {ep.name: ep.value for ep in metadata.entry_points(group="oxios")}
    assert names.get("web") == "oxios_plugin_web.plugin"


async def test_kernel_starts_and_stops_the_web_channel(tmp_path: Any) -> None:
    import oxios_plugin_web.plugin as web_plugin

    port = free_port()
    with clean_env(tmp_path):
        provider = ScriptedProvider()
        config = {"gateway": {"host": "127.0.0.1", "port": port}}
        async with web_kernel(tmp_path, provider, config, plugins=[web_plugin], channels=True) as kernel:
            assert "web" in kernel.channels
            assert kernel.status()["channels"]["web"] == {"state": "running", "running": True, "url": f"http://127.0.0.1:{port}"}
            async with httpx.AsyncClient() as client:
                r = await client.get(f"http://127.0.0.1:{port}/health")
                assert r.json()["status"] == "ok"
                ui = await client.get(f"http://127.0.0.1:{port}/")
                assert "<title>Oxios</title>" in ui.text
                assert "script-src 'self'" in ui.headers["content-security-policy"]
        with socket.socket() as s:  # the port is free again after stop
            s.bind(("127.0.0.1", port))


async def test_a_taken_port_is_reported_not_fatal(tmp_path: Any) -> None:
    import oxios_plugin_web.plugin as web_plugin

    with socket.socket() as blocker, clean_env(tmp_path):
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        sub = None
        config = {"gateway": {"host": "127.0.0.1", "port": port}}
        async with web_kernel(tmp_path, ScriptedProvider(), config, plugins=[web_plugin], channels=True) as kernel:
            sub = [e for e in kernel.events.since(0)[0] if e.type == "channel.failed"]
            assert sub and sub[0].data["channel"] == "web" and str(port) in sub[0].data["error"]


async def test_other_plugins_add_routes_through_register_routes(tmp_path: Any) -> None:
    from oxios_plugin_web import create_app
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from oxios_hookspecs import hookimpl

    class PingPlugin:
        @hookimpl(optionalhook=True)
        def register_routes(self, register: Any, kernel: Any) -> None:
            register(Route("/a2a/ping", lambda request: PlainTextResponse("pong"), methods=["GET"]))

    with clean_env(tmp_path):
        async with web_kernel(tmp_path, ScriptedProvider(), plugins=[PingPlugin()]) as kernel:
            transport = httpx.ASGITransport(app=create_app(kernel))
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
                assert (await client.get("/a2a/ping")).text == "pong"
