"""DM pairing for chat channels: an unknown sender gets a one-time code; the owner approves it.

Shared by every chat channel plugin, so `oxios pairing approve CODE` works the
same for Telegram, Discord and whatever comes next. Codes and paired senders
live in the state store (namespace ``pairing``).
"""

from __future__ import annotations

import secrets
import time
from typing import Any

NAMESPACE = "pairing"
CODE_TTL_SECS = 3600
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: codes are read aloud and retyped


def _paired_key(channel: str, user_id: str) -> str:
    return f"paired:{channel}:{user_id}"


def is_paired(state: Any, channel: str, user_id: str) -> bool:
    return state.kv_get(NAMESPACE, _paired_key(channel, str(user_id))) is not None


def request_code(state: Any, channel: str, user_id: str, *, name: str = "", now: float | None = None) -> str:
    """The pending code for this sender (a new one if none is pending or it expired)."""
    now = now or time.time()
    for key, item in state.kv_items(NAMESPACE).items():
        if key.startswith("code:") and item["channel"] == channel and item["user_id"] == str(user_id) and item["expires"] > now:
            return key[len("code:") :]
    code = "".join(secrets.choice(_ALPHABET) for _ in range(8))
    state.kv_set(
        NAMESPACE,
        f"code:{code}",
        {"channel": channel, "user_id": str(user_id), "name": name, "created": now, "expires": now + CODE_TTL_SECS},
    )
    return code


def pending(state: Any, *, now: float | None = None) -> list[dict[str, Any]]:
    now = now or time.time()
    return [
        {"code": k[len("code:") :], **v}
        for k, v in state.kv_items(NAMESPACE).items()
        if k.startswith("code:") and v["expires"] > now
    ]


def approve(state: Any, code: str, *, now: float | None = None) -> dict[str, Any]:
    """Pair the sender behind ``code``; raises LookupError for an unknown or expired code."""
    now = now or time.time()
    code = code.strip().upper()
    item = state.kv_get(NAMESPACE, f"code:{code}")
    if item is None or item["expires"] <= now:
        raise LookupError(f"no pending pairing code {code!r} (codes expire after {CODE_TTL_SECS // 60} minutes)")
    state.kv_delete(NAMESPACE, f"code:{code}")
    state.kv_set(NAMESPACE, _paired_key(item["channel"], item["user_id"]), {"name": item["name"], "paired": now})
    return item


def revoke(state: Any, channel: str, user_id: str) -> bool:
    return state.kv_delete(NAMESPACE, _paired_key(channel, str(user_id)))


def paired(state: Any) -> list[dict[str, Any]]:
    out = []
    for key, item in state.kv_items(NAMESPACE).items():
        if key.startswith("paired:"):
            _, channel, user_id = key.split(":", 2)
            out.append({"channel": channel, "user_id": user_id, **item})
    return out
