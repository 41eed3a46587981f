"""`oxios mcp list|tools NAME|call NAME TOOL JSON|serve`."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import typer

mcp_app = typer.Typer(help="MCP servers' tools for agents, and Oxios as an MCP server.", no_args_is_help=True)


def _call(method: str, **params: Any) -> Any:
    """``McpManager.<method>`` in the running daemon, or in a kernel started here."""
    from oxios.cli import common
    from oxios.daemon import is_running

    if is_running(common.paths()):
        return common.daemon_call(f"mcp.{method}", **params)

    async def run(kernel: Any) -> Any:
        manager = kernel.services.get("mcp")
        if manager is None:
            common.fail("the mcp plugin is not active (mcp.enabled = false?)")
        result = getattr(manager, method)(**params)
        return await result if asyncio.iscoroutine(result) else result

    try:
        return asyncio.run(common.with_kernel(run))
    except LookupError as err:
        common.fail(str(err).strip("'\""))


@mcp_app.command("list")
def list_cmd() -> None:
    """Configured servers with their state and registered tools (JSON)."""
    from oxios.cli.common import echo_json

    echo_json(_call("list"))


@mcp_app.command("tools")
def tools_cmd(name: str = typer.Argument(..., help="Server name from [mcp.servers.NAME]")) -> None:
    """Start the server if needed and list its tools with their schemas (JSON)."""
    from oxios.cli.common import echo_json

    echo_json(_call("tools", server=name))


@mcp_app.command("call")
def call_cmd(
    name: str = typer.Argument(...),
    tool: str = typer.Argument(..., help="The server's own tool name (without mcp__NAME__)"),
    arguments: str = typer.Argument("{}", help="Arguments as a JSON object"),
) -> None:
    """Call one tool of a server; exit 1 when the tool reports an error."""
    from oxios.cli import common

    try:
        args = json.loads(arguments)
    except ValueError as err:
        common.fail(f"arguments must be a JSON object: {err}", 2)
    if not isinstance(args, dict):
        common.fail("arguments must be a JSON object", 2)
    result = _call("call_json", server=name, tool=tool, arguments=args)
    typer.echo(result["content"])
    if result["is_error"]:
        raise typer.Exit(1)


@mcp_app.command("serve")
def serve_cmd() -> None:
    """Serve Oxios over MCP on stdio (run a prompt, memory search/save, list skills)."""
    import logging
    import sys

    from oxios.cli import common

    from .server import serve_stdio

    # stdout is the protocol: everything else goes to stderr.
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    asyncio.run(common.with_kernel(serve_stdio))
