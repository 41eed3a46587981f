"""oxios-plugin-telegram: talk to Oxios from Telegram.

Configure ``[channels.telegram]`` (token or TELEGRAM_BOT_TOKEN, allowed_users)
and restart the daemon.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import msgspec

from oxios_hookspecs import ActionContext, hookimpl

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
    async def telegram_send_file(path: str, context: ActionContext, caption: str = "") -> str:
        """Send a file from the workspace to the Telegram chat of the current session."""
        channel = kernel.channels.get("telegram")
        if channel is None:
            return "telegram is not connected"
        chat_key = channel.sessions.chat_of_session(context.session_id)
        if chat_key is None:
            return "this session did not come from Telegram"
        chat_id, _, thread = chat_key.partition("/")
        await channel.send_file(int(chat_id), int(thread) if thread else None, path, caption)
        return f"sent {path}"

    if "telegram" in kernel.config.channels:
        register(telegram_send_file, tier="network")
