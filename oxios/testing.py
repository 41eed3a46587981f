"""pytest fixtures for Oxios and for plugin authors (loaded as a pytest plugin).

    def test_my_tool(oxios_kernel_factory):
        async with oxios_kernel_factory(plugins=[my_plugin]) as kernel:
            ...

Fixtures: ``oxios_home`` (a temporary OXIOS_HOME with a clean environment),
``oxios_kernel_factory`` (start a kernel with extra plugins and config),
``oxios_kernel`` (a started kernel), ``oxios_cli`` (run the CLI in-process),
``scripted_provider`` and ``scripted_kernel`` (a kernel thinking with a script),
``oxios_register`` (a plugin registered for one test) and ``oxios_web_client``
(an httpx client speaking ASGI to the web plugin's app).

The scripted provider stands in for an LLM in kernel tests::

    async def test_agent_lists_files(scripted_provider, oxios_kernel_factory):
        scripted_provider.enqueue_tool_call("ls", {"path": "."})    # turn 1: a tool call
        scripted_provider.enqueue_text("There are two files.")     # turn 2: the answer
        async with oxios_kernel_factory(plugins=[scripted_provider.plugin()],
                                        config=scripted_provider.config()) as kernel:
            ...  # run an agent; the provider registry routes to "scripted"
        assert scripted_provider.requests[1].messages[-1].content[0].tool_use_id == "call_1"

or simply ``async def test_x(scripted_kernel, scripted_provider)`` (same kernel,
already started). :class:`ScriptedProvider` (``oxios.providers.scripted``):

- ``enqueue_text(text, usage=None)``: a final answer, streamed in a few deltas;
- ``enqueue_tool_call(name, args, id=None, text="")``: one tool call (ids
  default to ``call_1``, ``call_2`` ...);
- ``enqueue_turn(text, [(name, args), (name, args, id)], usage=, stop_reason=)``:
  text and several tool calls in one reply;
- ``enqueue_error(exc)``: the next request raises ``exc`` (use
  ``oxios.providers.ProviderUnavailableError("down", status=500)`` or
  ``RateLimitedError`` to drive retries and the circuit breaker);
- ``enqueue_hang(text="")``: streams ``text`` then waits until cancelled;
- ``enqueue_callable(fn)``: ``fn(request)`` computes the reply (str or ScriptedTurn);
- ``.requests``: every ModelRequest received; ``.remaining``; ``assert_drained()``.

A request that finds the queue empty raises :class:`ScriptExhausted` (an
AssertionError naming the request); the ``scripted_provider`` fixture also
fails the test at teardown when that happened, even if the code under test
swallowed the error. Usage defaults to about four characters per token.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from .providers.scripted import ScriptedProvider, ScriptedTurn, ScriptExhausted

_CLEAN_ENV_PREFIXES = ("OXIOS_", "OXIOS__")
_CLEAN_ENV_NAMES = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_BASE_URL", "OPENAI_BASE_URL")


@pytest.fixture
def oxios_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh OXIOS_HOME; OXIOS_* and provider key variables are cleared."""
    for name in list(os.environ):
        if name.startswith(_CLEAN_ENV_PREFIXES) or name in _CLEAN_ENV_NAMES:
            monkeypatch.delenv(name, raising=False)
    home = tmp_path / "oxios-home"
    home.mkdir()
    monkeypatch.setenv("OXIOS_HOME", str(home))
    return home


def make_kernel_factory(home: Path) -> Callable[..., Any]:
    @contextlib.asynccontextmanager
    async def factory(
        *,
        plugins: list[Any] = (),  # type: ignore[assignment]
        config: dict[str, Any] | None = None,
        channels: bool = False,
        entry_points: bool = False,
    ) -> AsyncIterator[Any]:
        from oxios.config import load
        from oxios.kernel import Kernel
        from oxios.plugins import PluginManager

        pm = PluginManager()
        pm.load(entry_points=entry_points)
        for i, plugin in enumerate(plugins):
            pm.register(plugin, name=getattr(plugin, "__name__", None) or f"test-plugin-{i}")
        pm.check_pending()
        # ``config`` is layered like command-line flags, so a config reload keeps it too.
        kernel = Kernel(load(home / "config.toml", overrides=config), home, plugins=pm, overrides=config)
        await kernel.start(channels=channels)
        try:
            yield kernel
        finally:
            await kernel.stop()

    return factory


@pytest.fixture
def oxios_kernel_factory(oxios_home: Path) -> Callable[..., Any]:
    """``async with oxios_kernel_factory(plugins=[...], config={...}) as kernel``."""
    return make_kernel_factory(oxios_home)


@pytest.fixture
async def oxios_kernel(oxios_kernel_factory: Callable[..., Any]) -> AsyncIterator[Any]:
    """A started kernel with the built-in plugins, in a temporary home."""
    async with oxios_kernel_factory() as kernel:
        yield kernel


@pytest.fixture
def oxios_cli(oxios_home: Path) -> Callable[..., Any]:
    """Run ``oxios ARGS`` in-process; returns click's Result (exit_code, output)."""
    from typer.testing import CliRunner

    from oxios.cli import build_app, common

    runner = CliRunner()

    def run(*args: str, input: str | None = None) -> Any:
        common.CLI_OVERRIDES.clear()
        return runner.invoke(build_app(), list(args), input=input, catch_exceptions=False)

    return run


@pytest.fixture
def scripted_provider() -> Any:
    """A fresh :class:`ScriptedProvider` named ``scripted``; fails the test if it ever ran dry."""
    provider = ScriptedProvider()
    yield provider
    if provider.exhausted is not None:
        pytest.fail(f"the scripted provider ran dry during the test: {provider.exhausted}")


@pytest.fixture
async def scripted_kernel(oxios_kernel_factory: Callable[..., Any], scripted_provider: ScriptedProvider) -> AsyncIterator[Any]:
    """A started kernel whose only (and default) provider is ``scripted_provider``."""
    async with oxios_kernel_factory(plugins=[scripted_provider.plugin()], config=scripted_provider.config()) as kernel:
        yield kernel


class PluginRegistrar:
    """``oxios_register(plugin)``: a plugin that exists for this test only.

    Without ``kernel=`` the plugin is added to every plugin manager loaded
    during the test (kernels from ``oxios_kernel_factory``, the CLI through
    ``oxios_cli``, ``oxios doctor``), exactly as if it were installed; its
    ``register_commands`` is applied to the CLI right away. With
    ``kernel=`` it joins that running kernel's manager, so live hooks
    (``check_action``, ``on_event``) see it at once. Everything is undone when
    the test ends.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from oxios.plugins import PluginManager

        self.pending: list[tuple[Any, str]] = []
        self._live: list[tuple[Any, str]] = []
        self._cli_snapshot: tuple[list[Any], list[Any]] | None = None
        original_load = PluginManager.load
        registrar = self

        def load(pm: Any, *args: Any, **kwargs: Any) -> None:
            first = not pm.loaded
            original_load(pm, *args, **kwargs)
            if first and registrar.pending:
                for plugin, name in registrar.pending:
                    if not pm.pm.is_registered(plugin):  # already loaded through its entry point
                        pm.register(plugin, name=name)
                pm.check_pending()

        monkeypatch.setattr(PluginManager, "load", load)

    def __call__(self, plugin: Any, *, name: str | None = None, kernel: Any = None) -> str:
        name = name or getattr(plugin, "__name__", None) or f"test-plugin-{len(self.pending) + len(self._live)}"
        if kernel is not None:
            if not kernel.plugins.pm.is_registered(plugin):
                kernel.plugins.register(plugin, name=name)
                self._live.append((kernel.plugins, name))
            return name
        if callable(getattr(plugin, "register_commands", None)):
            from oxios.cli import app, build_app

            build_app()  # built before the plugin is pending, so its commands are added once
            if self._cli_snapshot is None:
                self._cli_snapshot = (list(app.registered_commands), list(app.registered_groups))
            plugin.register_commands(app=app)
        self.pending.append((plugin, name))
        return name

    def cleanup(self) -> None:
        for pm, name in self._live:
            pm.unregister(name)
        if self._cli_snapshot is not None:
            from oxios.cli import app

            app.registered_commands[:], app.registered_groups[:] = self._cli_snapshot


@pytest.fixture
def oxios_register(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Register a plugin for this test only: ``oxios_register(my_plugin)`` (see :class:`PluginRegistrar`)."""
    registrar = PluginRegistrar(monkeypatch)
    yield registrar
    registrar.cleanup()


def web_client(kernel: Any, **client_kwargs: Any) -> Any:
    """An ``httpx.AsyncClient`` talking ASGI to the web plugin's app for ``kernel``.

    Use it as ``async with web_client(kernel) as client: await client.get("/api/health")``.
    Skips the test when oxios-plugin-web is not installed.
    """
    try:
        from oxios_plugin_web import create_app
    except ImportError:
        pytest.skip("oxios-plugin-web is not installed (pip install oxios-plugin-web)")
    import httpx

    transport = httpx.ASGITransport(app=create_app(kernel))
    client_kwargs.setdefault("base_url", "http://127.0.0.1")
    return httpx.AsyncClient(transport=transport, **client_kwargs)


@pytest.fixture
def oxios_web_client() -> Callable[..., Any]:
    """``async with oxios_web_client(kernel) as client``: ASGI requests to the web plugin's app."""
    return web_client


__all__ = ["PluginRegistrar", "ScriptExhausted", "ScriptedProvider", "ScriptedTurn", "make_kernel_factory", "web_client"]
