"""Oxios: an operating system for LLM agents.

The public names plugins may use are listed in ``__all__``; everything else
is internal. Names load lazily so ``import oxios`` (and ``oxios --help``)
stays fast.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "Kernel": ("oxios.kernel", "Kernel"),
    "NotAvailable": ("oxios.kernel", "NotAvailable"),
    "NotFound": ("oxios.kernel", "NotFound"),
    "Conflict": ("oxios.kernel", "Conflict"),
    "Invalid": ("oxios.kernel", "Invalid"),
    "Config": ("oxios.config", "Config"),
    "tool": ("oxios.toolbox", "tool"),
    "FunctionTool": ("oxios.toolbox", "FunctionTool"),
    "hookimpl": ("oxios_hookspecs", "hookimpl"),
    "CronJobSpec": ("oxios.cron.model", "JobSpec"),
    # For chat channel plugins (Telegram, Discord ...): the shared flow and its parts.
    "ChatChannel": ("oxios.chatkit", "ChatChannel"),
    "ChatSettings": ("oxios.chatkit", "ChatSettings"),
    "Inbound": ("oxios.chatkit", "Inbound"),
    "ReplyStreamer": ("oxios.chatkit", "ReplyStreamer"),
    "split_message": ("oxios.chatkit", "split_message"),
    "chat_authorize": ("oxios.chatkit", "authorize"),
    "chat_send_tool": ("oxios.chatkit", "send_tool"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'oxios' has no attribute {name!r}")
