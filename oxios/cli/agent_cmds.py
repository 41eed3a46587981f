"""`oxios agent list|show|kill|groups` and `oxios budget show|list|set|reserve|reset`."""

from __future__ import annotations

import asyncio
from typing import Any

import typer

from . import common


def _live() -> bool:
    from ..daemon import is_running

    return bool(is_running(common.paths()))


def _call(method: str, local: Any, **params: Any) -> Any:
    """Through the daemon when it runs (live agents), else on a kernel in this process (records)."""
    if _live():
        return common.daemon_call(method, **params)

    async def go(kernel: Any) -> Any:
        from ..plugins import resolve

        return await resolve(local(kernel, **params))

    try:
        return asyncio.run(common.with_kernel(go))
    except LookupError as err:
        common.fail(common.lookup_message(err))
    except ValueError as err:
        common.fail(str(err), 2)


def _table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    if not rows:
        typer.echo("(none)")
        return
    widths = {c: max(len(c), *(len(str(r.get(c, "") or "")) for r in rows)) for c in columns}
    typer.echo("  ".join(c.upper().ljust(widths[c]) for c in columns))
    for r in rows:
        typer.echo("  ".join(str(r.get(c, "") if r.get(c) is not None else "").ljust(widths[c]) for c in columns))


def register(app: typer.Typer) -> None:
    agent = typer.Typer(help="Agents: list, show, kill; agent groups.", no_args_is_help=True)
    app.add_typer(agent, name="agent")

    @agent.command("list")
    def agent_list(
        status: str = typer.Option(None, "--status", help="Only agents with this status (running, completed ...)."),
        limit: int = typer.Option(50, "--limit"),
        json_out: bool = typer.Option(False, "--json"),
    ) -> None:
        """List agents, newest first (id, session, goal, status, started, tokens, cost)."""
        rows = _call("agents.list", lambda k, **p: k.service("agents").list(**p), status=status, limit=limit)
        if json_out:
            common.echo_json(rows)
            return
        import datetime

        for r in rows:
            r["tokens"] = (r.get("input_tokens") or 0) + (r.get("output_tokens") or 0)
            r["cost"] = f"${r.get('cost_usd') or 0:.4f}"
            r["started"] = datetime.datetime.fromtimestamp(r["started"]).strftime("%Y-%m-%d %H:%M:%S") if r.get("started") else ""
            r["goal"] = (r.get("goal") or "")[:40].replace("\n", " ")
        _table(rows, ["id", "status", "session_id", "started", "tokens", "cost", "goal"])

    @agent.command("show")
    def agent_show(agent_id: str) -> None:
        """Show one agent's record as JSON."""
        common.echo_json(_call("agents.get", lambda k, agent_id: k.service("agents").get(agent_id), agent_id=agent_id))

    @agent.command("kill")
    def agent_kill(agent_id: str) -> None:
        """Kill a running agent and its host processes."""
        killed = _call("agents.kill", lambda k, agent_id: k.service("agents").kill(agent_id), agent_id=agent_id)
        if not killed:
            common.fail(f"agent {agent_id} is not running")
        typer.echo(f"killed {agent_id}")

    @agent.command("groups")
    def agent_groups(json_out: bool = typer.Option(False, "--json")) -> None:
        """List agent groups with their members' status."""
        rows = _call("agents.groups", lambda k: k.service("agents").groups())
        if json_out:
            common.echo_json(rows)
            return
        for g in rows:
            typer.echo(f"{g['id']}  {g['name'] or '-'}  {g['status_counts']}  done={g['done']}")
            for m in g["members"]:
                typer.echo(f"    {m['id']}  {m['status']:<10} {m['goal'][:60]}")

    budget = typer.Typer(help="Token and cost budgets per agent ('default' applies to new agents).", no_args_is_help=True)
    app.add_typer(budget, name="budget")

    @budget.command("show")
    def budget_show(agent_id: str = typer.Argument("default")) -> None:
        """Show an agent's limits and usage (default: the limits for new agents)."""
        common.echo_json(_call("budget.get", lambda k, agent_id: k.service("budget").get(agent_id), agent_id=agent_id))

    @budget.command("list")
    def budget_list() -> None:
        """Budgets of the agents the daemon knows now."""
        common.echo_json(_call("budget.list", lambda k: k.service("budget").list()))

    @budget.command("set")
    def budget_set(
        agent_id: str = typer.Argument("default"),
        max_tokens: int = typer.Option(None, "--max-tokens", help="Token limit (0 = unlimited)."),
        max_cost: float = typer.Option(None, "--max-cost", help="Cost limit in USD (0 = unlimited)."),
    ) -> None:
        """Set limits for an agent, or for every new agent (AGENT_ID 'default')."""
        if max_tokens is None and max_cost is None:
            common.fail("give --max-tokens and/or --max-cost", 2)
        common.echo_json(
            _call(
                "budget.set",
                lambda k, **p: k.service("budget").set(p.pop("agent_id"), **p),
                agent_id=agent_id,
                max_tokens=max_tokens,
                max_cost_usd=max_cost,
            )
        )

    @budget.command("reserve")
    def budget_reserve(
        agent_id: str,
        tokens: int = typer.Option(0, "--tokens"),
        cost: float = typer.Option(0.0, "--cost"),
    ) -> None:
        """Reserve budget for an agent ahead of expensive work (fails when it does not fit)."""
        common.echo_json(
            _call(
                "budget.reserve",
                lambda k, **p: k.service("budget").reserve(p.pop("agent_id"), **p),
                agent_id=agent_id,
                tokens=tokens,
                cost_usd=cost,
            )
        )

    @budget.command("reset")
    def budget_reset(agent_id: str) -> None:
        """Zero an agent's usage and reservations."""
        common.echo_json(_call("budget.reset", lambda k, agent_id: k.service("budget").reset(agent_id), agent_id=agent_id))
