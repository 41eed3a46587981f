"""`oxios personas list|show|add|edit|rm|use`: the system prompts (and tool limits) agents wear."""

from __future__ import annotations

import sys
from typing import Any

import typer

from . import common
from .agent_cmds import _call, _table


def _prompt_text(prompt: str | None, prompt_file: str | None) -> str | None:
    if prompt is not None and prompt_file is not None:
        common.fail("give --prompt or --prompt-file, not both", 2)
    if prompt_file is None:
        return prompt
    if prompt_file == "-":
        return sys.stdin.read()
    try:
        with open(prompt_file, encoding="utf-8") as f:
            return f.read()
    except OSError as err:
        common.fail(f"cannot read {prompt_file}: {err.strerror}", 2)


def _personas(kernel: Any) -> Any:
    return kernel.service("personas")


def register(app: typer.Typer) -> None:
    personas = typer.Typer(help="Personas: the system prompt, model and tool limits an agent wears.", no_args_is_help=True)
    app.add_typer(personas, name="personas")

    @personas.command("list")
    def list_(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
        """List personas (built-ins first); * marks the active one."""
        rows = _call("personas.list", lambda k: _personas(k).list())
        if json_out:
            common.echo_json(rows)
            return
        for r in rows:
            r["name"] = ("* " if r.get("active") else "  ") + r["name"]
            r["tools"] = ", ".join(r.get("tools") or []) or "(role's)"
            r["kind"] = "built-in" if r.get("builtin") else "custom"
        _table(rows, ["name", "kind", "model", "tools", "description"])

    @personas.command("show")
    def show(name: str) -> None:
        """Show one persona as JSON, with its system prompt."""
        common.echo_json(_call("personas.get", lambda k, name: _personas(k).get(name), name=name))

    @personas.command("add")
    def add(
        name: str,
        prompt: str = typer.Option(None, "--prompt", help="The system prompt."),
        prompt_file: str = typer.Option(None, "--prompt-file", help="Read the system prompt from a file ('-': stdin)."),
        description: str = typer.Option("", "--description"),
        model: str = typer.Option("", "--model", help="Model its agents use (default: the configured one)."),
        tools: list[str] = typer.Option(None, "--tool", help="Limit tools to these patterns (repeat; 'tier:read', '!exec')."),
    ) -> None:
        """Create a persona."""
        text = _prompt_text(prompt, prompt_file)
        if not text:
            common.fail("a persona needs a system prompt: --prompt TEXT or --prompt-file FILE", 2)
        params = {"system_prompt": text, "description": description, "model": model, "tools": tools or []}
        created = _call("personas.create", lambda k, **p: _personas(k).create(**p), name=name, actor="cli", **params)
        typer.echo(f"created persona {created['name']}")

    @personas.command("edit")
    def edit(
        name: str,
        prompt: str = typer.Option(None, "--prompt", help="A new system prompt."),
        prompt_file: str = typer.Option(None, "--prompt-file", help="Read the new system prompt from a file ('-': stdin)."),
        description: str = typer.Option(None, "--description"),
        model: str = typer.Option(None, "--model"),
        tools: list[str] = typer.Option(None, "--tool", help="Replace the tool limits (repeat)."),
        all_tools: bool = typer.Option(False, "--all-tools", help="Lift the tool limits (the role decides)."),
    ) -> None:
        """Change a persona's prompt, description, model or tool limits."""
        if tools and all_tools:
            common.fail("give --tool or --all-tools, not both", 2)
        fields: dict[str, Any] = {
            "system_prompt": _prompt_text(prompt, prompt_file),
            "description": description,
            "model": model,
            "tools": [] if all_tools else (tools or None),
        }
        fields = {k: v for k, v in fields.items() if v is not None}
        if not fields:
            common.fail("nothing to change: give --prompt, --description, --model, --tool or --all-tools", 2)
        updated = _call("personas.update", lambda k, **p: _personas(k).update(**p), name=name, actor="cli", **fields)
        typer.echo(f"updated persona {updated['name']}")

    @personas.command("rm")
    def rm(name: str) -> None:
        """Delete a custom persona (built-ins can be edited, not deleted)."""
        _call("personas.delete", lambda k, **p: _personas(k).delete(**p), name=name, actor="cli")
        typer.echo(f"deleted persona {name}")

    @personas.command("use")
    def use(name: str) -> None:
        """Make a persona the active one (used when a message names none)."""
        active = _call("personas.activate", lambda k, name: _personas(k).activate(name), name=name)
        typer.echo(f"active persona: {active['name']}")
