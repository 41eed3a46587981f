"""The kernel: wires the subsystems and is the facade every plugin talks to.

Plugins and channels hold a :class:`Kernel` and use its public attributes
and methods; they never import another subsystem's module internals.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oxios_hookspecs import Action, ActionContext, Event

from . import __version__
from .config import Config
from .events import EventBus
from .plugins import PluginManager, resolve, resolve_within
from .state import StateStore
from .toolbox import ToolRegistry

log = logging.getLogger(__name__)

# Subsystems, started in this order and stopped in reverse. Each entry is
# (name, "module:function"); the function takes the kernel and returns the
# service object (or an awaitable of it), stored as ``kernel.services[name]``.
# A service with ``async stop()`` (or ``stop()``) is stopped on shutdown.
SERVICES: list[tuple[str, str]] = [
    ("audit", "oxios.security.audit:start"),
    ("rbac", "oxios.security.rbac:start"),
    ("approvals", "oxios.security.approvals:start"),
    ("tokens", "oxios.security.tokens:start"),
    ("providers", "oxios.providers.registry:start"),
    ("sessions", "oxios.agent.sessions:start"),
    ("spaces", "oxios.agent.spaces:start"),
    ("personas", "oxios.agent.personas:start"),
    ("budget", "oxios.agent.budget:start"),
    ("resources", "oxios.agent.resources:start"),
    ("scheduler", "oxios.agent.scheduling:start"),
    ("agents", "oxios.agent.supervisor:start"),
    ("gateway", "oxios.gateway:start"),
    ("ouroboros", "oxios.ouroboros.protocol:start"),
    ("skills", "oxios.skills.service:start"),
    ("memory", "oxios.memory.service:start"),
    ("cron", "oxios.cron:start"),
]


class NotAvailable(Exception):
    """A facade method whose subsystem is not installed or not enabled."""

    def __init__(self, what: str, hint: str = "") -> None:
        self.what = what
        super().__init__(f"{what} is not available" + (f": {hint}" if hint else ""))


class NotFound(LookupError):
    """An id or name that does not exist (maps to 404 / a clear CLI error)."""


class Conflict(ValueError):
    """A request that clashes with current state: a duplicate name, a busy resource (maps to 409).

    A ValueError, so callers that catch refused input keep catching it.
    """


class Invalid(ValueError):
    """Input a service refuses: the message names what to fix (maps to 422)."""


@dataclass(frozen=True)
class Paths:
    """Where things live under OXIOS_HOME."""

    home: Path
    workspace: Path

    @property
    def config_file(self) -> Path:
        return self.home / "config.toml"

    @property
    def db(self) -> Path:
        return self.home / "state.db"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def run(self) -> Path:
        return self.home / "run"

    @property
    def pidfile(self) -> Path:
        return self.run / "oxios.pid"

    @property
    def socket(self) -> Path:
        return self.run / "oxios.sock"

    @property
    def secrets(self) -> Path:
        return self.home / "secrets"

    @classmethod
    def from_config(cls, home: Path, config: Config) -> Paths:
        workspace = config.kernel.workspace
        if workspace.startswith("~/.oxios"):
            # "~/.oxios" in the default means OXIOS_HOME, so a relocated home is self-contained.
            ws = home / workspace[len("~/.oxios") :].lstrip("/")
        else:
            ws = Path(os.path.expanduser(workspace))
        return cls(home=home, workspace=ws.resolve())

    def ensure(self) -> None:
        for d in (self.home, self.workspace, self.logs, self.run, self.secrets):
            d.mkdir(parents=True, exist_ok=True)
        os.chmod(self.secrets, 0o700)


class Kernel:
    """The facade. Construct, ``await start()``, use, ``await stop()``."""

    version = __version__
    # How long a channel's start() may take before it is reported failed and the daemon goes on without it.
    channel_start_timeout: float = 30.0
    # How long one plugin's startup or shutdown hook may take before it is reported failed and skipped.
    lifecycle_hook_timeout: float = 30.0

    def __init__(
        self, config: Config, home: Path, *, plugins: PluginManager | None = None, overrides: dict[str, Any] | None = None
    ) -> None:
        self.config = config
        # The CLI flags (--set, --port ...) the daemon started with: a config reload layers them on top again.
        self.config_overrides: dict[str, Any] = dict(overrides or {})
        self._reload_lock = asyncio.Lock()
        self.paths = Paths.from_config(Path(home), config)
        self.plugins = plugins or PluginManager()
        self.events = EventBus()
        self.tools = ToolRegistry()
        self.provider_kinds: dict[str, Any] = {}
        self.channels: dict[str, Any] = {}
        self.channel_plugins: dict[str, str] = {}
        self.channel_errors: dict[str, str] = {}  # channels that failed to start, and why
        self.state: StateStore | None = None
        self.started_at: float | None = None
        self._event_pumps: list[tuple[Any, asyncio.Task[None]]] = []
        self._stopping = False
        # True only in the daemon (set by daemon.serve): background loops such as
        # cron's tick must not run in a CLI command's short-lived kernel.
        self.daemon = False
        # Subsystems filled in by their own modules as they start.
        self.services: dict[str, Any] = {}
        # Methods reachable through the daemon's control socket.
        self.rpc: dict[str, Any] = {"status": self.status, "ping": lambda: "pong", "reload": self.reload_config}

    # -- lifecycle ------------------------------------------------------------

    async def start(self, *, channels: bool = True) -> None:
        self.paths.ensure()
        self.plugins.load()
        self.state = StateStore(self.paths.db)
        self.started_at = time.time()
        self.plugins.collect("register_tools", self.tools.make_register, kernel=self)
        self.plugins.collect("register_providers", self._provider_register)
        for name, target in SERVICES:
            module_name, _, func = target.partition(":")
            factory = getattr(importlib.import_module(module_name), func)
            self.services[name] = await resolve(factory(self))
        # One queue and task per on_event plugin: a slow plugin only delays itself.
        for impl in self.plugins.implementations("on_event"):
            sub = self.events.subscribe(maxsize=1024)
            task = asyncio.create_task(self._pump_events(impl, sub), name=f"on_event:{self.plugins.plugin_of(impl.plugin)}")
            self._event_pumps.append((sub, task))
        if channels:
            self.plugins.collect("register_channels", self._channel_register, kernel=self)
            await self._start_channels()
        await self._call_lifecycle("startup")
        self.events.publish("kernel.started", version=self.version, pid=os.getpid())

    async def stop(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        self.events.publish("kernel.stopping")
        for name, channel in list(self.channels.items()):
            try:
                await asyncio.wait_for(channel.stop(), timeout=10)
            except Exception:
                log.exception("channel %s failed to stop", name)
        await self._call_lifecycle("shutdown")
        for name in reversed(list(self.services)):
            stopper = getattr(self.services[name], "stop", None)
            if stopper is None:
                continue
            try:
                await resolve(stopper())
            except Exception:
                log.exception("service %s failed to stop", name)
        for sub, _task in self._event_pumps:
            sub.close()
        if self._event_pumps:
            _done, pending = await asyncio.wait([t for _s, t in self._event_pumps], timeout=2)
            for task in pending:
                task.cancel()
        if self.state is not None:
            self.state.close()

    async def _call_lifecycle(self, hook_name: str) -> None:
        """Run a startup or shutdown hook per plugin; one that fails or hangs is reported, never blocks the daemon."""
        for impl in self.plugins.implementations(hook_name):
            name = self.plugins.plugin_of(impl.plugin)
            try:
                await resolve_within(self.plugins.call_impl(impl, hook_name, kernel=self), self.lifecycle_hook_timeout)
            except TimeoutError:
                error = f"{hook_name} did not finish within {self.lifecycle_hook_timeout:g}s (skipped)"
                log.error("plugin %s %s", name, error)
                self.plugins.record_failure(name, error, stage=hook_name)
            except Exception as err:
                log.exception("plugin %s failed in %s", name, hook_name)
                self.plugins.record_failure(name, f"{hook_name}: {type(err).__name__}: {err}", stage=hook_name)

    async def _pump_events(self, impl: Any, sub: Any) -> None:
        async for event in sub:
            try:
                await resolve(self.plugins.call_impl(impl, "on_event", event=event))
            except Exception:
                log.exception("plugin %s failed in on_event", self.plugins.plugin_of(impl.plugin))

    def _provider_register(self, plugin: str) -> Any:
        def register(kind: str, factory: Any) -> None:
            if kind in self.provider_kinds:
                log.warning("provider kind %s from %s already registered; skipped", kind, plugin)
                return
            self.provider_kinds[kind] = factory

        return register

    def _channel_register(self, plugin: str) -> Any:
        def register(channel: Any) -> None:
            if channel.name in self.channels:
                log.warning("channel %s from %s already registered; skipped", channel.name, plugin)
                return
            self.channels[channel.name] = channel
            self.channel_plugins[channel.name] = plugin

        return register

    async def _start_channels(self) -> None:
        """Start every channel at once; one that fails or hangs is reported, never blocks the others or the daemon."""
        gateway = self.services.get("gateway")
        starts = {
            name: asyncio.create_task(self._start_channel(name, channel, gateway), name=f"channel-start:{name}")
            for name, channel in self.channels.items()
        }
        if not starts:
            return
        _done, hanging = await asyncio.wait(starts.values(), timeout=self.channel_start_timeout)
        for name, task in starts.items():
            if task in hanging:
                task.cancel()
                error = f"did not start within {self.channel_start_timeout:g}s (its start() never returned)"
                log.error("channel %s %s", name, error)
                self.channel_errors[name] = error
                self.events.publish("channel.failed", channel=name, error=error)
        if hanging:
            await asyncio.wait(hanging, timeout=1)  # let the cancelled starts unwind; a start that ignores it is left

    async def _start_channel(self, name: str, channel: Any, gateway: Any) -> None:
        try:
            await channel.start(gateway)
            self.events.publish("channel.started", channel=name)
        except Exception as err:
            log.exception("channel %s failed to start", name)
            self.channel_errors[name] = f"{type(err).__name__}: {err}"
            self.events.publish("channel.failed", channel=name, error=str(err))

    # -- facade: events -----------------------------------------------------

    def publish(self, type: str, **data: Any) -> Event:
        return self.events.publish(type, **data)

    def subscribe(self, *, maxsize: int = 256, types: set[str] | None = None) -> Any:
        return self.events.subscribe(maxsize=maxsize, types=types)

    # -- facade: config -----------------------------------------------------------

    def load_config(self, path: Path | None = None) -> Config:
        """The config this kernel would run with from ``path`` (default its config file), env and start-up flags.

        Raises :class:`oxios.config.ConfigError` naming the bad key and where it came from.
        """
        from .reload import load_for

        return load_for(self, path)

    async def reload_config(self, actor: str = "system") -> Any:
        """Read the config file again and apply what can change live; see :mod:`oxios.reload`.

        Returns ``ConfigReload(changed, applied, restart_required)``; an invalid file raises
        :class:`oxios.config.ConfigError` and the running config stays. Audited, and published as
        ``config.reloaded``.
        """
        from .reload import reload

        async with self._reload_lock:
            return await reload(self, actor=actor)

    # -- facade: services ---------------------------------------------------------

    def expose(self, name: str, fn: Any) -> None:
        """Make ``fn`` callable by the CLI through the control socket as ``name``."""
        self.rpc[name] = fn

    def service(self, name: str, hint: str = "") -> Any:
        """A subsystem by name, or :class:`NotAvailable` naming what is missing."""
        svc = self.services.get(name)
        if svc is None:
            raise NotAvailable(name, hint)
        return svc

    def context(
        self, *, agent_id: str = "", role: str | None = None, session_id: str = "", interactive: bool = True
    ) -> ActionContext:
        return ActionContext(
            agent_id=agent_id,
            role=role or self.config.security.default_role,
            session_id=session_id,
            workspace=str(self.paths.workspace),
            interactive=interactive,
            kernel=self,
        )

    async def check_action(self, action: Action, context: ActionContext) -> Any:
        """Ask every policy (and audit the decision); see :mod:`oxios.security.engine`."""
        from .security.engine import decide

        return await decide(self, action, context)

    async def authorize(self, action: Action, context: ActionContext) -> Any:
        """:meth:`check_action`, with "ask" resolved through approvals (deny when nobody can answer).

        Returns an object with ``allowed``, ``reason``, ``policy`` and ``asked``; the decision is audited.
        """
        from .agent.authorize import authorize

        return await authorize(self, action, context)

    async def audit(self, actor: str, action: str, resource: str, allowed: bool, reason: str, **metadata: Any) -> None:
        """Append to the audit chain (secrets are redacted there); a failing chain is logged, never raised."""
        trail = self.services.get("audit")
        if trail is None:
            return
        try:
            await resolve(trail.append(actor or "system", action, resource, allowed, reason, metadata))
        except Exception:
            log.exception("audit append failed for %s %s", action, resource)

    # -- facade: status -------------------------------------------------------------

    def _channel_status(self, name: str, channel: Any) -> dict[str, Any]:
        if name in self.channel_errors:
            return {"state": "failed", "detail": self.channel_errors[name]}
        try:
            return _describe_channel(channel)
        except Exception as err:  # status must never fail because one channel did
            return {"state": "unknown", "detail": str(err)}

    def status(self) -> dict[str, Any]:
        uptime = time.time() - self.started_at if self.started_at else 0.0
        out: dict[str, Any] = {
            "service": "oxios",
            "status": "running" if self.started_at and not self._stopping else "stopped",
            "version": self.version,
            "pid": os.getpid(),
            "uptime_secs": round(uptime, 1),
            "uptime": format_uptime(uptime),
            "home": str(self.paths.home),
            "workspace": str(self.paths.workspace),
            "plugins": [p["name"] for p in self.plugins.plugins()],
            "plugin_failures": [f.as_dict() for f in self.plugins.failures],
            "channels": {name: self._channel_status(name, ch) for name, ch in self.channels.items()},
            "tools": len(self.tools.tools),
            "components": {
                "state_store": {"healthy": bool(self.state and self.state.healthy()), "detail": None},
                "event_bus": {"healthy": True, "detail": None, "subscribers": self.events.subscriber_count},
            },
        }
        for name, svc in self.services.items():
            describe = getattr(svc, "status", None)
            if callable(describe):
                try:
                    out["components"][name] = describe()
                except Exception as err:  # status must never fail because one part did
                    out["components"][name] = {"healthy": False, "detail": str(err)}
        return out


def _describe_channel(channel: Any) -> dict[str, Any]:
    describe = getattr(channel, "status", None)
    state = describe() if callable(describe) else {}
    if not isinstance(state, dict):
        state = {"state": str(state)}
    if "state" not in state:  # a channel that only says whether it runs
        state = {"state": "running" if state.get("running", True) else "stopped", **state}
    return state


def format_uptime(secs: float) -> str:
    secs = int(secs)
    h, rem = divmod(secs, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h {m}m {s}s"
