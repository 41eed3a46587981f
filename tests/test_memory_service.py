"""The "memory" service in a kernel: hooks, web-facing calls, tools, an agent using them, recall, CLI."""

from __future__ import annotations

from typing import Any

import pytest

from oxios.kernel import NotAvailable, NotFound
from oxios.memory.embedder import HashingEmbedder
from oxios.memory.service import MemoryUnavailable
from oxios.memory.store import InvalidMemory, MemoryTooLarge
from oxios_hookspecs import IncomingMessage, ToolResultBlock, hookimpl


async def test_service_is_chosen_by_the_hooks_and_reports_status(oxios_kernel: Any) -> None:
    memory = oxios_kernel.service("memory")
    await memory.wait_ready()
    assert type(memory.backend).__name__ == "SQLiteMemoryBackend"
    assert isinstance(memory.embedder, HashingEmbedder) and memory.embedder.dim == 384
    component = oxios_kernel.status()["components"]["memory"]
    assert component["healthy"] and component["total_entries"] == 0 and component["index_state"] == "ready"
    assert {"memory_search", "memory_save", "memory_update", "memory_delete"} <= set(oxios_kernel.tools.tools)
    assert oxios_kernel.tools.get("memory_save").spec.tier == "write"
    assert oxios_kernel.tools.get("memory_search").spec.tier == "read"
    assert (oxios_kernel.paths.home / "memory").is_dir()


async def test_web_calls_are_one_call_each(oxios_kernel: Any) -> None:
    memory = oxios_kernel.service("memory")
    # POST /api/memory
    created = await memory.put("I prefer concise answers without emojis")
    assert created.type == "preference" and created.importance == 0.8 and created.tier == "warm"
    # PUT /api/memory/{name}: creates, then replaces by name.
    note = await memory.upsert("my-note", category="notes", content="Important info")
    again = await memory.upsert("my-note", category="notes", content="Important info, revised")
    assert again.id == note.id and again.content.endswith("revised") and again.category == "notes"
    # GET /api/memory/{id} (an id or a name)
    assert (await memory.get(note.id)).content.endswith("revised")
    assert (await memory.get("my-note")).id == note.id
    # GET /api/memory
    page = await memory.page(page=1, limit=1)
    assert page["total"] == 2 and page["page"] == 1 and page["limit"] == 1 and len(page["items"]) == 1
    # POST /api/memory/search and /semantic
    assert (await memory.search("revised info", "keyword", 5))[0].record.id == note.id
    assert (await memory.semantic("concise answers", 5))[0].record.id == created.id
    # GET /api/memory/tiers
    tiers = await memory.tiers()
    assert set(tiers) == {"hot", "warm", "cold"} and tiers["warm"]["count"] == 2 and len(tiers["warm"]["items"]) == 2
    pinned = await memory.pin(note.id)
    assert pinned.pinned and pinned.tier == "hot"
    assert (await memory.tiers())["hot"]["count"] == 1


async def test_bad_requests_get_clear_errors(oxios_kernel: Any) -> None:
    memory = oxios_kernel.service("memory")
    with pytest.raises(NotFound):
        await memory.get("nope")
    with pytest.raises(NotFound):
        await memory.delete("nope")
    with pytest.raises(NotFound):
        await memory.update("nope", content="x")
    with pytest.raises(InvalidMemory, match="empty"):
        await memory.put("")
    with pytest.raises(MemoryTooLarge):
        await memory.put("y" * 33_000)
    with pytest.raises(InvalidMemory, match="unknown memory type"):
        await memory.put("hello", type="gossip")
    with pytest.raises(InvalidMemory, match="search mode"):
        await memory.search("x", "telepathy")
    with pytest.raises(InvalidMemory, match="query is empty"):
        await memory.search("  ")
    with pytest.raises(InvalidMemory, match="tier"):
        await memory.list(tier="tepid")
    with pytest.raises(InvalidMemory, match="unknown memory type"):
        await memory.page(type="gossip")
    assert (await memory.page())["total"] == 0


async def test_memory_can_be_disabled(oxios_kernel_factory: Any) -> None:
    async with oxios_kernel_factory(config={"memory": {"enabled": False}}) as kernel:
        with pytest.raises(NotAvailable):
            kernel.service("memory")
        result = await kernel.tools.get("memory_search").call({"query": "x"}, kernel.context())
        assert result.is_error and "not available" in result.content


async def test_unknown_backend_is_a_clear_error(oxios_kernel_factory: Any) -> None:
    with pytest.raises(MemoryUnavailable, match=r"memory\.backend"):
        async with oxios_kernel_factory(config={"memory": {"backend": "nosuch"}}):
            pass


class SmallEmbedder:
    """A plugin offering another embedder (a different vector space)."""

    @hookimpl
    def embedder(self, name: str, config: Any) -> Any:
        if name == "small":
            emb = HashingEmbedder(dim=64)
            emb.name = "small"
            return emb
        return None


async def test_switching_embedder_reembeds_in_the_background(oxios_kernel_factory: Any) -> None:
    async with oxios_kernel_factory(plugins=[SmallEmbedder()]) as kernel:
        memory = kernel.service("memory")
        for i in range(30):
            await memory.put(f"note {i}: the backup of shard {i} runs at {i % 24}:00")
        await memory.put("The rabbit hutch needs cleaning on Sundays")
        status = await memory.switch_embedder("small")
        assert status["index_state"] == "rebuilding" and status["index_progress"]["total"] == 31
        await memory.wait_ready()
        assert memory.status()["embedder"] == "small-v2-64" and memory.status()["index_size"] == 31
        assert "hutch" in (await memory.semantic("rabbit hutch cleaning", 1))[0].record.content
        with pytest.raises(MemoryUnavailable):
            await memory.switch_embedder("nosuch")
    # Restart with the new embedder configured: the saved 64-d index is reused.
    async with oxios_kernel_factory(plugins=[SmallEmbedder()], config={"memory": {"embedder": "small"}}) as kernel:
        memory = kernel.service("memory")
        assert memory.backend.progress["total"] == 0 and memory.status()["index_size"] == 31


async def test_tools_through_the_registry(oxios_kernel: Any) -> None:
    ctx = oxios_kernel.context(session_id="sess-1")
    tools = oxios_kernel.tools
    saved = await tools.get("memory_save").call({"content": "The user's favourite colour is teal"}, ctx)
    assert not saved.is_error and "preference" in saved.content
    rid = saved.data["id"]
    assert saved.data["session_ids"] == ["sess-1"]
    found = await tools.get("memory_search").call({"query": "favourite colour"}, ctx)
    assert rid in found.content and "why:" in found.content
    updated = await tools.get("memory_update").call({"id": rid, "content": "The user's favourite colour is navy"}, ctx)
    assert not updated.is_error
    assert "navy" in (await tools.get("memory_search").call({"query": "colour", "mode": "keyword"}, ctx)).content
    assert (await tools.get("memory_update").call({"id": rid}, ctx)).is_error
    assert (await tools.get("memory_update").call({"id": "nope", "content": "x"}, ctx)).is_error
    assert (await tools.get("memory_search").call({"query": "x", "mode": "psychic"}, ctx)).is_error
    assert (await tools.get("memory_save").call({"content": ""}, ctx)).is_error
    assert not (await tools.get("memory_delete").call({"id": rid}, ctx)).is_error
    assert (await tools.get("memory_delete").call({"id": rid}, ctx)).is_error
    assert (await tools.get("memory_search").call({"query": "colour"}, ctx)).content == "no matching memories"


def _results(request: Any) -> list[ToolResultBlock]:
    return [b for m in request.messages for b in m.content if isinstance(b, ToolResultBlock)]


async def test_an_agent_saves_and_recalls_through_the_tools(scripted_kernel: Any, scripted_provider: Any) -> None:
    gateway = scripted_kernel.service("gateway")
    scripted_provider.enqueue_tool_call("memory_save", {"content": "The user's dog is called Pixel", "category": "pets"})
    scripted_provider.enqueue_text("Noted.")
    first = await gateway.submit(IncomingMessage(content="Remember my dog is called Pixel", channel="test", interactive=False))
    assert first.response == "Noted."
    [saved] = _results(scripted_provider.requests[1])
    assert not saved.is_error and "saved memory" in saved.content

    # A new session: the agent searches memory and the saved fact comes back.
    scripted_provider.enqueue_tool_call("memory_search", {"query": "dog name"})
    scripted_provider.enqueue_text("Your dog is Pixel.")
    second = await gateway.submit(IncomingMessage(content="What's my dog called?", channel="test", interactive=False))
    assert second.response == "Your dog is Pixel."
    [found] = _results(scripted_provider.requests[3])
    assert not found.is_error and "Pixel" in found.content
    record = (await scripted_kernel.service("memory").list())[0]
    assert record.category == "pets" and record.source == "agent" and record.session_ids


async def test_recall_block_has_hot_memories_and_relevant_hits_within_budget(oxios_kernel: Any) -> None:
    memory = oxios_kernel.service("memory")
    await memory.put("The user's name is Ada", pinned=True)
    await memory.put("Production deploys happen on Fridays at noon")
    await memory.put("The cat is called Miso")
    for i in range(40):
        await memory.put(f"Deploy log {i}: the deploy pipeline for service {i} finished on Friday")
    block = await memory.recall("when do production deploys happen?", token_budget=60)
    assert block.startswith("<memory>") and block.endswith("</memory>")
    assert "Always remembered:\n- [" in block and "The user's name is Ada" in block.split("Relevant")[0]
    relevant = block.split("Relevant memories:")[1]
    assert "Fridays at noon" in relevant and "Miso" not in relevant
    assert sum(len(line) // 4 for line in relevant.strip().splitlines()[:-1]) <= 60
    empty = await memory.recall("", token_budget=100)
    assert "Ada" in empty and "Relevant" not in empty
    # Topic shifts: first message and a change of subject recall, a follow-up does not.
    assert await memory.recall_if_shifted("s1", "when do production deploys happen") is not None
    assert await memory.recall_if_shifted("s1", "when do production deploys happen on friday") is None
    assert await memory.recall_if_shifted("s1", "what is my cat called") is not None


async def test_dream_through_the_service_is_audited_and_revertible(oxios_kernel: Any) -> None:
    memory = oxios_kernel.service("memory")
    a = await memory.put("The VPN endpoint is vpn.example.net")
    await memory.put("The VPN endpoint is vpn.example.net.")
    report = await memory.dream()
    assert report["changes"]["delete"] == 1 and report["changes"]["merge"] == 1
    audit = oxios_kernel.services.get("audit")
    if audit is not None:
        rows = oxios_kernel.state.all("SELECT action, actor FROM audit_log WHERE actor = 'memory.dream'")
        assert {"memory.merge", "memory.delete"} <= {r["action"] for r in rows}
    assert len(memory.changes(report["run_id"])) == report["changes"]["merge"] + report["changes"]["delete"] + report[
        "changes"
    ].get("update", 0)
    assert (await memory.page())["total"] == 1
    await memory.revert(report["run_id"])
    assert (await memory.page())["total"] == 2 and (await memory.get(a.id)).content == a.content
    stats = await memory.stats()
    assert stats["by_tier"]["warm"] + stats["by_tier"]["hot"] == 2 and stats["last_dream"]["run_id"] == report["run_id"]


async def test_sessions_count_towards_the_next_dream(oxios_kernel_factory: Any) -> None:
    async with oxios_kernel_factory(config={"memory": {"dream_after_sessions": 2}}) as kernel:
        memory = kernel.service("memory")
        kernel.state.kv_set("memory", "sessions_since_dream", 2)
        assert memory._dream_due() == "after 2 sessions"
        kernel.state.kv_set("memory", "sessions_since_dream", 0)
        kernel.state.kv_set("memory", "last_dream", {"at": 0})
        assert memory._dream_due() == "daily"


def test_cli_without_a_daemon(oxios_cli: Any) -> None:
    added = oxios_cli("memory", "add", "Deploys happen on Fridays", "--name", "deploy-day")
    assert added.exit_code == 0 and "(fact, warm)" in added.output
    assert "deploy-day" in oxios_cli("memory", "list").output
    found = oxios_cli("memory", "search", "when do we deploy")
    assert found.exit_code == 0 and "why: keyword" in found.output
    assert '"name": "deploy-day"' in oxios_cli("memory", "show", "deploy-day").output
    assert "pinned (hot)" in oxios_cli("memory", "pin", "deploy-day").output
    dreamed = oxios_cli("memory", "dream")
    assert dreamed.exit_code == 0 and "oxios memory revert" in dreamed.output
    assert oxios_cli("memory", "rm", "deploy-day").exit_code == 0
    missing = oxios_cli("memory", "rm", "deploy-day")
    assert missing.exit_code == 1
    assert "no memories" in oxios_cli("memory", "list").output
    bad = oxios_cli("memory", "search", "x", "--mode", "telepathy")
    assert bad.exit_code == 1


async def test_the_turn_loop_gets_proactive_recall_in_its_system_prompt(scripted_kernel: Any, scripted_provider: Any) -> None:
    memory = scripted_kernel.service("memory")
    await memory.put("The user's name is Ada", pinned=True)
    await memory.put("Production deploys happen on Fridays at noon")
    await memory.put("The cat is called Miso")
    scripted_provider.enqueue_text("On Fridays.")
    result = await scripted_kernel.service("gateway").submit(
        IncomingMessage(content="When do production deploys happen?", channel="test", interactive=False)
    )
    assert result.response == "On Fridays."
    system = scripted_provider.requests[0].system
    assert "<memory>" in system and "The user's name is Ada" in system and "Fridays at noon" in system
    assert "Miso" not in system


async def test_the_daemon_dreams_after_enough_new_sessions(oxios_kernel_factory: Any) -> None:
    import asyncio

    async with oxios_kernel_factory(config={"memory": {"dream_after_sessions": 2}}) as kernel:
        kernel.daemon = True  # scheduled consolidation runs only in the daemon
        memory = kernel.service("memory")
        await memory.put("The VPN endpoint is vpn.example.net")
        await memory.put("The VPN endpoint is vpn.example.net!")
        dreamed = kernel.subscribe(types={"memory.dreamed"})
        kernel.publish("session.created", session_id="a")
        kernel.publish("session.created", session_id="b")
        event = await asyncio.wait_for(dreamed.get(), timeout=10)
        assert event.data["trigger"] == "after 2 sessions" and event.data["changes"]["merge"] == 1
        assert kernel.state.kv_get("memory", "sessions_since_dream") == 0
