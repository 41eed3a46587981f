"""What the browser tests share: how Chromium starts, where screenshots go, and a page watcher."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .conftest import require_binary

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# Read at import: the kernel fixtures clear OXIOS_* variables while they run.
ARTIFACTS = os.environ.get("OXIOS_TEST_ARTIFACTS", "")


def artifacts(tmp_path: Path) -> Path:
    """Screenshots go to $OXIOS_TEST_ARTIFACTS when set (to look at them), else to the test's tmp dir."""
    folder = Path(ARTIFACTS or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    """The system Chromium through Playwright (no browser download)."""
    executable = require_binary("chromium", "/usr/bin/chromium")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


class Watch:
    """A page's JavaScript errors, console errors, failed HTTP requests and confirm() questions (accepted)."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        self.failed: set[str] = set()
        self.dialogs: list[str] = []
        page.on("pageerror", lambda err: self.errors.append(f"pageerror: {err}"))
        page.on("console", self._console)
        page.on("response", self._response)
        page.on("dialog", self._dialog)

    def _console(self, msg: Any) -> None:
        # A failed request is logged as "Failed to load resource"; `failed` checks those one by one.
        if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
            self.errors.append(f"console: {msg.text}")

    def _response(self, response: Any) -> None:
        if response.status >= 400:
            self.failed.add(f"{response.request.method} {urlsplit(response.url).path} {response.status}")

    async def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        await dialog.accept()

    def check(self, *expected_failures: str) -> None:
        """No script or console error (CSP violations included); exactly these requests failed (each at least once)."""
        assert self.errors == [], self.errors
        assert self.failed == set(expected_failures), sorted(self.failed)
