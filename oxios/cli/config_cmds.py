"""`oxios config show|get|set|reload|path|validate`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from .common import daemon_paths, echo_json, fail, home, load_config

config_app = typer.Typer(help="View and edit configuration.", no_args_is_help=True)


REVEAL = typer.Option(False, "--reveal", help="Print credentials (API keys, tokens) instead of ***.")


@config_app.command("show")
def show(json_out: bool = typer.Option(False, "--json", help="Print JSON instead of TOML."), reveal: bool = REVEAL) -> None:
    """Print the effective config (defaults < file < env < flags); credentials show as *** unless --reveal."""
    import msgspec
    import tomlkit

    from ..config import redact_tree

    config = load_config()
    data = msgspec.to_builtins(config)
    if not reveal:  # a pasted `config show` in a bug report must not leak keys
        data = redact_tree(data)
    if json_out:
        echo_json(data)
    else:
        typer.echo(tomlkit.dumps(data))


@config_app.command("get")
def get(key: str = typer.Argument(..., help="Dotted key, e.g. exec.allowed_commands"), reveal: bool = REVEAL) -> None:
    """Print one value (a credential shows as *** unless --reveal)."""
    from ..config import ConfigError, get_key, redact_tree

    try:
        value = get_key(load_config(), key)
    except ConfigError as err:
        fail(str(err), 2)
    if not reveal:
        value = redact_tree(value, key.rpartition(".")[2])
    typer.echo(json.dumps(value) if not isinstance(value, str) else value)


@config_app.command("set")
def set_(key: str = typer.Argument(...), value: str = typer.Argument(..., help='A TOML value (42, true, ["a"]) or text')) -> None:
    """Set a value in config.toml (validated first; comments kept); a running daemon reloads it."""
    from ..config import ConfigError, config_path, redact_tree, set_key
    from ..daemon import is_running

    path = config_path(home())
    try:
        new = set_key(path, key, value)
    except ConfigError as err:
        fail(str(err), 2)
    typer.echo(f"{key} = {json.dumps(redact_tree(new, key.rpartition('.')[2]))} (in {path})")
    p = daemon_paths()
    if is_running(p):
        print_reload(_reload(p.socket))
    else:
        _audit_offline(p, path, key)
        typer.echo("Oxios is not running; it reads the file when it starts")


@config_app.command("reload")
def reload(json_out: bool = typer.Option(False, "--json", help="Print JSON: {changed, applied, restart_required}.")) -> None:
    """Make the running daemon read config.toml again; print what applied live and what needs `oxios restart`."""
    from ..daemon import is_running

    p = daemon_paths()
    if not is_running(p):
        fail("Oxios is not running; start it with `oxios start` (it reads the config when it starts)")
    result = _reload(p.socket)
    if json_out:
        echo_json(result)
    else:
        print_reload(result)


def _reload(socket: Path) -> dict[str, Any]:
    from ..control import ControlError, call

    try:
        return call(socket, "reload", actor="cli")
    except ControlError as err:
        if err.type == "ConfigError":
            fail(f"invalid config, the daemon keeps running with the old one: {err}", 2)
        fail(f"the daemon did not reload its config: {err}")


def print_reload(result: dict[str, Any]) -> None:
    """The answer of a reload, as sentences."""
    if not result.get("changed"):
        typer.echo("the running daemon already uses this config")
    if result.get("applied"):
        typer.echo("applied live: " + ", ".join(result["applied"]))
    if result.get("restart_required"):
        typer.echo("needs `oxios restart`: " + ", ".join(result["restart_required"]))


def _audit_offline(p: Any, path: Path, key: str) -> None:
    """No daemon to reload and audit the change: append it to the audit chain here."""
    from ..security.audit import AuditLog
    from ..state import StateStore

    config = load_config()
    state = StateStore(p.db)
    try:
        audit = AuditLog(state, checkpoint_every=config.audit.checkpoint_every, enabled=config.audit.enabled)
        audit.append("cli", "config.set", str(path), True, f"set {key} (daemon not running)", {"key": key})
    finally:
        state.close()


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
