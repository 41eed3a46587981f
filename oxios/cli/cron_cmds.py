"""`oxios cron list|add|show|edit|rm|trigger|pause|resume|runs`.

Through the running daemon when there is one (so its cron service sees the
change at once and nothing races it), otherwise directly on the state store
in this process. Listing and showing never move a schedule.
"""

from __future__ import annotations

from typing import Any

import typer

from .common import echo_json, fail

cron_app = typer.Typer(help="Scheduled agent jobs.", no_args_is_help=True)

_SCHEDULE_HELP = "'0 9 * * *' (cron, in --timezone), 'every 10m' / 'every 2h', or 'at 2026-12-01T09:00:00+01:00'"


def _call(method: str, **params: Any) -> Any:
    """``cron.<method>`` on the daemon, or on an in-process kernel when no daemon runs."""
    from ..daemon import is_running
    from .common import daemon_call, paths

    if is_running(paths()):
        return daemon_call(f"cron.{method}", **params)
    import asyncio

    from ..plugins import resolve
    from .common import with_kernel

    async def run(kernel: Any) -> Any:
        return await resolve(getattr(kernel.service("cron"), method)(**params))

    try:
        return asyncio.run(with_kernel(run))
    except (LookupError, ValueError) as err:
        fail(str(err), 2 if isinstance(err, ValueError) else 1)


def _fields(**options: Any) -> dict[str, Any]:
    """Only the options the user gave (None means "not given")."""
    return {k: v for k, v in options.items() if v is not None}


@cron_app.command("list")
def list_(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List jobs with their state and next run (never advances a schedule)."""
    jobs = _call("list")
    if json_out:
        echo_json(jobs)
        return
    if not jobs:
        typer.echo(
            "no cron jobs (add one with `oxios cron add NAME --schedule ... --goal ...` or [cron.jobs.NAME] in config.toml)"
        )
        return
    rows = [("NAME", "SOURCE", "STATE", "SCHEDULE", "TIMEZONE", "NEXT RUN (local)", "LAST")]
    for job in jobs:
        last = job["last_status"] or "-"
        rows.append(
            (job["name"], job["source"], job["state"], job["schedule"], job["timezone"], job["next_run_local"] or "-", last)
        )
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        typer.echo("  ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
    reasons = [(job["name"], job.get("pause_reason")) for job in jobs if job.get("paused") and job.get("pause_reason")]
    if reasons:  # why a job is paused (an invalid config job, too many failures) is the first thing to know
        typer.echo("")
        for name, reason in reasons:
            typer.echo(f"{name} is paused: {reason}")


@cron_app.command("add")
def add(
    name: str = typer.Argument(..., help="Job name (letters, digits, _ - .)"),
    schedule: str = typer.Option(..., "--schedule", "-s", help=_SCHEDULE_HELP),
    goal: str = typer.Option(..., "--goal", "-g", help="What the agent is asked to do."),
    timezone: str = typer.Option(None, "--timezone", "--tz", help="IANA zone for cron schedules (default: this machine's)."),
    persona: str = typer.Option(None, "--persona"),
    priority: str = typer.Option(None, "--priority", help="low | normal | high"),
    deliver_to: str = typer.Option(None, "--deliver-to", help="channel:NAME:CHAT_ID, webhook:URL or none"),
    misfire_policy: str = typer.Option(None, "--misfire", help="skip | catch_up (default from [cron])"),
    timeout_secs: int = typer.Option(None, "--timeout", help="Seconds before a run is stopped as timed out."),
    max_runs: int = typer.Option(None, "--max-runs", help="Stop after this many scheduled runs (0 = no limit)."),
    constraint: list[str] = typer.Option(None, "--constraint", help="A constraint (repeatable)."),
    criterion: list[str] = typer.Option(None, "--criterion", help="An acceptance criterion (repeatable)."),
    approve: list[str] = typer.Option(
        None, "--approve", help="A command the job may run without a human, e.g. 'git pull' (repeatable)."
    ),
    disabled: bool = typer.Option(False, "--disabled", help="Create it disabled."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Create a job (source: api)."""
    job = _fields(
        name=name,
        schedule=schedule,
        goal=goal,
        timezone=timezone,
        persona=persona,
        priority=priority,
        deliver_to=deliver_to,
        misfire_policy=misfire_policy,
        timeout_secs=timeout_secs,
        max_runs=max_runs,
        constraints=constraint or None,
        acceptance_criteria=criterion or None,
        approve=approve or None,
    )
    if disabled:
        job["enabled"] = False
    created = _call("create", job=job)
    if json_out:
        echo_json(created)
    else:
        typer.echo(f"added {created['name']}: next run {created['next_run_local'] or '-'} ({created['timezone']})")


@cron_app.command("show")
def show(name: str, json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Show one job."""
    job = _call("get", name=name)
    if json_out:
        echo_json(job)
        return
    for key, value in job.items():
        if value in (None, "", []):
            continue
        typer.echo(f"{key}: {', '.join(map(str, value)) if isinstance(value, list) else value}")


@cron_app.command("edit")
def edit(
    name: str,
    schedule: str = typer.Option(None, "--schedule", "-s", help=_SCHEDULE_HELP),
    goal: str = typer.Option(None, "--goal", "-g"),
    timezone: str = typer.Option(None, "--timezone", "--tz"),
    persona: str = typer.Option(None, "--persona"),
    priority: str = typer.Option(None, "--priority"),
    deliver_to: str = typer.Option(None, "--deliver-to"),
    misfire_policy: str = typer.Option(None, "--misfire"),
    timeout_secs: int = typer.Option(None, "--timeout"),
    max_runs: int = typer.Option(None, "--max-runs"),
    constraint: list[str] = typer.Option(None, "--constraint", help="Replaces the constraints (repeatable)."),
    criterion: list[str] = typer.Option(None, "--criterion", help="Replaces the acceptance criteria (repeatable)."),
    approve: list[str] = typer.Option(None, "--approve", help="Replaces the commands approved up front (repeatable)."),
    enabled: bool = typer.Option(None, "--enable/--disable"),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Change an API job (config jobs are edited in config.toml)."""
    changes = _fields(
        schedule=schedule,
        goal=goal,
        timezone=timezone,
        persona=persona,
        priority=priority,
        deliver_to=deliver_to,
        misfire_policy=misfire_policy,
        timeout_secs=timeout_secs,
        max_runs=max_runs,
        enabled=enabled,
        constraints=constraint or None,
        acceptance_criteria=criterion or None,
        approve=approve or None,
    )
    if not changes:
        fail("nothing to change: give at least one option (see `oxios cron edit --help`)", 2)
    job = _call("edit", name=name, changes=changes)
    if json_out:
        echo_json(job)
    else:
        typer.echo(f"edited {name}: next run {job['next_run_local'] or '-'}")


@cron_app.command("rm")
def rm(name: str) -> None:
    """Delete an API job and its history."""
    _call("delete", name=name)
    typer.echo(f"deleted {name}")


@cron_app.command("trigger")
def trigger(
    name: str,
    wait: bool = typer.Option(None, "--wait/--no-wait", help="Wait for the run to finish (default: wait when no daemon runs)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Run a job now; its schedule does not move."""
    from ..daemon import is_running
    from .common import paths

    daemon = bool(is_running(paths()))
    if wait is None:
        wait = not daemon
    if not daemon and not wait:
        fail("no daemon is running, so the run must happen here: use --wait (or start Oxios with `oxios start`)", 2)
    params: dict[str, Any] = {"name": name, "wait": wait}
    if daemon and wait:
        params["timeout"] = 24 * 3600.0  # the control call's own timeout: a run may take long
    run = _call("trigger", **params)
    if json_out:
        echo_json(run)
        return
    if run["status"] == "running":
        typer.echo(f"triggered {name}: run {run['id']} is running (`oxios cron runs {name}` shows it)")
        return
    typer.echo(f"{name}: run {run['id']} {run['status']}" + (f": {run['summary']}" if run.get("summary") else ""))
    if run["status"] != "succeeded":
        raise typer.Exit(1)


@cron_app.command("pause")
def pause(name: str) -> None:
    """Pause a job (its slots are not run, nor recorded as missed, until resumed)."""
    _call("pause", name=name)
    typer.echo(f"paused {name}")


@cron_app.command("resume")
def resume(name: str) -> None:
    """Resume a paused job; its schedule restarts from now."""
    job = _call("resume", name=name)
    typer.echo(f"resumed {name}: next run {job['next_run_local'] or '-'}")


@cron_app.command("runs")
def runs(
    name: str,
    limit: int = typer.Option(20, "--limit", "-n", help="How many, newest first."),
    output: bool = typer.Option(False, "--output", help="Print each run's full output."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """A job's run history: status, times, summary, tokens, delivery."""
    history = _call("runs", name=name, limit=limit)
    if json_out:
        echo_json(history)
        return
    if not history:
        typer.echo(f"{name} has not run yet")
    for run in history:
        tokens = f"{run['input_tokens']}+{run['output_tokens']} tok" if run["input_tokens"] or run["output_tokens"] else ""
        delivery = f"delivery {run['delivery_status']}" if run["delivery_status"] != "none" else ""
        extra = "  ".join(x for x in (tokens, delivery) if x)
        typer.echo(
            f"{run['started_at']}  {run['status']:<9}  {run['trigger']:<8}  {run['summary']}" + (f"  [{extra}]" if extra else "")
        )
        if run["delivery_status"] == "failed" and run.get("delivery_error"):
            typer.echo(f"    delivery failed: {run['delivery_error']}")
        if output and run["output"]:
            typer.echo("    " + run["output"].replace("\n", "\n    "))


def register(app: typer.Typer) -> None:
    app.add_typer(cron_app, name="cron")
