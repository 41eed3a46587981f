"""The kernel facade: lifecycle hooks, services, events to plugins, status."""

from __future__ import annotations

import asyncio

import pytest

from oxios import kernel as kernel_mod
from oxios_hookspecs import Action, Decision, hookimpl


class Recorder:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.events: list[str] = []

    @hookimpl
    async def startup(self, kernel):
        self.calls.append("startup")

    @hookimpl
    def shutdown(self, kernel):
        self.calls.append("shutdown")

    @hookimpl
    async def on_event(self, event):
        self.events.append(event.type)


class SlowListener:
    @hookimpl
    async def on_event(self, event):
        await asyncio.sleep(10)  # a slow plugin must never block the publisher


async def test_lifecycle_hooks_and_events(oxios_kernel_factory) -> None:
    rec = Recorder()
    async with oxios_kernel_factory(plugins=[rec, SlowListener()]) as kernel:
        assert rec.calls == ["startup"]
        for i in range(2000):
            kernel.publish("test.ping", n=i)  # returns at once although a listener sleeps
        for _ in range(100):
            if "test.ping" in rec.events:
                break
            await asyncio.sleep(0.01)
        assert "kernel.started" in rec.events or "test.ping" in rec.events
    assert rec.calls == ["startup", "shutdown"]


class FailingStartup:
    @hookimpl
    def startup(self, kernel):
        raise RuntimeError("plugin bug")


async def test_a_failing_startup_hook_is_not_fatal(oxios_kernel_factory, caplog) -> None:
    async with oxios_kernel_factory(plugins=[FailingStartup()]) as kernel:
        assert kernel.status()["status"] == "running"
    assert "plugin bug" in caplog.text


class Service:
    def __init__(self, name, log):
        self.name, self.log = name, log
        log.append(f"start {name}")

    async def stop(self):
        self.log.append(f"stop {self.name}")

    def status(self):
        return {"healthy": True, "detail": self.name}


async def test_services_start_in_order_and_stop_in_reverse(oxios_kernel_factory, monkeypatch) -> None:
    log: list[str] = []
    import sys
    import types

    module = types.ModuleType("fake_services")
    module.one = lambda kernel: Service("one", log)

    async def two(kernel):
        return Service("two", log)

    module.two = two
    monkeypatch.setitem(sys.modules, "fake_services", module)
    monkeypatch.setattr(
        kernel_mod, "SERVICES", [*kernel_mod.SERVICES, ("one", "fake_services:one"), ("two", "fake_services:two")]
    )
    async with oxios_kernel_factory() as kernel:
        assert kernel.service("two").name == "two"
        assert kernel.status()["components"]["one"] == {"healthy": True, "detail": "one"}
        with pytest.raises(kernel_mod.NotAvailable, match="nope is not available"):
            kernel.service("nope")
    assert log == ["start one", "start two", "stop two", "stop one"]


async def test_policy_votes_combine_and_fail_closed(oxios_kernel_factory) -> None:
    class Asker:
        @hookimpl
        def check_action(self, action, context):
            if action.kind == "tool" and action.tool == "ask-me":
                return Decision(verdict="ask", reason="careful")
            return None

    class Crasher:
        @hookimpl
        def check_action(self, action):
            if action.tool == "crash":
                raise ValueError("policy bug")
            return None

    async with oxios_kernel_factory(plugins=[Asker(), Crasher()]) as kernel:
        ctx = kernel.context()
        asked = await kernel.check_action(Action(kind="tool", tool="ask-me", tier="read"), ctx)
        assert asked.verdict == "ask" and asked.reason == "careful"
        crashed = await kernel.check_action(Action(kind="tool", tool="crash", tier="read"), ctx)
        assert crashed.verdict == "deny" and "policy bug" in crashed.reason
        # Nobody votes on an outbound URL: it is denied, not allowed.
        url = await kernel.check_action(Action(kind="url", url="http://example.test/"), ctx)
        assert url.verdict == "deny"


async def test_status_facade(oxios_kernel) -> None:
    st = oxios_kernel.status()
    assert st["status"] == "running" and st["version"]
    assert st["components"]["state_store"]["healthy"] is True
    assert oxios_kernel.rpc["ping"]() == "pong"
