"""The `oxios` command line. One module per command group; plugins add theirs."""

from __future__ import annotations

import os
import sys
from typing import Any

import typer

from .. import __version__
from . import common

app = typer.Typer(
    name="oxios",
    help="Oxios: an operating system for LLM agents. With no command, starts the daemon in the background.",
    invoke_without_command=True,
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"oxios {__version__}")
        raise typer.Exit()


def _parse_sets(sets: list[str]) -> dict[str, Any]:
    from ..config import _set_dotted, parse_value

    tree: dict[str, Any] = {}
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep or not key:
            common.fail(f"--set takes KEY=VALUE, got {item!r}", 2)
        _set_dotted(tree, key.strip(), parse_value(value.strip()))
    return tree


@app.callback()
def root(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
    foreground: bool = typer.Option(False, "--foreground", help="Run the daemon in this terminal (Ctrl-C stops it)."),
    quiet: bool = typer.Option(False, "--quiet", help="With --foreground: log to the file only."),
    host: str = typer.Option(None, "--host", help="Override gateway.host."),
    port: int = typer.Option(None, "--port", help="Override gateway.port."),
    workspace: str = typer.Option(None, "--workspace", help="Override kernel.workspace."),
    set_: list[str] = typer.Option(
        [], "--set", metavar="KEY=VALUE", help="Override any key (repeatable): --set scheduler.max_concurrent=3"
    ),
) -> None:
    overrides = _parse_sets(set_)
    if host:
        overrides.setdefault("gateway", {})["host"] = host
    if port:
        overrides.setdefault("gateway", {})["port"] = port
    if workspace:
        overrides.setdefault("kernel", {})["workspace"] = workspace
    common.CLI_OVERRIDES.update(overrides)
    if ctx.invoked_subcommand is not None:
        return
    if foreground:
        from ..daemon import DaemonError, run_foreground

        config = common.load_config()
        try:
            code = run_foreground(config, common.home(), to_stderr=not quiet, overrides=common.CLI_OVERRIDES)
        except DaemonError as err:
            common.fail(str(err))
        raise typer.Exit(code)
    from ..config import config_path

    if not config_path(common.home()).exists():
        from .home_cmds import run_onboarding

        run_onboarding(ask=common.interactive())
    from .daemon_cmds import start

    start(json_out=False)


@app.command()
def doctor(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Diagnose config, plugins, host tools, API keys and ports; each problem with its fix."""
    from ..doctor import run

    findings = run(common.CLI_OVERRIDES)
    if json_out:
        common.echo_json([f.as_dict() for f in findings])
    else:
        marks = {"ok": "ok   ", "warn": "warn ", "error": "ERROR"}
        for f in findings:
            typer.echo(f"[{marks.get(f.status, f.status)}] {f.check}: {f.detail}")
            if f.fix and f.status != "ok":
                first, *more = f.fix.splitlines()
                typer.echo(f"        fix: {first}")
                for line in more:  # a fix of several lines keeps its shape, indented under the first
                    typer.echo(f"             {line}")
    if any(f.status == "error" for f in findings):
        raise typer.Exit(1)


# Built-in command groups: one module each under oxios/cli/, each with register(app).
COMMAND_MODULES: list[str] = [
    "audit_cmds",
    "security_cmds",
    "daemon_cmds",
    "config_cmds",
    "plugin_cmds",
    "home_cmds",
    "run_cmds",
    "agent_cmds",
    "persona_cmds",
    "models_cmds",
    "pairing_cmds",
    "seed_cmds",
    "skill_cmds",
    "memory_cmds",
    "cron_cmds",
]

_built = False


def build_app() -> typer.Typer:
    """The root app with built-in groups and plugin commands (idempotent)."""
    global _built
    if not _built:
        _built = True
        import importlib

        for name in COMMAND_MODULES:
            importlib.import_module(f"{__name__}.{name}").register(app)
        _register_plugin_commands()
    return app


def _register_plugin_commands() -> None:
    """Plugins add command groups through ``register_commands(app)``."""
    import logging

    from ..plugins import PluginManager

    pm = PluginManager()
    pm.load()
    for impl in pm.implementations("register_commands"):
        try:
            pm.call_impl(impl, "register_commands", app=app)
        except Exception as err:
            logging.getLogger(__name__).warning("plugin %s failed to add commands: %s", pm.plugin_of(impl.plugin), err)


def main() -> None:
    build_app()
    if "_OXIOS_COMPLETE" in os.environ:
        # A shell asks for completions (`oxios completion SHELL` installed the script). The app is
        # built with add_completion=False (no --install-completion flags), which leaves typer's
        # bash/zsh/fish completers unregistered: without this every request says "Shell bash not supported".
        from typer.completion import completion_init

        completion_init()
    try:
        app(prog_name="oxios")
    except KeyboardInterrupt:
        sys.exit(130)
