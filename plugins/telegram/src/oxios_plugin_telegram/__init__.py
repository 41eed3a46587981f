"""oxios-plugin-telegram: talk to Oxios from Telegram.

Configure ``[channels.telegram]`` (token or TELEGRAM_BOT_TOKEN, allowed_users)
and restart the daemon.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import msgspec

from oxios import chat_send_tool
from oxios_hookspecs import hookimpl

from .channel import TelegramChannel, TelegramSettings

log = logging.getLogger(__name__)

__all__ = ["TelegramChannel", "TelegramSettings"]


def settings_from(kernel: Any) -> TelegramSettings | None:
    raw = kernel.config.channels.get("telegram")
    if raw is None:
        return None
    try:
        return msgspec.convert(raw, TelegramSettings)
    except msgspec.ValidationError as err:
        raise ValueError(f"channels.telegram: {err}") from None


@hookimpl
def register_channels(register: Any, kernel: Any) -> None:
    settings = settings_from(kernel)
    if settings is None or not settings.enabled:
        return
    token = settings.token or os.environ.get(settings.token_env, "")
    if not token:
        log.warning("channels.telegram is configured but has no token (set token or %s)", settings.token_env)
        return
    register(TelegramChannel(kernel, settings, token))


@hookimpl(optionalhook=True)
def register_routes(register: Any, kernel: Any) -> None:
    """Inside the web plugin: POST /webhook/telegram for webhook mode."""
    from .webhook import webhook_route

    register(webhook_route(kernel))


@hookimpl
def register_tools(register: Any, kernel: Any) -> None:
    """``telegram_send``: an agent posts text and workspace files to a Telegram chat."""
    if "telegram" in kernel.config.channels:
        register(chat_send_tool(kernel, "telegram"), name="telegram_send", tier="network")
