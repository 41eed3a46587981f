"""`oxios a2a card URL` and `oxios a2a send URL MESSAGE`."""

from __future__ import annotations

import asyncio

import typer

a2a_app = typer.Typer(help="Talk to other agents over the A2A protocol.", no_args_is_help=True)


@a2a_app.command("card")
def card_cmd(url: str = typer.Argument(..., help="The agent's base URL")) -> None:
    """Print a remote agent's card (from URL/.well-known/agent-card.json) as JSON."""
    from oxios.cli import common

    from .client import A2AFailure, fetch_card

    config = common.load_config()
    try:
        card = asyncio.run(fetch_card(url, allowlist=config.security.ssrf_allowlist))
    except A2AFailure as err:
        common.fail(str(err))
    common.echo_json(card)


@a2a_app.command("send")
def send_cmd(
    url: str = typer.Argument(..., help="The agent's base URL"),
    message: str = typer.Argument(...),
    context_id: str = typer.Option("", "--context", help="Continue this A2A context"),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Send MESSAGE as a task and print the answer; exit 1 unless the task completed."""
    from oxios.cli import common

    from .client import A2AFailure, send
    from .settings import A2ASettings

    config = common.load_config()
    timeout = A2ASettings(**config.plugins.get("a2a", {})).timeout_secs
    try:
        result = asyncio.run(send(url, message, allowlist=config.security.ssrf_allowlist, timeout=timeout, context_id=context_id))
    except A2AFailure as err:
        common.fail(str(err))
    if json_out:
        common.echo_json(result)
    else:
        typer.echo(result["text"])
    if result["state"] != "completed":
        raise typer.Exit(1)
