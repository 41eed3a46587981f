"""Lifecycle hooks: start, stop, and everything that happens between."""

from __future__ import annotations

from typing import Any

from .markers import hookspec


@hookspec
def startup(kernel: Any) -> None:
    """Called once when the kernel has started, after channels are registered.

    May be ``async`` or return an awaitable; the host awaits it. An error, or
    taking longer than 30 seconds, is logged and reported as a plugin failure
    (``oxios status``), never fatal.

    :param kernel: the kernel facade.

    .. versionadded:: 0.1
    """


@hookspec
def shutdown(kernel: Any) -> None:
    """Called once when the kernel stops, before state is closed.

    Like :func:`startup`: an error or a hang past 30 seconds is reported, never blocks the stop.

    :param kernel: the kernel facade.

    .. versionadded:: 0.1
    """


@hookspec
def on_event(event: Any) -> None:
    """Called for every event on the bus, off the publisher's path.

    Each implementation has its own bounded queue: a slow one delays only
    itself, never the kernel or other plugins. If it falls too far behind it
    receives a ``bus.lagged`` event saying how many events it missed.

    :param event: an :class:`oxios_hookspecs.types.Event`.

    .. versionadded:: 0.1
    """
