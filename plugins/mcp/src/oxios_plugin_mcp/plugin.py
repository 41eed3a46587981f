"""The MCP plugin's hook implementations (entry point ``mcp`` in group ``oxios``)."""

from __future__ import annotations

from typing import Any

from oxios_hookspecs import hookimpl

RPC_METHODS = ("list", "tools", "call_json")


@hookimpl
async def startup(kernel: Any) -> None:
    if not kernel.config.mcp.enabled:
        return
    from .manager import start

    manager = await start(kernel)
    kernel.services["mcp"] = manager
    for name in RPC_METHODS:
        kernel.expose(f"mcp.{name}", getattr(manager, name))


@hookimpl(optionalhook=True)
def register_routes(register: Any, kernel: Any) -> None:
    """Inside the web plugin: Oxios's MCP server over streamable HTTP at /mcp."""
    from .http import routes

    for route in routes(kernel):
        register(route)


@hookimpl
def register_commands(app: Any) -> None:
    from .cli import mcp_app

    app.add_typer(mcp_app, name="mcp")
