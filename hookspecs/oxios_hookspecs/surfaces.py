"""Surface hooks: CLI commands and skills a plugin adds."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .markers import hookspec


@hookspec
def register_commands(app: Any) -> None:
    """Add commands to the ``oxios`` CLI.

    Called when the CLI starts. ``app`` is the root ``typer.Typer``; add a
    group with ``app.add_typer(sub, name="mcp")`` or a command with
    ``app.command()(fn)``. Import heavy libraries inside the commands, not
    at module level, so ``oxios --help`` stays fast.

    :param app: the ``typer.Typer`` application.

    .. versionadded:: 0.1
    """


@hookspec
def register_skills(register: Callable[[str], None]) -> None:
    """Point Oxios at SKILL.md packages shipped inside a distribution.

    :param register: ``register(path)`` with a folder holding skill folders
        (each with a ``SKILL.md``), or one skill folder.

    .. versionadded:: 0.1
    """
