"""Health checks behind `oxios doctor`: each problem comes with its fix.

Subsystems add checks with :func:`check`; each takes the loaded config (or
``None`` when the config is broken) and yields :class:`Finding` rows.
"""

from __future__ import annotations

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
            yield Finding(
                "host tools",
                "error",
                f"required host tool {tool} is not on PATH",
                f"install {tool} (e.g. `apt-get install {tool}`) or remove it from exec.required_host_tools",
            )
    for tool in config.exec.optional_host_tools:
        if not shutil.which(tool):
            yield Finding("host tools", "warn", f"optional host tool {tool} is not on PATH", f"install {tool} if agents need it")


@check
def _api_keys(config: Any) -> Iterable[Finding]:
    """Which LLM providers are usable (key present, model known); how to configure one when none is."""
    if config is None:
        return
    from .providers.errors import NO_PROVIDER_HELP
    from .providers.registry import from_plugins

    registry = from_plugins(config)
    usable = []
    for name, entry in registry.entries.items():
        ok, reason = entry.usable()
        if ok:
            usable.append(name)
        elif not registry.implicit:
            yield Finding(
                "api keys",
                "warn",
                f"provider {name} ({entry.kind}) is not usable: {reason}",
                f"fix providers.{name} in config.toml; `oxios models` shows the state",
            )
    if usable:
        yield Finding("api keys", "ok", "usable LLM providers: " + ", ".join(usable))
    else:
        yield Finding(
            "api keys",
            "warn",
            "no LLM provider is usable: agents cannot think",
            NO_PROVIDER_HELP,
        )


@check
def _port(config: Any) -> Iterable[Finding]:
    if config is None:
        return
    from .daemon import is_running
    from .kernel import Paths

    host, port = config.gateway.host, config.gateway.port
    paths = Paths.from_config(home_dir(), config)
    if is_running(paths):
        web = _web_channel(paths.socket)
        if web.get("state") == "failed":
            # The daemon runs without its web UI: something else held the port when it started.
            yield Finding(
                "port",
                "error",
                f"the daemon runs, but its web UI could not listen on {host}:{port}: {web.get('detail')}",
                f"stop what listens there (`lsof -i :{port}`) and `oxios restart`, "
                f"or `oxios config set gateway.port {port + 1}` and `oxios restart`",
            )
        else:
            yield Finding("port", "ok", f"{host}:{port} is served by the running daemon")
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            yield Finding("port", "ok", f"{host}:{port} is free")
        except OSError as err:
            yield Finding(
                "port",
                "error",
                f"{host}:{port} is in use ({err.strerror})",
                f"stop what listens there (`lsof -i :{port}`) or `oxios config set gateway.port {port + 1}`",
            )


def _web_channel(control_socket: Any) -> dict[str, Any]:
    """The running daemon's web channel state (``{}`` when it does not answer or has no web channel)."""
    from .control import ControlError, call

    try:
        web = (call(control_socket, "status", timeout=10).get("channels") or {}).get("web")
    except ControlError:
        return {}
    return web if isinstance(web, dict) else {}


def run(overrides: dict[str, Any] | None = None) -> list[Finding]:
    """Every check; ``overrides`` are the command line's flags (``--port``, ``--set`` ...)."""
    findings: list[Finding] = []
    path = config_path(home_dir())
    config = None
    try:
        config = load(path, overrides=overrides or None)
        findings.append(Finding("config", "ok", f"{path} is valid" if path.exists() else f"no {path} yet (defaults in use)"))
    except ConfigError as err:
        findings.append(Finding("config", "error", str(err), f"fix the value in {path}, or see `oxios config validate`"))
    for fn in CHECKS:
        try:
            findings.extend(fn(config))
        except Exception as err:  # a broken check is itself a finding
            findings.append(Finding(fn.__name__.strip("_"), "error", f"check failed: {err}"))
    return findings


from .cron import doctor_checks as _cron_checks  # noqa: E402,F401  (registers its @check)
from .security import doctor_checks as _security_checks  # noqa: E402,F401  (registers its @check)
from .skills import doctor_checks as _skills_checks  # noqa: E402,F401  (registers its @check)
