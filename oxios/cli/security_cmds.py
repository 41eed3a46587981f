"""`oxios approvals`, `oxios auth token`, `oxios permissions`, `oxios policy explain`.

Commands that change live state go through the daemon's control socket when
it runs, so a waiting agent hears the answer at once; otherwise they work on
the state store in this process.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import typer

from . import common

approvals_app = typer.Typer(help="Human-in-the-loop approvals: list, approve, reject, grants.", no_args_is_help=True)
auth_app = typer.Typer(help="API authentication.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens: create (shown once), list, revoke.", no_args_is_help=True)
permissions_app = typer.Typer(help="Agent roles and capabilities (RBAC).", no_args_is_help=True)
policy_app = typer.Typer(help="Explain policy decisions without running anything.", no_args_is_help=True)


@contextlib.contextmanager
def offline_kernel() -> Iterator[Any]:
    """A kernel with only the security services, for commands run without the daemon."""
    from ..kernel import Kernel
    from ..security import approvals, audit, rbac, tokens
    from ..state import StateStore

    kernel = Kernel(common.load_config(), common.home())
    kernel.paths.ensure()
    kernel.plugins.load()
    kernel.state = StateStore(kernel.paths.db)
    for name, module in (("audit", audit), ("rbac", rbac), ("approvals", approvals), ("tokens", tokens)):
        kernel.services[name] = module.start(kernel)
    try:
        yield kernel
    finally:
        kernel.services["audit"].stop()
        kernel.state.close()


def _daemon_running() -> bool:
    from ..daemon import is_running

    return is_running(common.paths())


def _call(rpc: str, service: str, method: str, **params: Any) -> Any:
    """``rpc`` on the daemon when it runs, else ``services[service].method`` in-process."""
    if _daemon_running():
        return common.daemon_call(rpc, **params)
    with offline_kernel() as kernel:
        try:
            return getattr(kernel.services[service], method)(**params)
        except LookupError as err:
            common.fail(common.lookup_message(err))
        except ValueError as err:
            common.fail(str(err), 2)


# -- approvals -------------------------------------------------------------------------------


@approvals_app.command("list")
def approvals_list(
    status: str = typer.Option("pending", "--status", help="pending, approved, rejected, expired, all."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Approval requests (pending ones by default)."""
    rows = _call("approvals.list", "approvals", "list", status=status)
    if json_out:
        common.echo_json(rows)
        return
    if not rows:
        typer.echo(f"no {status} approvals")
    for row in rows:
        typer.echo(
            f"{row['id']}  {row['status']:<9} agent={row['agent_id'] or '-'} {row['tool']}: {row['resource']}  ({row['reason']})"
        )


def _resolve_approval(verb: str, approval_id: str, **params: Any) -> None:
    result = _call(f"approvals.{verb}", "approvals", verb, approval_id=approval_id, by="cli", **params)
    if result is False:
        current = _call("approvals.get", "approvals", "get", approval_id=approval_id)
        state = current["status"] if current["status"] != "pending" else "expired"
        common.fail(f"approval {approval_id} is no longer pending (it is {state})")
    grant = f"; grant {result['grant_id']} ({result['scope']})" if result.get("grant_id") else ""
    typer.echo(f"{approval_id} {result['status']}{grant}")


@approvals_app.command("approve")
def approvals_approve(
    approval_id: str = typer.Argument(..., help="The approval id from `oxios approvals list`."),
    scope: str = typer.Option("once", "--scope", help="once, agent, session or global (the last three leave a grant)."),
    pattern: str = typer.Option(None, "--pattern", help="Argument glob for the grant (default: these exact arguments)."),
    expires: float = typer.Option(None, "--expires", help="Grant lifetime in seconds (default 24 h)."),
) -> None:
    """Allow a pending request, optionally granting the same again for an agent, session or everyone."""
    _resolve_approval("approve", approval_id, scope=scope, pattern=pattern, expires_secs=expires)


@approvals_app.command("reject")
def approvals_reject(approval_id: str = typer.Argument(..., help="The approval id.")) -> None:
    """Deny a pending request."""
    _resolve_approval("reject", approval_id)


@approvals_app.command("grants")
def approvals_grants(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Active grants left by scoped approvals."""
    rows = _call("approvals.grants", "approvals", "grants")
    if json_out:
        common.echo_json(rows)
        return
    for row in rows:
        typer.echo(f"{row['id']}  {row['scope']}:{row['scope_id']}  {row['tool']} {row['binary']} {row['arg_pattern']}")


@approvals_app.command("revoke-grant")
def approvals_revoke_grant(grant_id: str = typer.Argument(..., help="The grant id.")) -> None:
    """Withdraw a grant."""
    _call("approvals.revoke_grant", "approvals", "revoke_grant", grant_id=grant_id, by="cli")
    typer.echo(f"grant {grant_id} revoked")


# -- API tokens ------------------------------------------------------------------------------


@contextlib.contextmanager
def _tokens() -> Iterator[Any]:
    """The token store, auditing into the chain (the file is shared with a running daemon)."""
    with offline_kernel() as kernel:
        yield kernel.services["tokens"]


@token_app.command("create")
def token_create(
    name: str = typer.Argument(..., help="A name to recognise the token by."),
    role: str = typer.Option("user", "--role", help="The role API calls with this token act as."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Create a token and print it once (only its hash is stored)."""
    from ..security.rbac import roles

    known = roles(common.load_config())
    if role not in known:
        common.fail(f"unknown role {role!r}; roles: {', '.join(sorted(known))}", 2)
    with _tokens() as tokens:
        try:
            created = tokens.create(name, role)
        except ValueError as err:
            common.fail(str(err), 2)
    if json_out:
        common.echo_json(created)
        return
    typer.echo(created["token"])
    typer.echo(f"token {name} (role {role}) created; it is shown only this once", err=True)


@token_app.command("list")
def token_list(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Token names, roles and ids (never the tokens)."""
    with _tokens() as tokens:
        rows = tokens.list()
    if json_out:
        common.echo_json(rows)
        return
    if not rows:
        typer.echo("no API tokens")
    for row in rows:
        typer.echo(f"{row['id']}  {row['name']:<20} role={row['role']}")


@token_app.command("revoke")
def token_revoke(name: str = typer.Argument(..., help="Token name or id.")) -> None:
    """Delete a token; requests using it fail from now on."""
    with _tokens() as tokens:
        try:
            gone = tokens.revoke(name)
        except LookupError as err:
            common.fail(common.lookup_message(err))
    typer.echo(f"token {gone['name']} revoked")


# -- permissions -----------------------------------------------------------------------------


@permissions_app.command("get")
def permissions_get(agent: str = typer.Argument(..., help="Agent id.")) -> None:
    """An agent's role, overrides and effective capabilities."""
    common.echo_json(_call("permissions.get", "rbac", "get", agent_id=agent))


@permissions_app.command("set")
def permissions_set(
    agent: str = typer.Argument(..., help="Agent id."),
    role: str = typer.Option(None, "--role", help="Assign this role."),
    set_: list[str] = typer.Option([], "--set", help="Capability override, e.g. --set network=false --set tools='[\"read_*\"]'"),
) -> None:
    """Assign a role and/or override single capabilities (PUT /api/permissions/{agent})."""
    from ..config import parse_value

    overrides: dict[str, Any] = {}
    for item in set_:
        key, sep, value = item.partition("=")
        if not sep:
            common.fail(f"--set takes CAPABILITY=VALUE, got {item!r}", 2)
        overrides[key.strip()] = parse_value(value.strip())
    if role is None and not overrides:
        common.fail("give --role and/or --set", 2)
    common.echo_json(_call("permissions.put", "rbac", "put", agent_id=agent, role=role, overrides=overrides or None, actor="cli"))


@permissions_app.command("reset")
def permissions_reset(agent: str = typer.Argument(..., help="Agent id.")) -> None:
    """Drop an agent's role assignment and overrides."""
    removed = _call("permissions.reset", "rbac", "reset", agent_id=agent, actor="cli")
    typer.echo(f"{agent}: " + ("reset to the default role" if removed else "had no stored permissions"))


@permissions_app.command("roles")
def permissions_roles() -> None:
    """Every role and its capabilities."""
    import msgspec

    from ..security.rbac import roles

    common.echo_json({name: msgspec.to_builtins(r) for name, r in roles(common.load_config()).items()})


@permissions_app.command("list")
def permissions_list() -> None:
    """Agents with stored permissions."""
    common.echo_json(_call("permissions.list", "rbac", "list"))


# -- policy explain --------------------------------------------------------------------------


@policy_app.command("explain", context_settings={"allow_interspersed_args": False})
def policy_explain(
    kind: str = typer.Argument(..., help="exec, shell, path, url or tool."),
    target: list[str] = typer.Argument(
        ..., help="The command (after --), path, URL, or tool name with an optional tier (read, write, exec, network)."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print JSON: {verdict, votes: [{policy, verdict, reason}]}."),
    role: str = typer.Option(None, "--role", help="Judge for this role instead of security.default_role."),
    access: str = typer.Option("read", "--access", help="For paths: read or write."),
) -> None:
    """Print every policy's vote and the verdict, for the default role and the configured workspace."""
    import asyncio

    from oxios_hookspecs import Action

    from ..security.engine import evaluate

    if target and target[0] == "--":
        target = target[1:]
    if not target:
        common.fail("give what to judge: a command after --, a path or a URL", 2)
    if kind == "exec":
        action = Action(kind="exec", argv=list(target), mode="structured", tool="exec")
    elif kind == "shell":
        action = Action(kind="exec", command=" ".join(target), mode="shell", tool="exec")
    elif kind == "path":
        if access not in ("read", "write"):
            common.fail("--access must be read or write", 2)
        action = Action(kind="path", path=" ".join(target), access=access)  # type: ignore[arg-type]
    elif kind == "url":
        action = Action(kind="url", url=target[0])
    elif kind == "tool":
        action = Action(kind="tool", tool=target[0], tier=target[1] if len(target) > 1 else None)  # type: ignore[arg-type]
    else:
        common.fail(f"unknown kind {kind!r}; use exec, shell, path, url or tool", 2)
    with offline_kernel() as kernel:
        context = kernel.context(role=role, agent_id="")
        verdict = asyncio.run(evaluate(kernel, action, context))
    out = {
        "verdict": verdict.verdict,
        "reason": verdict.reason,
        "policy": verdict.policy,
        "role": context.role,
        "workspace": context.workspace,
        "action": action.describe(),
        "votes": [{"policy": v.policy, "verdict": v.verdict, "reason": v.reason} for v in verdict.votes],
    }
    if json_out:
        typer.echo(json.dumps(out, indent=2))
        return
    typer.echo(f"{kind}: {action.describe()}  (role {context.role}, workspace {context.workspace})")
    for vote in out["votes"]:
        typer.echo(f"  {vote['policy']:<12} {vote['verdict']:<5} {vote['reason']}")
    if not out["votes"]:
        typer.echo("  (no policy voted)")
    typer.echo(f"verdict: {verdict.verdict} ({verdict.reason})")


def register(app: typer.Typer) -> None:
    app.add_typer(approvals_app, name="approvals")
    auth_app.add_typer(token_app, name="token")
    app.add_typer(auth_app, name="auth")
    app.add_typer(permissions_app, name="permissions")
    app.add_typer(policy_app, name="policy")
