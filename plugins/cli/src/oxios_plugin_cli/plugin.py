"""The plugin module: adds the `oxios chat` command."""

from __future__ import annotations

from typing import Any

import typer

from oxios_hookspecs import hookimpl


@hookimpl
def register_commands(app: Any) -> None:
    @app.command("chat")
    def chat(
        prompt: str = typer.Argument(None, help="A first message to send (optional)."),
        session: str = typer.Option(None, "--session", help="Continue this session id."),
        persona: str = typer.Option(None, "--persona", help="Persona for this session (Dev, Review, Research ...)."),
        model: str = typer.Option(None, "--model", help="Model, as MODEL or PROVIDER/MODEL."),
    ) -> None:
        """Interactive chat with streaming output. /help lists commands; Ctrl-C cancels a turn, Ctrl-D quits."""
        import asyncio

        from oxios.cli import common

        from .channel import CliChannel

        async def go(kernel: Any) -> int:
            channel = CliChannel(kernel, session_id=session, persona=persona, model=model)
            await channel.start(kernel.service("gateway"))
            try:
                return await channel.run(first=prompt)
            finally:
                await channel.stop()

        raise typer.Exit(asyncio.run(common.with_kernel(go)))
