"""Shared chat-channel pieces: splitting, pairing, commands."""

from __future__ import annotations

import pytest

from oxios import pairing
from oxios.chatkit import ReplyStreamer, parse_command, split_message
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
