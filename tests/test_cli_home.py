"""Home management verbs: onboard, backup, restore, reset, log, completion, daemon unit, doctor."""

from __future__ import annotations

import io
import json
import sqlite3
import tarfile
from pathlib import Path

import pytest

from oxios.state import StateStore


def test_version_and_help(oxios_cli) -> None:
    from oxios import __version__

    assert oxios_cli("--version").output.strip() == f"oxios {__version__}"
    out = oxios_cli("--help").output
    for verb in (
        "start",
        "stop",
        "restart",
        "status",
        "doctor",
        "config",
        "plugins",
        "backup",
        "restore",
        "reset",
        "onboard",
        "log",
        "completion",
        "daemon",
    ):
        assert verb in out, verb


def test_onboard_non_interactive_writes_defaults(oxios_cli, oxios_home: Path) -> None:
    out = oxios_cli("onboard")
    assert out.exit_code == 0 and "wrote defaults" in out.output
    assert (oxios_home / "config.toml").exists()


def test_onboard_wizard_when_a_terminal_is_attached(oxios_cli, oxios_home: Path, monkeypatch) -> None:
    monkeypatch.setattr("oxios.cli.home_cmds.interactive", lambda: True)
    answers = "\n".join([str(oxios_home / "ws"), "4321", "openai-compatible", "http://127.0.0.1:11434/v1", "llama3.2"]) + "\n"
    out = oxios_cli("onboard", input=answers)
    assert out.exit_code == 0, out.output
    from oxios.config import load

    config = load(oxios_home / "config.toml", environ={})
    assert config.gateway.port == 4321
    assert config.kernel.workspace == str(oxios_home / "ws")
    assert config.providers["local"].base_url == "http://127.0.0.1:11434/v1"
    assert config.kernel.default_provider == "local"


def test_backup_and_restore_round_trip(oxios_cli, oxios_home: Path, tmp_path: Path) -> None:
    oxios_cli("onboard")
    store = StateStore(oxios_home / "state.db")
    store.kv_set("test", "answer", 42)  # still open: backup uses SQLite's online API
    (oxios_home / "workspace").mkdir(exist_ok=True)
    (oxios_home / "workspace" / "notes.txt").write_text("keep me")
    archive = tmp_path / "b.tar.gz"
    out = oxios_cli("backup", str(archive))
    assert out.exit_code == 0, out.output
    store.kv_set("test", "answer", 43)
    store.close()
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert "state.db" in names and "config.toml" in names and "workspace/notes.txt" in names
    assert not any(n.startswith("run") or n.endswith("-wal") for n in names)
    (oxios_home / "workspace" / "notes.txt").write_text("changed")
    out = oxios_cli("restore", str(archive), "--yes")
    assert out.exit_code == 0, out.output
    assert (oxios_home / "workspace" / "notes.txt").read_text() == "keep me"
    assert StateStore(oxios_home / "state.db").kv_get("test", "answer") == 42
    kept = [p for p in oxios_home.parent.iterdir() if ".pre-restore-" in p.name]
    assert kept and (kept[0] / "workspace" / "notes.txt").read_text() == "changed"  # nothing lost


def test_restore_rejects_path_traversal_and_damaged_archives(oxios_cli, oxios_home: Path, tmp_path: Path) -> None:
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        data = b"owned"
        info = tarfile.TarInfo("../../escaped.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    out = oxios_cli("restore", str(evil), "--yes")
    assert out.exit_code != 0 and "not a usable Oxios backup" in out.output
    assert not (tmp_path / "escaped.txt").exists()
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not an archive")
    assert oxios_cli("restore", str(junk), "--yes").exit_code != 0


def test_restore_and_reset_refuse_while_running(oxios_cli, oxios_home: Path, tmp_path: Path, monkeypatch) -> None:
    oxios_cli("onboard")
    archive = tmp_path / "b.tar.gz"
    oxios_cli("backup", str(archive))
    monkeypatch.setattr("oxios.daemon.is_running", lambda paths: {"pid": 1})
    out = oxios_cli("restore", str(archive), "--yes")
    assert out.exit_code == 1 and "stop it first" in out.output
    out = oxios_cli("reset", "--yes")
    assert out.exit_code == 1 and "stop it first" in out.output


def test_reset_lists_and_asks(oxios_cli, oxios_home: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    oxios_cli("onboard")
    out = oxios_cli("reset")  # not interactive and no --yes: refuse, delete nothing
    assert out.exit_code == 1 and str(oxios_home) in out.output and "--yes" in out.output
    assert oxios_home.exists()
    out = oxios_cli("reset", "--yes")
    assert out.exit_code == 0 and "deleted" in out.output
    assert not oxios_home.exists()


def test_log_shows_the_tail(oxios_cli, oxios_home: Path) -> None:
    assert oxios_cli("log").exit_code == 1  # no log yet: a clear error
    (oxios_home / "logs").mkdir(parents=True)
    (oxios_home / "logs" / "oxios.log").write_text("".join(f"line {i}\n" for i in range(100)))
    out = oxios_cli("log", "-n", "3")
    assert out.output.splitlines() == ["line 97", "line 98", "line 99"]


@pytest.mark.parametrize("shell,marker", [("bash", "complete"), ("zsh", "compdef"), ("fish", "complete")])
def test_completion_scripts(oxios_cli, shell: str, marker: str) -> None:
    out = oxios_cli("completion", shell)
    assert out.exit_code == 0 and marker in out.output and "_OXIOS_COMPLETE" in out.output
    assert oxios_cli("completion", "tcsh").exit_code != 0


def test_completion_script_completes_in_a_real_shell(oxios_home: Path) -> None:
    """The bash script `oxios completion bash` prints must get answers back from `oxios` itself."""
    import os
    import shutil
    import subprocess
    import sys

    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    bindir = oxios_home / "bin"
    bindir.mkdir()
    (bindir / "oxios").write_text(f'#!/bin/sh\nexec {sys.executable} -m oxios "$@"\n')
    (bindir / "oxios").chmod(0o755)
    env = {**os.environ, "OXIOS_HOME": str(oxios_home), "PATH": f"{bindir}:{os.environ['PATH']}", "OXIOS_LOAD_PLUGINS": ""}
    script = 'source <(oxios completion bash); COMP_WORDS=(oxios cron tr); COMP_CWORD=2; _oxios_completion oxios; echo "${COMPREPLY[@]}"'
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert done.stdout.split() == ["trigger"], done.stdout + done.stderr
    assert "not supported" not in done.stderr


def test_daemon_install_uninstall(oxios_cli, oxios_home: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    out = oxios_cli("daemon", "install")
    unit = tmp_path / "xdg" / "systemd" / "user" / "oxios.service"
    assert out.exit_code == 0 and str(unit) in out.output
    text = unit.read_text()
    assert "-m oxios --foreground" in text and f"OXIOS_HOME={oxios_home}" in text
    assert "ExecReload=/bin/kill -HUP $MAINPID" in text  # `systemctl --user reload oxios` reloads the config
    out = oxios_cli("daemon", "uninstall")
    assert out.exit_code == 0 and not unit.exists()


def test_doctor_reports_problems_with_fixes(oxios_cli, oxios_home: Path) -> None:
    (oxios_home / "config.toml").write_text("[exec]\nrequired_host_tools = ['definitely-not-a-tool-xyz']\n")
    out = oxios_cli("doctor", "--json")
    findings = json.loads(out.output)
    missing = [f for f in findings if "definitely-not-a-tool-xyz" in f["detail"]]
    assert missing and missing[0]["status"] == "error" and missing[0]["fix"]
    keys = [f for f in findings if f["check"] == "api keys"]
    assert keys and keys[0]["status"] == "warn" and "ANTHROPIC_API_KEY" in keys[0]["fix"]
    assert out.exit_code == 1
    (oxios_home / "config.toml").write_text("[gateway]\nport = 'x'\n")
    out = oxios_cli("doctor")
    assert "gateway.port" in out.output and out.exit_code == 1


def test_status_when_stopped(oxios_cli) -> None:
    out = oxios_cli("status")
    assert out.exit_code == 3 and "not running" in out.output


def test_backup_of_a_database_in_use_is_consistent(oxios_home: Path, tmp_path: Path) -> None:
    from oxios.state import backup_file

    store = StateStore(oxios_home / "state.db")
    for i in range(200):
        store.kv_set("bulk", str(i), i)
    backup_file(oxios_home / "state.db", tmp_path / "copy.db")
    conn = sqlite3.connect(tmp_path / "copy.db")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT count(*) FROM kv WHERE namespace='bulk'").fetchone()[0] == 200
    conn.close()
    store.close()


def test_doctor_honours_root_flags(oxios_cli, oxios_home: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = oxios_cli("--port", str(port), "doctor", "--json")
    findings = [f for f in json.loads(out.output) if f["check"] == "port"]
    assert findings and findings[0]["status"] == "error" and str(port) in findings[0]["detail"]
