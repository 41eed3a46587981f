"""The workspace: file tree, file read and write, sandboxed by the policy engine.

Every path is resolved (symlinks included) and must stay inside the
workspace; then the kernel's policies vote on a ``path`` action, so the
security subsystem's denied paths apply to the web exactly as to agents.
"""

from __future__ import annotations

import mimetypes
import os
from pathlib import Path
from typing import Any

from starlette.responses import FileResponse

from oxios_hookspecs import Action

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
    target = (root / relative.lstrip("/") if not os.path.isabs(relative) else Path(relative)).resolve()
    return root, target


def _is_dir(path: Path) -> bool:
    return path.is_dir()


def _is_file(path: Path) -> bool:
    return path.is_file()


async def sandboxed(call: Call, relative: str, access: str) -> Path:
    """The real path of ``relative`` inside the workspace, after the policies allowed ``access``."""
    if "\x00" in relative:
        raise ApiError(400, "path: contains a NUL byte")
    root, target = _locate(call.kernel.paths.workspace, relative)
    if target != root and root not in target.parents:
        await _audit(call, access, relative, False, "outside the workspace")
        raise ApiError(403, f"{relative}: outside the workspace")
    context = call.kernel.context(agent_id="web", role=call.role, interactive=True)
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
    import asyncio

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
    mime = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    if mime in ACTIVE_TYPES or mime.startswith("text/"):
        mime = "text/plain; charset=utf-8"
    headers = {"Content-Security-Policy": "sandbox", "X-Content-Type-Options": "nosniff"}
    return FileResponse(target, media_type=mime, headers=headers)


def _write_atomic(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, target)


async def write_file(call: Call) -> FileWritten:
    import asyncio

    relative = call.path["path"]
    target = await sandboxed(call, relative, "write")
    if _is_dir(target):
        raise ApiError(409, f"{relative}: is a directory")
    await asyncio.to_thread(_write_atomic, target, call.raw)
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
