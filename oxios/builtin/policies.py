"""Built-in policies: RBAC tool tiers, per-tool approval policy, exec rules, path sandbox, SSRF.

Each vote names its policy (``rbac``, ``tool_policy``, ``exec``, ``path``,
``url``) and says why, so ``oxios policy explain`` can show every one. The
rules themselves live in :mod:`oxios.security`; this module only turns an
:class:`Action` into the right questions.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from oxios_hookspecs import Action, ActionContext, Decision, hookimpl

from ..security import exec_rules
from ..security.exec_network import network_targets
from ..security.rbac import Rbac
from ..security.sandbox import git_dir_problem, git_obeys, read_roots, sandbox_for
from ..security.ssrf import SSRFError, acheck_host, acheck_url

# Action names of the API that need a management capability.
_API_CAPABILITIES = {
    "agents.fork": "fork_agents",
    "agents": "manage_agents",
    "config": "manage_config",
    "audit": "manage_audit",
    "permissions": "manage_config",
    "approvals": "manage_agents",
}

log = logging.getLogger(__name__)


def _role(context: ActionContext) -> Any:
    kernel = context.kernel
    rbac = kernel.services.get("rbac") or Rbac(kernel)
    return rbac.effective(context.agent_id, context.role)


def _vote(policy: str, verdict: str, reason: str) -> Decision:
    return Decision(verdict=verdict, reason=reason, policy=policy)  # type: ignore[arg-type]


def _tool_votes(action: Action, context: ActionContext) -> list[Decision]:
    kernel = context.kernel
    name = action.tool or action.name
    votes: list[Decision] = []
    # The capability a tool needs is the registry's word, never the caller's.
    registered = kernel.tools.get(name) if getattr(kernel, "tools", None) is not None else None
    capability = getattr(registered.spec, "capability", "") if registered is not None else ""
    rbac = kernel.services.get("rbac") or Rbac(kernel)
    refusal = rbac.refusal(context.agent_id, context.role, name, action.tier, capability)
    if refusal is not None:
        return [_vote("rbac", "deny", refusal)]
    votes.append(_vote("rbac", "allow", f"role {context.role} may use {name}"))
    setting = context.kernel.config.security.tool_policies.get(name, "on_demand")
    if setting == "always":
        votes.append(_vote("tool_policy", "ask", f"security.tool_policies.{name} = always: every call needs approval"))
    elif setting == "auto":
        votes.append(_vote("tool_policy", "allow", f"security.tool_policies.{name} = auto"))
    return votes


def _api_votes(action: Action, context: ActionContext) -> list[Decision]:
    role = _role(context)
    for prefix, capability in _API_CAPABILITIES.items():
        if action.name == prefix or action.name.startswith(prefix + "."):
            if getattr(role, capability):
                return [_vote("rbac", "allow", f"role {context.role} has {capability}")]
            return [_vote("rbac", "deny", f"role {context.role} lacks {capability}")]
    return []


def _path_candidates(arg: str, cwd: str) -> list[str]:
    """Every part of an argument that may name a file.

    The whole argument when it is path-shaped or an existing entry (maybe a
    symlink); the value of ``--opt=value``; the tail of ``-C/etc`` style short
    options; what follows ``@`` (``curl -d @/etc/passwd``) or ``:``; the path of
    a ``file://`` URL. Anything that might be a path is judged as one: a false
    alarm is a clear deny, a miss is an escape.
    """
    if not arg:
        return []
    if "://" in arg:
        scheme, _, rest = arg.partition("://")
        return ["/" + rest.split("/", 1)[1] if "/" in rest else "/"] if scheme.lower() == "file" else []
    out: list[str] = []
    if arg.startswith(("/", "~", ".")) or "/" in arg or os.path.lexists(os.path.join(cwd, arg)):
        out.append(arg)
    if arg.startswith("-") and not arg.startswith("--") and len(arg) > 2:
        out.append(arg[2:])
    for sep in "=@:":
        if sep in arg:
            tail = arg.split(sep, 1)[1]
            if tail.startswith(("/", "~", "..")):
                out.append(tail)
    return out


def _path_like(arg: str, cwd: str) -> str | None:
    """The first path-shaped part of an argument (see :func:`_path_candidates`)."""
    found = _path_candidates(arg, cwd)
    return found[0] if found else None


def _url_args(argv: list[str]) -> list[str]:
    """Arguments that are network URLs (``git clone https://...``, ``curl http://...``)."""
    return [a.split("=", 1)[-1] if a.startswith("-") else a for a in argv if "://" in a and not a.startswith("file:")]


def _git_obeyed_arg(sandbox: Any, words: list[str], cwd: str) -> str | None:
    """An argument naming a file git runs or obeys (hooks, config, a ``.git`` file), which a command may write.

    ``git checkout-index --prefix=.git/hooks/ pre-commit`` writes a hook with
    nothing but allowed git; the next commit (the git plugin's too) runs it.
    """
    for word in words:
        parts = [word, word.split("=", 1)[1] if "=" in word else ""]
        if word.startswith("-") and not word.startswith("--"):
            parts.append(word[2:])
        for part in parts:
            if part and ("/" in part or part.startswith(".git") or os.path.lexists(os.path.join(cwd, part))):
                real = sandbox.resolve(part, cwd)
                if git_obeys(real):
                    return f"argument {word!r} names {real}, which git runs or obeys (hooks, config, a .git file)"
    return None


def _git_dir_vote(argv: list[str], sandbox: Any, cwd: str) -> str | None:
    """For git: the repository it would find from its working directory (after ``-C``) must be a protected one."""
    if not argv or argv[0] != "git":
        return None
    start, args, i = cwd, argv[1:], 0
    while i < len(args) and args[i].startswith("-"):
        if args[i] == "-C" and i + 1 < len(args):
            start = sandbox.resolve(args[i + 1], start)
            i += 1
        elif args[i].startswith("-C") and len(args[i]) > 2:
            start = sandbox.resolve(args[i][2:], start)
        i += 1
    problem = git_dir_problem(start, sandbox)
    return f"git would obey files the agent may have written: {problem}" if problem else None


def _protected_arg(sandbox: Any, words: list[str], cwd: str) -> str | None:
    """In shell mode only protected paths (secrets, credentials) are refused among arguments,
    and hard-linked files, which may be one of them under another name."""
    for word in words:
        candidate = _path_like(word, cwd)
        if candidate is None:
            continue
        real = sandbox.resolve(candidate, cwd)
        for deny in sandbox.denied:
            if real == deny or real.startswith(deny.rstrip("/") + "/"):
                return f"argument {word!r} names the protected path {real}"
        hard_linked = sandbox.hardlink_problem(real, write=True)
        if hard_linked:
            return f"argument {word!r}: {hard_linked}"
    return _git_obeyed_arg(sandbox, words, cwd)


async def _exec_votes(action: Action, context: ActionContext) -> list[Decision]:
    kernel = context.kernel
    cfg = kernel.config.exec
    role = _role(context)
    sandbox = sandbox_for(context)
    cwd = action.cwd or sandbox.workspace
    ok, why, real_cwd = sandbox.check(cwd)
    if not ok:
        return [_vote("exec", "deny", f"working directory refused: {why}")]
    env = exec_rules.scrub_env(cfg.env_passthrough)
    if action.mode == "shell":
        if not cfg.shell_mode:
            return [_vote("exec", "deny", "shell mode is off (exec.shell_mode = false); use structured exec")]
        if "shell" not in role.exec_modes:
            return [_vote("exec", "deny", f"role {context.role} is not granted shell mode")]
        verdict, redirects = exec_rules.check_shell(action.command, cfg.allowed_commands, cfg.allowlist_mode, env)
        if verdict.verdict != "deny":
            problem = _protected_arg(sandbox, _shell_words(action.command), real_cwd)
            if problem:
                return [_vote("exec", "deny", problem)]
            for target in redirects:
                ok, why, _ = sandbox.check_write(target, real_cwd)
                if not ok:
                    return [_vote("exec", "deny", f"redirect target refused: {why}")]
            for words in exec_rules.command_words(action.command):
                problem = _git_dir_vote(words, sandbox, real_cwd) or await _network_problem(words, role, context)
                if problem:
                    return [_vote("exec", "deny", problem)]
        return [_vote("exec", verdict.verdict, verdict.reason)]
    if "structured" not in role.exec_modes:
        return [_vote("exec", "deny", f"role {context.role} may not run commands")]
    argv = list(action.argv)
    if not argv and action.command:
        bad = next((c for c in "\n\r\x00" if c in action.command), None)
        if bad:
            return [_vote("exec", "deny", f"the command contains {bad!r}; one command per call")]
        try:
            argv = exec_rules.split_command(action.command)
        except ValueError as err:
            return [_vote("exec", "deny", f"the command could not be split safely: {err}")]
    verdict = exec_rules.check_structured(argv, cfg.allowed_commands, cfg.allowlist_mode, env)
    if verdict.verdict == "deny":
        return [_vote("exec", "deny", verdict.reason)]
    for arg in argv[1:]:
        for candidate in _path_candidates(arg, real_cwd):
            ok, why, real = sandbox.check(candidate, real_cwd)
            if ok:
                # A command may write what it is given: hard links are refused even where reads allow them.
                why = sandbox.hardlink_problem(real, write=True) or ""
                ok = not why
            if not ok:
                return [_vote("exec", "deny", f"argument {arg!r} names a path the sandbox refuses: {why}")]
    problem = _git_obeyed_arg(sandbox, argv[1:], real_cwd) or _git_dir_vote(argv, sandbox, real_cwd)
    if problem:
        return [_vote("exec", "deny", problem)]
    problem = await _network_problem(argv, role, context)
    if problem:
        return [_vote("exec", "deny", problem)]
    for source in exec_rules.hard_link_sources(argv) or ():
        real = sandbox.resolve(source, real_cwd)
        if not sandbox.in_workspace(real):
            why = f"{argv[0]} makes a hard link to {real}, outside the workspace: the link would carry that file in"
            return [_vote("exec", "ask", why if verdict.allowed else f"{verdict.reason}; {why}")]
    return [_vote("exec", verdict.verdict, verdict.reason)]


async def _network_problem(argv: list[str], role: Any, context: ActionContext) -> str | None:
    """Why a command may not reach what its arguments name (URLs, and a network client's hosts), or None."""
    allowlist = context.kernel.config.security.ssrf_allowlist
    urls = _url_args(argv[1:])
    probes, refused = network_targets(argv)
    if refused:
        return refused
    if (urls or probes) and not role.network:
        return f"role {context.role} has no network access ({urls[0] if urls else probes[0].argument})"
    for url in urls:
        # Any scheme (git://, ssh://) reaches a host: judge the host like an http URL.
        probe = url if url.lower().startswith(("http://", "https://")) else "http://" + url.split("://", 1)[1]
        try:
            await acheck_url(probe, allowlist)
        except SSRFError as err:
            return f"argument {url!r} reaches a refused address: {err}"
    for host in probes:
        try:
            # A word that merely looks like a name (data.json) and resolves nowhere reaches nothing.
            await acheck_host(host.host, allowlist, unresolvable_ok=not host.strict)
        except SSRFError as err:
            return f"argument {host.argument!r} reaches a refused address: {err}"
    return None


def _shell_words(command: str) -> list[str]:
    import shlex

    try:
        return shlex.split(command, comments=False, posix=True)
    except ValueError:
        return []


def _path_votes(action: Action, context: ActionContext) -> list[Decision]:
    sandbox = sandbox_for(context)
    checker = sandbox.check_write if action.access == "write" else sandbox.check
    ok, why, _ = checker(action.path, action.cwd or None)
    if not ok and action.access == "read":
        # Only now look at skill folders (listing skills hashes them): they widen reads, never writes.
        roots = read_roots(context)
        if roots:
            ok, why, _ = sandbox_for(context, roots).check(action.path, action.cwd or None)
    return [_vote("path", "allow" if ok else "deny", why)]


async def _url_votes(action: Action, context: ActionContext) -> list[Decision]:
    role = _role(context)
    if not role.network:
        return [_vote("url", "deny", f"role {context.role} has no network access")]
    try:
        addresses = await acheck_url(action.url, context.kernel.config.security.ssrf_allowlist)
    except SSRFError as err:
        return [_vote("url", "deny", str(err))]
    return [_vote("url", "allow", "resolves only to allowed addresses: " + ", ".join(str(a) for a in addresses))]


@hookimpl
async def check_action(action: Action, context: ActionContext) -> list[Decision] | None:
    if context.kernel is None:
        return [_vote("builtin", "deny", "no kernel in the action context")] if action.kind in ("exec", "url") else None
    if action.kind == "tool":
        return _tool_votes(action, context)
    if action.kind == "exec":
        return await _exec_votes(action, context)
    if action.kind == "path":
        return _path_votes(action, context)
    if action.kind == "url":
        return await _url_votes(action, context)
    if action.kind == "api":
        return _api_votes(action, context) or None
    return None
