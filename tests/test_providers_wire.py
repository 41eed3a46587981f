"""The Anthropic and OpenAI providers drive the real SDKs over HTTP against local wire-compatible fakes."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from fakes.fixtures import FAKE_ANTHROPIC_KEY, FAKE_OPENAI_KEY

from oxios.builtin.providers import _anthropic, _openai
from oxios.config import load
from oxios.providers import ProviderAuthError, ProviderUnavailableError
from oxios.providers.base import parse_tool_arguments
from oxios.providers.registry import ProviderRegistry
from oxios_hookspecs import (
    Message,
    ModelRequest,
    StopEvent,
    TextBlock,
    TextDelta,
    ToolCallEvent,
    ToolResultBlock,
    ToolSpec,
    ToolUseBlock,
    Usage,
    UsageEvent,
)

LS = ToolSpec(
    name="ls",
    description="List a directory.",
    parameters={"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
)
KINDS = {"openai": _openai, "anthropic": _anthropic}


def registry(home: Path, overrides: dict[str, Any], **kwargs: Any) -> tuple[ProviderRegistry, list[tuple[str, dict[str, Any]]]]:
    events: list[tuple[str, dict[str, Any]]] = []
    config = load(home / "config.toml", overrides=overrides)
    return ProviderRegistry(config, KINDS, publish=lambda t, **d: events.append((t, d)), **kwargs), events


@pytest.fixture(params=["openai", "anthropic"])
def fake(request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue(f"fake_{request.param}")


async def collect(reg: ProviderRegistry, request: ModelRequest) -> list[Any]:
    return [event async for event in reg.stream(request)]


async def test_stream_text_usage_and_stop(fake: Any, oxios_home: Path) -> None:
    reg, _ = registry(oxios_home, fake.config())
    fake.enqueue_text("The workspace holds two files.", usage=(42, 9))
    events = await collect(
        reg, ModelRequest(model="", system="You are terse.", messages=[Message.user("what is here?")], max_tokens=321)
    )
    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert len(deltas) > 1 and "".join(d.text for d in deltas) == "The workspace holds two files."
    assert events[-2:] == [UsageEvent(usage=Usage(input_tokens=42, output_tokens=9)), StopEvent(reason="end_turn")]
    body = fake.last
    assert body["stream"] is True and body["model"] == "fake-model"
    if fake.kind == "anthropic":
        assert body["system"] == "You are terse." and body["max_tokens"] == 321
        assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "what is here?"}]}]
    else:
        assert body["messages"][0] == {"role": "system", "content": "You are terse."}
        assert body["messages"][1] == {"role": "user", "content": "what is here?"}
        assert body["max_tokens"] == 321 and body["stream_options"] == {"include_usage": True}
    await reg.stop()


async def test_complete_text_usage_and_stop(fake: Any, oxios_home: Path) -> None:
    reg, _ = registry(oxios_home, fake.config())
    fake.enqueue_text("done", usage=(5, 1))
    response = await reg.complete(ModelRequest(model="", messages=[Message.user("hi")]))
    assert response.message == Message(role="assistant", content=[TextBlock(text="done")])
    assert response.usage == Usage(input_tokens=5, output_tokens=1)
    assert response.stop_reason == "end_turn" and response.model == "fake-model"
    assert "stream" not in fake.last or fake.last["stream"] is False
    await reg.stop()


@pytest.mark.parametrize("streaming", [True, False])
async def test_tool_calls_both_ways(fake: Any, oxios_home: Path, streaming: bool) -> None:
    """Tools go out in the provider's schema; calls come back assembled; results go back on the wire."""
    reg, _ = registry(oxios_home, fake.config())
    fake.enqueue_turn("Let me look.", [("ls", {"path": "."}, "call_a"), ("ls", {"path": "src"}, "call_b")])
    request = ModelRequest(model="", messages=[Message.user("list the files here")], tools=[LS])
    if streaming:
        events = await collect(reg, request)
        calls = [e for e in events if isinstance(e, ToolCallEvent)]
        assert isinstance(events[-1], StopEvent) and events[-1].reason == "tool_use"
    else:
        response = await reg.complete(request)
        calls = [ToolCallEvent(id=b.id, name=b.name, arguments=b.input) for b in response.message.tool_uses]
        assert response.stop_reason == "tool_use" and response.message.text == "Let me look."
    assert calls == [
        ToolCallEvent(id="call_a", name="ls", arguments={"path": "."}),
        ToolCallEvent(id="call_b", name="ls", arguments={"path": "src"}),
    ]
    tools = fake.last["tools"]
    if fake.kind == "anthropic":
        assert tools == [{"name": "ls", "description": "List a directory.", "input_schema": LS.parameters}]
    else:
        assert tools == [
            {"type": "function", "function": {"name": "ls", "description": "List a directory.", "parameters": LS.parameters}}
        ]

    # The second turn carries the calls and their results back to the model.
    fake.enqueue_text("Two entries.")
    history = [
        Message.user("list the files here"),
        Message(
            role="assistant",
            content=[
                TextBlock(text="Let me look."),
                ToolUseBlock(id="call_a", name="ls", input={"path": "."}),
                ToolUseBlock(id="call_b", name="ls", input={"path": "src"}),
            ],
        ),
        Message(
            role="user",
            content=[
                ToolResultBlock(tool_use_id="call_a", content="a.txt\nb.txt"),
                ToolResultBlock(tool_use_id="call_b", content="no such directory", is_error=True),
            ],
        ),
    ]
    follow_up = ModelRequest(model="", messages=history, tools=[LS])
    text = (
        "".join(e.text for e in await collect(reg, follow_up) if isinstance(e, TextDelta))
        if streaming
        else (await reg.complete(follow_up)).message.text
    )
    assert text == "Two entries."
    wire = fake.last["messages"]
    if fake.kind == "anthropic":
        assert wire[1] == {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "call_a", "name": "ls", "input": {"path": "."}},
                {"type": "tool_use", "id": "call_b", "name": "ls", "input": {"path": "src"}},
            ],
        }
        assert wire[2] == {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_a", "content": "a.txt\nb.txt", "is_error": False},
                {"type": "tool_result", "tool_use_id": "call_b", "content": "no such directory", "is_error": True},
            ],
        }
    else:
        assert wire[1]["role"] == "assistant" and wire[1]["content"] == "Let me look."
        assert [(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in wire[1]["tool_calls"]] == [
            ("call_a", "ls", '{"path": "."}'),
            ("call_b", "ls", '{"path": "src"}'),
        ]
        assert wire[2] == {"role": "tool", "tool_call_id": "call_a", "content": "a.txt\nb.txt"}
        assert wire[3] == {"role": "tool", "tool_call_id": "call_b", "content": "Error: no such directory"}
    await reg.stop()


@pytest.mark.parametrize("streaming", [True, False])
async def test_max_tokens_stop_reason(fake: Any, oxios_home: Path, streaming: bool) -> None:
    reg, _ = registry(oxios_home, fake.config())
    fake.enqueue_text("cut o", stop="length" if fake.kind == "openai" else "max_tokens")
    request = ModelRequest(model="", messages=[Message.user("write a novel")], max_tokens=2)
    if streaming:
        assert (await collect(reg, request))[-1] == StopEvent(reason="max_tokens")
    else:
        assert (await reg.complete(request)).stop_reason == "max_tokens"
    await reg.stop()


async def test_model_reference_picks_provider_and_model(fake_openai: Any, fake_anthropic: Any, oxios_home: Path) -> None:
    overrides = fake_openai.config("gpt")
    overrides["providers"].update(fake_anthropic.config("claude")["providers"])
    reg, _ = registry(oxios_home, overrides)
    fake_anthropic.enqueue_text("from claude")
    response = await reg.complete(ModelRequest(model="claude/claude-test-1", messages=[Message.user("hi")]))
    assert response.message.text == "from claude" and fake_anthropic.last["model"] == "claude-test-1"
    fake_openai.enqueue_text("from gpt")
    events = await collect(reg, ModelRequest(model="", messages=[Message.user("hi")]))  # kernel.default_provider = gpt
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "from gpt"
    await reg.stop()


async def test_wrong_key_is_an_auth_error_not_retried(fake: Any, oxios_home: Path) -> None:
    reg, events = registry(oxios_home, fake.config(api_key="sk-wrong-key-9876543210"))
    with pytest.raises(ProviderAuthError) as caught:
        await collect(reg, ModelRequest(model="", messages=[Message.user("hi")]))
    assert caught.value.status == 401 and "check the API key" in str(caught.value)
    assert len(fake.requests) == 1 and not [e for e in events if e[0] == "provider.retry"]
    assert reg.entries["fake"].breaker.failures == 0  # a bad key is not an outage
    await reg.stop()


async def test_keys_never_reach_logs_events_or_errors(fake: Any, oxios_home: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Even a server that echoes the key back in its error text does not get it into our logs or events."""
    key = FAKE_OPENAI_KEY if fake.kind == "openai" else FAKE_ANTHROPIC_KEY
    caplog.set_level(logging.DEBUG)
    reg, events = registry(oxios_home, fake.config(), sleep=_no_sleep)
    fake.enqueue_error(500, f"internal error while checking key {key}")
    fake.enqueue_text("fine")
    assert [e async for e in reg.stream(ModelRequest(model="", messages=[Message.user("hi")]))][-1] == StopEvent(
        reason="end_turn"
    )
    fake.enqueue_error(400, f"bad request from {key}")
    with pytest.raises(Exception) as caught:
        await reg.complete(ModelRequest(model="", messages=[Message.user("hi")]))
    assert key not in str(caught.value) and "[REDACTED]" in str(caught.value)
    assert [e for e in events if e[0] == "provider.retry"]
    assert key not in caplog.text and key not in repr(events) and key not in repr(reg.status()) and key not in repr(reg.models())
    assert fake.headers[0].get("authorization") == f"Bearer {key}"  # it did go to the server, and only there
    await reg.stop()


async def test_stream_cut_after_first_delta_is_raised_not_retried(fake_anthropic: Any, oxios_home: Path) -> None:
    reg, _ = registry(oxios_home, fake_anthropic.config(), sleep=_no_sleep)
    fake_anthropic.enqueue_abort("half an ans")
    seen: list[Any] = []
    with pytest.raises(ProviderUnavailableError, match="ended before message_stop"):
        async for event in reg.stream(ModelRequest(model="", messages=[Message.user("hi")])):
            seen.append(event)
    assert seen and all(isinstance(e, TextDelta) for e in seen)
    assert len(fake_anthropic.requests) == 1  # partial output cannot be unsaid, so no retry
    assert reg.entries["fake"].breaker.failures == 1
    await reg.stop()


async def test_fake_anthropic_accepts_x_api_key(fake_anthropic: Any) -> None:
    import httpx

    fake_anthropic.enqueue_text("ok")
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    async with httpx.AsyncClient() as client:
        good = await client.post(f"{fake_anthropic.base_url}/v1/messages", json=body, headers={"x-api-key": FAKE_ANTHROPIC_KEY})
        bad = await client.post(f"{fake_anthropic.base_url}/v1/messages", json=body, headers={"x-api-key": "nope"})
    assert good.status_code == 200 and good.json()["content"] == [{"type": "text", "text": "ok"}]
    assert bad.status_code == 401 and bad.json()["error"]["type"] == "authentication_error"


def test_broken_tool_arguments_are_handed_on_not_fatal() -> None:
    assert parse_tool_arguments('{"path": "."}') == {"path": "."}
    assert parse_tool_arguments("") == {}
    assert parse_tool_arguments('{"path": ') == {"_invalid_json": '{"path": '}
    assert parse_tool_arguments("[1, 2]") == {"_invalid_json": "[1, 2]"}


async def _no_sleep(delay: float) -> None:
    return None
