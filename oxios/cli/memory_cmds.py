"""`oxios memory list|search|show|add|rm|pin|dream|stats`: through the daemon when it runs, else in-process."""

from __future__ import annotations

from typing import Any

import typer

from .common import echo_json, fail

memory_app = typer.Typer(help="Agent memory: list, search, show, add, remove, pin and consolidate.", no_args_is_help=True)


def _call(method: str, **params: Any) -> Any:
    """Run ``memory.<method>`` on the daemon, or on a kernel started here when none runs."""
    from ..daemon import is_running
    from .common import daemon_call, paths

    if is_running(paths()):
        return daemon_call(f"memory.{method}", **params)
    import asyncio

    from ..kernel import NotAvailable, NotFound
    from .common import with_kernel

    async def run(kernel: Any) -> Any:
        service = kernel.service("memory", "set memory.enabled = true")
        await service.wait_ready()
        return await getattr(service, f"rpc_{method}")(**params)

    try:
        return asyncio.run(with_kernel(run))
    except (NotFound, NotAvailable, ValueError) as err:
        fail(str(err))


def _line(r: dict[str, Any]) -> str:
    pin = " pinned" if r.get("pinned") else ""
    text = " ".join(r["content"].split())
    text = text if len(text) <= 100 else text[:97] + "..."
    name = f" {r['name']}" if r.get("name") else ""
    return f"{r['id']}  {r['tier']:<4} {r['type']:<12}{name}{pin}  {text}"


@memory_app.command("list")
def list_(
    tier: str = typer.Option(None, "--tier", help="hot, warm or cold."),
    type_: str = typer.Option(None, "--type", help="Only this memory type."),
    limit: int = typer.Option(50, "--limit", "-n"),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List memories, most recently changed first."""
    rows = _call("list", tier=tier, type=type_, limit=limit)
    if json_out:
        echo_json(rows)
    elif not rows:
        typer.echo("no memories")
    else:
        for r in rows:
            typer.echo(_line(r))


@memory_app.command()
def search(
    query: str = typer.Argument(..., help="What to look for."),
    mode: str = typer.Option("hybrid", "--mode", "-m", help="keyword, semantic or hybrid."),
    k: int = typer.Option(10, "-k", help="How many results."),
    all_: bool = typer.Option(False, "--all", help="Include the cold (archived) tier."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Search memory; each result says why it matched."""
    hits = _call("search", query=query, mode=mode, k=k, include_cold=all_)
    if json_out:
        echo_json(hits)
        return
    if not hits:
        typer.echo("no matches")
    for h in hits:
        typer.echo(f"{h['score']:.4f}  {_line(h['record'])}\n        why: {h['why']}")


@memory_app.command()
def show(id: str = typer.Argument(..., help="Memory id or name.")) -> None:
    """Print one memory as JSON."""
    echo_json(_call("get", id=id))


@memory_app.command()
def add(
    content: str = typer.Argument(..., help="What to remember."),
    name: str = typer.Option("", "--name", help="A unique name (PUT /api/memory/{name} updates it)."),
    type_: str = typer.Option("", "--type", help="Memory type; inferred from the content when omitted."),
    category: str = typer.Option("", "--category"),
    pin: bool = typer.Option(False, "--pin", help="Always keep it in mind."),
) -> None:
    """Save a memory and print its id."""
    record = _call("add", content=content, name=name, type=type_ or None, category=category, pinned=pin)
    typer.echo(f"{record['id']} ({record['type']}, {record['tier']})")


@memory_app.command()
def rm(id: str = typer.Argument(..., help="Memory id or name.")) -> None:
    """Delete a memory."""
    _call("rm", id=id)
    typer.echo(f"deleted {id}")


@memory_app.command()
def pin(id: str = typer.Argument(..., help="Memory id or name."), unpin: bool = typer.Option(False, "--unpin")) -> None:
    """Pin a memory (never fades, always in the hot tier), or unpin it."""
    record = _call("pin", id=id, pinned=not unpin)
    typer.echo(f"{record['id']} {'pinned' if record['pinned'] else 'unpinned'} ({record['tier']})")


@memory_app.command()
def dream(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Consolidate now: merge duplicates, re-tier, summarise old episodes, prune, index topics."""
    report = _call("dream")
    if json_out:
        echo_json(report)
        return
    changes = ", ".join(f"{k} {v}" for k, v in sorted(report["changes"].items())) or "no changes"
    typer.echo(f"dream {report['run_id']}{' (resumed)' if report['resumed'] else ''}: {changes}")
    typer.echo(f"undo with: oxios memory revert {report['run_id']}")


@memory_app.command()
def revert(run_id: str = typer.Argument(..., help="The run id printed by `oxios memory dream`.")) -> None:
    """Undo every change a consolidation run made."""
    n = _call("revert", run_id=run_id)
    typer.echo(f"reverted {n} changes of run {run_id}")


@memory_app.command()
def stats() -> None:
    """Counts per tier and type, index state, last consolidation, top topics (JSON)."""
    echo_json(_call("stats"))


def register(app: typer.Typer) -> None:
    app.add_typer(memory_app, name="memory")
