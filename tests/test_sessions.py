"""Sessions, personas, spaces and agent groups over a real kernel and SQLite."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from oxios.kernel import Conflict, NotFound
from oxios_hookspecs import IncomingMessage


def msg(text: str, **kw: Any) -> IncomingMessage:
    return IncomingMessage(content=text, channel="test", interactive=False, **kw)


async def test_user_message_persisted_before_the_agent_runs(scripted_kernel: Any, scripted_provider: Any) -> None:
    sessions = scripted_kernel.service("sessions")
    seen: list[list[str]] = []

    def reply(request: Any) -> str:
        sid = sessions.list(limit=1)[0]["id"]
        seen.append([m["content"] for m in sessions.messages(sid)])
        return "Hello back."

    scripted_provider.enqueue_callable(reply)
    result = await scripted_kernel.service("gateway").submit(msg("hello there"))
    assert seen == [["hello there"]]  # on disk while the model was thinking
    stored = sessions.messages(result.session_id)
    assert [(m["role"], m["content"]) for m in stored] == [("user", "hello there"), ("assistant", "Hello back.")]
    assert stored[1]["metadata"]["agent_id"] == result.agent_id
    # a second kernel (a restart) sees the same session
    assert sessions.get(result.session_id)["message_count"] == 2


async def test_session_continuation_and_unknown_ids(scripted_kernel: Any, scripted_provider: Any) -> None:
    gateway = scripted_kernel.service("gateway")
    scripted_provider.enqueue_text("Your name is Ada.")
    first = await gateway.submit(msg("my name is Ada"))
    scripted_provider.enqueue_text("Ada.")
    second = await gateway.submit(msg("what is my name?", session_id=first.session_id))
    assert second.session_id == first.session_id
    texts = [m.text for m in scripted_provider.requests[1].messages]
    assert texts == ["my name is Ada", "Your name is Ada.", "what is my name?"]
    # a client-chosen id that does not exist yet becomes a new session with that id
    scripted_provider.enqueue_text("ok")
    third = await gateway.submit(msg("hi", session_id="client-chosen-id"))
    assert third.session_id == "client-chosen-id"
    assert len(scripted_provider.requests[2].messages) == 1


async def test_sessions_list_get_delete_prune(scripted_kernel: Any) -> None:
    sessions = scripted_kernel.service("sessions")
    a = sessions.create(channel="cli", title="first")
    b = sessions.create(channel="web")
    sessions.append(b["id"], "user", "a question that becomes the title")
    assert sessions.get(b["id"])["title"] == "a question that becomes the title"
    assert [s["id"] for s in sessions.list()][:2] == [b["id"], a["id"]]
    sessions.delete(a["id"])
    with pytest.raises(NotFound):
        sessions.get(a["id"])
    with pytest.raises(NotFound):
        sessions.delete("no-such-session")
    # TTL: make b old, then prune
    scripted_kernel.state.execute("UPDATE sessions SET updated_at = ? WHERE id = ?", (time.time() - 10 * 3600, b["id"]))
    c = sessions.create()
    assert sessions.prune(ttl_hours=1) == 1
    assert [s["id"] for s in sessions.list()] == [c["id"]]
    assert scripted_kernel.state.one("SELECT COUNT(*) AS n FROM messages WHERE session_id = ?", (b["id"],))["n"] == 0
    # count: keep the newest N
    for _ in range(4):
        sessions.create()
    assert sessions.prune(ttl_hours=0, max_sessions=2) == 3
    assert sessions.count() == 2


async def test_personas_crud_and_use(scripted_kernel: Any, scripted_provider: Any) -> None:
    personas = scripted_kernel.service("personas")
    assert {"Dev", "Review", "Research"} <= {p["name"] for p in personas.list()}
    with pytest.raises(ValueError, match="built-in"):
        personas.delete("Dev")
    pirate = personas.create("Pirate", system_prompt="Talk like a pirate.", description="arr")
    assert pirate["builtin"] is False
    with pytest.raises(ValueError, match="already exists"):
        personas.create("pirate", system_prompt="x")
    personas.update("Pirate", system_prompt="Talk like a polite pirate.")
    scripted_provider.enqueue_text("Arr, hello.")
    await scripted_kernel.service("gateway").submit(msg("hi", persona="Pirate"))
    assert "Talk like a polite pirate." in scripted_provider.requests[0].system
    # activate: new sessions without a persona use the active one
    personas.activate("review")
    assert personas.active()["name"] == "Review"
    scripted_provider.enqueue_text("Reviewing.")
    await scripted_kernel.service("gateway").submit(msg("look at this"))
    assert "You are Review" in scripted_provider.requests[1].system
    personas.delete("Pirate")
    with pytest.raises(NotFound):
        personas.get("Pirate")
    result = await scripted_kernel.service("gateway").submit(msg("x", persona="Nobody"))
    assert result.exit_code == 1 and "no persona 'Nobody'" in result.error
    session = scripted_kernel.service("sessions").get(result.session_id)
    assert session["persona"] is None and session["message_count"] == 2  # kept, and not poisoned


async def test_spaces_route_topics_apart(scripted_kernel: Any, scripted_provider: Any) -> None:
    gateway = scripted_kernel.service("gateway")
    spaces = scripted_kernel.service("spaces")
    scripted_provider.enqueue_text("Use pytest fixtures for the database tests.")
    one = await gateway.submit(msg("how should I structure pytest fixtures for database tests"))
    sid = one.session_id
    scripted_provider.enqueue_text("Sourdough needs a mature starter and long fermentation.")
    two = await gateway.submit(msg("give me a sourdough bread recipe with starter and fermentation", session_id=sid))
    assert one.space_id and two.space_id and one.space_id != two.space_id
    assert two.space_tag.startswith("[") and "sourdough" in two.space_tag
    # the bread question did not see the testing conversation
    assert [m.text for m in scripted_provider.requests[1].messages] == [
        "give me a sourdough bread recipe with starter and fermentation"
    ]
    scripted_provider.enqueue_text("Scope them per module.")
    three = await gateway.submit(msg("what scope should the database fixtures in pytest have", session_id=sid))
    assert three.space_id == one.space_id
    assert "pytest fixtures" in scripted_provider.requests[2].messages[0].text
    scripted_provider.enqueue_text("About an hour.")
    four = await gateway.submit(msg("and how long?", session_id=sid))  # a short follow-up stays put
    assert four.space_id == three.space_id
    listed = spaces.list(sid)
    assert len(listed) == 2 and [s["current"] for s in listed].count(True) == 1
    # an explicit space id wins; an unknown one is a clear error, and the message is not lost
    scripted_provider.enqueue_text("Back to bread.")
    five = await gateway.submit(msg("ok", session_id=sid, space_id=two.space_id))
    assert five.space_id == two.space_id
    with pytest.raises(NotFound):
        await gateway.submit(msg("x", session_id=sid, space_id="nope"))


async def test_agent_groups_fork_and_wait(scripted_provider: Any, oxios_kernel_factory: Any) -> None:
    scripted_provider.enqueue_tool_call("delegate", {"goals": ["count apples", "count pears"]})
    scripted_provider.enqueue_text("child answer")
    scripted_provider.enqueue_text("child answer")
    scripted_provider.enqueue_text("Both counted.")
    config = scripted_provider.config({"scheduler": {"max_concurrent": 1, "rate_limit_per_minute": 0}})
    async with oxios_kernel_factory(plugins=[scripted_provider.plugin()], config=config) as kernel:
        agents = kernel.service("agents")
        parent = await agents.spawn("count fruit", role="superuser")
        record = await agents.wait(parent, timeout=30)
        assert record["status"] == "completed" and record["result"] == "Both counted."
        [group] = agents.groups()
        assert group["parent_id"] == parent and group["done"]
        assert sorted(m["goal"] for m in group["members"]) == ["count apples", "count pears"]
        assert all(m["status"] == "completed" for m in group["members"])
        result = [b for m in scripted_provider.requests[-1].messages for b in m.content if hasattr(b, "tool_use_id")]
        assert "count apples" in result[0].content and not result[0].is_error
        # a plain user may not fork
        scripted_provider.enqueue_tool_call("delegate", {"goals": ["x"]})
        scripted_provider.enqueue_text("denied")
        plain = await agents.spawn("try to fork")
        await agents.wait(plain, timeout=30)
        denied = [b for m in scripted_provider.requests[-1].messages for b in m.content if hasattr(b, "tool_use_id")]
        assert denied[0].is_error and "role user lacks fork_agents" in denied[0].content
        assert len(agents.groups()) == 1


async def test_fork_tree_is_capped_by_max_agents(scripted_provider: Any, oxios_kernel_factory: Any) -> None:
    """An agent that keeps forking (a fork bomb) is stopped at kernel.max_agents live agents in its tree."""
    config = scripted_provider.config({"kernel": {"max_agents": 3}, "scheduler": {"rate_limit_per_minute": 0}})
    async with oxios_kernel_factory(plugins=[scripted_provider.plugin()], config=config) as kernel:
        agents = kernel.service("agents")
        root = agents.fork("root", role="superuser")  # created (not yet run) counts as alive
        # A group of 3 under a root that is alive would make 4: refused whole, nothing forked.
        with pytest.raises(Conflict, match=r"kernel\.max_agents is 3"):
            await agents.spawn_group(["a", "b", "c"], parent_id=root)
        assert agents.groups() == [] and len(agents.list()) == 1
        # Depth counts too: root -> child -> grandchild fills the tree; a great-grandchild is refused.
        child = agents.fork("child", parent_id=root, role="superuser")
        grandchild = agents.fork("grandchild", parent_id=child, role="superuser")
        with pytest.raises(Conflict, match="root " + root):
            agents.fork("great-grandchild", parent_id=grandchild)
        assert agents.live_tree_size(grandchild) == (root, 3)
        # An agent that ended frees its place; other trees were never limited.
        await agents.kill(grandchild)
        await agents.wait(grandchild, timeout=10)
        assert agents.live_tree_size(child) == (root, 2)
        agents.fork("replacement", parent_id=child)
        assert [agents.fork(f"top {n}") for n in range(4)]
        # The model sees the refusal as a tool error and can go on.
        scripted_provider.requests.clear()
        scripted_provider.enqueue_tool_call("delegate", {"goals": ["x", "y", "z"]})
        scripted_provider.enqueue_text("could not delegate")
        parent = await agents.spawn("fan out", role="superuser")
        assert (await agents.wait(parent, timeout=30))["result"] == "could not delegate"
        refused = [b for m in scripted_provider.requests[-1].messages for b in m.content if hasattr(b, "tool_use_id")]
        assert refused[0].is_error and "kernel.max_agents is 3" in refused[0].content


async def test_agent_records_survive_restart(scripted_provider: Any, oxios_kernel_factory: Any) -> None:
    scripted_provider.enqueue_hang()
    async with oxios_kernel_factory(plugins=[scripted_provider.plugin()], config=scripted_provider.config()) as kernel:
        agents = kernel.service("agents")
        agent_id = await agents.spawn("wait forever")
        while agents.get(agent_id)["status"] != "running":
            await asyncio.sleep(0.01)
    async with oxios_kernel_factory(plugins=[scripted_provider.plugin()], config=scripted_provider.config()) as kernel:
        record = kernel.service("agents").get(agent_id)
        assert record["status"] == "killed" and record["goal"] == "wait forever"
        with pytest.raises(NotFound):
            kernel.service("agents").get("nope")
        assert await kernel.service("agents").kill(agent_id) is False


async def test_resources_snapshot_history_overload(oxios_kernel_factory: Any) -> None:
    # The smallest thresholds the config accepts: any real load passes them.
    overload = {"overload_cpu_percent": 0.01, "overload_memory_percent": 0.01}
    async with oxios_kernel_factory(config={"scheduler": overload}) as kernel:
        monitor = kernel.service("resources")
        snap = monitor.sample()
        assert 0 <= snap["memory_percent"] <= 100 and snap["memory_total_bytes"] > 0
        assert monitor.overload() is True
        assert kernel.service("scheduler").stats()["overloaded"] is True
        assert len(monitor.history()) >= 2
    async with oxios_kernel_factory() as kernel:
        monitor = kernel.service("resources")
        for _ in range(400):
            monitor.sample()
        assert len(monitor.history(limit=1000)) == 360  # bounded


async def test_failure_notes_stay_out_of_the_model_history(scripted_kernel: Any, scripted_provider: Any) -> None:
    gateway = scripted_kernel.service("gateway")
    sessions = scripted_kernel.service("sessions")
    session = sessions.create()
    sessions.append(session["id"], "user", "first try")
    sessions.append(session["id"], "assistant", "[cancelled]", metadata={"error": "cancelled"})
    scripted_provider.enqueue_text("Answer.")
    await gateway.submit(msg("second try", session_id=session["id"]))
    [only] = scripted_provider.requests[0].messages  # the two user turns, merged; no failure note
    assert only.role == "user" and [b.text for b in only.content] == ["first try", "second try"]
