"""`oxios plugins [--all] [--hook NAME]`, `install` and `uninstall`."""

from __future__ import annotations

import subprocess
import sys

import typer

from .common import echo_json, fail

plugins_app = typer.Typer(help="List, install and uninstall plugins.", invoke_without_command=True)


@plugins_app.callback()
def plugins(
    ctx: typer.Context,
    all_: bool = typer.Option(False, "--all", help="Include built-in plugins."),
    hook: str = typer.Option(None, "--hook", help="Only plugins implementing this hook."),
) -> None:
    """Print installed plugins as JSON, with plugins that failed to load."""
    if ctx.invoked_subcommand is not None:
        return
    from ..plugins import PluginManager

    pm = PluginManager()
    pm.load()
    echo_json(
        {
            "plugins": pm.plugins(include_builtin=all_, hook=hook),
            "failed": [f.as_dict() for f in pm.failures],
        }
    )


def _pip(*args: str) -> None:
    cmd = [sys.executable, "-m", "pip", *args]
    typer.echo("$ " + " ".join(cmd))
    if subprocess.run(cmd, check=False).returncode != 0:
        fail("pip failed (see above)")


@plugins_app.command("install")
def install(target: str = typer.Argument(..., help="A name (oxios-plugin-NAME or NAME) or a path")) -> None:
    """pip-install a plugin into the interpreter Oxios runs on."""
    from pathlib import Path

    spec = target
    if not Path(target).exists() and not target.startswith("oxios-plugin-") and "/" not in target:
        spec = f"oxios-plugin-{target}"
    _pip("install", spec)
    typer.echo("installed; restart the daemon (`oxios restart`) to load it")


@plugins_app.command("uninstall")
def uninstall(name: str = typer.Argument(...)) -> None:
    """pip-uninstall a plugin."""
    dist = name if name.startswith("oxios-plugin-") else f"oxios-plugin-{name}"
    _pip("uninstall", "-y", dist)
    typer.echo("uninstalled; restart the daemon (`oxios restart`) to drop it")


def register(app: typer.Typer) -> None:
    app.add_typer(plugins_app, name="plugins")
