"""The turn loop with a scripted model: tools through policy, errors, limits, cancellation, compaction."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from oxios.agent.context import SUMMARY_PREFIX, SUMMARY_SYSTEM
from oxios.providers.scripted import ScriptedProvider
from oxios_hookspecs import Decision, IncomingMessage, TextBlock, ToolResultBlock, Usage, hookimpl


def msg(text: str, **kw: Any) -> IncomingMessage:
    return IncomingMessage(content=text, channel="test", interactive=False, **kw)


def tool_results(request: Any) -> list[ToolResultBlock]:
    return [b for m in request.messages for b in m.content if isinstance(b, ToolResultBlock)]


async def test_tool_call_runs_through_policy_and_events(scripted_kernel: Any, scripted_provider: Any) -> None:
    (scripted_kernel.paths.workspace / "hello.txt").write_text("hi")
    sub = scripted_kernel.subscribe(
        types={
            "tool.started",
            "tool.finished",
            "token.usage",
            "agent.created",
            "agent.started",
            "agent.stopped",
            "message.received",
        }
    )
    scripted_provider.enqueue_tool_call("ls", {"path": "."}, text="Looking. ")
    scripted_provider.enqueue_text("There is hello.txt.")
    tokens: list[str] = []

    async def on_token(t: str) -> None:
        tokens.append(t)

    result = await scripted_kernel.service("gateway").submit(msg("what files?"), on_token)
    assert result.response == "There is hello.txt." and result.exit_code == 0 and result.error is None
    assert "".join(tokens) == "Looking. There is hello.txt."
    [res] = tool_results(scripted_provider.requests[1])
    assert res.tool_use_id == "call_1" and "hello.txt" in res.content and not res.is_error
    # The tool specs reached the model.
    assert {"ls", "read", "exec"} <= {t.name for t in scripted_provider.requests[0].tools}
    seen = []
    while (event := sub.get_nowait()) is not None:
        seen.append(event.type)
    assert seen[0] == "message.received"
    for name in ("agent.created", "agent.started", "tool.started", "tool.finished", "token.usage", "agent.stopped"):
        assert name in seen
    record = scripted_kernel.service("agents").get(result.agent_id)
    assert record["status"] == "completed" and record["tool_calls"] == 1 and record["turns"] == 2
    assert record["input_tokens"] > 0 and record["output_tokens"] > 0
    # The call and its policy decision are in the audit chain.
    audit = scripted_kernel.services.get("audit")
    if audit is not None:
        rows = scripted_kernel.state.all("SELECT action, resource, allowed FROM audit_log")
        actions = {(r["action"], r["resource"]) for r in rows}
        assert ("tool.call", "ls") in actions and ("policy.tool", "ls") in actions


async def test_denied_and_invalid_calls_go_back_to_the_model(scripted_kernel: Any, scripted_provider: Any) -> None:
    scripted_provider.enqueue_turn(
        "", [("read", {"path": "/etc/passwd"}), ("read", {"nope": 1}), ("no_such_tool", {}), ("read", {"path": 42})]
    )
    scripted_provider.enqueue_text("I could not do that.")
    result = await scripted_kernel.service("gateway").submit(msg("read the password file"))
    assert result.response == "I could not do that."
    denied, invalid, unknown, wrong_type = tool_results(scripted_provider.requests[1])
    assert all(r.is_error for r in (denied, invalid, unknown, wrong_type))
    assert "denied" in denied.content
    assert "invalid arguments for read" in invalid.content and "nope" in invalid.content
    assert "unknown tool 'no_such_tool'" in unknown.content and "read" in unknown.content
    assert "invalid arguments" in wrong_type.content and "path" in wrong_type.content


class AskForWrite:
    """A test policy that wants a human to approve every write."""

    @hookimpl
    def check_action(self, action: Any, context: Any) -> Decision | None:
        if action.kind == "tool" and action.tool == "write":
            return Decision(verdict="ask", reason="writes need a human", policy="ask-writes")
        return None


@pytest.mark.parametrize("with_approvals", [True, False])
async def test_ask_verdict_is_a_deny_when_headless(
    scripted_provider: Any, oxios_kernel_factory: Any, with_approvals: bool
) -> None:
    scripted_provider.enqueue_tool_call("write", {"path": "x.txt", "content": "x"})
    scripted_provider.enqueue_text("Not allowed.")
    async with oxios_kernel_factory(
        plugins=[scripted_provider.plugin(), AskForWrite()], config=scripted_provider.config()
    ) as kernel:
        if not with_approvals:
            kernel.services.pop("approvals", None)
        result = await kernel.service("gateway").submit(msg("write x"))
        assert result.response == "Not allowed."
        [res] = tool_results(scripted_provider.requests[1])
        assert res.is_error and "writes need a human" in res.content
        assert not (kernel.paths.workspace / "x.txt").exists()


async def test_independent_reads_run_concurrently(scripted_provider: Any, oxios_kernel_factory: Any) -> None:
    both_running = asyncio.Event()
    active = {"now": 0, "peak": 0}

    async def probe(name: str) -> str:
        """Wait until another probe runs at the same time."""
        active["now"] += 1
        active["peak"] = max(active["peak"], active["now"])
        if active["now"] >= 2:
            both_running.set()
        try:
            await asyncio.wait_for(both_running.wait(), timeout=5)
            return f"{name} saw a sibling"
        except TimeoutError:
            return f"{name} ran alone"
        finally:
            active["now"] -= 1

    class ProbePlugin:
        @hookimpl
        def register_tools(self, register: Any) -> None:
            register(probe, tier="read")

    scripted_provider.enqueue_turn("", [("probe", {"name": "a"}), ("probe", {"name": "b"})])
    scripted_provider.enqueue_text("done")
    async with oxios_kernel_factory(
        plugins=[scripted_provider.plugin(), ProbePlugin()], config=scripted_provider.config()
    ) as kernel:
        await kernel.service("gateway").submit(msg("probe twice"))
    a, b = tool_results(scripted_provider.requests[1])
    assert (a.content, b.content) == ("a saw a sibling", "b saw a sibling")
    assert active["peak"] == 2


async def test_max_turns_stops_the_loop(scripted_provider: Any, oxios_kernel_factory: Any) -> None:
    for _ in range(3):
        scripted_provider.enqueue_tool_call("ls", {})
    async with oxios_kernel_factory(
        plugins=[scripted_provider.plugin()], config=scripted_provider.config({"kernel": {"max_turns": 3}})
    ) as kernel:
        result = await kernel.service("gateway").submit(msg("loop forever"))
        assert len(scripted_provider.requests) == 3
        assert result.exit_code == 1 and "max_turns=3" in result.error
        assert "[stopped:" in result.response
        assert kernel.service("agents").get(result.agent_id)["status"] == "stopped"


async def test_budget_stops_a_run_that_would_exceed(scripted_provider: Any, oxios_kernel_factory: Any) -> None:
    scripted_provider.enqueue_tool_call("ls", {}, usage=Usage(input_tokens=2500, output_tokens=400))
    scripted_provider.enqueue_text("never reached")
    config = scripted_provider.config({"budget": {"default_max_tokens": 3000}})
    async with oxios_kernel_factory(plugins=[scripted_provider.plugin()], config=config) as kernel:
        result = await kernel.service("gateway").submit(msg("spend"))
        assert len(scripted_provider.requests) == 1  # the second call would have passed the limit
        assert result.exit_code == 1 and "token budget exhausted" in result.error
        # The first call was capped so its output could not pass the limit either.
        assert scripted_provider.requests[0].max_tokens <= 3000
        record = kernel.service("agents").get(result.agent_id)
        assert record["status"] == "stopped" and record["input_tokens"] + record["output_tokens"] == 2900
    scripted_provider._queue.clear()


async def test_cost_budget_and_pricing(scripted_provider: Any, oxios_kernel_factory: Any) -> None:
    scripted_provider.enqueue_tool_call("ls", {}, usage=Usage(input_tokens=1000, output_tokens=1000))
    scripted_provider.enqueue_text("never reached")
    config = scripted_provider.config({"budget": {"pricing": {"scripted-model": [3.0, 15.0]}}})
    async with oxios_kernel_factory(plugins=[scripted_provider.plugin()], config=config) as kernel:
        budget = kernel.service("budget")
        budget.set("default", max_cost_usd=0.02)
        assert budget.cost("scripted-model", Usage(input_tokens=1_000_000)) == 3.0
        result = await kernel.service("gateway").submit(msg("spend money"))
        assert "cost budget exhausted" in result.error
        record = kernel.service("agents").get(result.agent_id)
        assert record["cost_usd"] == pytest.approx(0.018)
        # reserve / reset
        budget.set("a1", max_tokens=100)
        budget.reserve("a1", tokens=60)
        with pytest.raises(ValueError, match="exceeds the remaining 40"):
            budget.reserve("a1", tokens=50)
        assert budget.reset("a1")["remaining_tokens"] == 100
    scripted_provider._queue.clear()


async def test_cancel_stops_a_hanging_turn(scripted_kernel: Any, scripted_provider: Any) -> None:
    scripted_provider.enqueue_hang("partial ")
    gateway = scripted_kernel.service("gateway")
    sessions = scripted_kernel.service("sessions")
    session = sessions.create(channel="test")
    got_token = asyncio.Event()

    async def on_token(t: str) -> None:
        got_token.set()

    task = asyncio.create_task(gateway.submit(msg("hang", session_id=session["id"]), on_token))
    await asyncio.wait_for(got_token.wait(), timeout=5)
    assert await gateway.cancel(session["id"]) is True
    result = await asyncio.wait_for(task, timeout=5)
    assert result.error == "cancelled" or result.error.startswith("cancel")
    roles = [m["role"] for m in sessions.messages(session["id"])]
    assert roles == ["user", "assistant"]  # the question and a cancelled reply are both kept
    [agent] = scripted_kernel.service("agents").list(session_id=session["id"])
    assert agent["status"] == "killed"
    assert await gateway.cancel(session["id"]) is False


async def test_zombie_agent_is_killed_and_marked(scripted_provider: Any, oxios_kernel_factory: Any) -> None:
    scripted_provider.enqueue_hang()
    config = scripted_provider.config({"scheduler": {"zombie_timeout_secs": 1}})
    async with oxios_kernel_factory(plugins=[scripted_provider.plugin()], config=config) as kernel:
        agents = kernel.service("agents")
        agent_id = await agents.spawn("hang without progress")
        record = await agents.wait(agent_id, timeout=30)
        assert record["status"] == "zombie" and "no progress" in record["error"]
        assert kernel.service("scheduler").stats()["zombies"] == 1


async def test_context_is_compacted_near_the_window(oxios_kernel_factory: Any) -> None:
    provider = ScriptedProvider(context_window=4000)
    config = provider.config()
    async with oxios_kernel_factory(plugins=[provider.plugin()], config=config) as kernel:
        sessions = kernel.service("sessions")
        session = sessions.create(channel="test")
        for i in range(6):
            sessions.append(session["id"], "user", f"old question {i} " + "lorem ipsum " * 120)
            sessions.append(session["id"], "assistant", f"old answer {i} " + "dolor sit " * 120)
        provider.enqueue_text("They asked about lorem ipsum six times.")  # the summary
        provider.enqueue_text("Final answer.")
        result = await kernel.service("gateway").submit(msg("and now?", session_id=session["id"]))
        assert result.response == "Final answer."
        summary_request, answer_request = provider.requests
        assert summary_request.system == SUMMARY_SYSTEM and "old question 0" in summary_request.messages[0].text
        first = answer_request.messages[0]
        assert len(answer_request.messages) == 1  # summary folded into the latest user turn
        assert isinstance(first.content[0], TextBlock) and first.content[0].text.startswith(SUMMARY_PREFIX)
        assert "six times" in first.content[0].text and first.content[-1].text == "and now?"
        assert answer_request.system.startswith("You are an Oxios agent")  # the system prompt is kept


async def test_old_tool_results_are_elided_within_a_long_turn(oxios_kernel_factory: Any) -> None:
    provider = ScriptedProvider(context_window=6000)
    async with oxios_kernel_factory(plugins=[provider.plugin()], config=provider.config()) as kernel:
        (kernel.paths.workspace / "big.txt").write_text("data " * 1200)  # ~1500 tokens per read
        for _ in range(4):
            provider.enqueue_tool_call("read", {"path": "big.txt"})
        provider.enqueue_text("read it four times")
        result = await kernel.service("gateway").submit(msg("read big.txt again and again"))
        assert result.response == "read it four times"
        last = provider.requests[-1]
        contents = [r.content for r in tool_results(last)]
        assert len(contents) == 4
        assert contents[-1].startswith("data data")  # the most recent result stays whole
        assert any(c.startswith("[output elided") for c in contents[:-1])


async def test_no_provider_is_a_clear_error(oxios_kernel_factory: Any) -> None:
    async with oxios_kernel_factory() as kernel:
        result = await kernel.service("gateway").submit(msg("hello"))
        assert result.exit_code == 1 and "No LLM provider is usable" in result.error
        assert [m["role"] for m in kernel.service("sessions").messages(result.session_id)] == ["user", "assistant"]


async def test_provider_failure_fails_the_agent_with_its_reason(scripted_kernel: Any, scripted_provider: Any) -> None:
    from oxios.providers import ProviderAuthError

    scripted_provider.enqueue_error(ProviderAuthError("the API key was rejected (401)"))
    result = await scripted_kernel.service("gateway").submit(msg("hello"))
    assert result.exit_code == 1 and "the API key was rejected" in result.error
    assert scripted_kernel.service("agents").get(result.agent_id)["status"] == "failed"
