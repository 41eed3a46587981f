"""Live config reload: the config file read again and applied to a running kernel, key by key.

Every key is one of three kinds, by how its readers use it:

- read at call time (``kernel.config.exec`` on every exec check): swapping
  ``kernel.config`` applies it;
- copied by a service at start but cheap to change: the service's
  ``apply_config(config)`` takes the new config (the scheduler's limits, cron);
- copied at start and costly to change (a listening socket, a memory
  backend, provider clients): it takes ``oxios restart``.

The running config (``kernel.config`` after a reload) holds the new value of
every key that took effect and the old value of every key that waits for a
restart, so ``GET /api/config`` shows what runs and the next reload still
names the keys a restart would change.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import msgspec

from .config import Config, ConfigError, load
from .plugins import resolve

log = logging.getLogger(__name__)

LIVE = "live"
RESTART = "restart"
SERVICE = "service:"  # "service:NAME": live through kernel.services[NAME].apply_config, else restart

# Dotted key prefix -> how a change to it takes effect; the longest matching prefix wins and a key
# no rule names waits for a restart, so a new key is never claimed live by accident.
RULES: dict[str, str] = {
    "kernel": RESTART,  # workspace (the sandbox root, git's repository), default provider/model (provider registry)
    "kernel.max_agents": LIVE,  # nothing copies it
    "kernel.max_turns": LIVE,  # read when each agent run starts
    "kernel.log_level": LIVE,  # the daemon sets the root logger's level
    "gateway": RESTART,  # listen address (web plugin), message semaphore (gateway)
    "exec": LIVE,  # every exec check and run reads kernel.config.exec
    "scheduler": SERVICE + "scheduler",
    "scheduler.backend": RESTART,
    "scheduler.overload_cpu_percent": RESTART,  # the resource monitor copies both at start
    "scheduler.overload_memory_percent": RESTART,
    "security": LIVE,  # policies, sandbox, rbac, approvals and API auth read it per call
    "security.ssrf_allowlist": RESTART,  # the browser and MCP plugins build their network guards at start
    "security.robots_txt": RESTART,  # the browser plugin's settings, at start
    "security.rate_limit_per_minute": RESTART,  # the web plugin's limiter, at start
    "cron": SERVICE + "cron",
    "cron.max_concurrent_jobs": RESTART,  # a semaphore runs already wait on
    "orchestrator": SERVICE + "ouroboros",
    "memory": RESTART,  # backend, embedder and index opened at start
    "session": LIVE,  # the sessions service reads kernel.config.session per call
    "budget": LIVE,  # the budget service reads kernel.config.budget per call (new accounts get new defaults)
    "audit": RESTART,  # the audit chain copies enabled/checkpoint_every
    "git": RESTART,
    "mcp": RESTART,  # servers are connected at start
    "llm": RESTART,  # provider registry: breakers and retries built at start
    "providers": RESTART,
    "skills": RESTART,  # the skills service keeps the config it started with
    "channels": RESTART,  # channel plugins read their tables when they start
    "plugins": RESTART,
}


class ConfigReload(msgspec.Struct, kw_only=True):
    """What a reload did: keys that differed from the running config, and where each went."""

    changed: list[str] = []
    applied: list[str] = []  # took effect in the running daemon
    restart_required: list[str] = []  # kept their old value until `oxios restart`


def rule_for(key: str) -> str:
    parts = key.split(".")
    for end in range(len(parts), 0, -1):
        rule = RULES.get(".".join(parts[:end]))
        if rule is not None:
            return rule
    return RESTART


def changed_keys(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ; a table entry added or removed is one key (``cron.jobs.NAME``)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in [*old, *(k for k in new if k not in old)]:
            dotted = f"{prefix}{key}"
            if key not in old or key not in new:
                out.append(dotted)
            else:
                out += changed_keys(old[key], new[key], dotted + ".")
        return out
    return [] if old == new else [prefix.rstrip(".")]


def _tree_get(tree: dict[str, Any], parts: list[str]) -> tuple[bool, Any]:
    node: Any = tree
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _tree_put(tree: dict[str, Any], parts: list[str], present: bool, value: Any) -> None:
    node = tree
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    if present:
        node[parts[-1]] = value
    else:
        node.pop(parts[-1], None)


def running_config(old: Config, new: Config, keep_old: list[str]) -> Config:
    """``new`` with the keys in ``keep_old`` set back to their running values."""
    if not keep_old:
        return new
    old_tree, tree = msgspec.to_builtins(old), msgspec.to_builtins(new)
    for key in keep_old:
        parts = key.split(".")
        present, value = _tree_get(old_tree, parts)
        _tree_put(tree, parts, present, value)
    return msgspec.convert(tree, Config)


def load_for(kernel: Any, path: Path | None = None) -> Config:
    """The config ``kernel`` would run with from ``path``: the file, the environment, its start-up overrides."""
    return load(Path(path or kernel.paths.config_file), overrides=kernel.config_overrides or None)


async def reload(kernel: Any, *, actor: str = "system") -> ConfigReload:
    """Read the config file again and apply it. Raises :class:`ConfigError` (the running config stays)."""
    path = kernel.paths.config_file
    try:
        new = load_for(kernel)
    except ConfigError as err:
        log.error("config reload refused, the running config stays: %s", err)
        await kernel.audit(actor, "config.reload", str(path), False, f"refused: {err}")
        kernel.publish("config.reload_failed", actor=actor, error=str(err))
        raise
    old = kernel.config
    changed = changed_keys(msgspec.to_builtins(old), msgspec.to_builtins(new))
    applied: list[str] = []
    restart: list[str] = []
    by_service: dict[str, list[str]] = {}
    for key in changed:
        rule = rule_for(key)
        if rule.startswith(SERVICE):
            name = rule[len(SERVICE) :]
            if callable(getattr(kernel.services.get(name), "apply_config", None)):
                by_service.setdefault(name, []).append(key)
            else:  # a replacement service (a scheduler plugin ...) without the hook: at restart
                restart.append(key)
        elif rule == LIVE:
            applied.append(key)
        else:
            restart.append(key)
    kernel.config = running_config(old, new, restart)
    for name, keys in by_service.items():
        try:
            await resolve(kernel.services[name].apply_config(kernel.config))
            applied += keys
        except Exception:
            log.exception("service %s could not apply the reloaded config; %s wait for a restart", name, ", ".join(keys))
            restart += keys
    if "kernel.log_level" in applied and kernel.daemon:
        from .logs import set_level

        set_level(kernel.config.kernel.log_level)
    order = {key: i for i, key in enumerate(changed)}
    result = ConfigReload(
        changed=changed,
        applied=sorted(applied, key=order.__getitem__),
        restart_required=sorted(restart, key=order.__getitem__),
    )
    summary = _summary(result)
    log.info("config reloaded by %s: %s", actor, summary)
    await kernel.audit(
        actor,
        "config.reload",
        str(path),
        True,
        summary,
        changed=result.changed,
        applied=result.applied,
        restart_required=result.restart_required,
    )
    kernel.publish("config.reloaded", actor=actor, **msgspec.to_builtins(result))
    return result


def _summary(result: ConfigReload) -> str:
    if not result.changed:
        return "no changes"
    parts = []
    if result.applied:
        parts.append("applied " + ", ".join(result.applied))
    if result.restart_required:
        parts.append("restart required for " + ", ".join(result.restart_required))
    return "; ".join(parts)
