"""The turn loop offers the model only the tools the agent's role (and its caller) allow; calls are still judged."""

from __future__ import annotations

from typing import Any

from oxios.testing import ScriptedTurn
from oxios_hookspecs import ModelRequest, ToolCallEvent, ToolResultBlock, hookimpl

ROLES = {
    "noexec": {"tools": ["*"], "exec_modes": [], "network": True},
    "netless": {"tools": ["*"], "network": False},
    "reader": {"tools": ["tier:read", "!grep"], "exec_modes": [], "network": False},
}


def offered(request: ModelRequest) -> set[str]:
    return {spec.name for spec in request.tools}


def tool_results(request: ModelRequest) -> list[ToolResultBlock]:
    return [b for m in request.messages for b in m.content if isinstance(b, ToolResultBlock)]


async def fetch_page(url: str) -> str:
    """Fetch a page (a stand-in network-tier tool; never reached in these tests)."""
    return "page"


class NetworkTool:
    @hookimpl
    def register_tools(self, register: Any) -> None:
        register(fetch_page, tier="network")


def kernel_for(factory: Any, provider: Any) -> Any:
    return factory(
        plugins=[provider.plugin(), NetworkTool()],
        config=provider.config({"security": {"roles": ROLES}}),
    )


async def run_agent(kernel: Any, goal: str, **kwargs: Any) -> dict[str, Any]:
    agents = kernel.service("agents")
    agent_id = await agents.spawn(goal, **kwargs)
    return await agents.wait(agent_id, timeout=30)


async def test_role_decides_which_tools_are_offered(scripted_provider: Any, oxios_kernel_factory: Any) -> None:
    for _ in range(4):
        scripted_provider.enqueue_text("ok")
    async with kernel_for(oxios_kernel_factory, scripted_provider) as kernel:
        every = set(kernel.tools.tools)
        assert {"exec", "fetch_page", "read", "grep"} <= every
        for role in ("noexec", "admin", "netless", "reader"):
            assert (await run_agent(kernel, "look around", role=role))["status"] == "completed"
        reads = {name for name, t in kernel.tools.tools.items() if t.spec.tier == "read"}
    no_exec, admin, netless, reader = (offered(r) for r in scripted_provider.requests)
    assert "exec" not in no_exec and no_exec == every - {"exec"}
    assert admin == every
    assert netless == every - {"fetch_page"}
    assert reader == reads - {"grep"} and "read" in reader


async def test_hidden_tool_called_anyway_is_denied_and_audited(scripted_provider: Any, oxios_kernel_factory: Any) -> None:
    # A model that guesses the hidden tool's name: the call-time policy still refuses it.
    marker = "pwned.txt"
    scripted_provider.enqueue_turn(
        "",
        [
            ("exec", {"binary": "python3", "args": ["-c", f"open({marker!r}, 'w').write('x')"]}),
            ("no_such_tool", {}),
        ],
    )
    scripted_provider.enqueue_text("I could not.")
    async with kernel_for(oxios_kernel_factory, scripted_provider) as kernel:
        record = await run_agent(kernel, "run a script", role="noexec")
        assert record["status"] == "completed" and record["result"] == "I could not."
        assert not (kernel.paths.workspace / marker).exists()
        audit = kernel.services["audit"]
        entries = audit.export(agent=record["id"])
        denied = [e for e in entries if e["action"] == "policy.tool" and e["resource"] == "exec"]
        assert len(denied) == 1 and denied[0]["allowed"] is False
        assert "may not run commands" in denied[0]["reason"]
        assert not any(e["action"] == "tool.call" and e["resource"] == "exec" for e in entries)
        assert audit.verify().ok
    assert "exec" not in offered(scripted_provider.requests[0])
    hidden, unknown = tool_results(scripted_provider.requests[1])
    assert hidden.is_error and "tool exec denied by policy" in hidden.content and "may not run commands" in hidden.content
    # The unknown-tool error lists what the model was offered, never the hidden tool.
    assert unknown.is_error and "unknown tool 'no_such_tool'" in unknown.content
    listed = unknown.content.split("available tools: ", 1)[1].split(", ")
    assert "read" in listed and "exec" not in listed


async def test_caller_tool_list_and_role_intersect(scripted_provider: Any, oxios_kernel_factory: Any) -> None:
    scripted_provider.enqueue_text("ok")
    scripted_provider.enqueue_tool_call("ls", {"path": "."})  # allowed by the role, not by the caller
    scripted_provider.enqueue_text("ok")
    async with kernel_for(oxios_kernel_factory, scripted_provider) as kernel:
        await run_agent(kernel, "a", role="noexec", tools=["read", "exec", "fetch_page"])
        await run_agent(kernel, "b", role="admin", tools=["read", "exec"])
    first, second, third = scripted_provider.requests
    assert offered(first) == {"read", "fetch_page"}
    assert offered(second) == {"read", "exec"}
    [outside] = tool_results(third)
    assert outside.is_error and "unknown tool 'ls'" in outside.content


async def test_permission_change_applies_to_the_next_request(scripted_provider: Any, oxios_kernel_factory: Any) -> None:
    async with kernel_for(oxios_kernel_factory, scripted_provider) as kernel:
        agents = kernel.service("agents")
        agent_id = agents.fork("work", role="admin")

        def then(change: Any) -> Any:
            def reply(request: ModelRequest) -> ScriptedTurn:
                change()  # through the facade, as `oxios permissions set/reset` does
                return ScriptedTurn(tool_calls=[ToolCallEvent(id=f"c{len(scripted_provider.requests)}", name="ls", arguments={})])

            return reply

        revoke = then(lambda: kernel.rpc["permissions.put"](agent_id=agent_id, overrides={"exec_modes": []}, actor="test"))
        restore = then(lambda: kernel.rpc["permissions.reset"](agent_id=agent_id, actor="test"))
        scripted_provider.enqueue_callable(revoke).enqueue_callable(restore).enqueue_text("done")
        await agents.exec(agent_id)
        assert (await agents.wait(agent_id, timeout=30))["status"] == "completed"
        changes = [e["action"] for e in kernel.services["audit"].export() if e["action"].startswith("permissions.")]
        assert changes == ["permissions.update", "permissions.reset"]
    before, revoked, restored = (offered(r) for r in scripted_provider.requests)
    assert "exec" in before and "exec" not in revoked and "exec" in restored
    assert before - {"exec"} == revoked
