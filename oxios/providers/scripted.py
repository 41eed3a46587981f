"""A provider that replays scripted replies: the model stand-in for kernel tests.

It records every :class:`ModelRequest` it receives (``.requests``), streams
each scripted text in a few deltas, and fails loudly with
:class:`ScriptExhausted` (an ``AssertionError``) when a request arrives and
nothing is queued, so a test never silently runs against a model that
"answered nothing". See :mod:`oxios.testing` for the fixtures.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import msgspec

from oxios_hookspecs import (
    Message,
    ModelInfo,
    ModelRequest,
    ModelResponse,
    StopEvent,
    StopReason,
    StreamEvent,
    TextBlock,
    TextDelta,
    ToolCallEvent,
    ToolUseBlock,
    Usage,
    UsageEvent,
    hookimpl,
)


class ScriptExhausted(AssertionError):
    """A request reached a :class:`ScriptedProvider` whose queue was empty."""


class ScriptedTurn(msgspec.Struct, kw_only=True):
    """One scripted model reply: text and/or tool calls, or an error to raise."""

    text: str = ""
    tool_calls: list[ToolCallEvent] = []
    stop_reason: StopReason | None = None
    usage: Usage | None = None
    hang: bool = False  # stream the text, then wait forever (cancellation and zombie tests)


ToolCallSpec = ToolCallEvent | tuple[str, dict[str, Any]] | tuple[str, dict[str, Any], str]


def estimate_tokens(text: str) -> int:
    """A deterministic stand-in for a tokenizer: about four characters per token."""
    return max(1, (len(text) + 3) // 4) if text else 0


def _request_text(request: ModelRequest) -> str:
    parts = [request.system]
    for message in request.messages:
        for block in message.content:
            parts.append(getattr(block, "text", "") or getattr(block, "content", "") or "")
    return "".join(parts)


class ScriptedProvider:
    """Replays queued replies in order. Builder methods return ``self`` so calls chain."""

    kind = "scripted"

    def __init__(self, name: str = "scripted", *, model: str = "scripted-model", context_window: int = 200_000) -> None:
        self.name = name
        self.model = model
        self.default_model = model
        self.context_window = context_window
        self.requests: list[ModelRequest] = []
        self.exhausted: ScriptExhausted | None = None
        self._queue: deque[ScriptedTurn | BaseException | Callable[[ModelRequest], Any]] = deque()
        self._ids = itertools.count(1)

    # -- scripting ----------------------------------------------------------

    def enqueue_text(self, text: str, *, usage: Usage | None = None, stop_reason: StopReason = "end_turn") -> ScriptedProvider:
        """The next reply is ``text`` (a final answer)."""
        self._queue.append(ScriptedTurn(text=text, usage=usage, stop_reason=stop_reason))
        return self

    def enqueue_tool_call(
        self, name: str, args: dict[str, Any] | None = None, id: str | None = None, *, text: str = "", usage: Usage | None = None
    ) -> ScriptedProvider:
        """The next reply calls tool ``name`` with ``args`` (optionally after some text)."""
        return self.enqueue_turn(text=text, tool_calls=[(name, args or {}, id or self._new_id())], usage=usage)

    def enqueue_turn(
        self,
        text: str = "",
        tool_calls: Iterable[ToolCallSpec] = (),
        *,
        usage: Usage | None = None,
        stop_reason: StopReason | None = None,
    ) -> ScriptedProvider:
        """The next reply has ``text`` and several tool calls: ``(name, args)`` or ``(name, args, id)``."""
        calls = [self._call(spec) for spec in tool_calls]
        self._queue.append(ScriptedTurn(text=text, tool_calls=calls, usage=usage, stop_reason=stop_reason))
        return self

    def enqueue_error(self, exc: BaseException) -> ScriptedProvider:
        """The next request raises ``exc`` (e.g. ``ProviderUnavailableError("down", status=500)``)."""
        self._queue.append(exc)
        return self

    def enqueue_hang(self, text: str = "") -> ScriptedProvider:
        """The next reply streams ``text`` and then never finishes (until cancelled)."""
        self._queue.append(ScriptedTurn(text=text, hang=True))
        return self

    def enqueue_callable(self, fn: Callable[[ModelRequest], Any]) -> ScriptedProvider:
        """The next reply is computed: ``fn(request)`` returns a str, a :class:`ScriptedTurn` or raises."""
        self._queue.append(fn)
        return self

    @property
    def remaining(self) -> int:
        return len(self._queue)

    def assert_drained(self) -> None:
        """Fail when replies were queued but never requested (the test expected more turns)."""
        if self._queue:
            raise AssertionError(f"ScriptedProvider {self.name!r}: {len(self._queue)} scripted replies were never used")

    def _new_id(self) -> str:
        return f"call_{next(self._ids)}"

    def _call(self, spec: ToolCallSpec) -> ToolCallEvent:
        if isinstance(spec, ToolCallEvent):
            return spec
        name, args, *rest = spec
        return ToolCallEvent(id=rest[0] if rest else self._new_id(), name=name, arguments=dict(args))

    # -- installing into a kernel -------------------------------------------

    def plugin(self) -> Any:
        """A plugin object registering provider kind ``scripted`` that returns this instance."""
        provider = self

        class ScriptedProviderPlugin:
            @hookimpl
            def register_providers(self, register: Callable[..., None]) -> None:
                def factory(name: str, settings: dict[str, Any]) -> ScriptedProvider:
                    provider.name = name
                    return provider

                register("scripted", factory)

        plugin = ScriptedProviderPlugin()
        plugin.__name__ = f"scripted-provider-{self.name}"  # type: ignore[attr-defined]
        return plugin

    def config(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Config overrides that make this provider the only and default one."""
        tree: dict[str, Any] = {
            "providers": {self.name: {"kind": "scripted", "default_model": self.model}},
            "kernel": {"default_provider": self.name, "default_model": self.model},
            "llm": {"retry_base_delay_secs": 0.0},
            # Plain chat unless a test asks for the protocol ("#spec" still forces it), so a
            # script holds exactly the model calls the test expects (no routing call first).
            "orchestrator": {"default_mode": "chat"},
        }
        for section, values in (extra or {}).items():
            if isinstance(values, dict):
                tree.setdefault(section, {}).update(values)
            else:
                tree[section] = values
        return tree

    # -- the Provider protocol ----------------------------------------------

    def models(self) -> list[ModelInfo]:
        return [ModelInfo(id=self.model, provider=self.name, context_window=self.context_window)]

    def usable(self) -> tuple[bool, str]:
        return True, ""

    def _next(self, request: ModelRequest) -> ScriptedTurn:
        self.requests.append(request)
        if not self._queue:
            last = next((m.text for m in reversed(request.messages) if m.role == "user" and m.text), "")
            self.exhausted = ScriptExhausted(
                f"ScriptedProvider {self.name!r} ran dry: request #{len(self.requests)} (model {request.model!r}, "
                f"last user text {last[:120]!r}) arrived with no scripted reply left. "
                "Queue more with enqueue_text() / enqueue_tool_call() / enqueue_turn()."
            )
            raise self.exhausted
        item = self._queue.popleft()
        if isinstance(item, BaseException):
            raise item
        if callable(item) and not isinstance(item, ScriptedTurn):
            produced = item(request)
            return ScriptedTurn(text=produced) if isinstance(produced, str) else produced
        return item

    def _usage(self, turn: ScriptedTurn, request: ModelRequest) -> Usage:
        if turn.usage is not None:
            return turn.usage
        out = turn.text + "".join(c.name + msgspec.json.encode(c.arguments).decode() for c in turn.tool_calls)
        return Usage(input_tokens=estimate_tokens(_request_text(request)), output_tokens=estimate_tokens(out))

    @staticmethod
    def _stop(turn: ScriptedTurn) -> StopReason:
        return turn.stop_reason or ("tool_use" if turn.tool_calls else "end_turn")

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        turn = self._next(request)
        text = turn.text
        if text:
            # A few deltas, so consumers that join tokens are exercised.
            step = max(1, -(-len(text) // 3))
            for i in range(0, len(text), step):
                yield TextDelta(text=text[i : i + step])
                await asyncio.sleep(0)
        if turn.hang:
            await asyncio.Event().wait()
        for call in turn.tool_calls:
            yield call
        yield UsageEvent(usage=self._usage(turn, request))
        yield StopEvent(reason=self._stop(turn))

    async def complete(self, request: ModelRequest) -> ModelResponse:
        turn = self._next(request)
        if turn.hang:
            await asyncio.Event().wait()
        content: list[Any] = [TextBlock(text=turn.text)] if turn.text else []
        content += [ToolUseBlock(id=c.id, name=c.name, input=c.arguments) for c in turn.tool_calls]
        return ModelResponse(
            message=Message(role="assistant", content=content),
            usage=self._usage(turn, request),
            stop_reason=self._stop(turn),
            model=request.model or self.model,
        )


__all__ = ["ScriptExhausted", "ScriptedProvider", "ScriptedTurn", "estimate_tokens"]
