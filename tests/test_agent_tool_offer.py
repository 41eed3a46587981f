"""The turn loop offers the model only the tools the agent's role, persona and caller allow; calls are still judged."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from oxios.agent.personas import MIGRATIONS as PERSONA_MIGRATIONS
from oxios.agent.personas import Personas
from oxios.kernel import NotFound
from oxios.state import StateStore
from oxios.testing import ScriptedTurn
from oxios_hookspecs import Action, ModelRequest, ToolCallEvent, ToolResult, ToolResultBlock, ToolSpec, hookimpl

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
    # delegate needs fork_agents, which only admin (of these) has.
    assert "exec" not in no_exec and no_exec == every - {"exec", "delegate"}
    assert admin == every
    assert netless == every - {"fetch_page", "delegate"}
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


def policy_denials(kernel: Any, agent_id: str, tool: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The audited policy denials of ``tool`` for this agent, and all of its audit entries."""
    entries = kernel.services["audit"].export(agent=agent_id)
    denied = [e for e in entries if e["action"] == "policy.tool" and e["resource"] == tool and e["allowed"] is False]
    return denied, entries


def ran(entries: list[dict[str, Any]], tool: str) -> bool:
    return any(e["action"] == "tool.call" and e["resource"] == tool for e in entries)


# -- tools that need a capability ---------------------------------------------------------------


async def test_capability_tool_is_hidden_and_refused_for_the_same_reason(
    scripted_provider: Any, oxios_kernel_factory: Any
) -> None:
    # The default role (user) lacks fork_agents: delegate is not offered, and naming it anyway forks nothing.
    scripted_provider.enqueue_tool_call("delegate", {"goals": ["fork me", "and me"]})
    scripted_provider.enqueue_text("I could not.")
    scripted_provider.enqueue_text("ok")
    async with kernel_for(oxios_kernel_factory, scripted_provider) as kernel:
        assert kernel.tools.get("delegate").spec.capability == "fork_agents"
        record = await run_agent(kernel, "split the work")
        assert record["role"] == "user" and record["result"] == "I could not."
        agents = kernel.service("agents")
        assert [a["id"] for a in agents.list()] == [record["id"]]  # nothing was forked
        reason = kernel.services["rbac"].refusal(record["id"], "user", "delegate", "write", "fork_agents")
        assert reason == "role user lacks fork_agents"
        denied, entries = policy_denials(kernel, record["id"], "delegate")
        assert [e["reason"] for e in denied] == [reason] and not ran(entries, "delegate")
        # The capability is the registry's word: an action that claims another tier changes nothing.
        verdict = await kernel.check_action(Action(kind="tool", tool="delegate", tier="read"), kernel.context(role="user"))
        assert verdict.verdict == "deny" and verdict.reason == reason
        assert (await run_agent(kernel, "look", role="admin"))["status"] == "completed"
        assert kernel.services["audit"].verify().ok
    first, second, admin = scripted_provider.requests
    assert "delegate" not in offered(first) and "read" in offered(first)
    [refused] = tool_results(second)
    assert refused.is_error and refused.content == f"tool delegate denied by policy: {reason}"
    assert "delegate" in offered(admin)


async def purge_audit() -> str:
    """Purge the audit chain (a stand-in management tool; never reached by a role without manage_audit)."""
    return "purged"


class ListAgentsTool:
    """A Tool-shaped object declaring its capability on its own spec."""

    spec = ToolSpec(name="list_all_agents", description="List every agent.", capability="manage_agents")

    async def call(self, args: dict[str, Any], context: Any) -> ToolResult:
        return ToolResult(content="[]")


class ManagementTools:
    @hookimpl
    def register_tools(self, register: Any) -> None:
        register(purge_audit, tier="write", capability="manage_audit")
        register(ListAgentsTool())


class MisspelledCapability:
    @hookimpl
    def register_tools(self, register: Any) -> None:
        register(purge_audit, name="purge_everything", capability="manage_everything")


async def test_plugin_tools_declare_capabilities(scripted_provider: Any, oxios_kernel_factory: Any) -> None:
    for _ in range(3):
        scripted_provider.enqueue_text("ok")
    plugins = [scripted_provider.plugin(), ManagementTools(), MisspelledCapability()]
    config = scripted_provider.config({"security": {"roles": {"auditor": {"tools": ["*"], "manage_audit": True}}}})
    async with oxios_kernel_factory(plugins=plugins, config=config) as kernel:
        # A capability no role can have would hide the tool from everyone: refused loudly at registration.
        assert kernel.tools.get("purge_everything") is None
        [failure] = [f for f in kernel.plugins.failures if "purge_everything" in f.error]
        assert "unknown capability 'manage_everything'" in failure.error and "fork_agents" in failure.error
        for role in ("user", "auditor", "superuser"):
            await run_agent(kernel, "look", role=role)
    user, auditor, superuser = (offered(r) & {"purge_audit", "list_all_agents"} for r in scripted_provider.requests)
    assert user == set()
    assert auditor == {"purge_audit"}
    assert superuser == {"list_all_agents"}


async def test_capability_override_applies_to_the_next_request(scripted_provider: Any, oxios_kernel_factory: Any) -> None:
    async with kernel_for(oxios_kernel_factory, scripted_provider) as kernel:
        agents = kernel.service("agents")
        agent_id = agents.fork("work", role="user")

        def grant(request: ModelRequest) -> ScriptedTurn:
            kernel.rpc["permissions.put"](agent_id=agent_id, overrides={"fork_agents": True}, actor="test")
            return ScriptedTurn(tool_calls=[ToolCallEvent(id="c1", name="ls", arguments={})])

        scripted_provider.enqueue_callable(grant).enqueue_text("done")
        await agents.exec(agent_id)
        assert (await agents.wait(agent_id, timeout=30))["status"] == "completed"
    before, after = (offered(r) for r in scripted_provider.requests)
    assert "delegate" not in before and after == before | {"delegate"}


# -- personas ---------------------------------------------------------------------------------------


async def test_builtin_personas_narrow_what_is_offered(scripted_provider: Any, oxios_kernel_factory: Any) -> None:
    for _ in range(4):
        scripted_provider.enqueue_text("ok")
    async with kernel_for(oxios_kernel_factory, scripted_provider) as kernel:
        every = set(kernel.tools.tools)
        reads = {name for name, t in kernel.tools.tools.items() if t.spec.tier == "read"}
        for persona in ("Review", "Research", "Dev"):
            await run_agent(kernel, "look", role="admin", persona=persona)
        await run_agent(kernel, "look", role="netless", persona="Research")
    review, research, dev, netless_research = (offered(r) for r in scripted_provider.requests)
    assert "skill" in review and review == reads
    assert not review & {"write", "edit", "exec", "delegate", "memory_save", "fetch_page"}
    assert research == reads | {"fetch_page"}
    assert dev == every
    assert netless_research == reads  # the persona narrows the role, never widens it


async def test_role_persona_and_caller_intersect(scripted_provider: Any, oxios_kernel_factory: Any) -> None:
    scripted_provider.enqueue_text("ok")
    async with kernel_for(oxios_kernel_factory, scripted_provider) as kernel:
        kernel.service("personas").create("Narrow", system_prompt="Be brief.", tools=["read", "exec", "ls", "fetch_page"])
        # role noexec drops exec, the persona drops grep, the caller drops ls.
        await run_agent(kernel, "a", role="noexec", persona="Narrow", tools=["read", "exec", "fetch_page", "grep"])
    assert offered(scripted_provider.requests[0]) == {"read", "fetch_page"}


async def test_persona_hidden_tool_called_anyway_is_denied_and_audited(scripted_provider: Any, oxios_kernel_factory: Any) -> None:
    marker = "reviewed.txt"
    scripted_provider.enqueue_turn("", [("write", {"path": marker, "content": "x"}), ("read", {"path": "."})])
    scripted_provider.enqueue_text("Review may not write.")
    async with kernel_for(oxios_kernel_factory, scripted_provider) as kernel:
        record = await run_agent(kernel, "fix the bug", role="admin", persona="Review")
        assert record["status"] == "completed" and record["persona"] == "Review"
        assert not (kernel.paths.workspace / marker).exists()
        reason = "persona Review may not use the tool write"
        assert kernel.services["rbac"].refusal(record["id"], "admin", "write", "write") == reason
        denied, entries = policy_denials(kernel, record["id"], "write")
        assert [e["reason"] for e in denied] == [reason] and not ran(entries, "write")
        assert kernel.services["audit"].verify().ok
    first, second = scripted_provider.requests
    assert "write" not in offered(first)
    refused, allowed_read = tool_results(second)
    assert refused.is_error and refused.content == f"tool write denied by policy: {reason}"
    assert "denied" not in allowed_read.content


async def test_persona_edit_applies_to_the_next_request(scripted_provider: Any, oxios_kernel_factory: Any) -> None:
    async with kernel_for(oxios_kernel_factory, scripted_provider) as kernel:
        agents = kernel.service("agents")
        personas = kernel.service("personas")
        agent_id = agents.fork("work", role="admin", persona="Review")

        def lift(request: ModelRequest) -> ScriptedTurn:
            personas.update("Review", tools=[])  # empty: no restriction
            return ScriptedTurn(tool_calls=[ToolCallEvent(id="c1", name="ls", arguments={})])

        scripted_provider.enqueue_callable(lift).enqueue_text("done")
        await agents.exec(agent_id)
        assert (await agents.wait(agent_id, timeout=30))["status"] == "completed"
        every = set(kernel.tools.tools)
    restricted, lifted = (offered(r) for r in scripted_provider.requests)
    assert "write" not in restricted and lifted == every


async def test_sub_agents_keep_the_parents_persona_and_tool_list(scripted_provider: Any, oxios_kernel_factory: Any) -> None:
    scripted_provider.enqueue_tool_call("delegate", {"goals": ["write the file"]})  # parent
    scripted_provider.enqueue_tool_call("write", {"path": "sub.txt", "content": "x"})  # child
    scripted_provider.enqueue_text("child: refused")  # child
    scripted_provider.enqueue_text("parent: done")  # parent
    async with kernel_for(oxios_kernel_factory, scripted_provider) as kernel:
        kernel.service("personas").create("Lead", system_prompt="Lead.", tools=["tier:read", "delegate"])
        record = await run_agent(kernel, "lead", role="admin", persona="Lead", tools=["read", "ls", "write", "delegate"])
        assert record["result"] == "parent: done"
        [child] = [a for a in kernel.service("agents").list() if a["parent_id"] == record["id"]]
        assert child["persona"] == "Lead" and child["result"] == "child: refused"
        assert not (kernel.paths.workspace / "sub.txt").exists()
        denied, _ = policy_denials(kernel, child["id"], "write")
        assert [e["reason"] for e in denied] == ["persona Lead may not use the tool write"]
    parent_first, child_first, child_second, _ = scripted_provider.requests
    assert offered(parent_first) == {"read", "ls", "delegate"}
    assert offered(child_first) == {"read", "ls", "delegate"}  # not grep or find: the caller's list holds
    [refused] = tool_results(child_second)
    assert refused.is_error and "persona Lead may not use the tool write" in refused.content


@pytest.mark.parametrize(
    ("tools", "why"),
    [
        (["tier:root"], "unknown tier in 'tier:root'"),
        (["!exec"], "exclusions alone allow nothing"),
        (["grep", " "], "empty pattern"),
        (["!"], "empty pattern"),
        ("grep", "a list of patterns"),
        ([1], "a list of patterns"),
    ],
)
async def test_persona_tool_patterns_are_validated(scripted_kernel: Any, tools: Any, why: str) -> None:
    personas = scripted_kernel.service("personas")
    with pytest.raises(ValueError, match=why):
        personas.create("Bad", system_prompt="x", tools=tools)
    with pytest.raises(NotFound):
        personas.get("Bad")
    with pytest.raises(ValueError, match=why):
        personas.update("Review", tools=tools)
    assert personas.get("Review")["tools"] == ["tier:read", "skill"]


async def test_persona_tools_round_trip(scripted_kernel: Any) -> None:
    personas = scripted_kernel.service("personas")
    assert {p["name"]: p["tools"] for p in personas.list()} == {
        "Dev": [],
        "Review": ["tier:read", "skill"],
        "Research": ["tier:read", "tier:network"],
    }
    assert personas.create("Reader", system_prompt="x", tools=[" grep ", "tier:read"])["tools"] == ["grep", "tier:read"]
    assert personas.create("Free", system_prompt="x")["tools"] == []
    assert personas.update("Reader", description="reads")["tools"] == ["grep", "tier:read"]  # untouched
    assert personas.update("Reader", tools=[])["tools"] == []


def test_migration_gives_existing_builtin_personas_their_tools(tmp_path: Path) -> None:
    # A database from before persona tools: the built-ins (one edited by its user) and a custom persona.
    store = StateStore(tmp_path / "state.db")
    store.migrate("personas", PERSONA_MIGRATIONS[:1])
    for name, builtin, prompt in (
        ("Review", 1, "My own review prompt."),
        ("Research", 1, "r"),
        ("Dev", 1, "d"),
        ("Mine", 0, "m"),
    ):
        store.execute(
            "INSERT INTO personas(name, system_prompt, builtin, created, updated) VALUES (?, ?, ?, 0, 0)", (name, prompt, builtin)
        )
    try:
        personas = Personas(SimpleNamespace(state=store))
        assert store.schema_version("personas") == len(PERSONA_MIGRATIONS) == 2
        found = {p["name"]: p for p in personas.list()}
        assert {name: p["tools"] for name, p in found.items()} == {
            "Review": ["tier:read", "skill"],
            "Research": ["tier:read", "tier:network"],
            "Dev": [],
            "Mine": [],
        }
        assert found["Review"]["system_prompt"] == "My own review prompt."
        Personas(SimpleNamespace(state=store))  # a second start changes nothing
        assert personas.get("Mine")["tools"] == []
    finally:
        store.close()
