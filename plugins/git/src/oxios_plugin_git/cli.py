"""`oxios git log|tags|show|diff|restore REF|verify|status`.

Through the daemon when it runs (it owns the repository lock); otherwise
read commands open the workspace repository directly and ``restore`` starts
an in-process kernel so policy and audit still apply.
"""

from __future__ import annotations

import asyncio
from typing import Any

import typer

git_app = typer.Typer(help="The workspace's git history: log, tags, show, diff, restore, verify.", no_args_is_help=True)


def _daemon_running() -> bool:
    from oxios.cli import common
    from oxios.daemon import is_running

    return is_running(common.paths())


def _call(method: str, **params: Any) -> Any:
    """Run ``GitService.<method>`` in the daemon or in-process."""
    from oxios.cli import common

    if _daemon_running():
        return common.daemon_call(f"git.{method}", **params)

    async def run(kernel: Any) -> Any:
        service = kernel.services.get("git")
        if service is None:
            common.fail("the git plugin is not active (git.enabled = false?)")
        return await getattr(service, method)(**params)

    from .repo import GitError

    try:
        return asyncio.run(common.with_kernel(run))
    except (GitError, LookupError, PermissionError) as err:
        common.fail(str(err))


def _out(value: Any) -> None:
    from oxios.cli.common import echo_json

    echo_json(value)


@git_app.command("log")
def log_cmd(
    limit: int = typer.Option(20, "--limit", "-n"),
    ref: str = typer.Option("HEAD", "--ref"),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Recent commits."""
    entries = _call("log", limit=limit, ref=ref)
    if json_out:
        _out(entries)
        return
    for e in entries:
        tags = f" ({', '.join(e['tags'])})" if e["tags"] else ""
        typer.echo(f"{e['short']} {e['summary']}{tags}")


@git_app.command("tags")
def tags_cmd() -> None:
    """Tags (one per seed generation), as JSON."""
    _out(_call("tags"))


@git_app.command("show")
def show_cmd(ref: str = typer.Argument("HEAD")) -> None:
    """A commit's message and patch."""
    info = _call("show", ref=ref)
    typer.echo(f"commit {info['sha']}\nAuthor: {info['author']}\n\n{info['message']}\n{info['patch']}")


@git_app.command("diff")
def diff_cmd(ref: str = typer.Argument(None), ref2: str = typer.Argument(None)) -> None:
    """Uncommitted changes (no REF), working tree vs REF, or REF vs REF2."""
    typer.echo(_call("diff", ref=ref, ref2=ref2), nl=False)


@git_app.command("status")
def status_cmd() -> None:
    """New, modified and deleted files since the last commit."""
    _out(_call("worktree_status"))


@git_app.command("restore")
def restore_cmd(ref: str = typer.Argument(..., help="A commit sha, tag or HEAD~N")) -> None:
    """Make the workspace equal to REF, as a new commit (nothing is lost)."""
    _out(_call("restore", ref=ref))


@git_app.command("verify")
def verify_cmd() -> None:
    """Check object integrity and that HEAD's tree matches the working tree; exit 1 if not."""
    report = _call("verify")
    _out(report)
    if not report["ok"]:
        raise typer.Exit(1)
