"""oxios.testing helpers for plugin authors: oxios_register and oxios_web_client."""

from __future__ import annotations

import json
import types

import pytest
import typer

from oxios_hookspecs import Action, Decision, hookimpl


def make_policy_plugin(name: str = "deny_rm") -> types.SimpleNamespace:
    @hookimpl
    def check_action(action, context):
        if action.kind == "exec" and action.argv[:1] == ["rm"]:
            return Decision(verdict="deny", reason="no rm in tests", policy=name)
        return None

    return types.SimpleNamespace(__name__=name, check_action=check_action)


async def test_oxios_register_reaches_kernels_started_in_the_test(oxios_register, oxios_kernel_factory):
    oxios_register(make_policy_plugin())
    async with oxios_kernel_factory() as kernel:
        assert "deny_rm" in kernel.plugins.info
        verdict = await kernel.check_action(Action(kind="exec", argv=["rm", "x"]), kernel.context())
        assert verdict.verdict == "deny" and verdict.reason == "no rm in tests"


async def test_oxios_register_live_on_a_running_kernel(oxios_register, oxios_kernel):
    action = Action(kind="exec", argv=["rm", "x"])
    before = await oxios_kernel.check_action(action, oxios_kernel.context())
    assert before.reason != "no rm in tests"
    oxios_register(make_policy_plugin(), kernel=oxios_kernel)
    after = await oxios_kernel.check_action(action, oxios_kernel.context())
    assert after.verdict == "deny" and after.reason == "no rm in tests"


def test_oxios_register_adds_cli_commands_for_this_test_only(oxios_cli, monkeypatch):
    from oxios.cli import app
    from oxios.testing import PluginRegistrar

    @hookimpl
    def register_commands(app):
        @app.command("hello-test")
        def hello() -> None:
            typer.echo("hello from a test plugin")

    registrar = PluginRegistrar(monkeypatch)
    registrar(types.SimpleNamespace(__name__="hello_plugin", register_commands=register_commands))
    result = oxios_cli("hello-test")
    assert result.exit_code == 0 and "hello from a test plugin" in result.output
    listed = json.loads(oxios_cli("plugins").output)
    assert "hello_plugin" in [p["name"] for p in listed["plugins"]]
    registrar.cleanup()
    assert "hello-test" not in [c.name for c in app.registered_commands]


async def test_oxios_web_client_talks_to_the_web_plugin(oxios_kernel, oxios_web_client):
    pytest.importorskip("oxios_plugin_web")
    async with oxios_web_client(oxios_kernel) as client:
        response = await client.get("/api/skills")
        assert response.status_code == 200, response.text
        names = [s["name"] for s in response.json()["items"]]
        assert {"code-review", "debug", "refactor"} <= set(names)
        missing = await client.get("/api/skills/no-such-skill")
        assert missing.status_code == 404 and "no-such-skill" in missing.json()["error"]
