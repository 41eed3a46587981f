"""oxios-plugin-browser: headless system Chromium driven by playwright, behind the SSRF guard."""

from __future__ import annotations

from .settings import BrowserSettings

__all__ = ["BrowserSettings"]
