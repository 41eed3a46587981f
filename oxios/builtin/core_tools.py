"""Core tools: read, write, edit, grep, find, ls, exec, and delegate (agent groups).

Every path is checked with the policy engine at the moment of use
(``Action(kind="path")``), every command with ``Action(kind="exec")``; a deny
comes back to the model as a tool error carrying the policy's reason. Paths
are relative to the workspace unless absolute.
"""

from __future__ import annotations

import asyncio
import fnmatch
import os
import re
from pathlib import Path
from typing import Literal

from oxios_hookspecs import Action, ActionContext, ToolResult, hookimpl

from ..agent.authorize import authorize
from ..agent.processes import run_command
from ..security.exec_rules import clamp_timeout, resolve_binary, scrub_env
from ..security.sandbox import PathDenied, read_roots, sandbox_for
from ..toolbox import tool

MAX_READ_BYTES = 256 * 1024
SKIP_DIRS = {".git", "node_modules", "__pycache__", ".venv", ".mypy_cache", ".pytest_cache"}


class Denied(Exception):
    """A policy said no; the message is the reason the model sees."""


def _resolve(path: str, context: ActionContext) -> Path:
    p = Path(os.path.expanduser(path or "."))
    if not p.is_absolute():
        p = Path(context.workspace or os.getcwd()) / p
    return p


async def _check_path(path: str, access: Literal["read", "write"], context: ActionContext) -> Path:
    target = _resolve(path, context)
    auth = await authorize(context.kernel, Action(kind="path", path=str(target), access=access), context)
    if not auth.allowed:
        raise Denied(f"{access} access to {path} denied: {auth.reason}")
    return target


def _shown(path: Path, context: ActionContext) -> str:
    """A path as the model should see it: relative to the workspace when inside it."""
    try:
        return str(path.relative_to(Path(context.workspace)))
    except ValueError:
        return str(path)


def _guard(fn):  # type: ignore[no-untyped-def]
    """Turn denials and OS errors into tool errors the model can act on."""
    import functools

    @functools.wraps(fn)
    async def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
        try:
            return await fn(*args, **kwargs)
        except (Denied, PathDenied) as err:
            return ToolResult.error(str(err))
        except FileNotFoundError as err:
            return ToolResult.error(f"not found: {err.filename or err}")
        except IsADirectoryError as err:
            return ToolResult.error(f"is a directory: {err.filename or err}")
        except NotADirectoryError as err:
            return ToolResult.error(f"not a directory: {err.filename or err}")
        except PermissionError as err:
            return ToolResult.error(f"permission denied: {err.filename or err}")
        except re.error as err:
            return ToolResult.error(f"invalid regular expression: {err}")

    return wrapper


@tool(tier="read")
@_guard
async def read(path: str, offset: int = 0, limit: int = 2000, context: ActionContext = None) -> ToolResult:  # type: ignore[assignment]
    """Read a text file. offset is the first line (0-based), limit the number of lines."""
    target = await _check_path(path, "read", context)
    data = await asyncio.to_thread(_read_head, target, context)
    lines = data.decode("utf-8", errors="replace").splitlines(keepends=True)
    chunk = lines[max(0, offset) : max(0, offset) + max(1, limit)]
    text = "".join(chunk)
    more = len(lines) - (max(0, offset) + len(chunk))
    if more > 0:
        text += f"\n[... {more} more lines; read again with offset={max(0, offset) + len(chunk)}]"
    elif len(data) >= MAX_READ_BYTES:
        text += f"\n[... file truncated at {MAX_READ_BYTES} bytes]"
    return ToolResult(content=text)


def _read_head(path: Path, context: ActionContext) -> bytes:
    # Opened through the sandbox: a symlink swapped in after the policy check is refused.
    with sandbox_for(context, read_roots(context)).open(path, "rb") as fh:
        return fh.read(MAX_READ_BYTES)


def _read_text(path: Path, context: ActionContext) -> str:
    with sandbox_for(context).open(path, "r", encoding="utf-8") as fh:
        return fh.read()


def _write_checked(path: Path, content: str, mode: int, context: ActionContext) -> None:
    """Atomic write, judged again at use time: temp file and final path both go through the sandbox."""
    sandbox = sandbox_for(context)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.oxios-tmp")
    with sandbox.open(tmp, "w", encoding="utf-8") as fh:
        fh.write(content)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(tmp, mode)
    ok, reason, _ = sandbox.check_write(path)
    if not ok:
        os.unlink(tmp)
        raise Denied(f"write to {path} denied at use time: {reason}")
    os.replace(tmp, path)


@tool(tier="write")
@_guard
async def write(path: str, content: str, context: ActionContext = None) -> ToolResult:  # type: ignore[assignment]
    """Create or overwrite a text file (parent folders are created)."""
    target = await _check_path(path, "write", context)
    await asyncio.to_thread(_write_checked, target, content, 0o644, context)
    return ToolResult(content=f"wrote {len(content.encode())} bytes to {_shown(target, context)}")


@tool(tier="write")
@_guard
async def edit(path: str, old: str, new: str, replace_all: bool = False, context: ActionContext = None) -> ToolResult:  # type: ignore[assignment]
    """Replace the exact text `old` with `new` in a file. `old` must occur exactly once unless replace_all is true."""
    target = await _check_path(path, "write", context)
    if not old:
        return ToolResult.error("edit: `old` must not be empty")
    text = await asyncio.to_thread(_read_text, target, context)
    count = text.count(old)
    if count == 0:
        return ToolResult.error(f"edit: the text to replace was not found in {path} (it must match exactly, whitespace included)")
    if count > 1 and not replace_all:
        return ToolResult.error(
            f"edit: the text to replace occurs {count} times in {path}; add surrounding lines to make it unique, or set replace_all"
        )
    updated = text.replace(old, new) if replace_all else text.replace(old, new, 1)
    await asyncio.to_thread(_write_checked, target, updated, target.stat().st_mode & 0o777, context)
    return ToolResult(content=f"replaced {count if replace_all else 1} occurrence(s) in {_shown(target, context)}")


def _walk(root: Path, limit_files: int = 50_000) -> list[Path]:
    """Files under root (not following symlinked folders), skipping VCS and cache folders."""
    if root.is_file():
        return [root]
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        for name in sorted(filenames):
            out.append(Path(dirpath) / name)
            if len(out) >= limit_files:
                return out
    return out


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except (ValueError, OSError):
        return False


@tool(tier="read")
@_guard
async def grep(
    pattern: str,
    path: str = ".",
    glob: str = "",
    ignore_case: bool = False,
    max_results: int = 200,
    context: ActionContext = None,  # type: ignore[assignment]
) -> ToolResult:
    """Search files for a regular expression; prints path:line:text. glob filters file names (e.g. *.py)."""
    root = await _check_path(path, "read", context)
    regex = re.compile(pattern, re.IGNORECASE if ignore_case else 0)
    sandbox = sandbox_for(context, read_roots(context))
    refused: list[str] = []

    def search() -> tuple[list[str], bool]:
        hits: list[str] = []
        for file in _walk(root):
            if glob and not fnmatch.fnmatch(file.name, glob):
                continue
            if file.is_symlink() and not _inside(file, root):
                continue  # a link out of the searched tree is not followed
            try:
                # Judged again on the opened file: hard links and links swapped in meanwhile are refused.
                with sandbox.open(file, "rb") as fh:
                    data = fh.read(MAX_READ_BYTES)
            except PathDenied:
                refused.append(_shown(file, context))
                continue
            except OSError:
                continue
            if b"\0" in data[:8192]:
                continue  # binary
            for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
                if regex.search(line):
                    hits.append(f"{_shown(file, context)}:{number}:{line[:500]}")
                    if len(hits) >= max_results:
                        return hits, True
        return hits, False

    hits, capped = await asyncio.to_thread(search)
    note = ""
    if refused:
        shown = ", ".join(refused[:5]) + (" ..." if len(refused) > 5 else "")
        note = f"\n[{len(refused)} file(s) not searched, refused by the sandbox (e.g. hard-linked files): {shown}]"
    if not hits:
        return ToolResult(content="no matches" + note)
    return ToolResult(content="\n".join(hits) + (f"\n[... stopped at {max_results} matches]" if capped else "") + note)


@tool(tier="read")
@_guard
async def find(pattern: str = "*", path: str = ".", max_results: int = 500, context: ActionContext = None) -> ToolResult:  # type: ignore[assignment]
    """Find files whose name (or workspace-relative path) matches a glob pattern such as *.py or src/*.md."""
    root = await _check_path(path, "read", context)

    def search() -> list[str]:
        found: list[str] = []
        for file in _walk(root):
            shown = _shown(file, context)
            if fnmatch.fnmatch(file.name, pattern) or fnmatch.fnmatch(shown, pattern):
                found.append(shown)
                if len(found) >= max_results:
                    break
        return found

    found = await asyncio.to_thread(search)
    return ToolResult(content="\n".join(found) if found else "no files found", data=found)


@tool(tier="read")
@_guard
async def ls(path: str = ".", context: ActionContext = None) -> ToolResult:  # type: ignore[assignment]
    """List a folder: one entry per line, folders end with /, files show their size in bytes."""
    target = await _check_path(path, "read", context)

    def listing() -> list[dict[str, object]]:
        entries = []
        for entry in sorted(os.scandir(target), key=lambda e: e.name):
            is_dir = entry.is_dir(follow_symlinks=False)
            size = 0 if is_dir else entry.stat(follow_symlinks=False).st_size
            entries.append({"name": entry.name, "type": "dir" if is_dir else "file", "size": size})
        return entries

    entries = await asyncio.to_thread(listing)
    lines = [f"{e['name']}/" if e["type"] == "dir" else f"{e['name']}  {e['size']}" for e in entries]
    return ToolResult(content="\n".join(lines) if lines else "(empty)", data=entries)


@tool(tier="exec", name="exec")
@_guard
async def exec_(
    binary: str = "",
    args: list[str] = [],  # noqa: B006 - msgspec copies defaults
    command: str = "",
    cwd: str = ".",
    timeout_secs: float = 0,
    context: ActionContext = None,  # type: ignore[assignment]
) -> ToolResult:
    """Run a host command. Structured mode: `binary` plus `args` (no shell). Shell mode: `command` as one
    string for /bin/sh, allowed only where policy enables it. Output is stdout and stderr combined."""
    kernel = context.kernel
    cfg = kernel.config.exec
    if bool(binary) == bool(command):
        return ToolResult.error("exec: give either `binary` (with `args`) or `command`, not both and not neither")
    workdir = await _check_path(cwd, "read", context)
    if not workdir.is_dir():
        return ToolResult.error(f"exec: cwd {cwd} is not a folder")
    mode: Literal["structured", "shell"] = "shell" if command else "structured"
    argv = [binary, *args] if binary else []
    action = Action(kind="exec", argv=argv, command=command, mode=mode, cwd=str(workdir))
    auth = await authorize(kernel, action, context)
    if not auth.allowed:
        return ToolResult.error(f"exec denied: {auth.reason}")
    env = scrub_env(cfg.env_passthrough)
    if argv:
        resolved = resolve_binary(binary, env)
        if resolved is None:
            return ToolResult.error(f"exec: {binary} was not found on PATH")
        argv = [resolved, *args]
    result = await run_command(
        argv=argv or None,
        command=command,
        cwd=str(workdir),
        env=env,
        timeout=clamp_timeout(timeout_secs, kernel.config),
        max_output_bytes=cfg.max_output_bytes,
        agent_id=context.agent_id,
    )
    status = "timed out" if result.timed_out else f"exit code {result.exit_code}"
    content = f"[{status}]\n{result.output}" if result.output else f"[{status}]"
    return ToolResult(
        content=content,
        is_error=result.timed_out or result.exit_code != 0,
        data={
            "exit_code": result.exit_code,
            "truncated": result.truncated,
            "timed_out": result.timed_out,
            "duration_ms": result.duration_ms,
        },
    )


@tool(tier="write", capability="fork_agents")
async def delegate(goals: list[str], context: ActionContext = None) -> ToolResult:  # type: ignore[assignment]
    """Fork one sub-agent per goal as a group, wait for all of them, and return each one's answer.
    Only agents whose role may fork agents can use it."""
    agents = context.kernel.services.get("agents")
    if agents is None or not context.agent_id:
        return ToolResult.error("delegate: only a supervised agent can fork sub-agents")
    if not goals or any(not g.strip() for g in goals):
        return ToolResult.error("delegate: give one non-empty goal per sub-agent")
    try:
        group_id = await agents.spawn_group(goals, parent_id=context.agent_id)
    except PermissionError as err:
        return ToolResult.error(f"delegate denied: {err}")
    group = await agents.wait_group(group_id)
    lines = [f"group {group_id}:"]
    for m in group["members"]:
        answer = m["result"] or m["error"] or ""
        lines.append(f"- [{m['status']}] {m['goal']}\n  {answer}")
    return ToolResult(
        content="\n".join(lines), is_error=not all(m["status"] == "completed" for m in group["members"]), data=group
    )


CORE_TOOLS = [read, write, edit, grep, find, ls, exec_, delegate]


@hookimpl
def register_tools(register) -> None:  # type: ignore[no-untyped-def]
    for fn in CORE_TOOLS:
        register(fn)
