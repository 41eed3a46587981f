"""LLM providers: Anthropic, OpenAI (and any OpenAI-compatible server), the registry.

Importing this package is cheap: the SDKs load at the first call of a
provider, never at import, so ``oxios --help`` stays fast.
"""

from __future__ import annotations

from .errors import (
    NO_PROVIDER_HELP,
    BreakerOpenError,
    NoProviderError,
    ProviderAuthError,
    ProviderError,
    ProviderUnavailableError,
    RateLimitedError,
    UnknownModelError,
)

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
