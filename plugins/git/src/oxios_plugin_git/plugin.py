"""The git plugin's hook implementations (entry point ``git`` in group ``oxios``)."""

from __future__ import annotations

from typing import Any

from oxios_hookspecs import hookimpl

RPC_METHODS = ("log", "tags", "show", "diff", "verify", "restore", "worktree_status")


@hookimpl
def register_tools(register: Any, kernel: Any) -> None:
    if not kernel.config.git.enabled:
        return
    from .tools import READ_TOOLS, WRITE_TOOLS  # dulwich loads with the kernel, not with `oxios --help`

    for fn in READ_TOOLS:
        register(fn, tier="read")
    for fn in WRITE_TOOLS:
        register(fn, tier="write")


@hookimpl
async def startup(kernel: Any) -> None:
    if not kernel.config.git.enabled:
        return
    from .service import start_service

    service = await start_service(kernel)
    kernel.services["git"] = service
    for name in RPC_METHODS:
        kernel.expose(f"git.{name}", getattr(service, name))


@hookimpl
def register_commands(app: Any) -> None:
    from .cli import git_app

    app.add_typer(git_app, name="git")
