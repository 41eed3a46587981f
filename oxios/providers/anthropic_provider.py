"""Anthropic's Messages API through the official ``anthropic`` SDK (imported at first use)."""

from __future__ import annotations

import importlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from oxios_hookspecs import (
    ContentBlock,
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
    ToolResultBlock,
    ToolSpec,
    ToolUseBlock,
    Usage,
    UsageEvent,
)

from .base import ProviderSettings, body_excerpt, decode_error, malformed_response, parse_tool_arguments, translate_sdk_error
from .errors import ProviderAuthError, ProviderUnavailableError

log = logging.getLogger(__name__)

API_KEY_ENV = "ANTHROPIC_API_KEY"
DEFAULT_MODEL = "claude-sonnet-4-5"
# id -> (context window, $ per million input tokens, $ per million output tokens)
CATALOG: dict[str, tuple[int, float, float]] = {
    "claude-sonnet-4-5": (200_000, 3.0, 15.0),
    "claude-opus-4-1": (200_000, 15.0, 75.0),
    "claude-haiku-4-5": (200_000, 1.0, 5.0),
}
STOP_REASONS: dict[str, StopReason] = {
    "end_turn": "end_turn",
    "tool_use": "tool_use",
    "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence",
    "model_context_window_exceeded": "max_tokens",
    "pause_turn": "end_turn",
    "refusal": "end_turn",
}


def tool_schema(spec: ToolSpec) -> dict[str, Any]:
    return {"name": spec.name, "description": spec.description, "input_schema": spec.parameters}


def _block(block: ContentBlock) -> dict[str, Any] | None:
    if isinstance(block, TextBlock):
        return {"type": "text", "text": block.text} if block.text else None
    if isinstance(block, ToolUseBlock):
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
    if isinstance(block, ToolResultBlock):
        return {"type": "tool_result", "tool_use_id": block.tool_use_id, "content": block.content, "is_error": block.is_error}
    return None


def wire_messages(messages: list[Message]) -> list[dict[str, Any]]:
    """Oxios messages as Messages API params. Empty messages are dropped (the API rejects them);
    tool results go first in a user turn, as the API requires."""
    out: list[dict[str, Any]] = []
    for message in messages:
        blocks = [b for b in (_block(x) for x in message.content) if b is not None]
        blocks.sort(key=lambda b: b["type"] != "tool_result")
        if blocks:
            out.append({"role": message.role, "content": blocks})
    return out


def usage_of(raw: Any) -> Usage:
    if raw is None:
        return Usage()
    cached = (getattr(raw, "cache_creation_input_tokens", 0) or 0) + (getattr(raw, "cache_read_input_tokens", 0) or 0)
    return Usage(
        input_tokens=(getattr(raw, "input_tokens", 0) or 0) + cached, output_tokens=getattr(raw, "output_tokens", 0) or 0
    )


class AnthropicProvider:
    kind = "anthropic"

    def __init__(self, name: str, settings: dict[str, Any]) -> None:
        self.name = name
        self.settings = ProviderSettings(name, settings)
        self.default_model = self.settings.default_model or (self.settings.models[0] if self.settings.models else DEFAULT_MODEL)
        self._client: Any = None
        self._sdk: Any = None

    def __repr__(self) -> str:
        return f"AnthropicProvider(name={self.name!r})"

    def usable(self) -> tuple[bool, str]:
        if self.settings.api_key(API_KEY_ENV):
            return True, ""
        return False, self.settings.key_hint(API_KEY_ENV)

    def models(self) -> list[ModelInfo]:
        ids = list(dict.fromkeys(([self.default_model] if self.default_model else []) + (self.settings.models or list(CATALOG))))
        infos = []
        for model in ids:
            window, price_in, price_out = CATALOG.get(model, (200_000, 0.0, 0.0))
            infos.append(
                ModelInfo(
                    id=model,
                    provider=self.name,
                    context_window=self.settings.context_window or window,
                    input_price_per_mtok=price_in,
                    output_price_per_mtok=price_out,
                )
            )
        return infos

    def _get_client(self) -> Any:
        if self._client is None:
            key = self.settings.api_key(API_KEY_ENV)
            if not key:
                raise ProviderAuthError(f"provider {self.name!r}: {self.settings.key_hint(API_KEY_ENV)}", provider=self.name)
            self._sdk = importlib.import_module("anthropic")
            kwargs: dict[str, Any] = {"api_key": key, "timeout": self.settings.timeout_secs, "max_retries": 0}
            if self.settings.base_url:
                kwargs["base_url"] = self.settings.base_url
            # The registry retries (honouring Retry-After and the breaker), so the SDK must not.
            self._client = self._sdk.AsyncAnthropic(**kwargs)
        return self._client

    def _params(self, request: ModelRequest) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": request.model or self.default_model,
            "max_tokens": request.max_tokens,
            "messages": wire_messages(request.messages),
        }
        if request.system:
            params["system"] = request.system
        if request.tools:
            params["tools"] = [tool_schema(t) for t in request.tools]
        # anthropic 2.x dropped ``temperature`` from messages.create; it is not sent.
        return params

    API = "an Anthropic message"

    def _error(self, err: BaseException) -> BaseException:
        base_url = self.settings.base_url
        return translate_sdk_error(err, self.name, self._sdk, base_url) or decode_error(err, self.name, self.API, base_url) or err

    async def complete(self, request: ModelRequest) -> ModelResponse:
        client = self._get_client()
        try:
            raw = await client.messages.create(**self._params(request))
        except Exception as err:
            raise self._error(err) from err
        try:
            return self._response(raw, request)
        except (AttributeError, TypeError, IndexError, KeyError, ValueError) as err:
            # The SDK hands back the text of a non-JSON body, or a model with fields missing.
            raise malformed_response(self.name, self.API, body_excerpt(raw), self.settings.base_url) from err

    def _response(self, raw: Any, request: ModelRequest) -> ModelResponse:
        content: list[ContentBlock] = []
        for block in raw.content:
            if block.type == "text":
                content.append(TextBlock(text=block.text))
            elif block.type == "tool_use":
                content.append(ToolUseBlock(id=block.id, name=block.name, input=dict(block.input or {})))
        return ModelResponse(
            message=Message(role="assistant", content=content),
            usage=usage_of(raw.usage),
            stop_reason=STOP_REASONS.get(raw.stop_reason or "end_turn", "end_turn"),
            model=raw.model or request.model,
        )

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        client = self._get_client()
        try:
            events = await client.messages.create(**self._params(request), stream=True)
        except Exception as err:
            raise self._error(err) from err
        usage = Usage()
        stop: StopReason = "end_turn"
        tools: dict[int, dict[str, Any]] = {}  # content-block index -> {id, name, json}
        finished = False
        try:
            async with events:
                async for event in events:
                    kind = event.type
                    if kind == "message_start":
                        usage = usage_of(event.message.usage)
                    elif kind == "content_block_start":
                        block = event.content_block
                        if block.type == "tool_use":
                            tools[event.index] = {"id": block.id, "name": block.name, "json": ""}
                        elif block.type == "text" and block.text:
                            yield TextDelta(text=block.text)
                    elif kind == "content_block_delta":
                        delta = event.delta
                        if delta.type == "text_delta" and delta.text:
                            yield TextDelta(text=delta.text)
                        elif delta.type == "input_json_delta" and event.index in tools:
                            tools[event.index]["json"] += delta.partial_json
                    elif kind == "content_block_stop" and event.index in tools:
                        call = tools.pop(event.index)
                        yield ToolCallEvent(id=call["id"], name=call["name"], arguments=parse_tool_arguments(call["json"]))
                    elif kind == "message_delta":
                        stop = STOP_REASONS.get(event.delta.stop_reason or "end_turn", "end_turn")
                        if event.usage is not None and event.usage.output_tokens is not None:
                            usage = Usage(input_tokens=usage.input_tokens, output_tokens=event.usage.output_tokens)
                    elif kind == "message_stop":
                        finished = True
        except Exception as err:
            raise self._error(err) from err
        if not finished:
            raise ProviderUnavailableError(f"provider {self.name!r}: the stream ended before message_stop", provider=self.name)
        yield UsageEvent(usage=usage)
        yield StopEvent(reason=stop)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


def factory(name: str, settings: dict[str, Any]) -> AnthropicProvider:
    return AnthropicProvider(name, settings)
