"""Retries, circuit breaker, fallbacks and the no-provider message of the providers service."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest

from oxios.builtin.providers import _anthropic, _openai
from oxios.config import load
from oxios.providers import (
    BreakerOpenError,
    NoProviderError,
    ProviderUnavailableError,
    RateLimitedError,
    UnknownModelError,
)
from oxios.providers.registry import ProviderRegistry
from oxios.testing import ScriptedProvider
from oxios_hookspecs import Message, ModelRequest, StopEvent, TextDelta

REQUEST = ModelRequest(model="", messages=[Message.user("hello")])


@pytest.fixture(params=["openai", "anthropic"])
def fake(request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue(f"fake_{request.param}")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Sleeps(list):
    """Records the delays the registry asked for, without waiting."""

    async def __call__(self, delay: float) -> None:
        self.append(delay)


def make(
    home: Path, overrides: dict[str, Any], *, scripted: dict[str, ScriptedProvider] | None = None, **kwargs: Any
) -> tuple[ProviderRegistry, list[tuple[str, dict[str, Any]]]]:
    kinds: dict[str, Any] = {"openai": _openai, "anthropic": _anthropic}
    if scripted:
        kinds["scripted"] = lambda name, settings: scripted[name]
    events: list[tuple[str, dict[str, Any]]] = []
    registry = ProviderRegistry(
        load(home / "config.toml", overrides=overrides), kinds, publish=lambda t, **d: events.append((t, d)), **kwargs
    )
    return registry, events


def scripted_config(*names: str, llm: dict[str, Any] | None = None, default: str = "") -> dict[str, Any]:
    return {
        "providers": {n: {"kind": "scripted"} for n in names},
        "kernel": {"default_provider": default or names[0]},
        "llm": {"retry_base_delay_secs": 0.5, **(llm or {})},
    }


async def text_of(registry: ProviderRegistry, request: ModelRequest = REQUEST) -> str:
    return "".join([e.text async for e in registry.stream(request) if isinstance(e, TextDelta)])


# -- retries against the real SDKs and the fakes -------------------------------------


@pytest.mark.parametrize("streaming", [True, False])
async def test_429_retried_after_retry_after(fake_openai: Any, oxios_home: Path, streaming: bool) -> None:
    sleeps = Sleeps()
    registry, events = make(oxios_home, fake_openai.config(), sleep=sleeps)
    fake_openai.enqueue_error(429, "slow down", retry_after=2).enqueue_text("after the wait")
    if streaming:
        assert await text_of(registry) == "after the wait"
    else:
        assert (await registry.complete(REQUEST)).message.text == "after the wait"
    assert sleeps == [2.0] and len(fake_openai.requests) == 2
    retry = [d for t, d in events if t == "provider.retry"]
    assert retry == [
        {"provider": "fake", "model": "fake-model", "attempt": 1, "delay_secs": 2.0, "status": 429, "error": retry[0]["error"]}
    ]
    await registry.stop()


async def test_5xx_retried_with_exponential_backoff_and_jitter(fake_anthropic: Any, oxios_home: Path) -> None:
    sleeps = Sleeps()
    overrides = fake_anthropic.config()
    overrides["llm"] = {"retry_base_delay_secs": 1.0, "max_retries": 3}
    registry, _ = make(oxios_home, overrides, sleep=sleeps, rng=random.Random(7))
    fake_anthropic.enqueue_error(500).enqueue_error(529, "Overloaded").enqueue_error(503).enqueue_text("third time lucky")
    assert await text_of(registry) == "third time lucky"
    assert len(sleeps) == 3 and len(fake_anthropic.requests) == 4
    for attempt, delay in enumerate(sleeps):
        assert 2**attempt / 2 <= delay <= 2**attempt  # equal jitter around 1 s, 2 s, 4 s
    assert len(set(sleeps)) == 3
    await registry.stop()


async def test_error_event_inside_a_stream_is_retried(fake: Any, oxios_home: Path) -> None:
    """HTTP 200 and then an error event (an overload mid-stream) before any text: retried like a 5xx."""
    sleeps = Sleeps()
    registry, _ = make(oxios_home, fake.config(), sleep=sleeps)
    kind = "overloaded_error" if fake.kind == "anthropic" else "server_error"
    fake.enqueue_stream_error(kind, "Overloaded").enqueue_text("recovered")
    assert await text_of(registry) == "recovered"
    assert len(sleeps) == 1 and len(fake.requests) == 2
    fake.enqueue_stream_error("invalid_request_error", "bad tool schema")
    with pytest.raises(Exception, match="bad tool schema") as caught:
        await text_of(registry)
    assert getattr(caught.value, "retryable", None) is False and len(fake.requests) == 3
    await registry.stop()


async def test_retries_exhausted_raise_the_last_error(fake_openai: Any, oxios_home: Path) -> None:
    sleeps = Sleeps()
    overrides = fake_openai.config()
    overrides["llm"] = {"max_retries": 2}
    registry, _ = make(oxios_home, overrides, sleep=sleeps)
    fake_openai.enqueue_error(502, times=3)
    with pytest.raises(ProviderUnavailableError) as caught:
        await registry.complete(REQUEST)
    assert caught.value.status == 502 and len(fake_openai.requests) == 3 and len(sleeps) == 2
    await registry.stop()


async def test_retry_after_longer_than_the_cap_fails_without_waiting(fake_openai: Any, oxios_home: Path) -> None:
    sleeps = Sleeps()
    registry, _ = make(oxios_home, fake_openai.config(), sleep=sleeps)
    fake_openai.enqueue_error(429, "quota", retry_after=3600)
    with pytest.raises(RateLimitedError) as caught:
        await text_of(registry)
    assert caught.value.retry_after == 3600 and sleeps == [] and len(fake_openai.requests) == 1
    await registry.stop()


async def test_client_errors_are_not_retried(fake_anthropic: Any, oxios_home: Path) -> None:
    sleeps = Sleeps()
    registry, _ = make(oxios_home, fake_anthropic.config(), sleep=sleeps)
    fake_anthropic.enqueue_error(400, "prompt is too long")
    with pytest.raises(Exception, match="prompt is too long") as caught:
        await registry.complete(REQUEST)
    assert not getattr(caught.value, "retryable", True) and sleeps == [] and len(fake_anthropic.requests) == 1
    await registry.stop()


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_timeouts_are_retried_then_reported(kind: str, request: pytest.FixtureRequest, oxios_home: Path) -> None:
    fake = request.getfixturevalue(f"fake_{kind}")
    overrides = fake.config(timeout_secs=1.0)  # roomy enough for the quick reply on a loaded machine
    overrides["llm"] = {"max_retries": 1}
    sleeps = Sleeps()
    registry, _ = make(oxios_home, overrides, sleep=sleeps)
    fake.enqueue_slow(3.0).enqueue_slow(3.0)
    with pytest.raises(ProviderUnavailableError, match="timed out"):
        await registry.complete(REQUEST)
    assert len(fake.requests) == 2 and len(sleeps) == 1
    fake.enqueue_text("quick")
    assert await text_of(registry) == "quick"
    await registry.stop()


async def test_unreachable_server_is_retried_and_named_without_credentials(oxios_home: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    local = {"kind": "openai", "base_url": f"http://user:hunter2@127.0.0.1:{port}/v1", "default_model": "llama3.2"}
    sleeps = Sleeps()
    registry, _ = make(oxios_home, {"providers": {"local": local}, "llm": {"max_retries": 1}}, sleep=sleeps)
    with pytest.raises(ProviderUnavailableError, match="unreachable") as caught:
        await text_of(registry)
    assert f"at http://127.0.0.1:{port}/v1" in str(caught.value) and "hunter2" not in str(caught.value)
    assert len(sleeps) == 1
    await registry.stop()


# -- the circuit breaker (scripted provider, fake clock) ---------------------------------


async def test_breaker_closed_open_half_open_closed(oxios_home: Path) -> None:
    clock = FakeClock()
    model = ScriptedProvider("primary")
    registry, events = make(
        oxios_home,
        scripted_config("primary", llm={"max_retries": 0, "breaker_failure_threshold": 2, "breaker_cooldown_secs": 30}),
        scripted={"primary": model},
        clock=clock,
        sleep=Sleeps(),
    )
    down = ProviderUnavailableError("upstream 503", status=503)
    model.enqueue_error(down).enqueue_error(down)
    for _ in range(2):
        with pytest.raises(ProviderUnavailableError):
            await text_of(registry)
    breaker = registry.entries["primary"].breaker
    assert breaker.state == "open" and registry.status()["providers"]["primary"]["breaker"]["state"] == "open"
    assert registry.status()["healthy"] is False and "circuit breaker open for primary" in registry.status()["detail"]

    # Open: fail fast, the provider is not called, the message says why and when.
    with pytest.raises(BreakerOpenError, match="circuit breaker is open") as caught:
        await registry.complete(REQUEST)
    assert "30s" in str(caught.value) and len(model.requests) == 2
    row = registry.models()[0]
    assert row["usable"] is False and row["breaker"] == "open" and "circuit breaker open" in row["reason"]

    # Cool-down over: one probe; it fails, so the breaker opens again.
    clock.now += 30
    assert registry.status()["providers"]["primary"]["breaker"]["state"] == "half_open"
    model.enqueue_error(down)
    with pytest.raises(ProviderUnavailableError):
        await registry.complete(REQUEST)
    assert breaker.state == "open" and len(model.requests) == 3
    with pytest.raises(BreakerOpenError):
        await text_of(registry)

    # Next cool-down: the probe succeeds and the breaker closes.
    clock.now += 30
    model.enqueue_text("back")
    assert await text_of(registry) == "back"
    assert breaker.state == "closed" and breaker.failures == 0 and registry.status()["healthy"] is True
    states = [d["state"] for t, d in events if t == "provider.breaker"]
    assert states == ["open", "half_open", "open", "half_open", "closed"]


async def probing(home: Path) -> tuple[ProviderRegistry, ScriptedProvider]:
    """A registry whose one provider's breaker tripped and cooled down: the next call is the half-open probe."""
    clock = FakeClock()
    model = ScriptedProvider("primary")
    registry, _ = make(
        home,
        scripted_config("primary", llm={"max_retries": 0, "breaker_failure_threshold": 1, "breaker_cooldown_secs": 5}),
        scripted={"primary": model},
        clock=clock,
    )
    model.enqueue_error(ProviderUnavailableError("down"))
    with pytest.raises(ProviderUnavailableError):
        await registry.complete(REQUEST)
    clock.now += 5
    return registry, model


async def test_half_open_lets_exactly_one_probe_through(oxios_home: Path) -> None:
    registry, model = await probing(oxios_home)
    model.enqueue_hang("probing")
    probe = asyncio.create_task(text_of(registry))
    while len(model.requests) < 2:
        await asyncio.sleep(0)
    with pytest.raises(BreakerOpenError):
        await registry.complete(REQUEST)  # a second caller while the probe is out fails fast
    assert len(model.requests) == 2
    probe.cancel()  # a cancelled probe frees the slot without a verdict
    with pytest.raises(asyncio.CancelledError):
        await probe
    model.enqueue_text("ok")
    assert (await registry.complete(REQUEST)).message.text == "ok"
    assert registry.entries["primary"].breaker.state == "closed"


async def test_closing_a_stream_early_frees_the_probe_without_a_verdict(oxios_home: Path) -> None:
    registry, model = await probing(oxios_home)
    model.enqueue_text("a long answer the caller stops reading")
    stream = registry.stream(REQUEST)
    assert isinstance(await anext(stream), TextDelta)
    await stream.aclose()  # the caller stops reading the probe's reply: neither success nor outage
    breaker = registry.entries["primary"].breaker
    assert breaker.state == "half_open" and breaker.failures == 1
    model.enqueue_text("ok")
    assert (await registry.complete(REQUEST)).message.text == "ok"  # the probe slot is free again
    assert breaker.state == "closed"


async def test_breaker_state_and_events_through_the_kernel(
    scripted_provider: ScriptedProvider, oxios_kernel_factory: Any
) -> None:
    config = scripted_provider.config({"llm": {"max_retries": 0, "breaker_failure_threshold": 1, "breaker_cooldown_secs": 60}})
    async with oxios_kernel_factory(plugins=[scripted_provider.plugin()], config=config) as kernel:
        events = kernel.subscribe(types={"provider.breaker"})
        registry = kernel.service("providers")
        scripted_provider.enqueue_error(ProviderUnavailableError("down", status=500))
        with pytest.raises(ProviderUnavailableError):
            await registry.complete(REQUEST)
        event = await events.get(timeout=5)
        assert event.type == "provider.breaker" and event.data["state"] == "open" and event.data["provider"] == "scripted"
        component = kernel.status()["components"]["providers"]
        assert component["providers"]["scripted"]["breaker"]["state"] == "open" and component["healthy"] is False
        assert kernel.rpc["providers.models"]()[0]["breaker"] == "open"
        events.close()


async def test_scripted_provider_errors_that_are_not_outages_pass_straight_through(oxios_home: Path) -> None:
    model = ScriptedProvider("primary")
    registry, _ = make(oxios_home, scripted_config("primary"), scripted={"primary": model}, sleep=Sleeps())
    with pytest.raises(AssertionError, match="ran dry"):
        await text_of(registry)
    assert registry.entries["primary"].breaker.failures == 0
    model.exhausted = None


# -- fallbacks ---------------------------------------------------------------------------


async def test_fallback_model_on_another_provider(fake_openai: Any, fake_anthropic: Any, oxios_home: Path) -> None:
    overrides = fake_openai.config("gpt")
    overrides["providers"].update(fake_anthropic.config("claude")["providers"])
    overrides["llm"] = {"max_retries": 1, "fallback_models": ["claude/claude-backup"]}
    sleeps = Sleeps()
    registry, events = make(oxios_home, overrides, sleep=sleeps)
    fake_openai.enqueue_error(500, times=2)
    fake_anthropic.enqueue_text("answered by the fallback")
    assert await text_of(registry) == "answered by the fallback"
    assert fake_anthropic.last["model"] == "claude-backup" and len(fake_openai.requests) == 2
    assert ("provider.fallback", {"provider": "claude", "model": "claude-backup", "error": events[-1][1]["error"]}) == events[-1]
    await registry.stop()


async def test_breaker_opening_between_retries_of_a_stream_moves_on_to_the_fallback(oxios_home: Path) -> None:
    primary, backup = ScriptedProvider("primary"), ScriptedProvider("backup")
    config = scripted_config(
        "primary", "backup", llm={"max_retries": 5, "breaker_failure_threshold": 2, "fallback_models": ["backup/spare"]}
    )
    sleeps = Sleeps()
    registry, events = make(oxios_home, config, scripted={"primary": primary, "backup": backup}, clock=FakeClock(), sleep=sleeps)
    down = ProviderUnavailableError("upstream 503", status=503)
    primary.enqueue_error(down).enqueue_error(down)
    backup.enqueue_text("from the spare")
    assert await text_of(registry) == "from the spare"
    assert len(primary.requests) == 2 and len(sleeps) == 1  # no retries left to spend on an open breaker
    assert [t for t, _ in events] == ["provider.retry", "provider.breaker", "provider.fallback"]
    assert events[1][1]["state"] == "open" and events[2][1]["model"] == "spare"


async def test_stream_cut_after_its_first_token_is_an_outage_but_neither_retried_nor_replaced(
    fake_anthropic: Any, oxios_home: Path
) -> None:
    """The caller already has part of the answer: no retry, no fallback, no "retry" event; the breaker still counts it."""
    backup = ScriptedProvider("backup")
    overrides = fake_anthropic.config("claude")
    overrides["providers"]["backup"] = {"kind": "scripted"}
    overrides["llm"] = {"max_retries": 2, "breaker_failure_threshold": 2, "fallback_models": ["backup/spare"]}
    sleeps = Sleeps()
    registry, events = make(oxios_home, overrides, scripted={"backup": backup}, clock=FakeClock(), sleep=sleeps)
    for cut in (1, 2):
        fake_anthropic.enqueue_abort("half an ans")
        seen: list[str] = []
        with pytest.raises(ProviderUnavailableError, match="ended before message_stop"):
            async for event in registry.stream(REQUEST):
                seen.append(event.text if isinstance(event, TextDelta) else "")
        assert "".join(seen) == "half an ans" and len(fake_anthropic.requests) == cut
        assert registry.entries["claude"].breaker.failures == cut
        assert backup.requests == [] and sleeps == []
    assert [(t, d.get("state")) for t, d in events] == [("provider.breaker", "open")]  # the second cut opened it
    await registry.stop()


async def test_open_breaker_falls_back_without_calling_the_primary(oxios_home: Path) -> None:
    primary, backup = ScriptedProvider("primary"), ScriptedProvider("backup")
    config = scripted_config(
        "primary", "backup", llm={"max_retries": 0, "breaker_failure_threshold": 1, "fallback_models": ["backup/spare-model"]}
    )
    registry, _ = make(oxios_home, config, scripted={"primary": primary, "backup": backup}, clock=FakeClock())
    primary.enqueue_error(ProviderUnavailableError("down"))
    backup.enqueue_text("spare 1").enqueue_text("spare 2")
    assert (await registry.complete(REQUEST)).message.text == "spare 1"
    assert await text_of(registry) == "spare 2"
    assert len(primary.requests) == 1 and [r.model for r in backup.requests] == ["spare-model", "spare-model"]


async def test_when_every_fallback_fails_the_primary_error_is_raised(oxios_home: Path) -> None:
    primary, backup = ScriptedProvider("primary"), ScriptedProvider("backup")
    config = scripted_config("primary", "backup", llm={"max_retries": 0, "fallback_models": ["backup/spare"]})
    registry, events = make(oxios_home, config, scripted={"primary": primary, "backup": backup})
    primary.enqueue_error(ProviderUnavailableError("primary is down", status=503))
    backup.enqueue_error(RateLimitedError("backup is busy"))
    with pytest.raises(ProviderUnavailableError, match="primary is down"):
        await text_of(registry)
    assert [t for t, _ in events] == ["provider.fallback"] and len(backup.requests) == 1


async def test_unusable_fallbacks_are_skipped(oxios_home: Path) -> None:
    primary = ScriptedProvider("primary")
    config = scripted_config("primary", llm={"max_retries": 0, "fallback_models": ["anthropic/claude-haiku-4-5"]})
    config["providers"]["anthropic"] = {"kind": "anthropic"}  # no key anywhere
    registry, _ = make(oxios_home, config, scripted={"primary": primary})
    primary.enqueue_error(ProviderUnavailableError("down", status=503))
    with pytest.raises(ProviderUnavailableError, match="down"):  # the outage, not "no API key"
        await registry.complete(REQUEST)


async def test_plugin_errors_with_a_retryable_flag_are_retried(oxios_home: Path) -> None:
    class PluginHiccup(Exception):  # what a provider plugin that cannot import oxios raises
        retryable = True
        status = 503
        retry_after = 0.25

    model = ScriptedProvider("primary")
    sleeps = Sleeps()
    registry, _ = make(oxios_home, scripted_config("primary"), scripted={"primary": model}, sleep=sleeps)
    model.enqueue_error(PluginHiccup("busy")).enqueue_text("ok")
    assert await text_of(registry) == "ok" and sleeps == [0.25]


async def test_no_fallback_for_errors_that_are_the_callers(oxios_home: Path) -> None:
    from oxios.providers import ProviderError

    primary, backup = ScriptedProvider("primary"), ScriptedProvider("backup")
    config = scripted_config("primary", "backup", llm={"fallback_models": ["backup/x"]})
    registry, _ = make(oxios_home, config, scripted={"primary": primary, "backup": backup})
    primary.enqueue_error(ProviderError("invalid tool schema", status=400))
    with pytest.raises(ProviderError, match="invalid tool schema"):
        await registry.complete(REQUEST)
    assert backup.requests == []


# -- selection and the no-provider message -------------------------------------------------------


async def test_no_provider_usable_says_how_to_configure_one(oxios_home: Path) -> None:
    registry, _ = make(oxios_home, {})
    assert registry.implicit and set(registry.entries) == {"anthropic", "openai"} and registry.usable() == []
    for call in (lambda: registry.complete(REQUEST), lambda: text_of(registry)):
        with pytest.raises(NoProviderError) as caught:
            await call()
        message = str(caught.value)
        assert "ANTHROPIC_API_KEY" in message and "OPENAI_API_KEY" in message
        assert "oxios config set providers.local.kind openai" in message and "base_url" in message
    assert all(not row["usable"] and "no API key" in row["reason"] for row in registry.models())


def test_implicit_providers_are_usable_iff_their_key_is_set(oxios_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-000000000")
    registry, _ = make(oxios_home, {})
    assert registry.usable() == ["anthropic"]
    provider, model = registry.default()
    assert provider.name == "anthropic" and model == "claude-sonnet-4-5"
    assert registry.resolve("gpt-4o")[0].name == "openai"  # a known OpenAI model maps to its provider


def test_key_resolution_order(oxios_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    providers = {
        "explicit": {"kind": "openai", "api_key": "sk-from-config-00000"},
        "custom_env": {"kind": "openai", "api_key_env": "MY_OPENAI_KEY"},
        "standard": {"kind": "anthropic"},
        "local": {"kind": "openai", "base_url": "http://127.0.0.1:11434/v1", "default_model": "llama3.2"},
        "local_no_model": {"kind": "openai", "base_url": "http://127.0.0.1:8000/v1"},
        "typo": {"kind": "antropic"},
    }
    registry, _ = make(oxios_home, {"providers": providers})
    usable = {name: entry.usable() for name, entry in registry.entries.items()}
    assert usable["explicit"] == (True, "")
    assert usable["custom_env"][0] is False and "$MY_OPENAI_KEY or $OPENAI_API_KEY" in usable["custom_env"][1]
    assert usable["standard"][0] is False and "$ANTHROPIC_API_KEY" in usable["standard"][1]
    assert usable["local"] == (True, "")  # local servers need no key
    assert usable["local_no_model"][0] is False and "providers.local_no_model.default_model" in usable["local_no_model"][1]
    assert (
        usable["typo"][0] is False
        and "unknown provider kind 'antropic'" in usable["typo"][1]
        and "anthropic" in usable["typo"][1]
    )
    monkeypatch.setenv("MY_OPENAI_KEY", "sk-custom-000000000")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-standard-0000000")
    assert registry.entries["custom_env"].usable() == (True, "") and registry.entries["standard"].usable() == (True, "")
    assert registry.entries["custom_env"].provider.settings.api_key("OPENAI_API_KEY") == "sk-custom-000000000"
    assert "sk-" not in repr(registry.entries["explicit"].provider.settings)


def test_model_references(oxios_home: Path) -> None:
    providers = {
        "local": {
            "kind": "openai",
            "base_url": "http://127.0.0.1:11434/v1",
            "default_model": "llama3.2",
            "models": ["llama3.2", "qwen3"],
        },
        "vllm": {"kind": "openai", "base_url": "http://127.0.0.1:8000/v1", "default_model": "meta-llama/Llama-3.1-8B-Instruct"},
    }
    registry, _ = make(oxios_home, {"providers": providers, "kernel": {"default_provider": "vllm"}})
    assert [
        (p.name, m)
        for p, m in [
            registry.resolve(""),
            registry.resolve("local/qwen3"),
            registry.resolve("qwen3"),
            registry.resolve("meta-llama/Llama-3.1-70B"),
            registry.resolve("x", provider="local"),
        ]
    ] == [
        ("vllm", "meta-llama/Llama-3.1-8B-Instruct"),
        ("local", "qwen3"),
        ("local", "qwen3"),
        ("vllm", "meta-llama/Llama-3.1-70B"),  # a slash that is not a provider name is part of the model id
        ("local", "x"),
    ]
    with pytest.raises(UnknownModelError, match="no provider named 'nope'"):
        registry.resolve("", provider="nope")
    assert registry.model_info("local/qwen3").context_window == 128_000
    defaults = [r for r in registry.models() if r["default"]]
    assert [(r["provider"], r["model"]) for r in defaults] == [("vllm", "meta-llama/Llama-3.1-8B-Instruct")]


async def test_scripted_provider_streams_and_records(scripted_kernel: Any, scripted_provider: ScriptedProvider) -> None:
    scripted_provider.enqueue_tool_call("ls", {"path": "."}).enqueue_text("two files")
    registry = scripted_kernel.service("providers")
    first = [e async for e in registry.stream(REQUEST)]
    assert first[0].name == "ls" and first[0].id == "call_1" and first[-1] == StopEvent(reason="tool_use")
    assert await text_of(registry) == "two files"
    assert [r.model for r in scripted_provider.requests] == ["scripted-model", "scripted-model"]
    scripted_provider.assert_drained()
