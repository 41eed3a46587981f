"""Fixtures for the web plugin's tests: a kernel per module, the app in-process, a real uvicorn server."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from oxios.providers.scripted import ScriptedProvider
from oxios.testing import make_kernel_factory


def require_binary(name: str, path: str | None = None) -> str:
    """A system binary; in CI (CI=true) a missing one fails, elsewhere it skips."""
    found = path if path and os.path.exists(path) else shutil.which(name)
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is required in CI but is not installed (scripts/install.sh --dev installs it)")
        pytest.skip(f"{name} is not installed")
    return found


@contextlib.contextmanager
def clean_env(home: Path) -> Any:
    """OXIOS_* and provider keys cleared, OXIOS_HOME set, for a module's life."""
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("OXIOS_") or name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
                mp.delenv(name)
        mp.setenv("OXIOS_HOME", str(home))
        yield mp


@contextlib.asynccontextmanager
async def web_kernel(
    home: Path, provider: ScriptedProvider, config: dict[str, Any] | None = None, plugins: list[Any] = (), channels: bool = False
) -> AsyncIterator[Any]:  # type: ignore[assignment]
    merged = provider.config()
    # Plain chat: one scripted reply per message, even once the Ouroboros service routes tasks to its protocol.
    merged["orchestrator"] = {"default_mode": "chat"}
    for key, value in (config or {}).items():
        merged[key] = {**merged.get(key, {}), **value} if isinstance(value, dict) else value
    factory = make_kernel_factory(home)
    async with factory(plugins=[provider.plugin(), *plugins], config=merged, channels=channels) as kernel:
        yield kernel


@contextlib.asynccontextmanager
async def api_client(app: Any, **headers: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:4200", headers=headers) as client:
        yield client


@contextlib.asynccontextmanager
async def live_server(kernel: Any) -> AsyncIterator[str]:
    """The real web channel (uvicorn) on a free port of 127.0.0.1; yields its base URL."""
    from oxios_plugin_web.plugin import WebChannel

    channel = WebChannel(kernel, host="127.0.0.1", port=0)
    await channel.start(kernel.services.get("gateway"))
    try:
        yield f"http://127.0.0.1:{channel.port}"
    finally:
        await channel.stop()
