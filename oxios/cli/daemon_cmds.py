"""Daemon verbs: start, stop, restart, status, log, and the systemd unit."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import typer

from .common import CLI_OVERRIDES, daemon_paths, echo_json, fail, home, load_config, paths

daemon_app = typer.Typer(help="Install Oxios as a service (systemd user unit).", no_args_is_help=True)

UNIT_NAME = "oxios.service"


def override_args() -> list[str]:
    """The CLI overrides of this invocation as ``--set KEY=VALUE`` arguments."""
    import json

    args: list[str] = []

    def walk(tree: dict, prefix: str) -> None:
        for key, value in tree.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")
            else:
                args.extend(["--set", f"{prefix}{key}={json.dumps(value)}"])

    walk(CLI_OVERRIDES, "")
    return args


def start(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Start the daemon in the background."""
    from ..daemon import DaemonError, is_running, start_background

    config = load_config()
    p = paths(config)
    info = is_running(p)
    if info:
        if json_out:  # scripts asked for JSON: the pid record of the daemon that runs, saying so
            echo_json({**info, "already_running": True, "channels": _channel_states(p)})
        else:
            typer.echo(f"Oxios is already running (pid {info['pid']})")
        return
    try:
        # The background daemon reads config itself; hand it this command's flags (--port, --set ...).
        info = start_background(home(), p, extra_args=override_args())
    except DaemonError as err:
        fail(str(err))
    channels = _channel_states(p)
    if json_out:
        echo_json({**info, "channels": channels})
        return
    typer.echo(f"Oxios started (pid {info['pid']}); logs: {p.logs / 'oxios.log'}")
    for name, state in channels.items():
        if state.get("state") == "failed":
            typer.secho(f"warning: channel {name} failed to start: {state.get('detail')}", fg=typer.colors.YELLOW, err=True)
    if channels.get("web", {}).get("state") == "running":
        typer.echo(f"Web UI: http://{config.gateway.host}:{config.gateway.port}")


def _channel_states(p: Any) -> dict[str, Any]:
    from ..control import ControlError, call

    try:
        return call(p.socket, "status", timeout=10).get("channels") or {}
    except ControlError:
        return {}


def stop() -> None:
    """Stop the daemon (SIGTERM, then SIGKILL after 20 s)."""
    from ..daemon import stop as stop_daemon

    pid = stop_daemon(daemon_paths())
    typer.echo(f"Oxios stopped (pid {pid})" if pid else "Oxios is not running")


def restart() -> None:
    """Stop the daemon if it runs, then start it."""
    stop()
    start(json_out=False)


def status(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Say whether the daemon runs: pid, uptime, version, plugins."""
    from ..control import ControlError, call
    from ..daemon import running

    p = daemon_paths()
    info = running(p)
    if info is None or info.get("stale"):
        if info and info.get("stale"):
            typer.echo(f"removed a stale pidfile (pid {info['pid']} is gone)", err=True)
        if json_out:
            echo_json({"status": "stopped"})
        else:
            typer.echo("Oxios is not running")
        raise typer.Exit(3)
    try:
        st = call(p.socket, "status", timeout=10)
    except ControlError as err:
        st = {
            "status": "running",
            "pid": info["pid"],
            "version": info.get("version"),
            "detail": str(err),
            "plugins": info.get("plugins", []),
            "uptime_secs": round(time.time() - info.get("started_at", time.time())),
        }
    if json_out:
        echo_json(st)
        return
    typer.echo(
        f"Oxios is running (pid {st.get('pid')}, up {st.get('uptime', str(st.get('uptime_secs')) + 's')}, version {st.get('version')})"
    )
    typer.echo(f"home: {p.home}")
    typer.echo(f"plugins: {', '.join(st.get('plugins') or []) or '(none)'}")
    for name, state in (st.get("channels") or {}).items():
        detail = f" ({state['detail']})" if isinstance(state, dict) and state.get("detail") else ""
        typer.echo(f"channel {name}: {state.get('state') if isinstance(state, dict) else state}{detail}")
    for fail_ in st.get("plugin_failures") or []:
        stage = fail_.get("stage") or "load"
        what = "failed to load" if stage == "load" else f"failed in {stage}"
        typer.echo(f"plugin {fail_['name']} {what}: {fail_['error']}")
    for name, comp in (st.get("components") or {}).items():
        if isinstance(comp, dict) and comp.get("healthy") is False:
            typer.echo(f"{name}: unhealthy ({comp.get('detail')})")


def log(
    follow: bool = typer.Option(False, "-f", "--follow", help="Keep printing new lines."),
    lines: int = typer.Option(50, "-n", "--lines", help="How many lines to show."),
) -> None:
    """Show the daemon's log."""
    path = daemon_paths().logs / "oxios.log"
    if not path.exists():
        fail(f"no log yet at {path}")
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh.readlines()[-lines:]:
            typer.echo(line.rstrip("\n"))
        if not follow:
            return
        try:
            while True:
                line = fh.readline()
                if line:
                    typer.echo(line.rstrip("\n"))
                else:
                    time.sleep(0.25)
        except KeyboardInterrupt:
            return


def _unit_path() -> Path:
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "systemd" / "user" / UNIT_NAME


def unit_text() -> str:
    return (
        "[Unit]\n"
        "Description=Oxios agent operating system\n"
        "After=network-online.target\n\n"
        "[Service]\n"
        f"ExecStart={sys.executable} -m oxios --foreground --quiet\n"
        f"Environment=OXIOS_HOME={home()}\n"
        "Restart=on-failure\n"
        "RestartSec=5\n"
        "KillSignal=SIGTERM\n"
        "ExecReload=/bin/kill -HUP $MAINPID\n"
        "TimeoutStopSec=30\n\n"
        "[Install]\n"
        "WantedBy=default.target\n"
    )


@daemon_app.command("install")
def daemon_install() -> None:
    """Write a systemd user unit that runs Oxios at login."""
    from ..config import write_atomic

    path = _unit_path()
    write_atomic(path, unit_text(), mode=0o644)
    typer.echo(f"wrote {path}")
    if shutil.which("systemctl"):
        typer.echo("enable it with: systemctl --user daemon-reload && systemctl --user enable --now oxios")


@daemon_app.command("uninstall")
def daemon_uninstall() -> None:
    """Remove the systemd user unit."""
    path = _unit_path()
    if not path.exists():
        typer.echo(f"no unit at {path}")
        return
    if shutil.which("systemctl"):
        subprocess.run(["systemctl", "--user", "disable", "--now", UNIT_NAME], capture_output=True, check=False)
    path.unlink()
    typer.echo(f"removed {path}")


@daemon_app.command("status")
def daemon_status() -> None:
    """Same as `oxios status`."""
    status(json_out=False)


@daemon_app.command("restart")
def daemon_restart() -> None:
    """Same as `oxios restart`."""
    restart()


def register(app: typer.Typer) -> None:
    app.command()(start)
    app.command()(stop)
    app.command()(restart)
    app.command()(status)
    app.command()(log)
    app.add_typer(daemon_app, name="daemon")
