"""`oxios memory ...` against a running daemon (the CLI goes through the control socket)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from daemon_helpers import free_port

pytestmark = pytest.mark.slow


def oxios(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "oxios", *args], capture_output=True, text=True, env=env, timeout=60, stdin=subprocess.DEVNULL
    )


def test_memory_commands_through_the_daemon(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OXIOS")}
    env.update(OXIOS_HOME=str(tmp_path / "home"), OXIOS_LOAD_PLUGINS="", OXIOS__GATEWAY__PORT=str(free_port()))
    started = oxios(env, "start")
    assert started.returncode == 0, started.stderr
    try:
        added = oxios(env, "memory", "add", "The staging database is staging-db.internal", "--name", "staging-db")
        assert added.returncode == 0, added.stderr
        record_id = added.stdout.split()[0]
        # The daemon's own memory service holds the record: the CLI went through it.
        status = json.loads(oxios(env, "status", "--json").stdout)
        assert status["components"]["memory"]["total_entries"] == 1
        found = oxios(env, "memory", "search", "staging database", "--json")
        assert json.loads(found.stdout)[0]["record"]["id"] == record_id
        missing = oxios(env, "memory", "show", "nope")
        assert missing.returncode == 1 and "no memory" in missing.stderr
    finally:
        assert oxios(env, "stop").returncode == 0
    # After the daemon stopped, the same CLI works in-process on the same database.
    listed = oxios(env, "memory", "list", "--json")
    assert [r["id"] for r in json.loads(listed.stdout)] == [record_id]
