"""Built-in provider kinds: ``anthropic`` and ``openai`` (any OpenAI-compatible server).

The factories only record settings; the SDKs load at a provider's first call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from oxios_hookspecs import hookimpl


def _anthropic(name: str, settings: dict[str, Any]) -> Any:
    from ..providers.anthropic_provider import AnthropicProvider

    return AnthropicProvider(name, settings)


def _openai(name: str, settings: dict[str, Any]) -> Any:
    from ..providers.openai_provider import OpenAIProvider

    return OpenAIProvider(name, settings)


@hookimpl
def register_providers(register: Callable[[str, Callable[..., Any]], None]) -> None:
    register("anthropic", _anthropic)
    register("openai", _openai)
