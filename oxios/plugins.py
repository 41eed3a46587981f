"""The plugin manager: built-ins first, then the ``oxios`` entry points.

The loader loops over entry points itself so that a plugin that fails to
import is recorded and skipped, never fatal (llm#1280); a distribution is
registered once even when it appears twice on the path (editable installs,
lib64 symlinks); and a plugin that implements hooks this version lacks is
unregistered with a warning (tox 4) instead of crashing the host.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from oxios_hookspecs import PROJECT, SPEC_MODULES

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = PROJECT

# Built-in features are ordinary plugin modules, registered first so that an
# external plugin can replace them (by registering its own name or by
# disabling ours with OXIOS_DISABLED_PLUGINS).
BUILTIN_PLUGINS: list[str] = [
    "oxios.builtin.policies",
    "oxios.builtin.providers",
    "oxios.builtin.core_tools",
    "oxios.builtin.scheduler",
    "oxios.builtin.skills",
    "oxios.builtin.memory",
]


@dataclass
class PluginInfo:
    name: str
    distribution: str | None = None
    version: str | None = None
    builtin: bool = False
    hooks: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "builtin": self.builtin,
            "hooks": sorted(self.hooks),
        }


@dataclass
class PluginFailure:
    name: str
    distribution: str | None
    version: str | None
    error: str
    # "load", or the lifecycle hook (startup, shutdown) the plugin failed in while the kernel ran.
    stage: str = "load"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "error": self.error,
            "stage": self.stage,
        }


def _env_list(name: str) -> list[str] | None:
    value = os.environ.get(name)
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


class PluginManager:
    """pluggy's manager plus what Oxios records about each plugin."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(PROJECT)
        for module in SPEC_MODULES:
            self.pm.add_hookspecs(module)
        self.info: dict[str, PluginInfo] = {}
        self.failures: list[PluginFailure] = []
        self.loaded = False
        self.tracing = False

    @property
    def hook(self) -> Any:
        return self.pm.hook

    # -- loading ------------------------------------------------------------

    def load(self, *, builtins: Iterable[str] = BUILTIN_PLUGINS, entry_points: bool = True) -> None:
        """Register built-ins, then entry points, honouring the env lists."""
        if self.loaded:
            return
        self.loaded = True
        only = _env_list("OXIOS_LOAD_PLUGINS")
        disabled = set(_env_list("OXIOS_DISABLED_PLUGINS") or [])
        for module_name in builtins:
            short = module_name.rsplit(".", 1)[-1]
            if short in disabled or module_name in disabled:
                continue
            try:
                module = importlib.import_module(module_name)
            except Exception as err:  # a broken built-in is reported like any plugin
                log.warning("built-in plugin %s failed to import: %s", module_name, err)
                self.failures.append(PluginFailure(short, "oxios", None, f"{type(err).__name__}: {err}"))
                continue
            self.register(module, name=short, builtin=True)
        if entry_points:
            self._load_entry_points(only, disabled)
        self.check_pending()
        if os.environ.get("OXIOS_TRACE_PLUGINS") == "1":
            self.enable_tracing()

    def _load_entry_points(self, only: list[str] | None, disabled: set[str]) -> None:
        seen_dists: set[str] = set()
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = ep.dist
            dist_name = dist.metadata["Name"] if dist is not None else None
            version = dist.version if dist is not None else None
            key = (dist_name or "").lower().replace("_", "-")
            if key and f"{key}:{ep.name}" in seen_dists:
                continue  # the same distribution seen twice on sys.path
            if key:
                seen_dists.add(f"{key}:{ep.name}")
            if only is not None and ep.name not in only and dist_name not in only:
                continue
            if ep.name in disabled or (dist_name and dist_name in disabled):
                continue
            if ep.name in self.info and not self.info[ep.name].builtin:
                continue
            try:
                plugin = ep.load()
            except BaseException as err:
                if isinstance(err, KeyboardInterrupt):
                    raise
                log.warning("plugin %s (%s) failed to load: %s", ep.name, dist_name, err)
                self.failures.append(PluginFailure(ep.name, dist_name, version, f"{type(err).__name__}: {err}"))
                continue
            self.register(plugin, name=ep.name, distribution=dist_name, version=version)

    def register(
        self,
        plugin: Any,
        *,
        name: str | None = None,
        builtin: bool = False,
        distribution: str | None = None,
        version: str | None = None,
    ) -> str:
        """Register a plugin object or module; a plugin of the same name is replaced."""
        name = name or getattr(plugin, "__name__", None) or repr(plugin)
        if self.pm.has_plugin(name):
            self.pm.unregister(name=name)
        try:
            self.pm.register(plugin, name=name)
        except pluggy.PluginValidationError as err:
            self.failures.append(PluginFailure(name, distribution, version, f"invalid hook implementation: {err}"))
            log.warning("plugin %s rejected: %s", name, err)
            return name
        hooks = [caller.name for caller in self.pm.get_hookcallers(plugin) or []]
        self.info[name] = PluginInfo(name, distribution or ("oxios" if builtin else None), version, builtin, hooks)
        return name

    def unregister(self, name: str) -> None:
        if self.pm.has_plugin(name):
            self.pm.unregister(name=name)
        self.info.pop(name, None)

    def check_pending(self) -> None:
        """Unregister plugins implementing hooks that do not exist (misspelled or too new)."""
        for hook_name in list(vars(self.pm.hook)):
            caller = getattr(self.pm.hook, hook_name)
            if getattr(caller, "spec", None) is not None:
                continue
            for impl in caller.get_hookimpls():
                if impl.optionalhook:
                    continue
                name = self.pm.get_name(impl.plugin) or "?"
                info = self.info.get(name)
                self.failures.append(
                    PluginFailure(
                        name,
                        info.distribution if info else None,
                        info.version if info else None,
                        f"unknown hook {hook_name!r}: this Oxios has no such hook (misspelled, or needs a newer Oxios)",
                    )
                )
                log.warning("plugin %s implements unknown hook %s; unregistered", name, hook_name)
                self.unregister(name)

    def record_failure(self, plugin_name: str, error: str, *, stage: str = "load") -> None:
        """Remember that a plugin failed (shown by ``oxios status`` and ``oxios plugins``)."""
        info = self.info.get(plugin_name)
        self.failures.append(
            PluginFailure(plugin_name, info.distribution if info else None, info.version if info else None, error, stage)
        )

    def enable_tracing(self) -> None:
        self.tracing = True
        self.pm.trace.root.setwriter(_trace_write)
        self.pm.enable_tracing()

    def implementations(self, hook_name: str) -> list[Any]:
        """Implementations of a hook in call order (last registered first, like pluggy)."""
        return list(reversed(getattr(self.pm.hook, hook_name).get_hookimpls()))

    def call_impl(self, impl: Any, hook_name: str, **kwargs: Any) -> Any:
        """Call one implementation with only the arguments it asks for (traced)."""
        args = {name: kwargs[name] for name in impl.argnames if name in kwargs}
        if self.tracing:
            _trace_write(f"{hook_name} -> {self.plugin_of(impl.plugin)}({', '.join(args)})")
        return impl.function(**args)

    # -- reporting ------------------------------------------------------------

    def plugins(self, *, include_builtin: bool = False, hook: str | None = None) -> list[dict[str, Any]]:
        rows = [
            info.as_dict()
            for info in self.info.values()
            if (include_builtin or not info.builtin) and (hook is None or hook in info.hooks)
        ]
        return sorted(rows, key=lambda r: (r["builtin"], r["name"]))

    def plugin_of(self, impl_plugin: Any) -> str:
        return self.pm.get_name(impl_plugin) or "?"

    # -- calling --------------------------------------------------------------

    def collect(self, hook_name: str, make_register: Any, **kwargs: Any) -> list[Any]:
        """Call a ``register_*`` hook once per implementation with its own callback.

        ``make_register(plugin_name)`` returns the ``register`` function handed to
        that plugin, so the host knows which plugin registered what (llm's way).
        Errors in one plugin are logged and recorded; the others still run.
        """
        caller = getattr(self.pm.hook, hook_name)
        results = []
        for impl in caller.get_hookimpls():  # registration order: built-ins first
            plugin_name = self.pm.get_name(impl.plugin) or "?"
            try:
                results.append(self.call_impl(impl, hook_name, register=make_register(plugin_name), **kwargs))
            except Exception as err:
                log.exception("plugin %s failed in %s", plugin_name, hook_name)
                self.record_failure(plugin_name, f"{hook_name}: {type(err).__name__}: {err}")
        return results


def _trace_write(*args: Any) -> None:
    sys.stderr.write("[oxios trace] " + " ".join(str(a) for a in args).rstrip() + "\n")


async def resolve(value: Any) -> Any:
    """A hook may return a value, a callable or an awaitable; get the value."""
    if inspect.isfunction(value) or inspect.ismethod(value):
        value = value()
    while inspect.isawaitable(value):
        value = await value
    return value


async def resolve_within(value: Any, timeout: float) -> Any:
    """:func:`resolve`, giving up after ``timeout`` seconds with :class:`TimeoutError`.

    The hook is cancelled but not waited for: one that swallows its cancellation must not hang the caller.
    A synchronous hook has already run by the time its value gets here; only awaitables can be timed out.
    """
    task = asyncio.ensure_future(resolve(value))
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if not done:
        task.cancel()
        task.add_done_callback(_drop_result)
        raise TimeoutError(f"no answer within {timeout:g}s")
    return task.result()


def _drop_result(task: asyncio.Future[Any]) -> None:
    # A timed-out hook that later fails must not log "exception was never retrieved".
    if not task.cancelled():
        task.exception()
