"""The daemon: pidfile, lock, signals, foreground run and background start/stop."""

from __future__ import annotations

import asyncio
import errno
import fcntl
import json
import logging
import os
import signal
import sqlite3
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


# Errors that mean "OXIOS_HOME cannot be written": the message then says what to check.
_DISK_ERRNOS = {errno.EROFS, errno.ENOSPC, errno.EACCES, errno.EPERM, errno.EDQUOT}
_DISK_WORDS = ("disk", "readonly", "read-only", "unable to open")


def describe_start_failure(err: BaseException, paths: Paths) -> str:
    """One sentence for a start-up failure of the file system or state database, with what to check."""
    if isinstance(err, sqlite3.Error):
        what = f"the state database {paths.db}: {err}"
        disk = any(word in str(err).lower() for word in _DISK_WORDS)
    elif isinstance(err, OSError):
        where = f" ({err.filename})" if err.filename else ""
        what = f"{err.strerror or err}{where}"
        disk = err.errno in _DISK_ERRNOS
    else:
        what, disk = f"{type(err).__name__}: {err}", False
    hint = f"; OXIOS_HOME ({paths.home}) must be writable and have free space" if disk else ""
    return f"Oxios could not start: {what}{hint}"


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
    control = ControlServer(paths.socket, kernel.rpc)
    try:
        await kernel.start()
        started.set()
        await control.start()
        _write_pidfile(paths, kernel)
    except (OSError, sqlite3.Error) as err:  # a full disk, a read-only home, a socket path too long
        log.error("start-up failed: %s", err)
        try:
            await control.stop()
            await kernel.stop()
        except Exception:
            log.exception("clean-up after the failed start failed")
        raise DaemonError(describe_start_failure(err, paths)) from None
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
    lock = _Lock(paths.run / "oxios.lock")
    try:
        paths.ensure()
        logs.setup(paths.logs, config.kernel.log_level, to_stderr=to_stderr)
        locked = lock.acquire()
    except OSError as err:
        raise DaemonError(describe_start_failure(err, paths)) from None
    if not locked:
        info = read_pidfile(paths) or {}
        raise DaemonError(f"Oxios is already running (pid {info.get('pid', '?')}); `oxios stop` stops it")
    try:
        running(paths)  # clean a stale pidfile left by a killed daemon
        asyncio.run(serve(kernel))
    finally:
        lock.release()
    return 0


def start_background(home: Path, paths: Paths, *, extra_args: list[str] | None = None, timeout: float = 90.0) -> dict[str, Any]:
    """Start ``python -m oxios --foreground`` detached and wait until it answers."""
    info = is_running(paths)
    if info:
        raise DaemonError(f"Oxios is already running (pid {info['pid']})")
    try:
        paths.logs.mkdir(parents=True, exist_ok=True)
        out = open(paths.logs / "daemon.out", "ab")
    except OSError as err:
        raise DaemonError(describe_start_failure(err, paths)) from None
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
            raise DaemonError(_start_up_exit(paths, proc.returncode))
        info = is_running(paths)
        if info and info.get("pid") == proc.pid and paths.socket.exists():
            return info
        time.sleep(0.05)
    raise DaemonError(
        f"the daemon (pid {proc.pid}) did not answer within {timeout:.0f}s; it may still be starting:"
        f" check `oxios status`, and {paths.logs / 'oxios.log'}"
    )


def _start_up_exit(paths: Paths, code: int) -> str:
    """Why the background daemon exited: its own ``error:`` line if it printed one, else its output's tail."""
    out = paths.logs / "daemon.out"
    try:
        tail = out.read_text(errors="replace").strip().splitlines()[-20:]
    except OSError:
        tail = []
    errors = [line.removeprefix("error: ") for line in tail if line.startswith("error: ")]
    if errors:
        return errors[-1]
    if not tail:
        return (
            f"the daemon exited during start-up (code {code}) without output{_disk_hint(paths)}; `oxios --foreground` shows why"
        )
    return "the daemon exited during start-up:\n  " + "\n  ".join(tail[-5:])


def _disk_hint(paths: Paths) -> str:
    """Why a daemon could leave no output at all: the disk under OXIOS_HOME is full (or it is read-only)."""
    try:
        fs = os.statvfs(paths.home)
    except OSError:
        return ""
    if fs.f_flag & os.ST_RDONLY:
        return f"; OXIOS_HOME ({paths.home}) is on a read-only file system"
    if fs.f_bavail * fs.f_frsize < 1024 * 1024:
        return f"; the disk of OXIOS_HOME ({paths.home}) is full"
    return ""


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
