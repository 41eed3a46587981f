"""`oxios a2a card TARGET`, `oxios a2a send TARGET MESSAGE` and `oxios a2a remotes`.

TARGET is an agent's base URL or the name of a remote in ``[plugins.a2a.remotes]``.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import typer

a2a_app = typer.Typer(help="Talk to other agents over the A2A protocol.", no_args_is_help=True)

TARGET_HELP = "The agent's base URL, or the name of a remote in [plugins.a2a.remotes]"
TOKEN_ENV_HELP = "Environment variable holding a bearer token for the agent (replaces the remote's token_env)"


def _target(config: Any, target: str, token_env: str) -> tuple[Any, Any]:
    from oxios.cli import common

    from .client import A2AFailure, resolve_target
    from .settings import A2ASettings

    try:
        settings = A2ASettings.from_config(config)
        return settings, resolve_target(target, settings.remotes, token_env=token_env)
    except (A2AFailure, ValueError) as err:
        common.fail(str(err))


@a2a_app.command("card")
def card_cmd(
    target: str = typer.Argument(..., help=TARGET_HELP),
    token_env: str = typer.Option("", "--token-env", help=TOKEN_ENV_HELP),
) -> None:
    """Print a remote agent's card (from URL/.well-known/agent-card.json) as JSON."""
    from oxios.cli import common

    from .client import A2AFailure, fetch_card

    config = common.load_config()
    _, resolved = _target(config, target, token_env)
    try:
        card = asyncio.run(fetch_card(resolved, allowlist=config.security.ssrf_allowlist))
    except A2AFailure as err:
        common.fail(str(err))
    common.echo_json(card)


@a2a_app.command("send")
def send_cmd(
    target: str = typer.Argument(..., help=TARGET_HELP),
    message: str = typer.Argument(...),
    context_id: str = typer.Option("", "--context", help="Continue this A2A context"),
    token_env: str = typer.Option("", "--token-env", help=TOKEN_ENV_HELP),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Send MESSAGE as a task and print the answer; exit 1 unless the task completed."""
    from oxios.cli import common

    from .client import A2AFailure, send

    config = common.load_config()
    settings, resolved = _target(config, target, token_env)
    try:
        result = asyncio.run(
            send(
                resolved, message, allowlist=config.security.ssrf_allowlist, timeout=settings.timeout_secs, context_id=context_id
            )
        )
    except A2AFailure as err:
        common.fail(str(err))
    if json_out:
        common.echo_json(result)
    else:
        typer.echo(result["text"])
    if result["state"] != "completed":
        raise typer.Exit(1)


@a2a_app.command("remotes")
def remotes_cmd() -> None:
    """The configured remote agents as JSON: URL and the names of their variables, with whether each is set."""
    from oxios.cli import common

    from .settings import A2ASettings

    try:
        settings = A2ASettings.from_config(common.load_config())
    except ValueError as err:
        common.fail(str(err))
    rows = []
    for name, remote in sorted(settings.remotes.items()):
        envs = ([remote.token_env] if remote.token_env else []) + list(remote.headers_env.values())
        rows.append(
            {
                "name": name,
                "url": remote.url,
                "token_env": remote.token_env,
                "headers_env": remote.headers_env,
                "set": {env: bool(os.environ.get(env, "").strip()) for env in envs},  # never the values
            }
        )
    common.echo_json(rows)
