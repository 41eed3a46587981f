"""Channel hooks: the ways people reach Oxios (web, CLI chat, Telegram ...)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .markers import hookspec


@hookspec
def register_channels(register: Callable[[Any], None], kernel: Any) -> None:
    """Register the channels this plugin provides.

    Called once while the kernel starts, after the built-in subsystems are up
    and before ``startup``. Every channel registered is started with the
    gateway and stopped when the daemon stops.

    :param register: call ``register(channel)`` for each channel object
        (see :class:`oxios_hookspecs.protocols.Channel`). The host records
        which plugin registered it.
    :param kernel: the kernel facade; read ``kernel.config`` for settings
        such as ``kernel.config.channels["telegram"]``.

    .. versionadded:: 0.1
    """
