"""Policy hooks: the votes behind every allow, ask and deny."""

from __future__ import annotations

from typing import Any

from .markers import hookspec


@hookspec
def check_action(action: Any, context: Any) -> Any:
    """Vote on an action before it happens.

    Called for every tool call, exec, path access, outbound URL and API
    write. Every implementation votes; the host combines the votes:
    ``deny`` beats ``ask`` beats ``allow``. Returning ``None`` abstains; when
    nobody votes, exec and network are denied and everything else allowed.
    A vote that takes longer than ``security.policy_timeout_secs`` counts as
    ``deny`` (fail closed); do slow work ``async`` and never block in a sync hook.

    :param action: an :class:`oxios_hookspecs.types.Action`.
    :param context: an :class:`oxios_hookspecs.types.ActionContext` (agent,
        role, session, workspace, kernel facade).
    :return: an :class:`oxios_hookspecs.types.Decision` (with a human
        reason) or ``None``.

    .. versionadded:: 0.1
    """
