"""`oxios browser browse URL`: fetch a page as Markdown with the same guard agents get."""

from __future__ import annotations

import asyncio
from typing import Any

import typer

browser_app = typer.Typer(help="The headless browser agents use.", no_args_is_help=True)


@browser_app.command("browse")
def browse_cmd(url: str = typer.Argument(..., help="http(s) URL")) -> None:
    """Print a page as Markdown (SSRF guard, policy and robots.txt apply)."""
    from oxios.cli import common

    from .tools import browse

    async def run(kernel: Any) -> Any:
        return await browse(url, kernel.context(agent_id="cli", interactive=True))

    result = asyncio.run(common.with_kernel(run))
    if result.is_error:
        common.fail(result.content)
    typer.echo(result.content)
