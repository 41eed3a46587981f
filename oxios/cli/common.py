"""What every CLI command group shares: config loading, paths, output, errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import typer

# Overrides from root CLI flags (--port, --set KEY=VALUE ...), the top layer of config.
CLI_OVERRIDES: dict[str, Any] = {}


def fail(message: str, code: int = 1) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def lookup_message(err: LookupError) -> str:
    """The text of a not-found error: a ``KeyError`` quotes its message, ``NotFound`` does not.

    Stripping quotes from ``str(err)`` would also eat the closing quote of ``no token 'x'``.
    """
    if err.args and isinstance(err.args[0], str):
        return err.args[0]
    return str(err)


def home() -> Path:
    from ..config import home_dir

    return home_dir()


def load_config(*, write_default: bool = True) -> Any:
    """The layered config; a bad value exits 2 naming the key and the file."""
    from .. import config as cfg

    path = cfg.config_path(home())
    if write_default:
        try:
            cfg.ensure_file(path)
        except OSError as err:
            fail(f"cannot write the default config {path}: {err.strerror or err}; OXIOS_HOME must be a writable directory")
    try:
        return cfg.load(path, overrides=CLI_OVERRIDES or None)
    except cfg.ConfigError as err:
        fail(f"invalid config: {err}", 2)


def paths(config: Any = None) -> Any:
    from ..kernel import Paths

    return Paths.from_config(home(), config if config is not None else load_config())


def daemon_paths() -> Any:
    """Paths for reaching the daemon (pidfile, socket, logs, state.db): they depend on OXIOS_HOME only,
    so a broken config file never stops `oxios stop`, `status`, `log` or `config reload` from reaching
    a daemon that started with a good one. (Its ``workspace`` is the default's: do not use it.)"""
    from ..config import Config
    from ..kernel import Paths

    return Paths.from_config(home(), Config())


def echo_json(value: Any) -> None:
    import msgspec

    typer.echo(json.dumps(msgspec.to_builtins(value), indent=2, default=str))


def daemon_call(method: str, **params: Any) -> Any:
    """Call the running daemon; exits with a clear message when it is not running."""
    from ..control import ControlError, call
    from ..daemon import is_running

    p = daemon_paths()
    if not is_running(p):
        fail("Oxios is not running; start it with `oxios start`")
    try:
        return call(p.socket, method, **params)
    except ControlError as err:
        # Refused input exits 2 as it does when the command runs without the daemon.
        fail(str(err), 2 if err.kind == "invalid" else 1)


def interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


async def with_kernel(fn: Any, *, channels: bool = False) -> Any:
    """Run ``fn(kernel)`` against a kernel started in this process (no daemon needed)."""
    from ..kernel import Kernel

    kernel = Kernel(load_config(), home())
    await kernel.start(channels=channels)
    try:
        return await fn(kernel)
    finally:
        await kernel.stop()
