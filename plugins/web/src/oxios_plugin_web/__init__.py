"""Oxios web channel: REST API, SSE events, WebSocket chat, Prometheus metrics and the web UI."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def create_app(kernel: Any) -> Any:
    """The Starlette app for ``kernel`` (what the ``web`` channel serves)."""
    from .app import create_app as _create

    return _create(kernel)


__all__ = ["__version__", "create_app"]
