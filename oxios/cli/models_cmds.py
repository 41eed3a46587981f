"""`oxios models [--json]`: configured providers, their models, usable or not and why."""

from __future__ import annotations

from typing import Any

import typer

from .common import echo_json


def _rows() -> list[dict[str, Any]]:
    """Live rows from the daemon (breaker state included) or, without one, from config."""
    from ..daemon import is_running
    from .common import daemon_call, load_config, paths

    config = load_config()
    if is_running(paths(config)):
        return daemon_call("providers.models")
    from ..providers.registry import from_plugins

    return from_plugins(config).models()


def _table(rows: list[dict[str, Any]]) -> str:
    header = ("PROVIDER", "KIND", "MODEL", "USABLE", "BREAKER", "WHY NOT")
    lines = [
        (
            r["provider"],
            r["kind"],
            r["model"] + (" *" if r["default"] else ""),
            "yes" if r["usable"] else "no",
            r["breaker"],
            r["reason"] if not r["usable"] else "",
        )
        for r in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines, strict=False)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(fmt.format(*line).rstrip() for line in [header, *lines])


def models(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List configured LLM providers and their models: usable or not (key, breaker) and why."""
    from ..providers.errors import NO_PROVIDER_HELP

    rows = _rows()
    if json_out:
        echo_json(rows)
        return
    typer.echo(_table(rows))
    if rows and rows[0].get("implicit"):
        typer.echo("\n(no [providers.*] configured: the implicit anthropic and openai providers are shown)")
    if not any(r["usable"] for r in rows):
        typer.echo("\n" + NO_PROVIDER_HELP)
    else:
        typer.echo("\n* default model; pick another with `oxios run --model PROVIDER/MODEL ...`")


def register(app: typer.Typer) -> None:
    app.command("models")(models)
