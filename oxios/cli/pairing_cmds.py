"""`oxios pairing list|approve CODE|revoke CHANNEL USER`: who may talk to Oxios from a chat."""

from __future__ import annotations

import typer

from .common import echo_json, fail

pairing_app = typer.Typer(help="Approve chat senders that asked to pair (DM pairing).", no_args_is_help=True)


def _state():
    from ..state import StateStore
    from .common import paths

    return StateStore(paths().db)


@pairing_app.command("list")
def list_() -> None:
    """Pending codes and paired senders."""
    from .. import pairing

    state = _state()
    try:
        echo_json({"pending": pairing.pending(state), "paired": pairing.paired(state)})
    finally:
        state.close()


@pairing_app.command("approve")
def approve(code: str = typer.Argument(..., help="The code the sender received")) -> None:
    """Let the sender behind CODE talk to Oxios."""
    from .. import pairing

    state = _state()
    try:
        item = pairing.approve(state, code)
    except LookupError as err:
        fail(str(err))
    finally:
        state.close()
    typer.echo(f"paired {item['channel']} user {item['user_id']} {item.get('name') or ''}".rstrip())


@pairing_app.command("revoke")
def revoke(channel: str, user_id: str) -> None:
    """Stop a paired sender from reaching Oxios."""
    from .. import pairing

    state = _state()
    try:
        if not pairing.revoke(state, channel, user_id):
            fail(f"{channel} user {user_id} is not paired")
    finally:
        state.close()
    typer.echo(f"revoked {channel} user {user_id}")


def register(app: typer.Typer) -> None:
    app.add_typer(pairing_app, name="pairing")
