"""Shared chat-channel pieces: splitting, streaming, pairing, commands, interview forms."""

from __future__ import annotations

import pytest

from oxios import pairing
from oxios.chatforms import ChatForm, form_from_interview
from oxios.chatkit import ChatSessions, ReplyStreamer, parse_command, split_message
from oxios.state import StateStore


@pytest.mark.parametrize("limit", [100, 2000, 4096])
def test_split_respects_limit_and_keeps_code_blocks_whole(limit: int) -> None:
    text = (
        "Intro paragraph.\n\n```python\n"
        + "\n".join(f"x = {i}  # filler filler" for i in range(400))
        + "\n```\n\nOutro "
        + "word " * 300
    )
    chunks = split_message(text, limit)
    assert all(len(c) <= limit for c in chunks)
    for chunk in chunks:
        assert chunk.count("```") % 2 == 0, chunk[:80]
    joined = "".join(chunks)
    for i in range(400):
        assert f"x = {i} " in joined
    assert split_message("short", limit) == ["short"] and split_message("", limit) == []


def test_split_reopens_the_language() -> None:
    text = "```js\n" + "\n".join(f"let a{i} = {i};" for i in range(50)) + "\n```"
    chunks = split_message(text, 120)
    assert all(c.startswith("```js") for c in chunks)


def test_parse_command() -> None:
    assert parse_command("/switch abc") == ("switch", "abc")
    assert parse_command("/new@oxios_bot my topic", "oxios_bot") == ("new", "my topic")
    assert parse_command("/new@other_bot x", "oxios_bot") is None
    assert parse_command("hello /new") is None


async def test_streamer_edits_one_message_and_skips_identical_edits() -> None:
    sent: list[str] = []
    edits: list[tuple[int, str]] = []

    async def send(text: str) -> int:
        sent.append(text)
        return len(sent) - 1

    async def edit(handle: int, text: str) -> None:
        edits.append((handle, text))

    streamer = ReplyStreamer(send, edit, limit=50, interval=0.0)
    await streamer.start()
    for word in ["Hello", " world", ""]:
        await streamer.on_token(word)
    await streamer.finish()
    assert sent == ["…"]
    assert edits[-1] == (0, "Hello world")
    assert len(edits) == len(set(edits))  # no identical consecutive edit
    await streamer.finish("x" * 120)  # grows past the limit: continues in new messages
    assert len(sent) == 3


def test_pairing_codes(tmp_path) -> None:
    state = StateStore(tmp_path / "s.db")
    code = pairing.request_code(state, "telegram", "42", name="Ada", now=1000.0)
    assert pairing.request_code(state, "telegram", "42", now=1001.0) == code  # same pending code
    assert not pairing.is_paired(state, "telegram", "42")
    with pytest.raises(LookupError):
        pairing.approve(state, code, now=1000.0 + pairing.CODE_TTL_SECS + 1)  # expired
    assert pairing.approve(state, code.lower(), now=1002.0)["user_id"] == "42"
    assert pairing.is_paired(state, "telegram", "42") and not pairing.is_paired(state, "discord", "42")
    with pytest.raises(LookupError):
        pairing.approve(state, code, now=1003.0)  # one-time
    assert pairing.revoke(state, "telegram", "42") and not pairing.is_paired(state, "telegram", "42")
    state.close()


def test_pairing_cli(oxios_cli, oxios_home) -> None:
    oxios_cli("onboard")
    state = StateStore(oxios_home / "state.db")
    code = pairing.request_code(state, "discord", "7", name="Bob")
    state.close()
    listed = oxios_cli("pairing", "list")
    assert code in listed.output
    assert oxios_cli("pairing", "approve", "NOPE1234").exit_code == 1
    out = oxios_cli("pairing", "approve", code)
    assert out.exit_code == 0 and "paired discord user 7" in out.output
    assert oxios_cli("pairing", "revoke", "discord", "7").exit_code == 0


async def test_streamer_throttles_live_edits_to_the_interval() -> None:
    sent: list[str] = []
    edits: list[str] = []

    async def send(text: str) -> int:
        sent.append(text)
        return 0

    async def edit(handle: int, text: str) -> None:
        edits.append(text)

    streamer = ReplyStreamer(send, edit, limit=100, interval=3600.0)
    await streamer.start()
    for word in ["one ", "two ", "three"]:
        await streamer.on_token(word)
    assert edits == []  # within the interval after the placeholder: no edit yet
    streamer._last_edit -= 3600  # an interval later
    await streamer.on_token("!")
    assert edits == ["one two three! ▌"]
    await streamer.on_token("?")
    assert len(edits) == 1
    await streamer.finish()
    assert edits[-1] == "one two three!?" and sent == ["…"]  # the final text always goes out


class RateLimited(Exception):
    retry_after = 3600


async def test_a_failing_live_edit_never_reaches_the_agent() -> None:
    edits: list[str] = []
    failures = [RateLimited("429")]

    async def send(text: str) -> str:
        return "m1"

    async def edit(handle: str, text: str) -> None:
        edits.append(text)

    async def live_edit(handle: str, text: str) -> None:
        if failures:
            raise failures.pop()
        edits.append(text)

    streamer = ReplyStreamer(send, edit, live_edit=live_edit, limit=100, interval=0.0)
    await streamer.start()
    await streamer.on_token("Hello")  # rate limited: swallowed, and live edits pause for retry_after
    await streamer.on_token(" world")
    assert edits == []
    await streamer.finish()
    assert edits == ["Hello world"]


async def test_a_final_edit_that_fails_is_sent_as_a_new_message() -> None:
    sent: list[str] = []

    async def send(text: str) -> int:
        sent.append(text)
        return len(sent)

    async def edit(handle: int, text: str) -> None:
        raise RuntimeError("message to edit not found")

    streamer = ReplyStreamer(send, edit, limit=100, interval=0.0)
    await streamer.start()
    await streamer.finish("the whole answer")
    assert sent == ["…", "the whole answer"] and streamer.messages == [2]


def test_retry_after_secs() -> None:
    from datetime import timedelta

    from oxios.chatkit import retry_after_secs

    assert retry_after_secs(RateLimited()) == 3600.0
    err = RuntimeError()
    err.retry_after = timedelta(seconds=2.5)  # type: ignore[attr-defined]
    assert retry_after_secs(err) == 2.5 and retry_after_secs(RuntimeError()) is None


def form_with(*questions: dict) -> ChatForm:
    form = form_from_interview(list(questions), chat_key="c", session_id="s", chat_id="c", thread_id="")
    assert form is not None
    return form


def test_form_buttons_for_each_kind_of_question() -> None:
    form = form_with(
        {"text": "Language?", "kind": "single", "options": ["Python", "Rust"]},
        {"text": "Targets?", "kind": "multi", "options": ["linux", "mac"]},
        {"text": "Ship?", "kind": "yes_no"},
        {"text": "Name?", "kind": "free"},
    )
    assert form.render(0) == ("1. Language?", [("Python", "0"), ("Rust", "1")])
    assert form.render(1) == ("2. Targets?\n(pick any, then Done)", [("linux", "0"), ("mac", "1"), ("Done", "done")])
    assert form.render(2) == ("3. Ship?", [("Yes", "0"), ("No", "1")])
    assert form.render(3) == ("4. Name?\n(answer in a message)", [])
    assert form.press(0, "1") == "Noted: Rust"
    assert form.render(0) == ("1. Language?\n→ Rust", [])
    assert form.press(0, "0") == "Already answered."  # a second press changes nothing
    assert form.press(1, "1") == "Added: mac" and form.press(1, "0") == "Added: linux"
    assert form.press(1, "0") == "Removed: linux"
    assert form.render(1)[1][1] == ("✓ mac", "1")
    assert form.press(1, "done") == "Noted: mac"
    assert form.press(2, "0") == "Noted: Yes"
    assert not form.complete()  # the free-text question needs a message
    with pytest.raises(ValueError):
        form.press(3, "0")  # a free-text question has no buttons
    with pytest.raises(ValueError):
        form.press(9, "0")
    assert form.compose("notes.md") == (
        "Answers to your questions:\n1. Language? -> Rust\n2. Targets? -> mac\n3. Ship? -> Yes\n4. Name? -> notes.md"
    )


def test_form_compose_marks_what_was_skipped() -> None:
    form = form_with({"text": "Ship?", "kind": "yes_no"}, {"text": "Name?", "kind": "free"}, {"text": "Why?", "kind": "free"})
    assert (
        form.compose()
        == "Answers to your questions:\n1. Ship? -> (skipped: assume)\n2. Name? -> (skipped: assume)\n3. Why? -> (skipped: assume)"
    )
    assert form.compose("just do it").endswith("3. Why? -> (see below)\n\njust do it")
    assert (
        form_from_interview([{"text": "Name?", "kind": "free"}], chat_key="c", session_id="s", chat_id="c", thread_id="") is None
    )
    assert form_from_interview([{"bad": 1}], chat_key="c", session_id="s", chat_id="c", thread_id="") is None


class _Kernel:
    def __init__(self, state: StateStore) -> None:
        self.state = state


def test_switch_needs_a_unique_prefix(tmp_path) -> None:
    state = StateStore(tmp_path / "s.db")
    sessions = ChatSessions(_Kernel(state), "telegram")
    sessions.remember("42", "abc-111")
    sessions.remember("42", "abd-222")
    with pytest.raises(LookupError, match="matches 2 sessions"):
        sessions.switch("42", "ab")
    with pytest.raises(LookupError, match="no session"):
        sessions.switch("42", "")
    assert sessions.switch("42", "abd")["id"] == "abd-222" and sessions.current("42") == "abd-222"
    assert sessions.chat_of_session("abc-111") == "42" and sessions.current("43") is None
    state.close()
