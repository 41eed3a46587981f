"""Health checks behind `oxios doctor`: each problem comes with its fix.

Subsystems add checks with :func:`check`; each takes the loaded config (or
``None`` when the config is broken) and yields :class:`Finding` rows.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from .config import ConfigError, config_path, home_dir, load


@dataclass
class Finding:
    check: str
    status: str  # ok | warn | error
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


CheckFn = Callable[[Any], Iterable[Finding]]
CHECKS: list[CheckFn] = []


def check(fn: CheckFn) -> CheckFn:
    CHECKS.append(fn)
    return fn


@check
def _plugins(config: Any) -> Iterable[Finding]:
    from .plugins import PluginManager

    pm = PluginManager()
    pm.load()
    if not pm.failures:
        yield Finding("plugins", "ok", f"{len(pm.info)} plugins loaded")
    for f in pm.failures:
        yield Finding(
            "plugins",
            "error",
            f"plugin {f.name} ({f.distribution or 'unknown distribution'}) failed to load: {f.error}",
            f"reinstall or upgrade it (`oxios plugins install {f.distribution or f.name}`), or disable it with OXIOS_DISABLED_PLUGINS={f.name}",
        )


@check
def _host_tools(config: Any) -> Iterable[Finding]:
    if config is None:
        return
    for tool in config.exec.required_host_tools:
        if shutil.which(tool):
            yield Finding("host tools", "ok", f"{tool} found at {shutil.which(tool)}")
        else:
            yield Finding("host tools", "error", f"required host tool {tool} is not on PATH", f"install {tool} (e.g. `apt-get install {tool}`) or remove it from exec.required_host_tools")
    for tool in config.exec.optional_host_tools:
        if not shutil.which(tool):
            yield Finding("host tools", "warn", f"optional host tool {tool} is not on PATH", f"install {tool} if agents need it")


@check
def _api_keys(config: Any) -> Iterable[Finding]:
    found = [name for name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY") if os.environ.get(name)]
    configured = [n for n, p in (config.providers.items() if config else []) if p.api_key or p.base_url or (p.api_key_env and os.environ.get(p.api_key_env))]
    if found or configured:
        yield Finding("api keys", "ok", "provider credentials: " + ", ".join(found + [f"providers.{n}" for n in configured]))
    else:
        yield Finding(
            "api keys",
            "warn",
            "no LLM provider is configured: agents cannot think",
            "export ANTHROPIC_API_KEY=... or OPENAI_API_KEY=..., or point an OpenAI-compatible server at Oxios: "
            "`oxios config set providers.local.kind openai` and `oxios config set providers.local.base_url http://127.0.0.1:11434/v1`",
        )


@check
def _port(config: Any) -> Iterable[Finding]:
    if config is None:
        return
    from .daemon import is_running
    from .kernel import Paths

    host, port = config.gateway.host, config.gateway.port
    if is_running(Paths.from_config(home_dir(), config)):
        yield Finding("port", "ok", f"{host}:{port} is served by the running daemon")
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            yield Finding("port", "ok", f"{host}:{port} is free")
        except OSError as err:
            yield Finding("port", "error", f"{host}:{port} is in use ({err.strerror})", f"stop what listens there (`lsof -i :{port}`) or `oxios config set gateway.port {port + 1}`")


def run() -> list[Finding]:
    findings: list[Finding] = []
    path = config_path(home_dir())
    config = None
    try:
        config = load(path)
        findings.append(Finding("config", "ok", f"{path} is valid" if path.exists() else f"no {path} yet (defaults in use)"))
    except ConfigError as err:
        findings.append(Finding("config", "error", str(err), f"fix the value in {path}, or see `oxios config validate`"))
    for fn in CHECKS:
        try:
            findings.extend(fn(config))
        except Exception as err:  # a broken check is itself a finding
            findings.append(Finding(fn.__name__.strip("_"), "error", f"check failed: {err}"))
    return findings
