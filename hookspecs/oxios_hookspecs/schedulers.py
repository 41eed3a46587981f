"""Scheduler hooks: who decides when agent work runs."""

from __future__ import annotations

from typing import Any

from .markers import hookspec


@hookspec(firstresult=True)
def scheduler(name: str, config: Any) -> Any:
    """Return the scheduler called ``name``, or ``None`` if not yours.

    Called once at start with ``[scheduler] backend``; the first
    non-``None`` result is used.

    :param name: the scheduler name from config (default ``local``).
    :param config: the ``[scheduler]`` section.
    :return: a :class:`oxios_hookspecs.protocols.Scheduler` or ``None``.

    .. versionadded:: 0.1
    """
