"""Tool hooks: what agents can do (files, exec, browser, git, MCP ...)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .markers import hookspec


@hookspec
def register_tools(register: Callable[..., None], kernel: Any) -> None:
    """Register the tools this plugin gives agents.

    Called once while the kernel starts. All registered tools are collected;
    each remembers the plugin that registered it. Two tools with one name are
    reported as a collision and the later one is skipped, never silently
    overwritten.

    :param register: ``register(tool, *, tier=None, name=None)``. ``tool`` is
        either an object with ``spec`` and ``async call(args, context)``
        (:class:`oxios_hookspecs.protocols.Tool`) or a typed function whose
        JSON schema comes from its type hints and whose description comes
        from its docstring. A function may take a ``context`` argument
        (:class:`oxios_hookspecs.types.ActionContext`); ``tier`` is one of
        ``read``, ``write``, ``exec``, ``network`` and drives policy.
    :param kernel: the kernel facade, for tools that need config or services.

    .. versionadded:: 0.1
    """
