"""Agent tools over the workspace repository (the "git" service)."""

from __future__ import annotations

from typing import Any

from oxios_hookspecs import ActionContext, ToolResult

from .repo import GitError

MAX_DIFF_CHARS = 60_000


def _service(context: ActionContext) -> Any:
    kernel = context.kernel
    service = kernel.services.get("git") if kernel is not None else None
    if service is None:
        raise GitError("the git service is not running (is git.enabled false?)")
    return service


async def git_status(context: ActionContext) -> ToolResult:
    """Show which workspace files are new, modified or deleted since the last commit."""
    try:
        return _result(await _service(context).worktree_status())
    except GitError as err:
        return ToolResult.error(str(err))


async def git_diff(context: ActionContext, ref: str = "", ref2: str = "") -> ToolResult:
    """Show a unified diff: with no arguments, uncommitted changes against HEAD;
    with ref, the working tree against that commit; with ref and ref2, between two commits."""
    try:
        text = await _service(context).diff(ref or None, ref2 or None)
    except GitError as err:
        return ToolResult.error(str(err))
    if len(text) > MAX_DIFF_CHARS:
        text = text[:MAX_DIFF_CHARS] + f"\n[diff truncated at {MAX_DIFF_CHARS} characters]"
    return ToolResult(content=text or "(no differences)")


async def git_log(context: ActionContext, limit: int = 20, ref: str = "HEAD") -> ToolResult:
    """List recent commits of the workspace (sha, summary, author, time, tags)."""
    try:
        entries = await _service(context).log(max(1, min(limit, 200)), ref)
    except GitError as err:
        return ToolResult.error(str(err))
    rows = [{k: e[k] for k in ("short", "sha", "summary", "author", "time", "tags")} for e in entries]
    return _result(rows)


async def git_commit(context: ActionContext, message: str) -> ToolResult:
    """Commit every change in the workspace with this message."""
    if not message.strip():
        return ToolResult.error("a commit message is required")
    try:
        sha = await _service(context).commit(message, context)
    except (GitError, PermissionError) as err:
        return ToolResult.error(str(err))
    return ToolResult(content=f"committed {sha}" if sha else "nothing to commit", data={"sha": sha})


async def git_restore(context: ActionContext, ref: str) -> ToolResult:
    """Restore the whole workspace to a commit or tag. Uncommitted work is committed first
    and the restore is a new commit, so it can be undone."""
    try:
        result = await _service(context).restore(ref, context)
    except (GitError, PermissionError) as err:
        return ToolResult.error(str(err))
    return _result(result)


def _result(value: Any) -> ToolResult:
    import json

    return ToolResult(content=json.dumps(value, indent=1), data=value)


READ_TOOLS = (git_status, git_diff, git_log)
WRITE_TOOLS = (git_commit, git_restore)
