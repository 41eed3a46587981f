"""Provider hooks: the LLMs agents think with."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .markers import hookspec


@hookspec
def register_providers(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Register provider kinds (``anthropic``, ``openai`` ...).

    Called once while the kernel starts. All kinds are collected. Each entry
    of ``[providers.NAME]`` in config names a ``kind``; the host calls that
    kind's factory as ``factory(name, settings)`` where ``settings`` is the
    entry as a dict, and gets back a
    :class:`oxios_hookspecs.protocols.Provider`. ``oxios models`` lists them.

    Optional extras the host uses when present: ``usable() -> (bool, reason)``
    (e.g. no key), ``default_model: str``, ``async close()``. Callers reach
    providers through the host's ``providers`` service, which retries and
    guards each one with a circuit breaker: raise an exception carrying
    ``retryable: bool`` (and optionally ``status: int`` and
    ``retry_after: float`` seconds) so transient failures (429, 5xx,
    timeouts) are retried and count against the breaker.

    :param register: ``register(kind, factory)``.

    .. versionadded:: 0.1
    """
