"""The Discord channel over the wire: discord.py's real gateway and HTTP clients against a local fake Discord."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import oxios_plugin_discord
import pytest
from fake_discord import CHANNEL, OTHER_CHANNEL, THREAD_A, THREAD_B, TOKEN, FakeDiscord

from oxios import pairing
from oxios_hookspecs import Action, Attachment, OutgoingMessage

OWNER = 111
STRANGER = 666


@pytest.fixture
async def discord_api():
    api = FakeDiscord()
    await api.start()
    yield api
    await api.stop()


@pytest.fixture
def start_kernel(oxios_kernel_factory, scripted_provider, discord_api):
    def start(**extra: Any):
        settings = {
            "token": TOKEN,
            "api_base": discord_api.api_base,
            "gateway_url": discord_api.gateway_url,
            "allowed_users": [OWNER],
            "allowed_channels": [CHANNEL],
            "edit_interval_secs": 0.0,
            "guild_ready_timeout_secs": 0.1,
            "max_file_mb": 0.001,
            **extra,
        }
        config = scripted_provider.config({"channels": {"discord": settings}})
        return oxios_kernel_factory(plugins=[scripted_provider.plugin(), oxios_plugin_discord], config=config, channels=True)

    return start


async def running(kernel, api: FakeDiscord) -> Any:
    channel = kernel.channels["discord"]
    await api.wait_for(lambda: channel.state == "running", timeout=15)
    return channel


async def next_event(sub: Any, timeout: float = 10) -> Any:
    event = await sub.get(timeout=timeout)
    assert event is not None, f"no event within {timeout}s"
    return event


def tool_results(provider: Any) -> list[str]:
    return [b.content for m in provider.requests[-1].messages for b in m.content if hasattr(b, "tool_use_id")]


async def test_authorized_message_is_answered_with_streamed_edits(start_kernel, discord_api, scripted_provider) -> None:
    scripted_provider.enqueue_text("Hello from **Oxios**; this answer streams in as edits of one message.")
    async with start_kernel() as kernel:
        channel = await running(kernel, discord_api)
        await discord_api.user_message(CHANNEL, OWNER, "hi")
        await discord_api.wait_for(
            lambda: any(t.startswith("Hello from **Oxios**") and "▌" not in t for t in discord_api.texts(CHANNEL))
        )
        posts = discord_api.sent("POST")
        assert len(posts) == 1 and len(discord_api.sent("PATCH")) >= 2
        assert posts[0]["allowed_mentions"] == {"parse": []}  # an agent's "@everyone" pings nobody
        assert kernel.status()["channels"]["discord"] == {"state": "running", "detail": "oxios"}
        session = channel.sessions.current(CHANNEL)
        assert [m["role"] for m in kernel.services["sessions"].messages(session)] == ["user", "assistant"]


async def test_unauthorized_senders_and_channels_get_nothing(start_kernel, discord_api, scripted_provider) -> None:
    async with start_kernel() as kernel:
        await running(kernel, discord_api)
        events = kernel.subscribe(types={"channel.unauthorized"})
        await discord_api.user_message(CHANNEL, STRANGER, "let me in")
        # Each event is published once the channel has done all it will for that message.
        assert (await next_event(events)).data == {"channel": "discord", "user_id": str(STRANGER), "where": CHANNEL}
        await discord_api.user_message(OTHER_CHANNEL, OWNER, "wrong channel")  # owner, but not an allowed channel
        assert (await next_event(events)).data == {
            "channel": "discord",
            "user_id": str(OWNER),
            "where": f"channel {OTHER_CHANNEL}",
        }
        assert discord_api.sent("POST") == [] and scripted_provider.requests == []
        entries = kernel.services["audit"].entries(action="channel.unauthorized", newest_first=False)
        assert [e["actor"] for e in entries] == [f"discord:{STRANGER}", f"discord:{OWNER}"]


async def test_a_guild_not_on_the_list_gets_nothing(start_kernel, discord_api, scripted_provider) -> None:
    async with start_kernel(allowed_guilds=["999"], allowed_channels=[]) as kernel:
        await running(kernel, discord_api)
        events = kernel.subscribe(types={"channel.unauthorized"})
        await discord_api.user_message(CHANNEL, OWNER, "hello from the wrong guild")
        assert (await next_event(events)).data["user_id"] == str(OWNER)
        assert discord_api.sent("POST") == [] and scripted_provider.requests == []


async def test_dm_pairing(start_kernel, discord_api, scripted_provider) -> None:
    scripted_provider.enqueue_text("paired and answering")
    async with start_kernel(pairing=True) as kernel:
        await running(kernel, discord_api)
        await discord_api.user_message("8001", STRANGER, "hello?")  # a DM channel
        sent = await discord_api.wait_for(lambda: discord_api.texts("8001"))
        assert "oxios pairing approve" in sent[0]
        code = sent[0].rstrip("`").rsplit(" ", 1)[-1]
        pairing.approve(kernel.state, code)
        await discord_api.user_message("8001", STRANGER, "now?")
        await discord_api.wait_for(lambda: "paired and answering" in discord_api.texts("8001"))


async def test_pairing_codes_are_never_posted_in_a_guild_channel(start_kernel, discord_api, scripted_provider) -> None:
    async with start_kernel(pairing=True) as kernel:
        await running(kernel, discord_api)
        events = kernel.subscribe(types={"channel.unauthorized"})
        await discord_api.user_message(CHANNEL, STRANGER + 1, "hello?")
        await next_event(events)
        assert discord_api.sent("POST") == [] and pairing.pending(kernel.state) == []


async def test_threads_are_separate_sessions_that_run_side_by_side(start_kernel, discord_api, scripted_provider) -> None:
    scripted_provider.enqueue_hang("working on A")
    scripted_provider.enqueue_text("B answered")
    async with start_kernel() as kernel:
        channel = await running(kernel, discord_api)
        await discord_api.user_message(THREAD_A, OWNER, "slow one")
        await discord_api.wait_for(lambda: len(scripted_provider.requests) == 1)
        await discord_api.user_message(THREAD_B, OWNER, "quick one")
        await discord_api.wait_for(lambda: "B answered" in discord_api.texts(THREAD_B))
        a, b = channel.sessions.current(THREAD_A), channel.sessions.current(THREAD_B)
        assert a and b and a != b
        await discord_api.user_message(THREAD_A, OWNER, "/cancel")
        await discord_api.wait_for(lambda: "Cancelled." in discord_api.texts(THREAD_A))


async def test_commands(start_kernel, discord_api, scripted_provider) -> None:
    scripted_provider.enqueue_text("one").enqueue_text("two")
    async with start_kernel() as kernel:
        channel = await running(kernel, discord_api)
        await discord_api.user_message(CHANNEL, OWNER, "first")
        await discord_api.wait_for(lambda: "one" in discord_api.texts(CHANNEL))
        first = channel.sessions.current(CHANNEL)
        await discord_api.user_message(CHANNEL, OWNER, "/new planning")
        await discord_api.wait_for(lambda: any("New session started" in t for t in discord_api.texts(CHANNEL)))
        await discord_api.user_message(CHANNEL, OWNER, "second")
        await discord_api.wait_for(lambda: "two" in discord_api.texts(CHANNEL))
        await discord_api.user_message(CHANNEL, OWNER, f"/switch {first[:5]}")
        await discord_api.wait_for(lambda: any(t.startswith("Switched to session") for t in discord_api.texts(CHANNEL)))
        assert channel.sessions.current(CHANNEL) == first
        await discord_api.user_message(CHANNEL, OWNER, "/sessions")
        await discord_api.wait_for(lambda: any("planning" in t for t in discord_api.texts(CHANNEL)))
        await discord_api.user_message(CHANNEL, OWNER, "/help")
        await discord_api.wait_for(lambda: any("/persona NAME" in t for t in discord_api.texts(CHANNEL)))
        await discord_api.user_message(CHANNEL, OWNER, "/status")
        await discord_api.wait_for(lambda: any(t.startswith("Oxios ") for t in discord_api.texts(CHANNEL)))


async def test_long_reply_split_at_2000_without_breaking_code(start_kernel, discord_api, scripted_provider) -> None:
    body = "\n".join(f"fn step_{i}() {{ /* some work */ }}" for i in range(200))
    scripted_provider.enqueue_text(f"Plan:\n\n```rust\n{body}\n```\nEnd.")
    async with start_kernel() as kernel:
        await running(kernel, discord_api)
        await discord_api.user_message(CHANNEL, OWNER, "long please")
        texts = await discord_api.wait_for(
            lambda: discord_api.texts(CHANNEL) if any(t.endswith("End.") for t in discord_api.texts(CHANNEL)) else None
        )
        assert len(texts) >= 3
        assert all(len(t) <= 2000 and t.count("```") % 2 == 0 for t in texts)


async def test_rate_limit_and_server_errors_are_retried(start_kernel, discord_api, scripted_provider) -> None:
    scripted_provider.enqueue_text("after the limit")
    async with start_kernel() as kernel:
        await running(kernel, discord_api)
        discord_api.fail_next("create_message", retry_after=0.3)
        discord_api.fail_next("edit_message", status=503)
        await discord_api.user_message(CHANNEL, OWNER, "hi")
        await discord_api.wait_for(lambda: "after the limit" in discord_api.texts(CHANNEL), timeout=15)
        failed = [v for v, _, _ in discord_api.calls if v in ("429", "503")]
        assert failed == ["429", "503"]


async def test_files_in_and_out(start_kernel, discord_api, scripted_provider) -> None:
    scripted_provider.enqueue_text("read it")
    async with start_kernel() as kernel:
        channel = await running(kernel, discord_api)
        big = discord_api.add_file("big.bin", b"x", declared_size=10_000_000)
        await discord_api.user_message(CHANNEL, OWNER, "", attachments=[big])
        await discord_api.wait_for(lambda: any("too large" in t for t in discord_api.texts(CHANNEL)))
        small = discord_api.add_file("notes.txt", b"hello")
        await discord_api.user_message(CHANNEL, OWNER, "see file", attachments=[small])
        await discord_api.wait_for(lambda: "read it" in discord_api.texts(CHANNEL))
        assert len(scripted_provider.requests) == 1  # the refused file never reached an agent
        assert f"uploads/discord/{CHANNEL}/notes.txt" in scripted_provider.requests[0].messages[-1].text
        assert (kernel.paths.workspace / "uploads" / "discord" / CHANNEL / "notes.txt").read_bytes() == b"hello"
        (kernel.paths.workspace / "out.txt").write_text("result")
        await channel.send(
            OutgoingMessage(
                content="Here you go",
                channel="discord",
                chat_id=CHANNEL,
                attachments=[Attachment(name="out.txt", path="out.txt")],
            )
        )
        posted = [b for b in discord_api.sent("POST") if b["files"]]
        assert posted and posted[0]["files"] == {"out.txt": b"result"}
        with pytest.raises(PermissionError):
            bad = [Attachment(name="passwd", path="/etc/passwd")]
            await channel.send(OutgoingMessage(content="x", channel="discord", chat_id=CHANNEL, attachments=bad))


async def test_agent_sends_a_file_back_with_the_tool(start_kernel, discord_api, scripted_provider) -> None:
    scripted_provider.enqueue_tool_call("write", {"path": "plot.csv", "content": "x,y\n1,2\n"})
    scripted_provider.enqueue_tool_call("discord_send", {"path": "plot.csv"})
    scripted_provider.enqueue_tool_call("discord_send", {"text": "leak", "chat": OTHER_CHANNEL})
    scripted_provider.enqueue_text("the csv is in the channel")
    async with start_kernel() as kernel:
        await running(kernel, discord_api)
        await discord_api.user_message(THREAD_A, OWNER, "make a csv and send it")
        await discord_api.wait_for(lambda: "the csv is in the channel" in discord_api.texts(THREAD_A))
        files = [b["files"] for v, path, b in discord_api.calls if v == "POST" and b["files"]]
        assert files == [{"plot.csv": b"x,y\n1,2\n"}]
        [post] = [p for v, p, b in discord_api.calls if v == "POST" and b["files"]]
        assert post == f"/channels/{THREAD_A}/messages"  # into the thread the conversation came from
        sent, leak = tool_results(scripted_provider)[1:]
        assert sent == f"delivered to discord chat {THREAD_A} (1 message)"
        assert leak.startswith(f"not delivered: {OTHER_CHANNEL} is not a chat Oxios talks in")
        assert discord_api.texts(OTHER_CHANNEL) == []


async def test_proactive_delivery(start_kernel, discord_api) -> None:
    async with start_kernel() as kernel:
        channel = await running(kernel, discord_api)
        ids = await channel.send(OutgoingMessage(content="Morning report", channel="discord", chat_id=CHANNEL))
        assert ids and "Morning report" in discord_api.texts(CHANNEL)
        with pytest.raises(ValueError):
            await channel.send(OutgoingMessage(content="x", channel="discord"))
        discord_api.missing_channels.add("7999")
        import discord

        with pytest.raises(discord.NotFound):  # delivery failed: the caller (cron ...) records why
            await channel.send(OutgoingMessage(content="anyone?", channel="discord", chat_id="7999"))


async def test_reconnects_after_the_gateway_restarts(start_kernel, discord_api, scripted_provider) -> None:
    scripted_provider.enqueue_text("back again")
    async with start_kernel() as kernel:
        await running(kernel, discord_api)
        await discord_api.stop()
        await discord_api.start()
        await discord_api.connected(timeout=30)
        await discord_api.wait_for(lambda: discord_api.identifies + discord_api.resumes >= 2, timeout=30)
        await discord_api.user_message(CHANNEL, OWNER, "still there?")
        await discord_api.wait_for(lambda: "back again" in discord_api.texts(CHANNEL), timeout=15)


async def test_approval_buttons(start_kernel, discord_api, scripted_provider) -> None:
    scripted_provider.enqueue_text("ready")
    async with start_kernel() as kernel:
        channel = await running(kernel, discord_api)
        approvals = kernel.services.get("approvals")
        if approvals is None:
            pytest.skip("the approvals service is not part of this build")
        await discord_api.user_message(CHANNEL, OWNER, "start")
        await discord_api.wait_for(lambda: "ready" in discord_api.texts(CHANNEL))
        ctx = kernel.context(agent_id="agent-9", session_id=channel.sessions.current(CHANNEL))
        waiter = asyncio.create_task(approvals.request(Action(kind="exec", argv=["git", "push"]), ctx, "needs a human"))
        offer = await discord_api.wait_for(lambda: [m for m in discord_api.messages.values() if m["components"]])
        buttons = offer[0]["components"][0]["components"]
        assert [b["label"] for b in buttons] == ["Approve", "Reject"]
        await discord_api.click(STRANGER, offer[0], buttons[1]["custom_id"])  # not allowed to answer
        refusal = await discord_api.wait_for(lambda: [b for v, _, b in discord_api.calls if v == "CALLBACK"])
        assert refusal[0]["data"]["flags"] == 64 and "not allowed" in refusal[0]["data"]["content"]  # ephemeral
        assert not waiter.done()
        await discord_api.click(OWNER, offer[0], buttons[1]["custom_id"])
        verdict = await asyncio.wait_for(waiter, 10)
        assert getattr(verdict, "verdict", verdict) in ("deny", False)
        updated = await discord_api.wait_for(lambda: [m for m in discord_api.messages.values() if "Rejected by" in m["content"]])
        assert updated[0]["components"] == []  # buttons removed once answered
        await discord_api.click(OWNER, offer[0], buttons[0]["custom_id"])  # a late press on an old client
        late = await discord_api.wait_for(lambda: [b for v, _, b in discord_api.calls if v == "CALLBACK"][2:])
        assert "already answered" in late[0]["data"]["content"]


async def test_interview_questions_come_with_buttons_and_the_answers_flow_back(
    start_kernel, discord_api, scripted_provider
) -> None:
    questions = [
        {"text": "Which language?", "kind": "single", "options": ["Python", "Rust"]},
        {"text": "Which targets?", "kind": "multi", "options": ["linux", "mac"]},
        {"text": "Ship today?", "kind": "yes_no"},
    ]
    vague = {"goal": 0.3, "constraints": 0.2, "criteria": 0.1, "questions": questions, "assumptions": []}
    follow_up = {**vague, "questions": [{"text": "Anything else?", "kind": "free"}]}
    scripted_provider.enqueue_text(json.dumps(vague)).enqueue_text(json.dumps(follow_up))
    async with start_kernel() as kernel:
        await running(kernel, discord_api)
        await discord_api.user_message(THREAD_B, OWNER, "#spec build the tool")
        forms = await discord_api.wait_for(
            lambda: (found := [m for m in discord_api.messages.values() if m["components"]]) and len(found) == 3 and found
        )
        single, multi, yes_no = forms
        assert [m["content"] for m in forms] == [
            "1. Which language?",
            "2. Which targets?\n(pick any, then Done)",
            "3. Ship today?",
        ]

        def button(message: dict[str, Any], label: str) -> str:
            [custom_id] = [b["custom_id"] for row in message["components"] for b in row["components"] if b["label"] == label]
            return custom_id

        def callbacks() -> list[dict[str, Any]]:
            return [b for v, _, b in discord_api.calls if v == "CALLBACK"]

        await discord_api.click(STRANGER, single, button(single, "Rust"))
        await discord_api.wait_for(lambda: callbacks())
        refusal = callbacks()[0]["data"]
        assert refusal["content"] == "You are not allowed to answer this." and refusal["flags"] == 64  # only they see it
        await discord_api.click(OWNER, single, button(single, "Rust"))
        await discord_api.wait_for(lambda: single["content"] == "1. Which language?\n→ Rust" and not single["components"])
        await discord_api.click(OWNER, multi, button(multi, "mac"))
        await discord_api.wait_for(lambda: any(b["label"] == "✓ mac" for row in multi["components"] for b in row["components"]))
        await discord_api.click(OWNER, multi, button(multi, "Done"))
        await discord_api.wait_for(lambda: multi["content"] == "2. Which targets?\n→ mac")
        assert len(scripted_provider.requests) == 1
        await discord_api.click(OWNER, yes_no, button(yes_no, "No"))  # the last answer sends them all
        await discord_api.wait_for(lambda: any("1. Anything else?" in t for t in discord_api.texts(THREAD_B)))
        told = "\n".join(m.text for m in scripted_provider.requests[1].messages)
        for line in ("1. Which language? -> Rust", "2. Which targets? -> mac", "3. Ship today? -> No"):
            assert line in told


async def test_a_missing_message_content_intent_is_an_error_not_a_retry_loop(start_kernel, discord_api) -> None:
    discord_api.identify_close_code = 4014
    async with start_kernel() as kernel:
        channel = kernel.channels["discord"]
        await discord_api.wait_for(lambda: channel.state == "error", timeout=15)
        assert "Message Content intent" in kernel.status()["channels"]["discord"]["detail"]
        assert discord_api.identifies == 1 and kernel.status()["status"] == "running"


async def test_unreachable_discord_never_blocks_the_daemon(oxios_kernel_factory) -> None:
    settings = {"token": TOKEN, "api_base": "http://127.0.0.1:9/api/v10", "gateway_url": "ws://127.0.0.1:9/gateway"}
    async with oxios_kernel_factory(
        plugins=[oxios_plugin_discord], config={"channels": {"discord": settings}}, channels=True
    ) as kernel:
        channel = kernel.channels["discord"]
        assert kernel.status()["status"] == "running"
        for _ in range(500):
            if channel.detail:
                break
            await asyncio.sleep(0.01)
        assert channel.state == "connecting" and "ClientConnectorError" in channel.detail
        with pytest.raises(RuntimeError, match="not connected"):
            await channel.send(OutgoingMessage(content="x", channel="discord", chat_id=CHANNEL))


async def test_bad_settings_are_reported_not_fatal(oxios_kernel_factory) -> None:
    config = {"channels": {"discord": {"token": "x", "allowed_users": "everyone", "colour": "blue"}}}
    async with oxios_kernel_factory(plugins=[oxios_plugin_discord], config=config, channels=True) as kernel:
        assert "discord" not in kernel.channels
        failure = [f for f in kernel.plugins.failures if "channels.discord" in f.error]
        assert failure and kernel.status()["status"] == "running"


def button_id(message: dict[str, Any], label: str) -> str:
    [custom_id] = [b["custom_id"] for row in message["components"] for b in row["components"] if b["label"] == label]
    return custom_id


async def test_approval_buttons_work_after_the_client_restarts(start_kernel, discord_api, scripted_provider) -> None:
    """A fresh client holds nothing in memory: the press is resolved from the button's custom_id alone."""
    scripted_provider.enqueue_text("ready")
    async with start_kernel() as kernel:
        channel = await running(kernel, discord_api)
        approvals = kernel.services["approvals"]
        await discord_api.user_message(CHANNEL, OWNER, "start")
        await discord_api.wait_for(lambda: "ready" in discord_api.texts(CHANNEL))
        ctx = kernel.context(agent_id="agent-9", session_id=channel.sessions.current(CHANNEL))
        waiter = asyncio.create_task(approvals.request(Action(kind="exec", argv=["git", "push"]), ctx, "needs a human"))
        [offer] = await discord_api.wait_for(lambda: [m for m in discord_api.messages.values() if m["components"]])
        old_client = channel.client
        await channel.stop()
        await channel.start(channel.gateway)
        await running(kernel, discord_api)
        assert channel.client is not old_client and discord_api.identifies == 2
        await discord_api.click(OWNER, offer, button_id(offer, "Approve"))
        verdict = await asyncio.wait_for(waiter, 10)
        assert verdict.verdict == "allow" and "discord:111" in verdict.reason
        await discord_api.wait_for(lambda: "Approved by user111" in offer["content"] and offer["components"] == [])


async def test_buttons_after_a_daemon_restart(start_kernel, discord_api, scripted_provider) -> None:
    """Interview answers survive a restart (forms are stored); an approval nobody waits for any more says so."""
    questions = [
        {"text": "Which language?", "kind": "single", "options": ["Python", "Rust"]},
        {"text": "Ship today?", "kind": "yes_no"},
    ]
    vague = {"goal": 0.3, "constraints": 0.2, "criteria": 0.1, "questions": questions, "assumptions": []}
    scripted_provider.enqueue_text(json.dumps(vague))
    async with start_kernel() as kernel:
        channel = await running(kernel, discord_api)
        await discord_api.user_message(CHANNEL, OWNER, "#spec build the tool")
        single, _ = await discord_api.wait_for(
            lambda: (found := [m for m in discord_api.messages.values() if m["components"]]) and len(found) == 2 and found
        )
        ctx = kernel.context(agent_id="agent-9", session_id=channel.sessions.current(CHANNEL))
        waiter = asyncio.create_task(kernel.services["approvals"].request(Action(kind="exec", argv=["git", "push"]), ctx))
        [offer] = await discord_api.wait_for(lambda: [m for m in discord_api.messages.values() if "Approval" in m["content"]])
        waiter.cancel()  # the daemon goes down while the agent waits
        await asyncio.gather(waiter, return_exceptions=True)

    def callbacks() -> list[dict[str, Any]]:
        return [b for v, _, b in discord_api.calls if v == "CALLBACK"]

    async with start_kernel() as kernel:
        await running(kernel, discord_api)
        await discord_api.click(OWNER, single, button_id(single, "Rust"))
        await discord_api.wait_for(lambda: single["content"] == "1. Which language?\n→ Rust" and not single["components"])
        await discord_api.click(OWNER, offer, button_id(offer, "Approve"))
        [_, late] = await discord_api.wait_for(lambda: len(callbacks()) == 2 and callbacks())
        assert late["data"]["flags"] == 64 and "already answered or has expired" in late["data"]["content"]
        assert kernel.services["approvals"].get(offer_id(offer))["status"] == "cancelled"
        await discord_api.click(OWNER, offer, "oxios:approve:../../etc")  # a forged id matches no button
        [*_, forged] = await discord_api.wait_for(lambda: len(callbacks()) == 3 and callbacks())
        assert forged["data"]["content"] == "Unknown button."
    assert len(scripted_provider.requests) == 1  # one answer of two: nothing went to the agent yet


def offer_id(offer: dict[str, Any]) -> str:
    return button_id(offer, "Approve").rsplit(":", 1)[-1]
