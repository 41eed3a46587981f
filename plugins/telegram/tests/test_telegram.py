"""The Telegram channel over the wire: python-telegram-bot's real HTTP client against a local fake Bot API."""

from __future__ import annotations

import asyncio
from typing import Any

import oxios_plugin_telegram
import pytest
from fake_bot_api import TOKEN, FakeBotApi

from oxios import pairing
from oxios_hookspecs import OutgoingMessage

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
    def start(**extra: Any):
        config = scripted_provider.config(telegram_config(bot_api, **extra))
        return oxios_kernel_factory(plugins=[scripted_provider.plugin(), oxios_plugin_telegram], config=config, channels=True)

    return start


async def running(kernel) -> Any:
    channel = kernel.channels["telegram"]
    for _ in range(500):
        if channel.state == "running":
            return channel
        await asyncio.sleep(0.01)
    raise AssertionError(f"channel did not connect: {channel.status()}")


async def test_hook_registers_the_channel_only_when_configured(oxios_kernel_factory) -> None:
    async with oxios_kernel_factory(plugins=[oxios_plugin_telegram], channels=True) as kernel:
        assert "telegram" not in kernel.channels
    async with oxios_kernel_factory(
        plugins=[oxios_plugin_telegram], config={"channels": {"telegram": {"allowed_users": [1]}}}, channels=True
    ) as kernel:
        assert "telegram" not in kernel.channels  # no token: warned and skipped, never fatal


async def test_authorized_message_is_answered_with_streamed_edits(start_kernel, bot_api, scripted_provider) -> None:
    scripted_provider.enqueue_text("Hello **there**, this reply arrives in pieces and is edited as it streams.")
    async with start_kernel() as kernel:
        channel = await running(kernel)
        assert kernel.status()["channels"]["telegram"]["state"] == "running"
        bot_api.user_message(CHAT, OWNER, "hi oxios")
        final = await bot_api.wait_for(lambda: [t for t in bot_api.chat_text(CHAT) if t.endswith("as it streams.")])
        assert final[0].startswith("Hello <b>there</b>") and "▌" not in final[0]
        assert len(bot_api.sent("sendMessage", CHAT)) == 1  # one message ...
        assert len(bot_api.sent("editMessageText", CHAT)) >= 2  # ... edited as tokens arrived
        session_id = channel.sessions.current(str(CHAT))
        history = kernel.services["sessions"].messages(session_id)
        assert [m["role"] for m in history][-2:] == ["user", "assistant"]
        assert scripted_provider.requests[0].messages[-1].text == "hi oxios"


async def test_unauthorized_sender_gets_nothing_and_is_recorded(start_kernel, bot_api, scripted_provider) -> None:
    async with start_kernel() as kernel:
        await running(kernel)
        events = kernel.subscribe(types={"channel.unauthorized"})
        bot_api.user_message(CHAT + 1, STRANGER, "let me in")
        event = await events.get(timeout=10)
        assert event.data == {"channel": "telegram", "user_id": str(STRANGER)}
        await asyncio.sleep(0.2)
        assert bot_api.sent("sendMessage", CHAT + 1) == []
        assert scripted_provider.requests == []  # never reached an agent


async def test_refusal_message_and_dm_pairing(start_kernel, bot_api, scripted_provider) -> None:
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


async def test_oversized_file_is_refused_politely_small_file_saved(start_kernel, bot_api, scripted_provider) -> None:
    scripted_provider.enqueue_text("got your file")
    async with start_kernel() as kernel:
        await running(kernel)
        big = bot_api.add_file("big", b"x" * 10, declared_size=50_000_000)
        bot_api.user_message(CHAT, OWNER, document=big, caption="please read")
        await bot_api.wait_for(lambda: any("too large" in t for t in bot_api.chat_text(CHAT)))
        small = bot_api.add_file("small", b"hi")
        bot_api.user_message(CHAT, OWNER, document=small, caption="and this one")
        await bot_api.wait_for(lambda: any("got your file" in t for t in bot_api.chat_text(CHAT)))
        told = scripted_provider.requests[0].messages[-1].text
        assert "uploads/telegram/5000/small.txt" in told
        assert (kernel.paths.workspace / "uploads" / "telegram" / "5000" / "small.txt").read_bytes() == b"hi"


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
        await running(kernel)
        await bot_api.stop()
        await asyncio.sleep(0.5)  # polling fails while the server is down
        await bot_api.start()
        bot_api.user_message(CHAT, OWNER, "are you back?")
        await bot_api.wait_for(lambda: any("still here" in t for t in bot_api.chat_text(CHAT)), timeout=40)


async def test_unreachable_bot_api_never_blocks_the_daemon(oxios_kernel_factory, scripted_provider) -> None:
    config = scripted_provider.config({"channels": {"telegram": {"token": TOKEN, "base_url": "http://127.0.0.1:9/bot"}}})
    async with oxios_kernel_factory(
        plugins=[scripted_provider.plugin(), oxios_plugin_telegram], config=config, channels=True
    ) as kernel:
        channel = kernel.channels["telegram"]
        await asyncio.sleep(0.3)
        assert channel.state == "connecting" and channel.detail
        with pytest.raises(RuntimeError, match="not connected"):
            await channel.send(OutgoingMessage(content="x", channel="telegram", chat_id="1"))


async def test_proactive_delivery_and_files_back(start_kernel, bot_api, oxios_home) -> None:
    async with start_kernel() as kernel:
        channel = await running(kernel)
        ids = await channel.send(OutgoingMessage(content="Good morning: *news*", channel="telegram", chat_id=str(CHAT)))
        assert ids and any("<i>news</i>" in t for t in bot_api.chat_text(CHAT))
        report = kernel.paths.workspace / "report.txt"
        report.write_text("the report")
        await channel.send_file(CHAT, None, "report.txt", "here")
        assert bot_api.sent("sendDocument", CHAT)[0]["document"]["data"] == b"the report"
        with pytest.raises(PermissionError):
            await channel.send_file(CHAT, None, "/etc/passwd")


async def test_approval_buttons_resolve_the_approval(start_kernel, bot_api, scripted_provider) -> None:
    scripted_provider.enqueue_text("ok")
    async with start_kernel() as kernel:
        channel = await running(kernel)
        approvals = kernel.services.get("approvals")
        if approvals is None:
            pytest.skip("the approvals service is not part of this build")
        bot_api.user_message(CHAT, OWNER, "start")
        await bot_api.wait_for(lambda: any("ok" == t for t in bot_api.chat_text(CHAT)))
        session_id = channel.sessions.current(str(CHAT))
        from oxios_hookspecs import Action

        ctx = kernel.context(agent_id="agent-1", session_id=session_id)
        waiter = asyncio.create_task(approvals.request(Action(kind="exec", argv=["git", "push"]), ctx, "pushing needs a human"))
        offer = await bot_api.wait_for(lambda: [p for p in bot_api.sent("sendMessage", CHAT) if "reply_markup" in p])
        buttons = offer[0]["reply_markup"]["inline_keyboard"][0]
        assert [b["text"] for b in buttons] == ["Approve", "Reject"]
        message = bot_api.messages[(CHAT, max(k[1] for k in bot_api.messages if k[0] == CHAT))]
        bot_api.callback(STRANGER, buttons[0]["callback_data"], message)  # a stranger cannot answer
        await asyncio.sleep(0.3)
        assert not waiter.done()
        bot_api.callback(OWNER, buttons[0]["callback_data"], message)
        verdict = await asyncio.wait_for(waiter, 10)
        assert getattr(verdict, "verdict", verdict) in ("allow", True)


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
