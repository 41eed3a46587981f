"""Shared pieces of the tests that run a real daemon: a free port, a clean environment, the CLI."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def daemon_env(tmp_path: Path) -> dict[str, str]:
    """The test process's environment without OXIOS_*, a home under ``tmp_path``, no plugins, a free port."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OXIOS")}
    env.update(OXIOS_HOME=str(tmp_path / "home"), OXIOS_LOAD_PLUGINS="", OXIOS__GATEWAY__PORT=str(free_port()))
    return env


def oxios(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`oxios ARGS` in a subprocess, as a user would type it."""
    return subprocess.run(
        [sys.executable, "-m", "oxios", *args], capture_output=True, text=True, env=env, timeout=timeout, stdin=subprocess.DEVNULL
    )
