"""``[plugins.browser]`` settings, validated like every other config section."""

from __future__ import annotations

from typing import Any

import msgspec

LAUNCH_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # Keep WebRTC from opening UDP paths around the request interception.
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
)


class BrowserSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    executable: str = "/usr/bin/chromium"
    headless: bool = True
    # None: follow security.robots_txt (true by default).
    robots_txt: bool | None = None
    user_agent: str = "Mozilla/5.0 (X11; Linux x86_64) OxiosBrowser/0.1"
    robots_user_agent: str = "OxiosBrowser"
    idle_timeout_secs: float = 300.0
    max_pages: int = 8
    max_pages_per_agent: int = 4
    navigation_timeout_secs: float = 30.0
    action_timeout_secs: float = 10.0
    max_response_bytes: int = 20 * 1024 * 1024
    max_markdown_chars: int = 40_000
    js_heap_mb: int = 512
    downloads_dir: str = "downloads"
    screenshots_dir: str = "screenshots"

    @classmethod
    def from_kernel(cls, kernel: Any) -> BrowserSettings:
        raw = dict(kernel.config.plugins.get("browser", {}))
        try:
            settings = msgspec.convert(raw, cls)
        except msgspec.ValidationError as err:
            raise ValueError(f"invalid [plugins.browser] config: {err}") from None
        if settings.robots_txt is None:
            settings.robots_txt = kernel.config.security.robots_txt
        return settings

    def launch_args(self) -> list[str]:
        return [
            *LAUNCH_ARGS,
            f"--js-flags=--max-old-space-size={self.js_heap_mb}",
            f"--renderer-process-limit={max(1, self.max_pages)}",
        ]
