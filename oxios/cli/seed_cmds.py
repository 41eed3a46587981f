"""`oxios seeds list|show ID|evolution ID`: the Ouroboros specifications and how they evolved."""

from __future__ import annotations

from typing import Any

import typer

from .common import daemon_call, echo_json, fail, paths

seeds_app = typer.Typer(help="Ouroboros seeds: list them, show one, follow its evolution.", no_args_is_help=True)


def _call(method: str, **params: Any) -> Any:
    """Ask the running daemon, or read the state store directly when it is not running."""
    from ..daemon import is_running

    if is_running(paths()):
        return daemon_call(f"seeds.{method}", **params)
    import asyncio

    from ..kernel import NotFound
    from .common import with_kernel

    async def direct(kernel: Any) -> Any:
        service = kernel.service("ouroboros")
        return {"list": service.list_seeds, "get": service.get_seed, "evolution": service.evolution}[method](**params)

    try:
        return asyncio.run(with_kernel(direct))
    except NotFound as err:
        fail(str(err))


@seeds_app.command("list")
def list_(limit: int = typer.Option(20, help="How many, newest first."), json_out: bool = typer.Option(False, "--json")) -> None:
    """Seeds, newest first, with their evaluation."""
    rows = _call("list", limit=limit)
    if json_out:
        echo_json(rows)
        return
    if not rows:
        typer.echo('no seeds yet (a task run through the protocol creates one: oxios run "#spec ...")')
    for r in rows:
        verdict = {True: "passed", False: "failed", None: "not evaluated"}[r["evaluation_passed"]]
        # The whole id: it is what `oxios seeds show` and `evolution` take.
        typer.echo(f"{r['id']}  gen {r['generation']}  {verdict:<13} {r['goal'][:70]}")


@seeds_app.command("show")
def show(seed_id: str) -> None:
    """One seed and its evaluation, as JSON."""
    echo_json(_call("get", seed_id=seed_id))


@seeds_app.command("evolution")
def evolution(seed_id: str, json_out: bool = typer.Option(False, "--json")) -> None:
    """Every generation of the seed's lineage, oldest first."""
    rows = _call("evolution", seed_id=seed_id)
    if json_out:
        echo_json(rows)
        return
    for r in rows:
        ev = r["evaluation"] or {}
        typer.echo(
            f"gen {r['generation']}  {r['id']}  score {ev.get('score', '-')}  "
            f"{'passed' if ev.get('passed') else 'failed' if ev else 'not evaluated'}"
        )
        for c in ev.get("criteria", []):
            typer.echo(f"    [{c['id']}] {c.get('score')}  {c.get('note', '')[:100]}")


def register(app: typer.Typer) -> None:
    app.add_typer(seeds_app, name="seeds")
