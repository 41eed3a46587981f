"""The Telegram channel over the wire: python-telegram-bot's real HTTP client against a local fake Bot API."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import sys
from typing import Any

import oxios_plugin_telegram
import pytest
from fake_bot_api import TOKEN, FakeBotApi

from oxios import pairing
from oxios_hookspecs import Attachment, OutgoingMessage

OWNER = 111
STRANGER = 666
CHAT = 5000


@pytest.fixture
async def bot_api():
    api = FakeBotApi()
    await api.start()
    yield api
    await api.stop()


def telegram_config(api: FakeBotApi, **extra: Any) -> dict[str, Any]:
    settings = {
        "token": TOKEN,
        "base_url": api.base_url,
        "base_file_url": api.base_file_url,
        "allowed_users": [OWNER],
        "edit_interval_secs": 0.0,
        "poll_timeout_secs": 1,
        "max_file_mb": 0.001,
    }
    settings.update(extra)
    return {"channels": {"telegram": settings}}


@pytest.fixture
def start_kernel(oxios_kernel_factory, scripted_provider, bot_api):
    def start(config: dict[str, Any] | None = None, **extra: Any):
        tree = scripted_provider.config({**telegram_config(bot_api, **extra), **(config or {})})
        return oxios_kernel_factory(plugins=[scripted_provider.plugin(), oxios_plugin_telegram], config=tree, channels=True)

    return start


async def running(kernel) -> Any:
    channel = kernel.channels["telegram"]
    for _ in range(500):
        if channel.state == "running":
            return channel
        await asyncio.sleep(0.01)
    raise AssertionError(f"channel did not connect: {channel.status()}")


async def next_event(sub: Any, timeout: float = 10) -> Any:
    event = await sub.get(timeout=timeout)
    assert event is not None, f"no event within {timeout}s"
    return event


def message_in(chat_id: int, message_id: int = 1, text: str = "x") -> dict[str, Any]:
    """A message the bot can see in another chat (for a button press from there)."""
    return {"message_id": message_id, "date": 0, "chat": {"id": chat_id, "type": "private"}, "text": text}


def with_buttons(api: FakeBotApi, chat_id: int) -> list[dict[str, Any]]:
    """The bot's messages in a chat that still carry an inline keyboard, oldest first."""
    return [m for (c, _), m in sorted(api.messages.items(), key=lambda kv: kv[0][1]) if c == chat_id and m.get("reply_markup")]


# -- registration and the happy path ------------------------------------------------------


async def test_hook_registers_the_channel_only_when_configured(oxios_kernel_factory) -> None:
    async with oxios_kernel_factory(plugins=[oxios_plugin_telegram], channels=True) as kernel:
        assert "telegram" not in kernel.channels and kernel.tools.get("telegram_send") is None
    async with oxios_kernel_factory(
        plugins=[oxios_plugin_telegram], config={"channels": {"telegram": {"allowed_users": [1]}}}, channels=True
    ) as kernel:
        assert "telegram" not in kernel.channels  # no token: warned and skipped, never fatal
        assert kernel.tools.get("telegram_send").spec.tier == "network"


async def test_authorized_message_is_answered_with_streamed_edits(start_kernel, bot_api, scripted_provider) -> None:
    scripted_provider.enqueue_text("Hello **there**, this reply arrives in pieces and is edited as it streams.")
    async with start_kernel() as kernel:
        channel = await running(kernel)
        assert kernel.status()["channels"]["telegram"] == {"state": "running", "detail": "@oxios_test_bot"}
        bot_api.user_message(CHAT, OWNER, "hi oxios")
        final = await bot_api.wait_for(lambda: [t for t in bot_api.chat_text(CHAT) if t.endswith("as it streams.")])
        assert final[0].startswith("Hello <b>there</b>") and "▌" not in final[0]
        assert len(bot_api.sent("sendMessage", CHAT)) == 1  # one message ...
        assert len(bot_api.sent("editMessageText", CHAT)) >= 2  # ... edited as tokens arrived
        session_id = channel.sessions.current(str(CHAT))
        history = kernel.services["sessions"].messages(session_id)
        assert [m["role"] for m in history][-2:] == ["user", "assistant"]
        assert scripted_provider.requests[0].messages[-1].text == "hi oxios"


# -- authorization -----------------------------------------------------------------------


async def test_unauthorized_sender_gets_nothing_and_is_recorded(start_kernel, bot_api, scripted_provider) -> None:
    async with start_kernel() as kernel:
        await running(kernel)
        events = kernel.subscribe(types={"channel.unauthorized"})
        bot_api.user_message(CHAT + 1, STRANGER, "let me in")
        # Published once the channel has done all it will for that message.
        event = await next_event(events)
        assert event.data == {"channel": "telegram", "user_id": str(STRANGER), "where": str(CHAT + 1)}
        assert bot_api.sent("sendMessage", CHAT + 1) == []
        assert scripted_provider.requests == []  # never reached an agent
        [entry] = kernel.services["audit"].entries(action="channel.unauthorized")
        assert entry["actor"] == f"telegram:{STRANGER}" and not entry["allowed"]


async def test_refusal_message_is_one_line_for_strangers(start_kernel, bot_api, scripted_provider) -> None:
    async with start_kernel(refusal_message="This is a private assistant.") as kernel:
        await running(kernel)
        events = kernel.subscribe(types={"channel.unauthorized"})
        bot_api.user_message(CHAT + 1, STRANGER, "/help")  # commands are no way around it
        await next_event(events)
        assert bot_api.chat_text(CHAT + 1) == ["This is a private assistant."]
        assert scripted_provider.requests == []


async def test_dm_pairing(start_kernel, bot_api, scripted_provider) -> None:
    scripted_provider.enqueue_text("welcome aboard")
    async with start_kernel(pairing=True) as kernel:
        await running(kernel)
        bot_api.user_message(CHAT + 2, STRANGER, "hello?")
        sent = await bot_api.wait_for(lambda: bot_api.sent("sendMessage", CHAT + 2))
        assert "oxios pairing approve" in sent[0]["text"]
        code = sent[0]["text"].rsplit(" ", 1)[-1]
        pairing.approve(kernel.state, code)
        bot_api.user_message(CHAT + 2, STRANGER, "now?")
        await bot_api.wait_for(lambda: any("welcome aboard" in t for t in bot_api.chat_text(CHAT + 2)))


async def test_pairing_codes_are_never_posted_in_a_group(start_kernel, bot_api, scripted_provider) -> None:
    async with start_kernel(pairing=True) as kernel:
        await running(kernel)
        events = kernel.subscribe(types={"channel.unauthorized"})
        bot_api.user_message(-100777, STRANGER, "hello bot", chat_type="supergroup")
        await next_event(events)
        assert bot_api.sent("sendMessage", -100777) == []  # everybody in the group would see the code
        assert pairing.pending(kernel.state) == []


# -- sessions and commands -----------------------------------------------------------------


async def test_commands_new_sessions_switch_help(start_kernel, bot_api, scripted_provider) -> None:
    scripted_provider.enqueue_text("first answer").enqueue_text("second answer")
    async with start_kernel() as kernel:
        channel = await running(kernel)
        bot_api.user_message(CHAT, OWNER, "one")
        await bot_api.wait_for(lambda: any("first answer" in t for t in bot_api.chat_text(CHAT)))
        first = channel.sessions.current(str(CHAT))
        bot_api.user_message(CHAT, OWNER, "/new research")
        await bot_api.wait_for(lambda: any("New session started: research" in t for t in bot_api.chat_text(CHAT)))
        bot_api.user_message(CHAT, OWNER, "two")
        await bot_api.wait_for(lambda: any("second answer" in t for t in bot_api.chat_text(CHAT)))
        second = channel.sessions.current(str(CHAT))
        assert second != first
        bot_api.user_message(CHAT, OWNER, "/sessions")
        listing = await bot_api.wait_for(lambda: [t for t in bot_api.chat_text(CHAT) if first[:8] in t and second[:8] in t])
        assert f"* {second[:8]} research" in listing[0]
        bot_api.user_message(CHAT, OWNER, f"/switch {first[:6]}")
        await bot_api.wait_for(lambda: any(f"Switched to session {first[:8]}" in t for t in bot_api.chat_text(CHAT)))
        assert channel.sessions.current(str(CHAT)) == first
        bot_api.user_message(CHAT, OWNER, "/switch zzzz")
        await bot_api.wait_for(lambda: any("no session of this chat starts with" in t for t in bot_api.chat_text(CHAT)))
        bot_api.user_message(CHAT, OWNER, "/help")
        await bot_api.wait_for(lambda: any("/switch ID" in t for t in bot_api.chat_text(CHAT)))
        bot_api.user_message(CHAT, OWNER, "/status@oxios_test_bot")
        await bot_api.wait_for(lambda: any(t.startswith("Oxios ") and "running" in t for t in bot_api.chat_text(CHAT)))


async def test_persona_command_changes_who_answers(start_kernel, bot_api, scripted_provider) -> None:
    scripted_provider.enqueue_text("reviewed")
    async with start_kernel() as kernel:
        channel = await running(kernel)
        bot_api.user_message(CHAT, OWNER, "/persona Nobody")
        await bot_api.wait_for(lambda: any("No persona named 'Nobody'" in t for t in bot_api.chat_text(CHAT)))
        bot_api.user_message(CHAT, OWNER, "/persona Review")
        await bot_api.wait_for(lambda: "Persona set to Review." in bot_api.chat_text(CHAT))
        assert channel.sessions.persona(str(CHAT)) == "Review"
        bot_api.user_message(CHAT, OWNER, "look at my diff")
        await bot_api.wait_for(lambda: "reviewed" in bot_api.chat_text(CHAT))
        assert "You are Review" in scripted_provider.requests[0].system


async def test_forum_topics_are_separate_sessions_that_run_side_by_side(start_kernel, bot_api, scripted_provider) -> None:
    scripted_provider.enqueue_hang("thinking about A")  # topic A's answer never finishes by itself
    scripted_provider.enqueue_text("B is done")
    async with start_kernel() as kernel:
        channel = await running(kernel)
        bot_api.user_message(CHAT, OWNER, "slow question", thread_id=7)
        await bot_api.wait_for(lambda: len(scripted_provider.requests) == 1)
        bot_api.user_message(CHAT, OWNER, "quick question", thread_id=8)
        # Topic B is answered while topic A is still busy.
        await bot_api.wait_for(lambda: any("B is done" in t for t in bot_api.chat_text(CHAT, 8)))
        a, b = channel.sessions.current(f"{CHAT}/7"), channel.sessions.current(f"{CHAT}/8")
        assert a and b and a != b
        bot_api.user_message(CHAT, OWNER, "/cancel", thread_id=7)
        await bot_api.wait_for(lambda: any("Cancelled." in t for t in bot_api.chat_text(CHAT, 7)))
        await bot_api.wait_for(lambda: any("(cancelled)" in t for t in bot_api.chat_text(CHAT, 7)))
        roles = [m["role"] for m in kernel.services["sessions"].messages(a)]
        assert roles[0] == "user" and len(roles) == 2  # the cancelled turn is on record


# -- streaming and formatting -----------------------------------------------------------------


async def test_long_reply_is_split_without_breaking_code_blocks(start_kernel, bot_api, scripted_provider) -> None:
    code = "\n".join(f"print({i})  # a line of code that takes room" for i in range(150))
    scripted_provider.enqueue_text("Here is the script:\n\n```python\n" + code + "\n```\n\nDone.")
    async with start_kernel() as kernel:
        await running(kernel)
        bot_api.user_message(CHAT, OWNER, "write a long script")
        texts = await bot_api.wait_for(
            lambda: [t for t in bot_api.chat_text(CHAT) if t.endswith("Done.")] and bot_api.chat_text(CHAT)
        )
        assert len(texts) >= 2
        for text in texts:
            assert text.count("<pre>") == text.count("</pre>")  # every chunk renders on its own
        assert "print(149)" in "".join(texts) and "print(0)" in "".join(texts)


async def test_rejected_formatting_falls_back_to_plain_text(start_kernel, bot_api) -> None:
    rejected = "Bad Request: can't parse entities: unsupported start tag at byte offset 9"
    async with start_kernel() as kernel:
        channel = await running(kernel)
        bot_api.fail_next("sendMessage", 400, description=rejected)
        await channel.send(OutgoingMessage(content="Morning: *news*", channel="telegram", chat_id=str(CHAT)))
        assert bot_api.chat_text(CHAT) == ["Morning: *news*"]  # the Markdown as written, not lost
        first, second = bot_api.calls[-2:]
        assert first[0] == "sendMessage!400" and first[1]["parse_mode"] == "HTML"
        assert second[0] == "sendMessage" and "parse_mode" not in second[1]


async def test_a_rate_limited_edit_never_holds_up_the_answer(start_kernel, bot_api, scripted_provider) -> None:
    """A 429 on a live edit pauses the edits (retry_after 30 s), not the agent; the final text still arrives."""
    scripted_provider.enqueue_text("Streaming along nicely while Telegram asks the bot to slow down a bit.")
    async with start_kernel() as kernel:
        channel = await running(kernel)
        bot_api.fail_next("editMessageText", 429, retry_after=30)
        bot_api.user_message(CHAT, OWNER, "go")
        await bot_api.wait_for(lambda: any(t.endswith("slow down a bit.") for t in bot_api.chat_text(CHAT)))
        edits = [m for m, _ in bot_api.calls if m.startswith("editMessageText")]
        assert edits[0] == "editMessageText!429" and edits[1:] == ["editMessageText"]  # paused, then the final edit
        history = kernel.services["sessions"].messages(channel.sessions.current(str(CHAT)))
        assert history[-1]["content"].endswith("slow down a bit.")


async def test_a_reply_whose_message_is_gone_arrives_in_a_new_one(start_kernel, bot_api, scripted_provider) -> None:
    scripted_provider.enqueue_text("The answer survives a deleted placeholder.")
    async with start_kernel() as kernel:
        await running(kernel)
        bot_api.fail_next("editMessageText", 400, times=50, description="Bad Request: message to edit not found")
        bot_api.user_message(CHAT, OWNER, "go")
        await bot_api.wait_for(lambda: "The answer survives a deleted placeholder." in bot_api.chat_text(CHAT))
        assert [p["text"] for p in bot_api.sent("sendMessage", CHAT)][-1] == "The answer survives a deleted placeholder."


# -- files ----------------------------------------------------------------------------------------


async def test_oversized_file_is_refused_politely_small_file_saved(start_kernel, bot_api, scripted_provider) -> None:
    scripted_provider.enqueue_text("got your file")
    async with start_kernel() as kernel:
        await running(kernel)
        big = bot_api.add_file("big", b"x" * 10, declared_size=50_000_000)
        bot_api.user_message(CHAT, OWNER, document=big, caption="please read")
        await bot_api.wait_for(lambda: any("too large (50.0 MB); the limit is 0.001 MB" in t for t in bot_api.chat_text(CHAT)))
        liar = bot_api.add_file("liar", b"y" * 5000, declared_size=10)  # says 10 bytes, is 5000
        bot_api.user_message(CHAT, OWNER, document=liar, caption="and this")
        await bot_api.wait_for(lambda: "Sorry, that file is too large." in bot_api.chat_text(CHAT))
        assert not (kernel.paths.workspace / "uploads" / "telegram" / "5000" / "liar.txt").exists()
        small = bot_api.add_file("small", b"hi")
        bot_api.user_message(CHAT, OWNER, document=small, caption="and this one")
        await bot_api.wait_for(lambda: any("got your file" in t for t in bot_api.chat_text(CHAT)))
        assert len(scripted_provider.requests) == 1  # the refused files never reached an agent
        told = scripted_provider.requests[0].messages[-1].text
        assert told.startswith("and this one") and "uploads/telegram/5000/small.txt" in told
        assert (kernel.paths.workspace / "uploads" / "telegram" / "5000" / "small.txt").read_bytes() == b"hi"


async def test_photo_is_saved_and_the_agent_told(start_kernel, bot_api, scripted_provider) -> None:
    scripted_provider.enqueue_text("nice picture")
    async with start_kernel(max_file_mb=1) as kernel:
        await running(kernel)
        bot_api.user_message(CHAT, OWNER, photo=bot_api.add_photo("pic1", b"\xff\xd8jpeg-bytes"))
        await bot_api.wait_for(lambda: "nice picture" in bot_api.chat_text(CHAT))
        saved = kernel.paths.workspace / "uploads" / "telegram" / "5000" / "photo_upic1.jpg"
        assert saved.read_bytes() == b"\xff\xd8jpeg-bytes"  # the largest size, not the thumbnail
        assert "uploads/telegram/5000/photo_upic1.jpg" in scripted_provider.requests[0].messages[-1].text


async def test_agent_sends_a_file_back_with_the_tool(start_kernel, bot_api, scripted_provider) -> None:
    scripted_provider.enqueue_tool_call("write", {"path": "report.md", "content": "# Report\nall green"})
    scripted_provider.enqueue_tool_call("telegram_send", {"text": "Here is the report", "path": "report.md"})
    scripted_provider.enqueue_tool_call("telegram_send", {"path": "/etc/passwd"})
    scripted_provider.enqueue_tool_call("telegram_send", {"text": "psst", "chat": "424242"})
    scripted_provider.enqueue_text("sent you the report")
    async with start_kernel() as kernel:
        await running(kernel)
        bot_api.user_message(CHAT, OWNER, "make me a report and send it")
        await bot_api.wait_for(lambda: "sent you the report" in bot_api.chat_text(CHAT))
        [doc] = bot_api.sent("sendDocument", CHAT)
        assert doc["document"] == {"filename": "report.md", "data": b"# Report\nall green"}
        assert "Here is the report" in bot_api.chat_text(CHAT)
        results = [b.content for m in scripted_provider.requests[-1].messages for b in m.content if hasattr(b, "tool_use_id")]
        sent, passwd, stranger = results[1:]
        assert sent.startswith("delivered to telegram chat 5000 (2 messages)")
        assert passwd.startswith("not delivered: read access to /etc/passwd denied")
        assert stranger.startswith("not delivered: 424242 is not a chat Oxios talks in")
        assert bot_api.sent("sendMessage", 424242) == [] and len(bot_api.sent("sendDocument")) == 1


# -- proactive messages -------------------------------------------------------------------------------


async def test_proactive_delivery_reports_success_and_failure(start_kernel, bot_api) -> None:
    async with start_kernel() as kernel:
        channel = await running(kernel)
        ids = await channel.send(OutgoingMessage(content="Good morning: *news*", channel="telegram", chat_id=str(CHAT)))
        assert len(ids) == 1 and bot_api.chat_text(CHAT) == ["Good morning: <i>news</i>"]
        (kernel.paths.workspace / "report.txt").write_text("the report")
        attached = [Attachment(name="report.txt", path="report.txt")]
        ids = await channel.send(OutgoingMessage(content="", channel="telegram", chat_id=f"{CHAT}/7", attachments=attached))
        [doc] = bot_api.sent("sendDocument", CHAT)
        assert len(ids) == 1 and doc["document"]["data"] == b"the report" and doc["message_thread_id"] == "7"
        with pytest.raises(PermissionError, match="denied"):
            await channel.send(
                OutgoingMessage(
                    content="x", channel="telegram", chat_id=str(CHAT), attachments=[Attachment(name="p", path="/etc/passwd")]
                )
            )
        bot_api.missing_chats.add(999)
        from telegram.error import BadRequest

        with pytest.raises(BadRequest, match=r"(?i)chat not found"):
            await channel.send(OutgoingMessage(content="hello?", channel="telegram", chat_id="999"))


async def test_cron_job_delivers_to_a_chat_and_records_failures(start_kernel, bot_api, scripted_provider) -> None:
    scripted_provider.enqueue_text("Backups are fine.").enqueue_text("Backups are fine again.")
    async with start_kernel() as kernel:
        await running(kernel)
        cron = kernel.services["cron"]
        cron.create(
            {"name": "backups", "schedule": "0 9 * * *", "goal": "check the backups", "deliver_to": f"channel:telegram:{CHAT}/7"}
        )
        run = await cron.trigger("backups", wait=True)
        assert cron.run(run["id"])["delivery_status"] == "delivered"
        assert any("Backups are fine." in t for t in bot_api.chat_text(CHAT, 7))  # into forum topic 7
        bot_api.missing_chats.add(CHAT)  # the bot was removed from the chat
        run = await cron.trigger("backups", wait=True)
        record = cron.run(run["id"])
        assert record["status"] == "succeeded" and record["delivery_status"] != "delivered"
        assert "chat not found" in record["delivery_error"].lower()


# -- approvals ---------------------------------------------------------------------------------------------


async def test_approval_from_a_chat_is_answered_with_its_buttons(start_kernel, bot_api, scripted_provider, oxios_home) -> None:
    scripted_provider.enqueue_tool_call("write", {"path": "hello.txt", "content": "hi"})
    scripted_provider.enqueue_text("wrote hello.txt")
    async with start_kernel(config={"security": {"tool_policies": {"write": "always"}}}) as kernel:
        await running(kernel)
        bot_api.user_message(CHAT, OWNER, "write hello.txt")
        [offer] = await bot_api.wait_for(lambda: with_buttons(bot_api, CHAT))
        assert offer["text"].startswith("Approval needed: write")
        buttons = offer["reply_markup"]["inline_keyboard"][0]
        assert [b["text"] for b in buttons] == ["Approve", "Reject"]
        approve = buttons[0]["callback_data"]
        bot_api.callback(STRANGER, approve, offer)  # a stranger cannot answer
        await bot_api.wait_for(lambda: "You are not allowed to answer this." in bot_api.answers())
        bot_api.callback(OWNER, approve, message_in(CHAT + 9))  # nor can a press from another chat
        await bot_api.wait_for(lambda: "This request belongs to another chat." in bot_api.answers())
        assert not (kernel.paths.workspace / "hello.txt").exists()
        assert kernel.services["approvals"].list("pending")
        bot_api.callback(OWNER, approve, offer)
        await bot_api.wait_for(lambda: "wrote hello.txt" in bot_api.chat_text(CHAT))
        assert (kernel.paths.workspace / "hello.txt").read_text() == "hi"
        # Answered: the request says by whom, and its buttons are gone.
        await bot_api.wait_for(lambda: any(t.endswith(f"Approved by User{OWNER}") for t in bot_api.chat_text(CHAT)))
        assert with_buttons(bot_api, CHAT) == []
        bot_api.callback(OWNER, approve, offer)  # a late second press
        await bot_api.wait_for(lambda: "This request was already answered or has expired." in bot_api.answers())


# -- the Ouroboros interview -----------------------------------------------------------------------------------

ROUND_ONE = {
    "goal": 0.3,
    "constraints": 0.2,
    "criteria": 0.1,
    "questions": [
        {"text": "Add a title?", "kind": "yes_no"},
        {"text": "Which sections?", "kind": "multi", "options": ["todo", "done", "ideas"]},
        {"text": "Which file name?", "kind": "free"},
    ],
    "assumptions": [],
}
ROUND_TWO = {**ROUND_ONE, "questions": [{"text": "Anything else I should know?", "kind": "free"}]}


async def test_interview_questions_come_with_buttons_and_the_answers_flow_back(start_kernel, bot_api, scripted_provider) -> None:
    scripted_provider.enqueue_text(json.dumps(ROUND_ONE)).enqueue_text(json.dumps(ROUND_TWO))
    async with start_kernel() as kernel:
        channel = await running(kernel)
        bot_api.user_message(CHAT, OWNER, "#spec write my notes")
        texts = await bot_api.wait_for(lambda: len(bot_api.chat_text(CHAT)) == 4 and bot_api.chat_text(CHAT))
        assert texts[0].startswith("Before I start, a few questions.")
        assert texts[1:] == [
            "1. Add a title?",
            "2. Which sections?\n(pick any, then Done)",
            "3. Which file name?\n(answer in a message)",
        ]
        yes_no, multi = with_buttons(bot_api, CHAT)

        def data_of(message: dict[str, Any], label: str) -> str:
            rows = message["reply_markup"]["inline_keyboard"]
            [data] = [b["callback_data"] for row in rows for b in row if b["text"].removeprefix("✓ ") == label]
            return data

        def press(user: int, message: dict[str, Any], label: str) -> None:
            bot_api.callback(user, data_of(message, label), message)

        stale_no = data_of(yes_no, "No")
        press(STRANGER, yes_no, "Yes")
        await bot_api.wait_for(lambda: "You are not allowed to answer this." in bot_api.answers())
        press(OWNER, yes_no, "Yes")
        await bot_api.wait_for(lambda: "1. Add a title?\n→ Yes" in bot_api.chat_text(CHAT))
        press(OWNER, multi, "todo")
        await bot_api.wait_for(lambda: "Added: todo" in bot_api.answers())
        press(OWNER, multi, "ideas")
        await bot_api.wait_for(lambda: "Added: ideas" in bot_api.answers())
        multi = bot_api.messages[(CHAT, multi["message_id"])]
        labels = [b["text"] for row in multi["reply_markup"]["inline_keyboard"] for b in row]
        assert labels == ["✓ todo", "done", "✓ ideas", "Done"]
        press(OWNER, multi, "Done")
        await bot_api.wait_for(lambda: "2. Which sections?\n→ todo, ideas" in bot_api.chat_text(CHAT))
        assert channel.forms.for_chat(str(CHAT)) is not None  # the free-text question is still open
        assert len(scripted_provider.requests) == 1
        bot_api.user_message(CHAT, OWNER, "notes.md")  # a typed message answers the rest and sends it all
        await bot_api.wait_for(lambda: any("1. Anything else I should know?" in t for t in bot_api.chat_text(CHAT)))
        told = "\n".join(m.text for m in scripted_provider.requests[1].messages)
        for line in ("1. Add a title? -> Yes", "2. Which sections? -> todo, ideas", "3. Which file name? -> notes.md"):
            assert line in told
        assert channel.forms.for_chat(str(CHAT)) is None  # free text only: shown as text, no form
        bot_api.callback(OWNER, stale_no, yes_no)  # an old button of the answered form

        await bot_api.wait_for(lambda: "These questions are closed." in bot_api.answers())


# -- resilience -------------------------------------------------------------------------------------------------


async def test_retry_after_429_and_5xx(start_kernel, bot_api, scripted_provider) -> None:
    scripted_provider.enqueue_text("eventually")
    async with start_kernel() as kernel:
        await running(kernel)
        bot_api.fail_next("sendMessage", 429, retry_after=1)
        bot_api.fail_next("editMessageText", 502, times=2)
        bot_api.user_message(CHAT, OWNER, "hello")
        await bot_api.wait_for(lambda: any("eventually" in t for t in bot_api.chat_text(CHAT)), timeout=20)
        names = [m for m, _ in bot_api.calls]
        assert "sendMessage!429" in names and "editMessageText!502" in names


async def test_recovers_after_the_bot_api_restarts(start_kernel, bot_api, scripted_provider) -> None:
    scripted_provider.enqueue_text("still here")
    async with start_kernel() as kernel:
        channel = await running(kernel)
        await bot_api.stop()
        await bot_api.wait_for(lambda: channel.detail.startswith("polling failed: NetworkError"), timeout=20)
        assert kernel.status()["channels"]["telegram"]["detail"] == channel.detail
        await bot_api.start()
        bot_api.user_message(CHAT, OWNER, "are you back?")
        await bot_api.wait_for(lambda: any("still here" in t for t in bot_api.chat_text(CHAT)), timeout=40)
        assert channel.detail == "@oxios_test_bot"  # an update arrived: the error is history


async def test_conflicts_with_another_poller_or_a_webhook_resolve_themselves(start_kernel, bot_api, scripted_provider) -> None:
    scripted_provider.enqueue_text("polling again")
    async with start_kernel() as kernel:
        channel = await running(kernel)
        other = "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
        bot_api.fail_next("getUpdates", 409, description=other)
        await bot_api.wait_for(lambda: "another poller" in channel.detail)
        bot_api.webhook = {"url": "https://elsewhere.example/hook", "secret_token": None}  # someone set a webhook
        await bot_api.wait_for(lambda: bot_api.webhook is None, timeout=20)  # polling mode removed it
        bot_api.user_message(CHAT, OWNER, "hello again")
        await bot_api.wait_for(lambda: "polling again" in bot_api.chat_text(CHAT), timeout=20)
        assert channel.state == "running"


async def test_unreachable_bot_api_never_blocks_the_daemon(oxios_kernel_factory, scripted_provider) -> None:
    config = scripted_provider.config({"channels": {"telegram": {"token": TOKEN, "base_url": "http://127.0.0.1:9/bot"}}})
    async with oxios_kernel_factory(
        plugins=[scripted_provider.plugin(), oxios_plugin_telegram], config=config, channels=True
    ) as kernel:
        channel = kernel.channels["telegram"]
        assert kernel.status()["status"] == "running"
        for _ in range(500):
            if channel.detail:
                break
            await asyncio.sleep(0.01)
        assert channel.state == "connecting" and "NetworkError" in channel.detail
        with pytest.raises(RuntimeError, match="not connected"):
            await channel.send(OutgoingMessage(content="x", channel="telegram", chat_id="1"))


async def test_a_wrong_token_is_an_error_not_a_retry_loop(start_kernel, bot_api) -> None:
    async with start_kernel(token="999:wrong") as kernel:
        channel = kernel.channels["telegram"]
        await bot_api.wait_for(lambda: channel.state == "error")
        assert "invalid bot token" in kernel.status()["channels"]["telegram"]["detail"]


async def test_bad_settings_are_reported_not_fatal(oxios_kernel_factory) -> None:
    config = {"channels": {"telegram": {"token": TOKEN, "allowed_users": "everyone"}}}
    async with oxios_kernel_factory(plugins=[oxios_plugin_telegram], config=config, channels=True) as kernel:
        assert "telegram" not in kernel.channels
        assert any("channels.telegram" in f.error for f in kernel.plugins.failures)


async def test_webhook_mode_through_the_web_plugin(oxios_kernel_factory, scripted_provider, bot_api) -> None:
    """Telegram posts updates to /webhook/telegram (served by the web plugin), authenticated by a secret token."""
    import httpx
    from oxios_plugin_web.app import create_app

    scripted_provider.enqueue_text("hello from the webhook")
    url = "https://oxios.example.org/webhook/telegram"
    config = scripted_provider.config(telegram_config(bot_api, mode="webhook", webhook_url=url))
    async with oxios_kernel_factory(
        plugins=[scripted_provider.plugin(), oxios_plugin_telegram], config=config, channels=True
    ) as kernel:
        channel = await running(kernel)
        assert bot_api.webhook == {"url": url, "secret_token": channel.webhook_secret}
        assert TOKEN not in channel.webhook_secret
        bot_api.user_message(CHAT, OWNER, "hi via webhook")
        update = bot_api.updates.pop()  # nobody polls in webhook mode: Telegram would post it
        app = create_app(kernel)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:4200") as client:
            header = "X-Telegram-Bot-Api-Secret-Token"
            assert (await client.post("/webhook/telegram", json=update)).status_code == 403
            assert (await client.post("/webhook/telegram", json=update, headers={header: "guess"})).status_code == 403
            assert (
                await client.post("/webhook/telegram", content=b"{not json", headers={header: channel.webhook_secret})
            ).status_code == 400
            ok = await client.post("/webhook/telegram", json=update, headers={header: channel.webhook_secret})
            assert ok.status_code == 200, ok.text
        await bot_api.wait_for(lambda: any("hello from the webhook" in t for t in bot_api.chat_text(CHAT)))
        assert len(scripted_provider.requests) == 1  # the two refused posts never reached an agent


async def oxios_cli(env: dict[str, str], *args: str) -> tuple[int, str]:
    """``oxios ARGS`` in a subprocess, without blocking the loop the fake Bot API runs in."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "oxios",
        *args,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 90)
    return proc.returncode or 0, out.decode()


@pytest.mark.slow
async def test_oxios_status_shows_the_channel_state(bot_api, tmp_path) -> None:
    """The real daemon with the installed plugin: `oxios status` says how the channel is doing, and why."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(
        "[channels.telegram]\n"
        f'token = "{TOKEN}"\nbase_url = "{bot_api.base_url}"\nbase_file_url = "{bot_api.base_file_url}"\n'
        f"allowed_users = [{OWNER}]\npoll_timeout_secs = 1\n"
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OXIOS")}
    env.update(OXIOS_HOME=str(home), OXIOS_LOAD_PLUGINS="telegram", OXIOS__GATEWAY__PORT=str(port))

    async def channel_state() -> dict[str, Any]:
        code, out = await oxios_cli(env, "status", "--json")
        assert code == 0, out
        return json.loads(out)["channels"]["telegram"]

    code, out = await oxios_cli(env, "start")
    assert code == 0, out
    try:
        await bot_api.wait_for(lambda: bot_api.sent("deleteWebhook"), timeout=30)  # polling has begun
        for _ in range(100):
            if (await channel_state())["state"] == "running":
                break
        code, out = await oxios_cli(env, "status")
        assert "channel telegram: running (@oxios_test_bot)" in out
        await bot_api.stop()  # Telegram goes away: the daemon stays up and says why
        for _ in range(100):
            state = await channel_state()
            if "polling failed" in state["detail"]:
                break
        code, out = await oxios_cli(env, "status")
        assert code == 0 and "channel telegram: running (polling failed: NetworkError" in out
    finally:
        await oxios_cli(env, "stop")


async def test_a_revoked_token_is_an_error_and_a_restored_one_recovers(start_kernel, bot_api, scripted_provider, caplog) -> None:
    """python-telegram-bot stops polling silently on a 401; the channel says so and keeps trying."""
    scripted_provider.enqueue_text("back in business")
    async with start_kernel() as kernel:
        channel = await running(kernel)
        connected = kernel.subscribe(types={"channel.connected"})
        with caplog.at_level(logging.ERROR, logger="oxios_plugin_telegram.channel"):
            bot_api.revoked = True
            await bot_api.wait_for(lambda: channel.state == "error", timeout=15)
        status = kernel.status()["channels"]["telegram"]
        assert status["state"] == "error" and status["detail"].startswith("Telegram refused the bot token (401")
        assert [r for r in caplog.records if r.levelno == logging.ERROR and "refused the bot token" in r.getMessage()]
        await bot_api.wait_for(lambda: bot_api.refused.count("getUpdates") >= 2, timeout=15)  # still trying
        with pytest.raises(RuntimeError, match="not connected"):
            await channel.send(OutgoingMessage(content="x", channel="telegram", chat_id=str(CHAT)))
        bot_api.revoked = False
        assert (await next_event(connected, timeout=20)).data["channel"] == "telegram"
        assert kernel.status()["channels"]["telegram"] == {"state": "running", "detail": "@oxios_test_bot"}
        bot_api.user_message(CHAT, OWNER, "still there?")
        await bot_api.wait_for(lambda: "back in business" in bot_api.chat_text(CHAT), timeout=15)


async def test_an_edited_message_is_ignored(start_kernel, bot_api, scripted_provider) -> None:
    """Editing a message already answered neither asks the agent again nor gets a reply."""
    scripted_provider.enqueue_text("first answer").enqueue_text("second answer")
    async with start_kernel() as kernel:
        await running(kernel)
        bot_api.user_message(CHAT, OWNER, "what is 2+2?")
        original = bot_api.updates[-1]["message"]["message_id"]
        await bot_api.wait_for(lambda: "first answer" in bot_api.chat_text(CHAT))
        bot_api.edit_message(CHAT, OWNER, original, "what is 3+3?")
        edit = bot_api.last_update_id
        await bot_api.wait_for(lambda: bot_api.polled_offset > edit)  # the channel has fetched the edit
        bot_api.user_message(CHAT, OWNER, "thanks")
        await bot_api.wait_for(lambda: "second answer" in bot_api.chat_text(CHAT))
        assert [r.messages[-1].text for r in scripted_provider.requests] == ["what is 2+2?", "thanks"]
        assert bot_api.chat_text(CHAT) == ["first answer", "second answer"]
