"""The daemon's life in a temporary OXIOS_HOME: start, status, stop, restart, stale pidfiles."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from daemon_helpers import daemon_env, oxios

pytestmark = pytest.mark.slow


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return daemon_env(tmp_path)


def wait_gone(pid: int, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_start_status_stop_restart(env: dict[str, str]) -> None:
    home = Path(env["OXIOS_HOME"])
    started = oxios(env)  # bare `oxios` starts in the background and returns
    try:
        assert started.returncode == 0, started.stderr
        assert "Oxios started" in started.stdout
        assert (home / "config.toml").exists()  # first run wrote the defaults
        status = oxios(env, "status", "--json")
        assert status.returncode == 0
        info = json.loads(status.stdout)
        assert info["status"] == "running" and info["version"] and info["uptime_secs"] >= 0
        pid = info["pid"]
        again = oxios(env, "start")
        assert again.returncode == 0 and f"already running (pid {pid})" in again.stdout
        again_json = json.loads(oxios(env, "start", "--json").stdout)  # --json stays JSON when it already runs
        assert again_json["pid"] == pid and again_json["already_running"] is True
        restarted = oxios(env, "restart")
        assert restarted.returncode == 0, restarted.stderr
        assert wait_gone(pid)
        new_pid = json.loads(oxios(env, "status", "--json").stdout)["pid"]
        assert new_pid != pid
        human = oxios(env, "status")
        assert f"Oxios is running (pid {new_pid}" in human.stdout and "plugins:" in human.stdout
    finally:
        stopped = oxios(env, "stop")
    assert "Oxios stopped" in stopped.stdout
    gone = oxios(env, "status")
    assert gone.returncode == 3 and "not running" in gone.stdout
    assert not (home / "run" / "oxios.pid").exists()
    assert "stopped" in (home / "logs" / "oxios.log").read_text()


def test_stale_pidfile_from_a_killed_daemon_is_cleaned(env: dict[str, str]) -> None:
    home = Path(env["OXIOS_HOME"])
    assert oxios(env, "start").returncode == 0
    pid = json.loads((home / "run" / "oxios.pid").read_text())["pid"]
    os.kill(pid, signal.SIGKILL)
    assert wait_gone(pid)
    status = oxios(env, "status")
    assert status.returncode == 3 and "stale pidfile" in status.stderr
    assert not (home / "run" / "oxios.pid").exists()
    # A fresh start works after the crash.
    assert oxios(env, "start").returncode == 0
    assert oxios(env, "stop").returncode == 0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_foreground_stops_cleanly_on_signal(env: dict[str, str], sig: signal.Signals) -> None:
    home = Path(env["OXIOS_HOME"])
    proc = subprocess.Popen(
        [sys.executable, "-m", "oxios", "--foreground"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 30
        ready = lambda: (home / "run" / "oxios.sock").exists() and (home / "run" / "oxios.pid").exists()  # noqa: E731
        while not ready() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready()
        second = oxios(env, "--foreground")
        assert second.returncode != 0 and "already running" in second.stderr
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, out
    assert "stopped" in out
    assert not (home / "run" / "oxios.pid").exists() and not (home / "run" / "oxios.sock").exists()


def test_invalid_config_refuses_to_start(env: dict[str, str]) -> None:
    home = Path(env["OXIOS_HOME"])
    home.mkdir(parents=True)
    (home / "config.toml").write_text("[scheduler]\nmax_concurrent = 'five'\n")
    out = oxios(env, "--foreground")
    assert out.returncode == 2
    assert "scheduler.max_concurrent" in out.stderr and str(home / "config.toml") in out.stderr
    assert not (home / "run" / "oxios.pid").exists()
    assert oxios(env, "start").returncode == 2


def test_a_config_broken_while_running_does_not_lock_the_user_out(env: dict[str, str]) -> None:
    home = Path(env["OXIOS_HOME"])
    started = oxios(env, "start")
    try:
        assert started.returncode == 0, started.stderr
        (home / "config.toml").write_text("[scheduler\nmax_concurrent = ")  # a bad hand edit
        status = oxios(env, "status", "--json")
        assert status.returncode == 0 and json.loads(status.stdout)["status"] == "running", status.stderr
        assert oxios(env, "log").returncode == 0
        reload = oxios(env, "config", "reload")
        assert reload.returncode == 2 and "invalid config" in reload.stderr
        stopped = oxios(env, "stop")
        assert stopped.returncode == 0 and "Oxios stopped" in stopped.stdout, stopped.stderr
    finally:
        oxios(env, "stop")


def test_cli_flags_reach_the_background_daemon(env: dict[str, str], tmp_path: Path) -> None:
    workspace = tmp_path / "elsewhere"
    started = oxios(env, "--workspace", str(workspace), "--set", "scheduler.max_concurrent=2", "start")
    try:
        assert started.returncode == 0, started.stderr
        info = json.loads(oxios(env, "status", "--json").stdout)
        assert info["workspace"] == str(workspace.resolve())
        assert workspace.is_dir()
    finally:
        oxios(env, "stop")


def test_a_channel_that_cannot_start_is_reported_not_hidden(env: dict[str, str]) -> None:
    env = {**env, "OXIOS_LOAD_PLUGINS": "web"}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", int(env["OXIOS__GATEWAY__PORT"])))
        taken.listen()
        started = oxios(env, "start")
        try:
            assert started.returncode == 0, started.stderr
            assert "channel web failed to start" in started.stderr and "Web UI" not in started.stdout
            status = oxios(env, "status")
            assert "channel web: failed" in status.stdout
            info = json.loads(oxios(env, "status", "--json").stdout)
            assert info["channels"]["web"]["state"] == "failed" and info["status"] == "running"
            # doctor must not call the port "served by the running daemon" when the web UI never bound it
            doctor = oxios(env, "doctor", "--json")
            port = [f for f in json.loads(doctor.stdout) if f["check"] == "port"]
            assert port[0]["status"] == "error" and "Address already in use" in port[0]["detail"]
            assert doctor.returncode == 1
        finally:
            oxios(env, "stop")


def test_restart_prints_a_sentence_not_json(env: dict[str, str]) -> None:
    assert oxios(env, "start").returncode == 0
    try:
        restarted = oxios(env, "restart")
        assert restarted.returncode == 0 and "Oxios started (pid" in restarted.stdout
        assert not restarted.stdout.lstrip().startswith("{")
    finally:
        oxios(env, "stop")
