"""The browser plugin's hook implementations (entry point ``browser`` in group ``oxios``)."""

from __future__ import annotations

from typing import Any

from oxios_hookspecs import hookimpl


@hookimpl
def register_tools(register: Any, kernel: Any) -> None:
    from .tools import TOOLS  # imported with the kernel, not with `oxios --help`

    for fn in TOOLS:
        register(fn, tier="network")


@hookimpl
def startup(kernel: Any) -> None:
    from .engine import BrowserEngine
    from .settings import BrowserSettings

    # Chromium itself starts on first use; this only reads the settings.
    kernel.services["browser"] = BrowserEngine(kernel, BrowserSettings.from_kernel(kernel))


@hookimpl
def register_commands(app: Any) -> None:
    from .cli import browser_app

    app.add_typer(browser_app, name="browser")
