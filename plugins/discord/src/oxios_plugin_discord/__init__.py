"""oxios-plugin-discord: talk to Oxios from Discord.

Configure ``[channels.discord]`` (token or DISCORD_BOT_TOKEN, allowed_users,
optionally allowed_guilds / allowed_channels) and restart the daemon. The bot
needs the Message Content intent enabled in the developer portal.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import msgspec

from oxios import chat_send_tool
from oxios_hookspecs import hookimpl

from .channel import DiscordChannel, DiscordSettings

log = logging.getLogger(__name__)

__all__ = ["DiscordChannel", "DiscordSettings"]


@hookimpl
def register_channels(register: Any, kernel: Any) -> None:
    raw = kernel.config.channels.get("discord")
    if raw is None:
        return
    try:
        settings = msgspec.convert(raw, DiscordSettings)
    except msgspec.ValidationError as err:
        # Raised, so the host records it as this plugin's failure (oxios status, oxios doctor).
        raise ValueError(f"channels.discord: {err}") from None
    if not settings.enabled:
        return
    token = settings.token or os.environ.get(settings.token_env, "")
    if not token:
        log.warning("channels.discord is configured but has no token (set token or %s)", settings.token_env)
        return
    register(DiscordChannel(kernel, settings, token))


@hookimpl
def register_tools(register: Any, kernel: Any) -> None:
    """``discord_send``: an agent posts text and workspace files to a Discord channel, thread or DM."""
    if "discord" in kernel.config.channels:
        register(chat_send_tool(kernel, "discord"), name="discord_send", tier="network")
