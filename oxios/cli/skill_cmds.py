"""`oxios skills` and `oxios skill NAME|new|validate|enable|disable|install`.

Skill state (enabled flag, recorded hash) lives in the state store, which the
daemon reads on every call, so these commands work on it directly whether or
not the daemon runs.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from .common import echo_json, fail, load_config, paths


class _SkillGroup(TyperGroup):
    """`oxios skill NAME` means `oxios skill show NAME` unless NAME is a subcommand."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = ["show", *args]
        return super().parse_args(ctx, args)


skill_app = typer.Typer(
    cls=_SkillGroup,
    help="One skill: `oxios skill NAME` shows it; new, validate, enable, disable and install below.",
    no_args_is_help=True,
)


@contextlib.contextmanager
def skills_service() -> Iterator[Any]:
    """A SkillsService over this home's state, without starting a kernel."""
    from ..plugins import PluginManager
    from ..skills import SkillsService
    from ..state import StateStore

    config = load_config()
    p = paths(config)
    p.home.mkdir(parents=True, exist_ok=True)
    state = StateStore(p.db)
    pm = PluginManager()
    pm.load()
    try:
        yield SkillsService(config=config, home=p.home, workspace=p.workspace, state=state, plugins=pm)
    finally:
        state.close()


def _lookup(fn: Any, *args: Any) -> Any:
    from ..skills import SkillError

    try:
        return fn(*args)
    except LookupError as err:
        fail(str(err.args[0] if err.args else err))
    except SkillError as err:
        fail(str(err))


def list_skills(json_out: bool = typer.Option(False, "--json", help="Print JSON (skills, shadowed, problems).")) -> None:
    """List every skill with its eligibility: ready, needs_setup, disabled or changed."""
    with skills_service() as svc:
        report = svc.report()
    if json_out:
        echo_json(report)
        return
    rows = report["skills"]
    if not rows:
        typer.echo("no skills found (`oxios skill new NAME` scaffolds one)")
    width = max([len(r["name"]) for r in rows] + [4])
    typer.echo(f"{'NAME':<{width}}  {'STATUS':<11}  {'SOURCE':<9}  DESCRIPTION")
    for r in rows:
        desc = " ".join(r["description"].split())
        desc = desc if len(desc) <= 70 else desc[:67] + "..."
        typer.echo(f"{r['name']:<{width}}  {r['status']:<11}  {r['source']:<9}  {desc}")
        for reason in r["reasons"] if r["status"] != "ready" else []:
            typer.echo(f"{'':<{width}}  - {reason}")
    for s in report["shadowed"]:
        typer.echo(
            f"shadowed: {s['name']} at {s['file']} ({s['source']}) is hidden by {s['shadowed_by']} ({s['shadowed_by_source']})"
        )
    for p in report["problems"]:
        typer.echo(f"{'skipped' if p['skipped'] else 'warning'}: {p['file']}: {p['message']}")


@skill_app.command("show")
def show(name: str, json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Details of one skill: status, requirements, install steps and its SKILL.md."""
    with skills_service() as svc:
        details = _lookup(svc.get, name)
        text = _lookup(svc.content, name)
    if json_out:
        echo_json({**details, "content": text})
        return
    typer.echo(f"{details['emoji'] + ' ' if details['emoji'] else ''}{details['name']}  [{details['status']}]")
    typer.echo(f"  source:   {details['source']} ({details['plugin'] or details['source_dir']})")
    typer.echo(f"  location: {details['file']}")
    for label in ("version", "author", "homepage", "license", "compatibility"):
        if details.get(label):
            typer.echo(f"  {label + ':':<9} {details[label]}")
    req = details["requires"]
    for key in ("bins", "any_bins", "env", "config"):
        if req[key]:
            typer.echo(f"  requires {key}: {', '.join(req[key])}")
    if details["os"]:
        typer.echo(f"  os:       {', '.join(details['os'])}")
    for reason in details["reasons"]:
        typer.echo(f"  ! {reason}")
    for warning in details["warnings"]:
        typer.echo(f"  warning: {warning}")
    for s in details["shadowed"]:
        typer.echo(f"  shadows {s['file']} ({s['source']})")
    if details["install_steps"]:
        typer.echo("  install steps (run with `oxios skill install " + name + "`):")
        for step in details["install_steps"]:
            what = step["command"] or " ".join(step["argv"]) or step["note"]
            typer.echo(f"    - {step['label']}: {what}{'' if step['supported'] else '  (manual)'}")
    typer.echo("")
    typer.echo(text)


@skill_app.command("new")
def new(
    name: str,
    description: str = typer.Option("", "--description", "-d", help="What the skill does and when to use it."),
    directory: Path = typer.Option(None, "--dir", help="Create it under this folder instead of the user skills folder."),
    workspace: bool = typer.Option(False, "--workspace", help="Create it in <workspace>/skills."),
) -> None:
    """Scaffold a valid skill folder with a SKILL.md to fill in."""
    from ..kernel import Conflict
    from ..skills import SkillError, render_skill_md, validate

    description = description or f"Describe what {name} does and when an agent should use it."
    if directory is not None:
        folder = directory / name
        if folder.exists():
            fail(f"{folder} already exists")
        from ..skills.parse import NAME_RE

        if not NAME_RE.match(name):
            fail(f"invalid skill name {name!r}: use lowercase letters, digits and single hyphens")
        folder.mkdir(parents=True)
        (folder / "SKILL.md").write_text(render_skill_md(name, description), encoding="utf-8")
    else:
        with skills_service() as svc:
            try:
                folder = Path(svc.create(name, description, scope="workspace" if workspace else "user")["folder"])
            except (SkillError, Conflict) as err:
                fail(str(err))
    report = validate(folder)
    if report.errors:
        fail(f"scaffold is invalid: {report.errors}")
    typer.echo(f"created {folder / 'SKILL.md'}")
    typer.echo("edit its description and instructions, then `oxios skill validate " + str(folder) + "`")


@skill_app.command("validate")
def validate_cmd(path: Path, json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Check a skill folder (or SKILL.md) against the Agent Skills spec; exit 1 on errors."""
    from ..skills import validate

    report = validate(path)
    if json_out:
        echo_json({"path": str(path), "valid": not report.errors, "errors": report.errors, "warnings": report.warnings})
    else:
        for e in report.errors:
            typer.echo(f"error: {e}")
        for w in report.warnings:
            typer.echo(f"warning: {w}")
        counts = f"{_plural(len(report.errors), 'error')}, {_plural(len(report.warnings), 'warning')}"
        typer.echo(f"{path}: {'invalid' if report.errors else 'valid'} ({counts})")
    if report.errors:
        raise typer.Exit(1)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


@skill_app.command("enable")
def enable(name: str) -> None:
    """Enable a skill and record its files' hash (also accepts a changed skill after review)."""
    with skills_service() as svc:
        row = _lookup(svc.enable, name)
    typer.echo(f"{name}: enabled ({row['status']})")
    for reason in row["reasons"]:
        typer.echo(f"  {reason}")


@skill_app.command("disable")
def disable(name: str) -> None:
    """Disable a skill: it leaves prompts and cannot be loaded."""
    with skills_service() as svc:
        _lookup(svc.disable, name)
    typer.echo(f"{name}: disabled")


@skill_app.command("install")
def install(name: str, yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask before each step.")) -> None:
    """Run a skill's install steps, each judged by the exec policy and confirmed."""
    import asyncio

    from .common import with_kernel

    async def run(kernel: Any) -> int:
        from oxios_hookspecs import Action

        from ..skills.install import install_plan

        svc = kernel.service("skills")
        skill = _lookup(svc.skill, name)
        steps = install_plan(skill)
        if not steps:
            typer.echo(f"{name} has no install steps")
            return 0
        context = kernel.context(agent_id="cli", interactive=True)
        failures = 0
        for step in steps:
            if not step.supported:
                typer.echo(f"skip {step.label}: {step.note}")
                continue
            action = Action(kind="exec", argv=step.argv, command=step.command, mode=step.mode, name=f"skill-install:{name}")
            verdict = await kernel.check_action(action, context)
            if verdict.verdict == "deny":
                typer.echo(f"denied {step.describe()}: {verdict.reason} ({verdict.policy})", err=True)
                failures += 1
                continue
            if not yes and not typer.confirm(f"run `{step.describe()}`?", default=False):
                typer.echo("skipped")
                continue
            typer.echo(f"$ {step.describe()}")
            code = await asyncio.to_thread(_run_step, step, skill.folder)
            if code != 0:
                typer.echo(f"step {step.label} failed with exit code {code}", err=True)
                failures += 1
        return failures

    failures = asyncio.run(with_kernel(run))
    if failures:
        raise typer.Exit(1)


def _run_step(step: Any, cwd: str) -> int:
    """Run one install step (already allowed by policy and confirmed) from the skill's folder."""
    if step.mode == "shell":
        return subprocess.run(step.command, shell=True, cwd=cwd, check=False).returncode
    return subprocess.run(step.argv, cwd=cwd, check=False).returncode


def register(app: typer.Typer) -> None:
    app.command("skills")(list_skills)
    app.add_typer(skill_app, name="skill")
