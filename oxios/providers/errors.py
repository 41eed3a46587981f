"""Errors every provider raises, so retries and the breaker never import an SDK.

Providers translate their SDK's exceptions into these (see ``_sdk_errors``);
third-party providers may raise them too. ``retryable`` decides whether the
registry retries (429, 5xx, timeouts, connection failures) and whether a
failure counts against the provider's circuit breaker.
"""

from __future__ import annotations

NO_PROVIDER_HELP = (
    "No LLM provider is usable. Configure one of:\n"
    "  - an API key: export ANTHROPIC_API_KEY=... or export OPENAI_API_KEY=...\n"
    "    (or `oxios config set providers.anthropic.kind anthropic` and "
    "`oxios config set providers.anthropic.api_key_env MY_KEY_VAR`)\n"
    "  - an OpenAI-compatible local server (Ollama, vLLM, LM Studio, llama.cpp):\n"
    "    `oxios config set providers.local.kind openai`\n"
    "    `oxios config set providers.local.base_url http://127.0.0.1:11434/v1`\n"
    "    `oxios config set providers.local.default_model llama3.2`\n"
    "Then check with `oxios models` (see docs/providers.md)."
)


class ProviderError(Exception):
    """A provider call failed. ``status`` is the HTTP status when there was one."""

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after


class RateLimitedError(ProviderError):
    """HTTP 429: the provider asked us to slow down (``retry_after`` seconds when it said)."""

    def __init__(self, message: str, *, provider: str = "", retry_after: float | None = None) -> None:
        super().__init__(message, provider=provider, status=429, retryable=True, retry_after=retry_after)


class ProviderUnavailableError(ProviderError):
    """5xx, a timeout or a connection failure: worth retrying, counts against the breaker."""

    def __init__(self, message: str, *, provider: str = "", status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, provider=provider, status=status, retryable=True, retry_after=retry_after)


class ProviderAuthError(ProviderError):
    """401/403: the key is missing or wrong. Not retried."""


class BreakerOpenError(ProviderError):
    """The provider's circuit breaker is open: the call failed fast without touching the network."""

    def __init__(self, provider: str, retry_in: float) -> None:
        super().__init__(
            f"provider {provider!r} is unavailable: its circuit breaker is open after repeated failures; "
            f"the next probe is allowed in {max(retry_in, 0.0):.0f}s (see `oxios models`)",
            provider=provider,
            retryable=False,
        )
        self.retry_in = retry_in


class NoProviderError(ProviderError):
    """No provider is configured or usable. The message says how to configure one."""

    def __init__(self, detail: str = "") -> None:
        super().__init__((detail + "\n" if detail else "") + NO_PROVIDER_HELP)


class UnknownModelError(ProviderError, LookupError):
    """A ``provider/model`` reference names a provider that does not exist."""


__all__ = [
    "NO_PROVIDER_HELP",
    "BreakerOpenError",
    "NoProviderError",
    "ProviderAuthError",
    "ProviderError",
    "ProviderUnavailableError",
    "RateLimitedError",
    "UnknownModelError",
]
