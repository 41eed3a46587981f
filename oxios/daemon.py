"""The daemon: pidfile, lock, signals, foreground run and background start/stop."""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from . import __version__
from .config import Config
from .kernel import Kernel, Paths

log = logging.getLogger(__name__)


class DaemonError(Exception):
    """The daemon could not be started or stopped; the message says why and what to do."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); it is not running.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                return False
    except (OSError, IndexError):
        pass
    return True


def _looks_like_oxios(pid: int) -> bool:
    """Guard against pid reuse: the process must be an Oxios daemon."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return True  # no /proc (not Linux): trust the pid
    return b"oxios" in cmdline


def read_pidfile(paths: Paths) -> dict[str, Any] | None:
    try:
        return json.loads(paths.pidfile.read_text())
    except (OSError, ValueError):
        return None


def running(paths: Paths) -> dict[str, Any] | None:
    """Info of the running daemon, or ``None``; a stale pidfile is removed."""
    info = read_pidfile(paths)
    if info is None:
        if paths.pidfile.exists():
            paths.pidfile.unlink(missing_ok=True)  # unreadable: a half-written leftover
        return None
    pid = int(info.get("pid", 0))
    if pid > 0 and _pid_alive(pid) and _looks_like_oxios(pid):
        return info
    log.info("removing stale pidfile of pid %s", pid)
    paths.pidfile.unlink(missing_ok=True)
    try:
        paths.socket.unlink()
    except FileNotFoundError:
        pass
    return {"stale": True, "pid": pid} if pid else None


def is_running(paths: Paths) -> dict[str, Any] | None:
    info = running(paths)
    return None if info is None or info.get("stale") else info


class _Lock:
    """An exclusive flock held for the daemon's life: two daemons never share a home."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            os.close(self.fd)
            self.fd = None
            return False

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _write_pidfile(paths: Paths, kernel: Kernel) -> None:
    from .config import write_atomic

    info = {
        "pid": os.getpid(),
        "started_at": time.time(),
        "version": __version__,
        "home": str(paths.home),
        "executable": sys.executable,
        "plugins": [p["name"] for p in kernel.plugins.plugins()],
    }
    write_atomic(paths.pidfile, json.dumps(info), mode=0o644)


async def _reload_on_signal(kernel: Kernel) -> None:
    from .config import ConfigError

    try:
        await kernel.reload_config(actor="signal:SIGHUP")
    except ConfigError:
        pass  # logged and audited by the reload; the running config stays
    except Exception:
        log.exception("config reload on SIGHUP failed")


async def serve(kernel: Kernel, *, stop_event: asyncio.Event | None = None) -> None:
    """Run the kernel until SIGTERM/SIGINT (or ``stop_event``), then stop cleanly. SIGHUP reloads the config."""
    from .control import ControlServer

    paths = kernel.paths
    stop_event = stop_event or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop_event.set)
        except (NotImplementedError, RuntimeError):
            pass
    started = asyncio.Event()
    reloads: set[asyncio.Task[None]] = set()

    async def reload_when_started() -> None:
        await started.wait()  # a SIGHUP during start-up reloads once the services exist
        await _reload_on_signal(kernel)

    stopping: asyncio.Event = stop_event

    def on_sighup() -> None:
        if stopping.is_set():
            return  # stopping: nothing to reload (the handler stays, so SIGHUP cannot kill a clean stop)
        task = asyncio.create_task(reload_when_started(), name="oxios-config-reload")
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    try:
        # Installed before start-up: SIGHUP's default action would kill the daemon.
        loop.add_signal_handler(signal.SIGHUP, on_sighup)
    except (NotImplementedError, RuntimeError):
        pass
    kernel.daemon = True
    await kernel.start()
    started.set()
    control = ControlServer(paths.socket, kernel.rpc)
    await control.start()
    _write_pidfile(paths, kernel)
    log.info("oxios %s running (pid %s, home %s)", __version__, os.getpid(), paths.home)
    try:
        await stop_event.wait()
    finally:
        log.info("stopping")
        for task in list(reloads):
            task.cancel()
        await control.stop()
        await kernel.stop()
        if (read_pidfile(paths) or {}).get("pid") == os.getpid():
            paths.pidfile.unlink(missing_ok=True)
        log.info("stopped")


def run_foreground(config: Config, home: Path, *, to_stderr: bool = True, overrides: dict[str, Any] | None = None) -> int:
    """``oxios --foreground``: hold the lock, serve, exit 0 on a clean stop.

    ``overrides`` are the command-line flags ``config`` was built with; a config reload keeps them.
    """
    from . import logs

    kernel = Kernel(config, home, overrides=overrides)
    paths = kernel.paths
    paths.ensure()
    logs.setup(paths.logs, config.kernel.log_level, to_stderr=to_stderr)
    lock = _Lock(paths.run / "oxios.lock")
    if not lock.acquire():
        info = read_pidfile(paths) or {}
        raise DaemonError(f"Oxios is already running (pid {info.get('pid', '?')}); `oxios stop` stops it")
    try:
        running(paths)  # clean a stale pidfile left by a killed daemon
        asyncio.run(serve(kernel))
    finally:
        lock.release()
    return 0


def start_background(home: Path, paths: Paths, *, extra_args: list[str] | None = None, timeout: float = 30.0) -> dict[str, Any]:
    """Start ``python -m oxios --foreground`` detached and wait until it answers."""
    info = is_running(paths)
    if info:
        raise DaemonError(f"Oxios is already running (pid {info['pid']})")
    paths.logs.mkdir(parents=True, exist_ok=True)
    out = open(paths.logs / "daemon.out", "ab")
    env = dict(os.environ, OXIOS_HOME=str(home))
    proc = subprocess.Popen(
        [sys.executable, "-m", "oxios", "--foreground", "--quiet", *(extra_args or [])],
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=out,
        start_new_session=True,
        env=env,
        close_fds=True,
    )
    out.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = (paths.logs / "daemon.out").read_text(errors="replace").strip().splitlines()[-5:]
            raise DaemonError("the daemon exited during start-up:\n  " + "\n  ".join(tail))
        info = is_running(paths)
        if info and info.get("pid") == proc.pid and paths.socket.exists():
            return info
        time.sleep(0.05)
    raise DaemonError(f"the daemon did not come up within {timeout:.0f}s; see {paths.logs / 'oxios.log'}")


def stop(paths: Paths, *, timeout: float = 20.0) -> int | None:
    """SIGTERM the daemon and wait; SIGKILL after ``timeout``. Returns the pid stopped."""
    info = is_running(paths)
    if not info:
        return None
    pid = int(info["pid"])
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            break
        time.sleep(0.05)
    else:
        log.warning("daemon %s did not stop in %ss; killing it", pid, timeout)
        os.kill(pid, signal.SIGKILL)
    paths.pidfile.unlink(missing_ok=True)
    return pid
