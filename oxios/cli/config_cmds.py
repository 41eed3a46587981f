"""`oxios config show|get|set|path|validate`."""

from __future__ import annotations

import json

import typer

from .common import echo_json, fail, home, load_config

config_app = typer.Typer(help="View and edit configuration.", no_args_is_help=True)


@config_app.command("show")
def show(json_out: bool = typer.Option(False, "--json", help="Print JSON instead of TOML.")) -> None:
    """Print the effective config (defaults < file < env < flags)."""
    import msgspec
    import tomlkit

    config = load_config()
    data = msgspec.to_builtins(config)
    if json_out:
        echo_json(data)
    else:
        typer.echo(tomlkit.dumps(data))


@config_app.command("get")
def get(key: str = typer.Argument(..., help="Dotted key, e.g. exec.allowed_commands")) -> None:
    """Print one value."""
    from ..config import ConfigError, get_key

    try:
        value = get_key(load_config(), key)
    except ConfigError as err:
        fail(str(err), 2)
    typer.echo(json.dumps(value) if not isinstance(value, str) else value)


@config_app.command("set")
def set_(key: str = typer.Argument(...), value: str = typer.Argument(..., help='A TOML value (42, true, ["a"]) or text')) -> None:
    """Set a value in config.toml (validated first; comments kept)."""
    from ..config import ConfigError, config_path, set_key

    path = config_path(home())
    try:
        new = set_key(path, key, value)
    except ConfigError as err:
        fail(str(err), 2)
    typer.echo(f"{key} = {json.dumps(new)} (in {path}; restart the daemon to apply)")


@config_app.command("path")
def path() -> None:
    """Print where config.toml lives."""
    from ..config import config_path

    typer.echo(str(config_path(home())))


@config_app.command("validate")
def validate() -> None:
    """Check config.toml and the environment; exit 2 naming the first bad key."""
    from ..config import ConfigError, config_path, load

    p = config_path(home())
    try:
        load(p)
    except ConfigError as err:
        fail(str(err), 2)
    typer.echo(f"{p}: valid")


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")
