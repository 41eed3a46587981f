"""pytest fixtures for Oxios and for plugin authors (loaded as a pytest plugin).

    def test_my_tool(oxios_kernel_factory):
        async with oxios_kernel_factory(plugins=[my_plugin]) as kernel:
            ...

Fixtures: ``oxios_home`` (a temporary OXIOS_HOME with a clean environment),
``oxios_kernel_factory`` (start a kernel with extra plugins and config),
``oxios_kernel`` (a started kernel), ``oxios_cli`` (run the CLI in-process).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

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
        kernel = Kernel(load(home / "config.toml", overrides=config), home, plugins=pm)
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

    from oxios.cli import build_app
    from oxios.cli import common

    runner = CliRunner()

    def run(*args: str, input: str | None = None) -> Any:
        common.CLI_OVERRIDES.clear()
        return runner.invoke(build_app(), list(args), input=input, catch_exceptions=False)

    return run
