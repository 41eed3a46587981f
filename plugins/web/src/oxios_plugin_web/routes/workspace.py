"""The workspace: file tree, file read and write, sandboxed by the policy engine.

Every path is resolved (symlinks included) and must stay inside the
workspace; then the kernel's policies vote on a ``path`` action, so the
security subsystem's denied paths apply to the web exactly as to agents.
Files are then opened through the sandbox (``O_NOFOLLOW``, judged again on
what was opened) and written through a temp file with a random name in the
already opened folder, so an agent racing the request with a symlink cannot
redirect the read or the write.
"""

from __future__ import annotations

import asyncio
import mimetypes
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.responses import StreamingResponse

from oxios.security.sandbox import PathDenied, sandbox_for
from oxios_hookspecs import Action, ActionContext

from ..api import KB, Call, Endpoint, Param
from ..errors import ApiError
from ..schemas import FileWritten, TreeNode

FILE_BODY_LIMIT = 10 * 1024 * KB
MAX_TREE_ENTRIES = 5000
SKIPPED_DIRS = {".git", "__pycache__", "node_modules", ".venv"}
# Content the browser would render or run on our origin is served as plain text.
ACTIVE_TYPES = {
    "text/html",
    "image/svg+xml",
    "application/xhtml+xml",
    "text/xml",
    "application/xml",
    "text/javascript",
    "application/javascript",
}


def _locate(workspace: Any, relative: str) -> tuple[Path, Path]:
    """(workspace root, real target): symlinks and ``..`` resolved before any check."""
    root = Path(workspace).resolve()
    try:
        target = (root / relative.lstrip("/") if not os.path.isabs(relative) else Path(relative)).resolve()
    except (OSError, ValueError) as err:
        raise ApiError(400, f"path: cannot be resolved ({getattr(err, 'strerror', None) or err})") from None
    return root, target


def _context(call: Call) -> ActionContext:
    return call.kernel.context(agent_id="web", role=call.role, interactive=True)


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError as err:  # a name longer than NAME_MAX, a loop ...
        raise ApiError(400, f"{path.name[:80]}: {err.strerror or err}") from None


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError as err:
        raise ApiError(400, f"{path.name[:80]}: {err.strerror or err}") from None


async def sandboxed(call: Call, relative: str, access: str) -> Path:
    """The real path of ``relative`` inside the workspace, after the policies allowed ``access``."""
    if "\x00" in relative:
        raise ApiError(400, "path: contains a NUL byte")
    root, target = _locate(call.kernel.paths.workspace, relative)
    if target != root and root not in target.parents:
        await _audit(call, access, relative, False, "outside the workspace")
        raise ApiError(403, f"{relative}: outside the workspace")
    context = _context(call)
    verdict = await call.kernel.check_action(Action(kind="path", path=str(target), access=access), context)  # type: ignore[arg-type]
    if verdict.verdict != "allow":  # the policy engine audited the decision itself
        raise ApiError(403, f"{access} {relative}: {verdict.reason}")
    if access == "write":
        await _audit(call, access, relative, True, verdict.reason)
    return target


async def _audit(call: Call, access: str, path: str, allowed: bool, reason: str) -> None:
    audit = call.kernel.services.get("audit")
    if audit is None:
        return
    from oxios.plugins import resolve

    await resolve(audit.append("web", f"workspace.{access}", path, allowed, reason, {"client": _client(call)}))


def _client(call: Call) -> str:
    client = call.request.client
    return client.host if client else ""


def _walk(path: Path, root: Path, depth: int, budget: list[int]) -> TreeNode:
    rel = str(path.relative_to(root)) if path != root else "."
    node = TreeNode(name=path.name or ".", path=rel, type="dir", children=[])
    if depth <= 0:
        node.truncated = True
        return node
    try:
        entries = sorted(os.scandir(path), key=lambda e: (not e.is_dir(follow_symlinks=False), e.name))
    except OSError:
        return node
    for entry in entries:
        if budget[0] <= 0:
            node.truncated = True
            break
        budget[0] -= 1
        child = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            if entry.name in SKIPPED_DIRS:
                continue
            assert node.children is not None
            node.children.append(_walk(child, root, depth - 1, budget))
        elif entry.is_file(follow_symlinks=False):
            assert node.children is not None
            node.children.append(
                TreeNode(
                    name=entry.name,
                    path=str(child.relative_to(root)),
                    type="file",
                    size=entry.stat(follow_symlinks=False).st_size,
                )
            )
    return node


async def tree(call: Call) -> TreeNode:
    target = await sandboxed(call, call.query["path"] or ".", "read")
    if not _is_dir(target):
        raise ApiError(404, f"{call.query['path']}: no such directory in the workspace")
    root, _ = _locate(call.kernel.paths.workspace, ".")
    return await asyncio.to_thread(_walk, target, root, call.query["depth"], [MAX_TREE_ENTRIES])


async def read_file(call: Call) -> Any:
    relative = call.path["path"]
    target = await sandboxed(call, relative, "read")
    if not _is_file(target):
        raise ApiError(404, f"{relative}: no such file in the workspace")
    try:
        # O_NONBLOCK: a FIFO swapped in after the check must not hang the server.
        fd = sandbox_for(_context(call)).open_fd(target, os.O_RDONLY | os.O_NONBLOCK)
    except PathDenied as err:
        raise ApiError(403, f"read {relative}: {err}") from None
    except OSError as err:
        raise ApiError(404, f"{relative}: {err.strerror or err}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise ApiError(404, f"{relative}: no such file in the workspace")
    mime = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    if mime in ACTIVE_TYPES or mime.startswith("text/"):
        mime = "text/plain; charset=utf-8"
    headers = {"Content-Security-Policy": "sandbox", "X-Content-Type-Options": "nosniff", "Content-Length": str(st.st_size)}
    return StreamingResponse(_chunks(fd), media_type=mime, headers=headers)


async def _chunks(fd: int) -> AsyncIterator[bytes]:
    """The opened file, read in a worker thread; closed when done or when the client leaves."""
    with os.fdopen(fd, "rb") as fh:
        while chunk := await asyncio.to_thread(fh.read, 256 * KB):
            yield chunk


async def write_file(call: Call) -> FileWritten:
    relative = call.path["path"]
    target = await sandboxed(call, relative, "write")
    if _is_dir(target):
        raise ApiError(409, f"{relative}: is a directory")
    try:
        await asyncio.to_thread(sandbox_for(_context(call)).write_atomic, target, call.raw)
    except PathDenied as err:
        raise ApiError(403, f"write {relative}: {err}") from None
    root, _ = _locate(call.kernel.paths.workspace, ".")
    call.kernel.publish("workspace.file_written", path=str(target.relative_to(root)), size=len(call.raw), by="web")
    return FileWritten(status="written", path=str(target.relative_to(root)), size=len(call.raw))


ENDPOINTS = [
    Endpoint(
        "GET",
        "/api/workspace/tree",
        tree,
        "The workspace file tree",
        "workspace",
        response=TreeNode,
        query=(
            Param("path", str, "folder inside the workspace", "."),
            Param("depth", int, "how many levels to descend", 4, minimum=1, maximum=20),
        ),
    ),
    Endpoint(
        "GET",
        "/api/workspace/file/{path:path}",
        read_file,
        "Read a workspace file (raw bytes)",
        "workspace",
        response=bytes,
        media_type="application/octet-stream",
    ),
    Endpoint(
        "PUT",
        "/api/workspace/file/{path:path}",
        write_file,
        "Write a workspace file (the raw request body)",
        "workspace",
        raw_body=True,
        response=FileWritten,
        body_limit=FILE_BODY_LIMIT,
        errors=(409, 413),
    ),
]
