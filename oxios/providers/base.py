"""What the Anthropic and OpenAI providers share: keys, SDK errors, tool-call arguments.

Keys are resolved at call time from ``[providers.NAME] api_key``, then the
variable named by ``api_key_env``, then the provider's standard variable;
they live only in the SDK client and never appear in a message we build
(SDK error texts pass through :func:`oxios.logs.redact`).
"""

from __future__ import annotations

import email.utils
import json
import os
import re
import time
from typing import Any

from ..logs import redact
from .errors import ProviderAuthError, ProviderError, ProviderUnavailableError, RateLimitedError


class ProviderSettings:
    """A ``[providers.NAME]`` table as the factory receives it (a dict), typed."""

    def __init__(self, name: str, settings: dict[str, Any]) -> None:
        self.name = name
        self.kind = str(settings.get("kind", ""))
        self.base_url = str(settings.get("base_url") or "").rstrip("/")
        self.models = [str(m) for m in settings.get("models") or []]
        self.default_model = str(settings.get("default_model") or "")
        self.timeout_secs = float(settings.get("timeout_secs") or 120.0)
        self.context_window = int(settings.get("context_window") or 0)
        self._api_key = str(settings.get("api_key") or "")
        self.api_key_env = str(settings.get("api_key_env") or "")

    def __repr__(self) -> str:  # never show the key
        return f"ProviderSettings(name={self.name!r}, kind={self.kind!r}, base_url={self.base_url!r})"

    def api_key(self, standard_env: str) -> str:
        """The key: explicit config, then ``api_key_env``, then ``standard_env``; "" when none."""
        if self._api_key:
            return self._api_key
        if self.api_key_env and os.environ.get(self.api_key_env):
            return os.environ[self.api_key_env]
        return os.environ.get(standard_env, "")

    def key_hint(self, standard_env: str) -> str:
        """How to provide the key, for 'not usable' messages."""
        where = f"${self.api_key_env} or ${standard_env}" if self.api_key_env else f"${standard_env}"
        return f"no API key (set {where}, or providers.{self.name}.api_key)"


def retry_after_secs(headers: Any) -> float | None:
    """Seconds from ``Retry-After`` (seconds or an HTTP date) or ``retry-after-ms``; None when absent."""
    if headers is None:
        return None
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(float(millis) / 1000.0, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(when.timestamp() - time.time(), 0.0)


def translate_sdk_error(err: BaseException, provider: str, sdk: Any, base_url: str = "") -> ProviderError | None:
    """Our error for an ``openai``/``anthropic`` SDK exception (both share the class names)."""
    if not isinstance(err, sdk.APIError if hasattr(sdk, "APIError") else ()):
        return None
    text = redact(getattr(err, "message", None) or str(err))
    if isinstance(err, sdk.APITimeoutError):
        return ProviderUnavailableError(f"provider {provider!r} timed out: {text}", provider=provider)
    if isinstance(err, sdk.APIConnectionError):
        where = f" at {_without_userinfo(base_url)}" if base_url else ""
        return ProviderUnavailableError(f"provider {provider!r} is unreachable{where}: {text}", provider=provider)
    status = getattr(err, "status_code", None)
    if status is None or status < 400:
        # An error event inside a 200 stream: classify by the error type the server named.
        kind = _error_type(getattr(err, "body", None)) + " " + text.lower()
        message = f"provider {provider!r} failed mid-stream: {text}"
        if "rate_limit" in kind:
            return RateLimitedError(message, provider=provider)
        if any(word in kind for word in ("overloaded", "api_error", "server_error", "internal")):
            return ProviderUnavailableError(message, provider=provider)
        return ProviderError(message, provider=provider)
    response = getattr(err, "response", None)
    after = retry_after_secs(getattr(response, "headers", None))
    message = f"provider {provider!r} answered HTTP {status}: {text}"
    if status == 429:
        return RateLimitedError(message, provider=provider, retry_after=after)
    if status in (401, 403):
        return ProviderAuthError(message + " (check the API key)", provider=provider, status=status)
    if status >= 500 or status == 408:
        return ProviderUnavailableError(message, provider=provider, status=status, retry_after=after)
    return ProviderError(message, provider=provider, status=status)


def malformed_response(provider: str, api: str, detail: str, base_url: str = "") -> ProviderError:
    """A 200 answer that is not what the API returns (an HTML page from a proxy, broken JSON, a missing field).

    Not retried: the same server gives the same answer. The message names what came back and what to check.
    """
    where = f" at {_without_userinfo(base_url)}" if base_url else ""
    return ProviderError(
        f"provider {provider!r}{where} sent a response that is not {api}: {redact(detail)}"
        f" (check providers.{provider}.base_url and .kind)",
        provider=provider,
    )


def body_excerpt(raw: Any, limit: int = 160) -> str:
    """The start of a response body (an SDK object or the text an SDK hands back for a non-JSON body), on one line."""
    if isinstance(raw, bytes):
        text = raw.decode(errors="replace")
    elif isinstance(raw, str):
        text = raw
    else:
        dump = getattr(raw, "model_dump_json", None)
        text = dump() if callable(dump) else repr(raw)
    text = " ".join(text.split()) or "an empty body"
    return text if len(text) <= limit else text[:limit] + "..."


def decode_error(err: BaseException, provider: str, api: str, base_url: str = "") -> ProviderError | None:
    """Our error for a body the SDK could not parse as JSON (``None`` for any other error)."""
    if isinstance(err, json.JSONDecodeError):
        return malformed_response(provider, api, f"invalid JSON ({err.msg} at char {err.pos}): {body_excerpt(err.doc)}", base_url)
    return None


def _without_userinfo(url: str) -> str:
    """``http://user:pass@host/v1`` -> ``http://host/v1``: credentials never go into a message."""
    return re.sub(r"//[^/@]*@", "//", url)


def _error_type(body: Any) -> str:
    """``overloaded_error`` from Anthropic's ``{"type": "error", "error": {"type": ...}}``, or OpenAI's ``type``/``code``."""
    if not isinstance(body, dict):
        return ""
    inner = body.get("error") if isinstance(body.get("error"), dict) else body
    return " ".join(str(inner.get(k) or "") for k in ("type", "code")).lower()


def parse_tool_arguments(text: str) -> dict[str, Any]:
    """A tool call's JSON arguments as a dict.

    Small local models sometimes emit broken JSON; rather than crash the turn we
    hand the raw text on under ``_invalid_json`` so schema validation reports it
    back to the model as a tool error it can correct.
    """
    if not text or not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return {"_invalid_json": text}
    return value if isinstance(value, dict) else {"_invalid_json": text}
