"""OpenAI chat completions through the official ``openai`` SDK (imported at first use).

With ``base_url`` set it speaks to any OpenAI-compatible server (Ollama,
vLLM, LM Studio, llama.cpp server); such servers usually need no key.
"""

from __future__ import annotations

import importlib
import json
import logging
import uuid
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

API_KEY_ENV = "OPENAI_API_KEY"
DEFAULT_MODEL = "gpt-4.1"
# Sent as the key to local servers that want none (the SDK refuses an empty key).
NO_KEY = "not-needed"
CATALOG: dict[str, tuple[int, float, float]] = {
    "gpt-4.1": (1_047_576, 2.0, 8.0),
    "gpt-4.1-mini": (1_047_576, 0.4, 1.6),
    "gpt-4o": (128_000, 2.5, 10.0),
    "gpt-4o-mini": (128_000, 0.15, 0.6),
}
STOP_REASONS: dict[str, StopReason] = {
    "stop": "end_turn",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "length": "max_tokens",
    "content_filter": "error",
}


def tool_schema(spec: ToolSpec) -> dict[str, Any]:
    return {"type": "function", "function": {"name": spec.name, "description": spec.description, "parameters": spec.parameters}}


def wire_messages(system: str, messages: list[Message]) -> list[dict[str, Any]]:
    """Oxios messages as chat-completions messages: tool results become ``role: tool`` messages."""
    out: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    for message in messages:
        text = "".join(b.text for b in message.content if isinstance(b, TextBlock))
        if message.role == "assistant":
            calls = [
                {"id": b.id, "type": "function", "function": {"name": b.name, "arguments": json.dumps(b.input)}}
                for b in message.content
                if isinstance(b, ToolUseBlock)
            ]
            if text or calls:
                entry: dict[str, Any] = {"role": "assistant", "content": text or None}
                if calls:
                    entry["tool_calls"] = calls
                out.append(entry)
            continue
        for block in message.content:
            if isinstance(block, ToolResultBlock):
                # Chat completions has no error flag on tool results; say it in the content.
                content = f"Error: {block.content}" if block.is_error else block.content
                out.append({"role": "tool", "tool_call_id": block.tool_use_id, "content": content})
        if text:
            out.append({"role": "user", "content": text})
    return out


def usage_of(raw: Any) -> Usage:
    if raw is None:
        return Usage()
    return Usage(input_tokens=getattr(raw, "prompt_tokens", 0) or 0, output_tokens=getattr(raw, "completion_tokens", 0) or 0)


def _stop(finish_reason: str | None, has_calls: bool) -> StopReason:
    # Some compatible servers report "stop" alongside tool calls; the calls decide.
    if has_calls:
        return "tool_use"
    return STOP_REASONS.get(finish_reason or "stop", "end_turn")


class OpenAIProvider:
    kind = "openai"

    def __init__(self, name: str, settings: dict[str, Any]) -> None:
        self.name = name
        self.settings = ProviderSettings(name, settings)
        configured = self.settings.default_model or (self.settings.models[0] if self.settings.models else "")
        # A custom server serves models we cannot guess; only api.openai.com gets our default.
        self.default_model = configured or ("" if self.settings.base_url else DEFAULT_MODEL)
        self._client: Any = None
        self._sdk: Any = None

    def __repr__(self) -> str:
        return f"OpenAIProvider(name={self.name!r}, base_url={self.settings.base_url!r})"

    def usable(self) -> tuple[bool, str]:
        if not self.default_model:
            return False, f"no model: set providers.{self.name}.default_model to a model your server serves"
        if self.settings.base_url or self.settings.api_key(API_KEY_ENV):
            return True, ""
        return False, self.settings.key_hint(API_KEY_ENV) + f" or providers.{self.name}.base_url for a local server"

    def models(self) -> list[ModelInfo]:
        ids = self.settings.models or ([] if self.settings.base_url else list(CATALOG))
        ids = list(dict.fromkeys(([self.default_model] if self.default_model else []) + ids))
        infos = []
        for model in ids:
            window, price_in, price_out = CATALOG.get(model, (128_000, 0.0, 0.0))
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
            if not key and not self.settings.base_url:
                raise ProviderAuthError(f"provider {self.name!r}: {self.settings.key_hint(API_KEY_ENV)}", provider=self.name)
            self._sdk = importlib.import_module("openai")
            kwargs: dict[str, Any] = {"api_key": key or NO_KEY, "timeout": self.settings.timeout_secs, "max_retries": 0}
            if self.settings.base_url:
                kwargs["base_url"] = self.settings.base_url
            # The registry retries (honouring Retry-After and the breaker), so the SDK must not.
            self._client = self._sdk.AsyncOpenAI(**kwargs)
        return self._client

    def _params(self, request: ModelRequest) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": request.model or self.default_model,
            "messages": wire_messages(request.system, request.messages),
        }
        # api.openai.com wants max_completion_tokens (o-series reject max_tokens);
        # compatible servers (Ollama, llama.cpp, older vLLM) know max_tokens.
        params["max_tokens" if self.settings.base_url else "max_completion_tokens"] = request.max_tokens
        if request.tools:
            params["tools"] = [tool_schema(t) for t in request.tools]
        if request.temperature is not None:
            params["temperature"] = request.temperature
        return params

    API = "an OpenAI chat completion"

    def _error(self, err: BaseException) -> BaseException:
        base_url = self.settings.base_url
        return translate_sdk_error(err, self.name, self._sdk, base_url) or decode_error(err, self.name, self.API, base_url) or err

    async def complete(self, request: ModelRequest) -> ModelResponse:
        client = self._get_client()
        try:
            raw = await client.chat.completions.create(**self._params(request))
        except Exception as err:
            raise self._error(err) from err
        try:
            return self._response(raw, request)
        except (AttributeError, TypeError, IndexError, KeyError, ValueError) as err:
            # The SDK hands back the text of a non-JSON body, or a model with fields missing.
            raise malformed_response(self.name, self.API, body_excerpt(raw), self.settings.base_url) from err

    def _response(self, raw: Any, request: ModelRequest) -> ModelResponse:
        choice = raw.choices[0]
        content: list[ContentBlock] = [TextBlock(text=choice.message.content)] if choice.message.content else []
        for call in choice.message.tool_calls or []:
            content.append(
                ToolUseBlock(
                    id=call.id or f"call_{uuid.uuid4().hex[:12]}",
                    name=call.function.name,
                    input=parse_tool_arguments(call.function.arguments or ""),
                )
            )
        return ModelResponse(
            message=Message(role="assistant", content=content),
            usage=usage_of(raw.usage),
            stop_reason=_stop(choice.finish_reason, bool(choice.message.tool_calls)),
            model=raw.model or request.model,
        )

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        client = self._get_client()
        try:
            chunks = await client.chat.completions.create(
                **self._params(request), stream=True, stream_options={"include_usage": True}
            )
        except Exception as err:
            raise self._error(err) from err
        usage = Usage()
        finish: str | None = None
        calls: dict[int, dict[str, str]] = {}  # tool-call index -> {id, name, arguments}
        chunk_count = 0
        try:
            async with chunks:
                async for chunk in chunks:
                    chunk_count += 1
                    if chunk.usage is not None:
                        usage = usage_of(chunk.usage)
                    for choice in chunk.choices or []:
                        delta = choice.delta
                        if delta is not None and delta.content:
                            yield TextDelta(text=delta.content)
                        for position, part in enumerate((delta.tool_calls if delta is not None else None) or []):
                            index = part.index if part.index is not None else position
                            call = calls.setdefault(index, {"id": "", "name": "", "arguments": ""})
                            call["id"] = part.id or call["id"]
                            if part.function is not None:
                                call["name"] = call["name"] or (part.function.name or "")
                                call["arguments"] += part.function.arguments or ""
                        if choice.finish_reason:
                            finish = choice.finish_reason
        except Exception as err:
            raise self._error(err) from err
        if finish is None:
            # Every OpenAI-compatible server ends a stream with a finish_reason; without one it was cut
            # (or was not a chat-completion stream at all), and an empty answer must not pass for a reply.
            hint = "" if chunk_count else f" (no chunk arrived: is providers.{self.name}.base_url an OpenAI-compatible API?)"
            raise ProviderUnavailableError(
                f"provider {self.name!r}: the stream ended before a finish_reason{hint}", provider=self.name
            )
        for index in sorted(calls):
            call = calls[index]
            yield ToolCallEvent(
                id=call["id"] or f"call_{uuid.uuid4().hex[:12]}",
                name=call["name"],
                arguments=parse_tool_arguments(call["arguments"]),
            )
        yield UsageEvent(usage=usage)
        yield StopEvent(reason=_stop(finish, bool(calls)))

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


def factory(name: str, settings: dict[str, Any]) -> OpenAIProvider:
    return OpenAIProvider(name, settings)
