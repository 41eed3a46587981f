"""The web channel's own settings: ``[channels.web]`` in config.toml (all optional)."""

from __future__ import annotations

from typing import Any

import msgspec


class WebSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    # SSE: keepalive comment interval, client reconnect delay, per-client queue, raw output.
    sse_keepalive_secs: float = 20.0
    sse_retry_ms: int = 3000
    sse_queue_size: int = 1024
    sse_include_output: bool = False
    # WebSocket chat: messages one connection may have in flight.
    ws_max_inflight: int = 8
    # Origins (scheme://host:port) besides the server's own that may call the API from a browser.
    allowed_origins: list[str] = []
    # Host names (without port) the server answers to besides loopback ones; needed behind a proxy or on a LAN name.
    allowed_hosts: list[str] = []
    # Seconds uvicorn waits for open connections when the daemon stops.
    shutdown_timeout_secs: float = 3.0


def load_settings(config: Any) -> WebSettings:
    """``[channels.web]``; a bad value names the key (``channels.web.sse_keepalive_secs: ...``)."""
    raw = dict((getattr(config, "channels", None) or {}).get("web") or {})
    try:
        return msgspec.convert(raw, WebSettings)
    except msgspec.ValidationError as err:
        from oxios.config import ConfigError

        message, _, where = str(err).partition(" - at `$")
        key = where.rstrip("`").lstrip(".")
        raise ConfigError(f"channels.web{'.' + key if key else ''}: {message}") from None
