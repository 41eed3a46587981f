"""`oxios audit`: verify the chain, tail and export it, inclusion proofs."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC
from pathlib import Path
from typing import Any

import typer

from . import common

audit_app = typer.Typer(help="The tamper-evident audit chain: verify, tail, export, proofs.", no_args_is_help=True)


def _log() -> Any:
    from ..kernel import Paths
    from ..security.audit import AuditLog
    from ..state import StateStore

    config = common.load_config()
    p = Paths.from_config(common.home(), config)
    p.home.mkdir(parents=True, exist_ok=True)
    return AuditLog(StateStore(p.db), checkpoint_every=config.audit.checkpoint_every)


def parse_since(text: str | None) -> float | None:
    """``1700000000``, ``2026-11-23``, ``2026-11-23T10:00:00``, or relative ``30m``, ``2h``, ``7d``."""
    if not text:
        return None
    rel = re.fullmatch(r"(\d+)\s*([smhd])", text.strip())
    if rel:
        return time.time() - int(rel.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[rel.group(2)]
    try:
        return float(text)
    except ValueError:
        pass
    from datetime import datetime

    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        common.fail(f"--since: cannot read {text!r}; use an ISO date, epoch seconds or 30m/2h/7d", 2)
    return moment.timestamp()


def _line(entry: dict[str, Any]) -> str:
    from datetime import datetime

    when = datetime.fromtimestamp(entry["ts"], tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    mark = "allow" if entry["allowed"] else "DENY "
    return f"{entry['seq']:>6} {when} {mark} {entry['actor']:<14} {entry['action']:<24} {entry['resource']}  ({entry['reason']})"


@audit_app.command("verify")
def verify(
    proof: Path = typer.Option(None, "--proof", help="Check an inclusion proof file written by `oxios audit proof`."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Walk the chain and report the first bad entry (exit 1 when the chain is broken)."""
    import msgspec

    log = _log()
    if proof is not None:
        try:
            data = json.loads(proof.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            common.fail(f"cannot read the proof {proof}: {err}", 2)
        ok, detail = log.verify_proof(data)
        if json_out:
            common.echo_json({"ok": ok, "detail": detail})
        else:
            typer.echo(("ok: " if ok else "FAILED: ") + detail)
        raise typer.Exit(0 if ok else 1)
    report = log.verify()
    if json_out:
        common.echo_json(msgspec.to_builtins(report))
    elif report.ok:
        typer.echo(f"ok: {report.detail} ({report.checkpoints} checkpoints)")
    else:
        where = f" at entry {report.bad_seq}" if report.bad_seq is not None else ""
        typer.echo(f"BROKEN{where}: {report.problem}: {report.detail}")
    raise typer.Exit(0 if report.ok else 1)


@audit_app.command("tail")
def tail(
    n: int = typer.Option(20, "-n", "--lines", help="How many entries."),
    agent: str = typer.Option(None, "--agent", help="Only this agent (actor)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The newest entries, oldest first."""
    entries = _log().tail(n, agent)
    if json_out:
        common.echo_json(entries)
        return
    for entry in entries:
        typer.echo(_line(entry))


@audit_app.command("export")
def export(
    fmt: str = typer.Option("jsonl", "--format", help="jsonl or json."),
    agent: str = typer.Option(None, "--agent", help="Only this agent (actor)."),
    since: str = typer.Option(None, "--since", help="ISO time, epoch seconds or 30m/2h/7d."),
    output: Path = typer.Option(None, "--output", "-o", help="Write to a file instead of stdout."),
) -> None:
    """Every entry (oldest first) as JSON lines or one JSON array."""
    if fmt not in ("jsonl", "json"):
        common.fail("--format must be jsonl or json", 2)
    entries = _log().export(agent=agent, since=parse_since(since))
    if fmt == "json":
        text = json.dumps(entries, indent=2) + "\n"
    else:
        text = "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in entries)
    if output is not None:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {len(entries)} entries to {output}")
    else:
        typer.echo(text, nl=False)


@audit_app.command("proof")
def proof(
    seq: int = typer.Argument(..., help="The entry's sequence number."),
    output: Path = typer.Option(None, "--output", "-o", help="Write the proof to a file."),
) -> None:
    """An inclusion proof of entry SEQ against the newest checkpoint (check it with `audit verify --proof`)."""
    try:
        data = _log().proof(seq)
    except LookupError as err:
        common.fail(str(err))
    text = json.dumps(data, indent=2)
    if output is not None:
        output.write_text(text + "\n", encoding="utf-8")
        typer.echo(f"wrote the proof of entry {seq} (tree of {data['tree_size']}) to {output}")
    else:
        typer.echo(text)


@audit_app.command("checkpoint")
def checkpoint() -> None:
    """Record a Merkle checkpoint now."""
    cp = _log().checkpoint()
    if cp is None:
        typer.echo("the audit chain is empty")
    else:
        typer.echo(f"checkpoint {cp['id']}: {cp['tree_size']} entries, root {cp['root']}")


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
