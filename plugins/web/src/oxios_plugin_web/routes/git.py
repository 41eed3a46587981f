"""Git: the workspace history (log, tags, verify, restore) from the git plugin's service."""

from __future__ import annotations

from typing import Any

from ..api import Call, Endpoint, Param
from ..errors import ApiError
from ..schemas import GitRestore, Item


async def git_log(call: Call) -> Any:
    return await call.call("git", "log", limit=call.query["limit"], ref=call.query["ref"])


async def git_tags(call: Call) -> Any:
    return await call.call("git", "tags")


async def git_verify(call: Call) -> Any:
    return await call.call("git", "verify")


async def git_restore(call: Call) -> Any:
    body: GitRestore = call.body
    ref = body.ref or body.commit
    if not ref:
        raise ApiError(422, "ref: required (a commit sha, tag or HEAD~N; `commit` is accepted as an alias)")
    context = call.kernel.context(agent_id="web", role=call.role)
    return await call.call("git", "restore", ref, context)


ENDPOINTS = [
    Endpoint(
        "GET",
        "/api/git/log",
        git_log,
        "Commit log of the workspace",
        "git",
        response=list[Item],
        service="git",
        query=(
            Param("limit", int, "how many commits", 50, minimum=1, maximum=1000),
            Param("ref", str, "start from this revision", "HEAD"),
        ),
    ),
    Endpoint("GET", "/api/git/tags", git_tags, "Tags of the workspace repository", "git", response=list[Item], service="git"),
    Endpoint("POST", "/api/git/verify", git_verify, "Verify the repository's integrity", "git", response=Item, service="git"),
    Endpoint(
        "POST",
        "/api/git/restore",
        git_restore,
        "Restore the workspace to a revision (as a new commit)",
        "git",
        body=GitRestore,
        response=Item,
        service="git",
    ),
]
