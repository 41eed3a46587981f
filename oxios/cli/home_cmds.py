"""Home management: onboard, backup, restore, reset, doctor, completion."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
import time
from enum import StrEnum
from pathlib import Path

import typer

from .common import fail, home, interactive, load_config, paths

STATE_FILES = ("state.db", "state.db-wal", "state.db-shm")


def onboard(
    yes: bool = typer.Option(False, "--yes", "-y", help="Accept defaults without asking."),
) -> None:
    """First-run wizard: workspace, provider and key, port (defaults when not interactive)."""
    run_onboarding(ask=interactive() and not yes)


def run_onboarding(*, ask: bool) -> None:
    from ..config import ConfigError, config_path, ensure_file, set_key

    path = config_path(home())
    ensure_file(path)
    if not ask:
        typer.echo(f"wrote defaults to {path} (run `oxios onboard` in a terminal to customise)")
        return
    config = load_config()
    typer.echo("Welcome to Oxios. Press Enter to keep a default.\n")
    workspace = typer.prompt("Workspace folder", default=config.kernel.workspace)
    port = typer.prompt("Web UI port", default=config.gateway.port, type=int)
    kind = typer.prompt("LLM provider (anthropic, openai, openai-compatible, none)", default="anthropic")
    changes: list[tuple[str, str]] = [("kernel.workspace", json.dumps(workspace)), ("gateway.port", str(port))]
    if kind in ("anthropic", "openai"):
        env = "ANTHROPIC_API_KEY" if kind == "anthropic" else "OPENAI_API_KEY"
        if os.environ.get(env):
            typer.echo(f"{env} is set in your environment; Oxios will use it.")
        else:
            key = typer.prompt(
                f"{kind} API key (stored in {path}, mode 0600; blank to skip)", default="", hide_input=True, show_default=False
            )
            if key:
                changes += [(f"providers.{kind}.kind", json.dumps(kind)), (f"providers.{kind}.api_key", json.dumps(key))]
    elif kind == "openai-compatible":
        url = typer.prompt("Base URL (e.g. http://127.0.0.1:11434/v1 for Ollama)")
        model = typer.prompt("Model name", default="llama3.2")
        changes += [
            ("providers.local.kind", '"openai"'),
            ("providers.local.base_url", json.dumps(url)),
            ("providers.local.default_model", json.dumps(model)),
            ("kernel.default_provider", '"local"'),
        ]
    for key, value in changes:
        try:
            set_key(path, key, value)
        except ConfigError as err:
            fail(str(err), 2)
    typer.echo(f"\nSaved {path}. Start Oxios with `oxios`.")


def _default_backup_name() -> str:
    return f"oxios-backup-{time.strftime('%Y%m%d-%H%M%S')}.tar.gz"


def backup(file: Path = typer.Argument(None, help="Archive to write (default: ./oxios-backup-DATE.tar.gz)")) -> None:
    """Archive OXIOS_HOME; the database is copied with SQLite's online backup API."""
    from ..state import backup_file

    h = home()
    if not h.exists():
        fail(f"nothing to back up: {h} does not exist")
    target = (file or Path(_default_backup_name())).resolve()
    if h in target.parents:
        fail(f"write the backup outside {h}")
    with tempfile.TemporaryDirectory() as tmp:
        db_copy = Path(tmp) / "state.db"
        if (h / "state.db").exists():
            backup_file(h / "state.db", db_copy)
        partial = target.with_name(target.name + ".partial")
        with tarfile.open(partial, "w:gz") as tar:
            for entry in sorted(h.iterdir()):
                if entry.name in STATE_FILES or entry.name == "run":
                    continue
                tar.add(entry, arcname=entry.name)
            if db_copy.exists():
                tar.add(db_copy, arcname="state.db")
        os.replace(partial, target)
    typer.echo(f"backed up {h} to {target}")


def restore(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="An archive made by `oxios backup`"),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask."),
) -> None:
    """Restore OXIOS_HOME from an archive (refuses while the daemon runs)."""
    from ..daemon import is_running

    h = home()
    if is_running(paths()):
        fail("Oxios is running; stop it first with `oxios stop`")
    if not yes and interactive() and not typer.confirm(f"Replace the contents of {h} with {file}?"):
        raise typer.Exit(1)
    h.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=h.parent) as tmp:
        try:
            with tarfile.open(file, "r:*") as tar:
                tar.extractall(tmp, filter="data")  # refuses absolute paths, .. and links out
        except (tarfile.TarError, OSError) as err:
            fail(f"{file} is not a usable Oxios backup: {err}")
        db = Path(tmp) / "state.db"
        if db.exists():
            conn = sqlite3.connect(db)
            try:
                ok = conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            finally:
                conn.close()
            if not ok:
                fail(f"{file}: the database in the archive is damaged; nothing was changed")
        aside = None
        if h.exists() and any(h.iterdir()):
            aside = h.with_name(f"{h.name}.pre-restore-{time.strftime('%Y%m%d-%H%M%S')}")
            os.replace(h, aside)
        os.replace(tmp, h)
        Path(tmp).mkdir()  # TemporaryDirectory cleans up a path it expects to exist
    typer.echo(f"restored {h} from {file}" + (f"; the previous home is kept at {aside}" if aside else ""))


def reset(yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask (for scripts).")) -> None:
    """Delete all Oxios data: config, workspace, state, credentials, service unit."""
    from ..daemon import is_running
    from .daemon_cmds import _unit_path

    h = home()
    p = paths() if (h / "config.toml").exists() else None
    if p is not None and is_running(p):
        fail("Oxios is running; stop it first with `oxios stop`")
    targets = [t for t in [h, *([p.workspace] if p and h not in p.workspace.parents else []), _unit_path()] if t.exists()]
    if not targets:
        typer.echo("nothing to delete")
        return
    typer.echo("This deletes:")
    for t in targets:
        typer.echo(f"  {t}")
    if not yes:
        if not interactive():
            fail("refusing to delete without confirmation; pass --yes", 1)
        if not typer.confirm("Delete all of the above?"):
            raise typer.Exit(1)
    for t in targets:
        shutil.rmtree(t) if t.is_dir() else t.unlink()
    typer.echo("Oxios data deleted")


class Shell(StrEnum):
    bash = "bash"
    zsh = "zsh"
    fish = "fish"


def completion(shell: Shell = typer.Argument(..., help="bash, zsh or fish")) -> None:
    """Print the shell completion script for bash, zsh or fish.

    Install it with `oxios completion bash >> ~/.bashrc` (see docs/user-guide.md for zsh and fish).
    """
    from typer._completion_shared import get_completion_script

    typer.echo(get_completion_script(prog_name="oxios", complete_var="_OXIOS_COMPLETE", shell=shell.value))


def register(app: typer.Typer) -> None:
    app.command()(onboard)
    app.command()(backup)
    app.command()(restore)
    app.command()(reset)
    app.command()(completion)
