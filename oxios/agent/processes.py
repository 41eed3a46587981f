"""Host commands for agents: own process group, scrubbed env, bounded output, hard timeout.

Each command starts in a new session (so a process group of its own); a
timeout, a cancelled agent or ``kill_agent_processes`` kills the whole group,
grandchildren included. Output beyond the limit is drained and dropped, with a
marker saying how much was left out, so a chatty command can neither block on
a full pipe nor flood the model's context.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from typing import Any

import msgspec

# Variables every command gets (when set in the daemon's environment); nothing else leaks through.

# agent id -> process group ids of its running commands
_RUNNING: dict[str, set[int]] = {}


class ExecResult(msgspec.Struct, kw_only=True):
    exit_code: int | None
    output: str
    truncated: bool = False
    timed_out: bool = False
    duration_ms: int = 0


def _killpg(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def kill_agent_processes(agent_id: str) -> int:
    """Kill every command an agent still has running; return how many groups were signalled."""
    groups = _RUNNING.pop(agent_id, set())
    for pgid in groups:
        _killpg(pgid)
    return len(groups)


def running_groups(agent_id: str) -> set[int]:
    return set(_RUNNING.get(agent_id, set()))


async def _drain(stream: asyncio.StreamReader, sink: bytearray, limit: int, counter: list[int]) -> None:
    while chunk := await stream.read(65536):
        counter[0] += len(chunk)
        room = limit - len(sink)
        if room > 0:
            sink += chunk[:room]


async def run_command(
    *,
    argv: list[str] | None = None,
    command: str = "",
    cwd: str,
    env: dict[str, str],
    timeout: float,
    max_output_bytes: int,
    agent_id: str = "",
) -> ExecResult:
    """Run ``argv`` (structured) or ``command`` through /bin/sh (shell); stdout and stderr combined."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    common: dict[str, Any] = {
        "cwd": cwd,
        "env": env,
        "stdin": asyncio.subprocess.DEVNULL,
        "stdout": asyncio.subprocess.PIPE,
        "stderr": asyncio.subprocess.STDOUT,
        "start_new_session": True,
    }
    if argv:
        proc = await asyncio.create_subprocess_exec(*argv, **common)
    else:
        proc = await asyncio.create_subprocess_shell(command, executable="/bin/sh", **common)
    pgid = proc.pid  # start_new_session makes the child its group's leader
    _RUNNING.setdefault(agent_id, set()).add(pgid)
    sink = bytearray()
    total = [0]
    timed_out = False
    try:
        assert proc.stdout is not None
        try:
            async with asyncio.timeout(timeout):
                await _drain(proc.stdout, sink, max_output_bytes, total)
                await proc.wait()
        except TimeoutError:
            timed_out = True
    finally:
        # Whatever happened (done, timeout, agent killed): nothing of this command survives.
        _killpg(pgid)
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(Exception):
                await asyncio.shield(asyncio.wait_for(proc.wait(), timeout=5))
        groups = _RUNNING.get(agent_id)
        if groups is not None:
            groups.discard(pgid)
            if not groups:
                _RUNNING.pop(agent_id, None)
    text = sink.decode("utf-8", errors="replace")
    truncated = total[0] > max_output_bytes
    if truncated:
        text += f"\n[... output truncated: {total[0] - max_output_bytes} of {total[0]} bytes omitted]"
    if timed_out:
        text += f"\n[... killed after the {timeout:g} s timeout]"
    return ExecResult(
        exit_code=None if timed_out else proc.returncode,
        output=text,
        truncated=truncated,
        timed_out=timed_out,
        duration_ms=int((loop.time() - started) * 1000),
    )
