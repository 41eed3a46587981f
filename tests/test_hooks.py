"""One test per hook (test_hook_<name>), each proving the host really calls it.

tests/test_docs.py checks that every hook in oxios_hookspecs.SPEC_MODULES has
a test named here (or anywhere under tests/).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import typer

from oxios_hookspecs import Action, Decision, Message, ModelRequest, hookimpl


class Recorder:
    """A plugin object whose hook implementations record their calls."""

    __name__ = "recorder"

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


# -- channels -----------------------------------------------------------------------------


class FakeChannel:
    name = "fake"
    supports_streaming = False

    def __init__(self) -> None:
        self.gateway: Any = None
        self.stopped = False
        self.sent: list[Any] = []

    async def start(self, gateway: Any) -> None:
        self.gateway = gateway

    async def stop(self) -> None:
        self.stopped = True

    async def send(self, outgoing: Any) -> None:
        self.sent.append(outgoing)


async def test_hook_register_channels(oxios_kernel_factory):
    channel = FakeChannel()
    seen: dict[str, Any] = {}

    class Plugin(Recorder):
        @hookimpl
        def register_channels(self, register, kernel):
            seen["kernel"] = kernel
            register(channel)

    async with oxios_kernel_factory(plugins=[Plugin()], channels=True) as kernel:
        assert seen["kernel"] is kernel
        assert kernel.channels["fake"] is channel
        assert kernel.channel_plugins["fake"] == "recorder"
        assert channel.gateway is kernel.services.get("gateway")  # started with the gateway
    assert channel.stopped


# -- tools ----------------------------------------------------------------------------------


async def test_hook_register_tools(oxios_kernel_factory):
    def shout(text: str) -> str:
        """Repeat text in capitals."""
        return text.upper()

    class Plugin(Recorder):
        @hookimpl
        def register_tools(self, register, kernel):
            self.calls.append(("register_tools", {"kernel": kernel}))
            register(shout, tier="read")
            register(shout, name="shout_for_admins", capability="manage_config")

    plugin = Plugin()
    async with oxios_kernel_factory(plugins=[plugin]) as kernel:
        assert plugin.calls[0][1]["kernel"] is kernel
        tool = kernel.tools.get("shout")
        assert tool.spec.plugin == "recorder" and tool.spec.description == "Repeat text in capitals."
        assert tool.spec.capability == "" and kernel.tools.get("shout_for_admins").spec.capability == "manage_config"
        result = await tool.call({"text": "hi"}, kernel.context())
        assert result.content == "HI"


# -- providers ---------------------------------------------------------------------------------


async def test_hook_register_providers(oxios_kernel_factory):
    from oxios.testing import ScriptedProvider

    made: list[tuple[str, dict[str, Any]]] = []
    provider = ScriptedProvider()
    provider.enqueue_text("pong")

    class Plugin(Recorder):
        @hookimpl
        def register_providers(self, register):
            def factory(name: str, settings: dict[str, Any]) -> Any:
                made.append((name, settings))
                provider.name = name
                return provider

            register("recording", factory)

    config = {"providers": {"rec": {"kind": "recording", "default_model": "m1"}}, "kernel": {"default_provider": "rec"}}
    async with oxios_kernel_factory(plugins=[Plugin()], config=config) as kernel:
        assert "recording" in kernel.provider_kinds
        registry = kernel.service("providers")
        assert registry.get("rec") is provider
        assert made[0][0] == "rec" and made[0][1]["kind"] == "recording"
        response = await registry.complete(ModelRequest(model="m1", messages=[Message.user("ping")]))
        assert "pong" in str(response)


# -- memory ---------------------------------------------------------------------------------


async def test_hook_memory_backend(oxios_kernel_factory):
    from oxios.builtin import memory as builtin_memory

    class Plugin(Recorder):
        @hookimpl
        def memory_backend(self, name, config, kernel):
            if name != "wrapped":
                return None
            self.calls.append(("memory_backend", {"name": name}))
            backend = builtin_memory.memory_backend("sqlite", config, kernel)
            backend.wrapped_by_test = True
            return backend

    plugin = Plugin()
    async with oxios_kernel_factory(plugins=[plugin], config={"memory": {"backend": "wrapped"}}) as kernel:
        memory = kernel.service("memory")
        assert plugin.names() == ["memory_backend"]
        assert getattr(memory.backend, "wrapped_by_test", False)
        record = await memory.put("the test backend stores this")
        assert (await memory.get(record.id)).content == "the test backend stores this"


async def test_hook_embedder(oxios_kernel_factory):
    from oxios.memory.embedder import HashingEmbedder

    class CountingEmbedder(HashingEmbedder):
        texts = 0

        async def embed(self, texts):
            CountingEmbedder.texts += len(texts)
            return await super().embed(texts)

    class Plugin(Recorder):
        @hookimpl
        def embedder(self, name, config):
            if name != "counting":
                return None
            self.calls.append(("embedder", {"name": name}))
            return CountingEmbedder(dim=64)

    plugin = Plugin()
    async with oxios_kernel_factory(plugins=[plugin], config={"memory": {"embedder": "counting"}}) as kernel:
        memory = kernel.service("memory")
        assert "embedder" in plugin.names()
        assert isinstance(memory.embedder, CountingEmbedder)


# -- schedulers --------------------------------------------------------------------------------


async def test_hook_scheduler(oxios_kernel_factory):
    from oxios.builtin.scheduler import LocalScheduler

    class Plugin(Recorder):
        @hookimpl
        def scheduler(self, name, config):
            if name != "mine":
                return None
            self.calls.append(("scheduler", {"name": name, "config": config}))
            sched = LocalScheduler(config)
            sched.from_test_plugin = True
            return sched

    plugin = Plugin()
    async with oxios_kernel_factory(plugins=[plugin], config={"scheduler": {"backend": "mine"}}) as kernel:
        assert plugin.names() == ["scheduler"]
        assert plugin.calls[0][1]["config"].backend == "mine"
        assert getattr(kernel.service("scheduler"), "from_test_plugin", False)


# -- policies ----------------------------------------------------------------------------------


async def test_hook_check_action(oxios_kernel_factory):
    class Plugin(Recorder):
        @hookimpl
        def check_action(self, action, context):
            self.calls.append(("check_action", {"action": action, "context": context}))
            if action.kind == "url" and "blocked.example" in action.url:
                return Decision(verdict="deny", reason="blocked by the test policy")
            return None

    plugin = Plugin()
    async with oxios_kernel_factory(plugins=[plugin]) as kernel:
        ctx = kernel.context(agent_id="a1")
        verdict = await kernel.check_action(Action(kind="url", url="https://blocked.example/x"), ctx)
        assert verdict.verdict == "deny" and verdict.reason == "blocked by the test policy"
        assert verdict.policy == "recorder"  # the host fills in the plugin's name
        assert plugin.calls[-1][1]["context"].agent_id == "a1"


# -- lifecycle ---------------------------------------------------------------------------------


async def test_hook_startup(oxios_kernel_factory):
    class Plugin(Recorder):
        @hookimpl
        async def startup(self, kernel):
            await asyncio.sleep(0)  # async implementations are awaited
            self.calls.append(("startup", {"services": set(kernel.services)}))

    plugin = Plugin()
    async with oxios_kernel_factory(plugins=[plugin]):
        assert plugin.names() == ["startup"]
        assert "skills" in plugin.calls[0][1]["services"]  # called after services are up


async def test_hook_shutdown(oxios_kernel_factory):
    class Plugin(Recorder):
        @hookimpl
        def shutdown(self, kernel):
            self.calls.append(("shutdown", {"state_open": kernel.state.healthy()}))

    plugin = Plugin()
    async with oxios_kernel_factory(plugins=[plugin]):
        assert plugin.calls == []
    assert plugin.calls == [("shutdown", {"state_open": True})]  # before state is closed


async def test_hook_on_event(oxios_kernel_factory):
    got = asyncio.Event()

    class Plugin(Recorder):
        @hookimpl
        async def on_event(self, event):
            if event.type == "test.ping":
                self.calls.append(("on_event", {"data": event.data}))
                got.set()

    plugin = Plugin()
    async with oxios_kernel_factory(plugins=[plugin]) as kernel:
        kernel.publish("test.ping", n=1)
        await asyncio.wait_for(got.wait(), timeout=10)
    assert plugin.calls[0][1]["data"]["n"] == 1


# -- surfaces ----------------------------------------------------------------------------------


def test_hook_register_commands(oxios_register, oxios_cli):
    class Plugin(Recorder):
        @hookimpl
        def register_commands(self, app):
            group = typer.Typer(help="A test group.")

            @group.command("greet")
            def greet(name: str) -> None:
                typer.echo(f"hello {name}")

            app.add_typer(group, name="testgroup")

    oxios_register(Plugin(), name="greeter")
    result = oxios_cli("testgroup", "greet", "ada")
    assert result.exit_code == 0 and result.output.strip() == "hello ada"
    listed = json.loads(oxios_cli("plugins", "--hook", "register_commands").output)
    assert "greeter" in [p["name"] for p in listed["plugins"]]


async def test_hook_register_skills(oxios_kernel_factory, tmp_path: Path):
    folder = tmp_path / "shipped" / "release-check"
    folder.mkdir(parents=True)
    (folder / "SKILL.md").write_text("---\nname: release-check\ndescription: Check a release before tagging it.\n---\nSteps.\n")

    class Plugin(Recorder):
        @hookimpl
        def register_skills(self, register):
            self.calls.append(("register_skills", {}))
            register(str(folder.parent))

    plugin = Plugin()
    async with oxios_kernel_factory(plugins=[plugin]) as kernel:
        gateway_skill = kernel.service("skills").get("release-check")
        assert (gateway_skill["source"], gateway_skill["plugin"]) == ("package", "recorder")
        assert plugin.names() == ["register_skills"]
        assert "<name>release-check</name>" in kernel.service("skills").prompt_index()
