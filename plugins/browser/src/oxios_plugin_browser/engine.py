"""The "browser" service: one headless Chromium for the daemon's lifetime.

Launched on first use, relaunched when it has died, closed on shutdown. Each
agent gets its own browser context (cookies and storage stay apart) holding
its tabs; a session idle for ``idle_timeout_secs`` is closed. Every request
of every context is routed through :class:`NetworkGuard`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oxios.security.sandbox import PathDenied, Sandbox

from .guard import NetworkGuard
from .settings import BrowserSettings

log = logging.getLogger(__name__)


class BrowserError(Exception):
    """Something the agent asked the browser that cannot be done (limits, bad tab ...)."""


def _is_file(path: str) -> bool:
    return os.path.isfile(path)


@dataclass
class TabSession:
    owner: str
    context: Any
    pages: list[Any] = field(default_factory=list)
    current: int = 0
    last_used: float = field(default_factory=time.monotonic)
    downloads: list[str] = field(default_factory=list)

    def touch(self) -> None:
        self.last_used = time.monotonic()


class BrowserEngine:
    def __init__(self, kernel: Any, settings: BrowserSettings) -> None:
        self.kernel = kernel
        self.settings = settings
        self.workspace = Path(kernel.paths.workspace)
        self.guard = NetworkGuard(
            kernel.config.security.ssrf_allowlist,
            max_response_bytes=settings.max_response_bytes,
            timeout=settings.navigation_timeout_secs,
            user_agent=settings.user_agent,
        )
        self.sessions: dict[str, TabSession] = {}
        self.launches = 0
        self.download_failures = 0
        self._playwright: Any = None
        self._browser: Any = None
        self._lock = asyncio.Lock()
        self._reaper: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        # Chromium writes downloads here first; finished ones are moved into the workspace.
        self._partial_downloads = tempfile.mkdtemp(prefix="oxios-browser-")

    # -- lifecycle -------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._browser is not None and self._browser.is_connected()

    async def _ensure_browser(self) -> Any:
        if self.running:
            return self._browser
        if self._browser is not None:
            log.warning("browser: Chromium died; relaunching")
            self.sessions.clear()  # their contexts died with the browser
            self._browser = None
        if self._playwright is None:
            from playwright.async_api import async_playwright

            self._playwright = await async_playwright().start()
        if not _is_file(self.settings.executable):
            raise BrowserError(f"Chromium not found at {self.settings.executable} (set [plugins.browser] executable)")
        self._browser = await self._playwright.chromium.launch(
            executable_path=self.settings.executable,
            headless=self.settings.headless,
            args=self.settings.launch_args(),
            downloads_path=self._partial_downloads,
        )
        self.launches += 1
        self.kernel.publish("browser.launched", launches=self.launches, version=self._browser.version)
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.create_task(self._reap_idle(), name="oxios-browser-reaper")
        return self._browser

    async def stop(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None
        for key in list(self.sessions):
            await self.close_session(key)
        if self._browser is not None:
            try:
                await self._browser.close()
            except Exception:  # already dead
                pass
            self._browser = None
        if self._playwright is not None:
            await self._playwright.stop()
            self._playwright = None
        await self.guard.aclose()
        shutil.rmtree(self._partial_downloads, ignore_errors=True)

    def status(self) -> dict[str, Any]:
        return {
            "healthy": True,
            "detail": None,
            "running": self.running,
            "launches": self.launches,
            "sessions": len(self.sessions),
            "pages": self.page_count(),
            "blocked_requests": len(self.guard.blocked),
        }

    async def _reap_idle(self) -> None:
        interval = max(0.5, min(30.0, self.settings.idle_timeout_secs / 2))
        while True:
            await asyncio.sleep(interval)
            await self.close_idle()

    async def close_idle(self, now: float | None = None) -> int:
        """Close the sessions idle for longer than ``idle_timeout_secs``; how many were closed."""
        now = time.monotonic() if now is None else now
        closed = 0
        for key, session in list(self.sessions.items()):
            if now - session.last_used > self.settings.idle_timeout_secs:
                log.info("browser: closing idle session %s", key)
                await self.close_session(key)
                closed += 1
        return closed

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- sessions and tabs ---------------------------------------------------------------

    def page_count(self) -> int:
        return sum(len(s.pages) for s in self.sessions.values())

    async def session(self, owner: str) -> TabSession:
        async with self._lock:
            await self._ensure_browser()
            existing = self.sessions.get(owner)
            if existing is not None:
                existing.touch()
                return existing
            context = await self._browser.new_context(
                user_agent=self.settings.user_agent,
                accept_downloads=True,
                service_workers="block",  # a service worker's fetches would bypass routing
                viewport={"width": 1280, "height": 900},
            )
            context.set_default_timeout(self.settings.action_timeout_secs * 1000)
            context.set_default_navigation_timeout(self.settings.navigation_timeout_secs * 1000)

            async def route(route: Any) -> None:
                await self.guard.handle_route(route, owner)

            async def websocket(ws: Any) -> None:
                await self.guard.handle_websocket(ws, owner)

            await context.route("**/*", route)
            await context.route_web_socket(re.compile(".*"), websocket)
            session = TabSession(owner=owner, context=context)
            context.on("page", lambda page: self._adopt(session, page))
            self.sessions[owner] = session
            return session

    def _adopt(self, session: TabSession, page: Any) -> None:
        """Pages opened by the site itself (window.open) count against the limits too."""
        if page in session.pages:
            return
        if self.page_count() >= self.settings.max_pages or len(session.pages) >= self.settings.max_pages_per_agent:
            self._spawn(page.close())
            return
        self._watch(session, page)

    def _watch(self, session: TabSession, page: Any) -> None:
        session.pages.append(page)
        page.on("download", lambda download: self._spawn(self._save_download(session, download)))
        page.on("close", lambda p: session.pages.remove(p) if p in session.pages else None)

    async def new_tab(self, owner: str) -> Any:
        session = await self.session(owner)
        if self.page_count() >= self.settings.max_pages:
            raise BrowserError(f"the browser already has {self.settings.max_pages} open pages (plugins.browser.max_pages)")
        if len(session.pages) >= self.settings.max_pages_per_agent:
            raise BrowserError(f"this agent already has {self.settings.max_pages_per_agent} tabs open; close one first")
        page = await session.context.new_page()
        if page not in session.pages:
            self._watch(session, page)
        session.current = session.pages.index(page)
        return page

    async def current_page(self, owner: str, *, create: bool = True) -> Any:
        session = await self.session(owner)
        session.pages = [p for p in session.pages if not p.is_closed()]
        if not session.pages:
            if not create:
                raise BrowserError("no page is open; call browse or browser_goto first")
            return await self.new_tab(owner)
        session.current = min(session.current, len(session.pages) - 1)
        return session.pages[session.current]

    async def switch_tab(self, owner: str, index: int) -> Any:
        session = await self.session(owner)
        if not 0 <= index < len(session.pages):
            raise BrowserError(f"no tab {index}; open tabs: 0..{len(session.pages) - 1}")
        session.current = index
        return session.pages[index]

    async def close_tab(self, owner: str, index: int) -> None:
        session = await self.session(owner)
        if not 0 <= index < len(session.pages):
            raise BrowserError(f"no tab {index}")
        await session.pages[index].close()

    async def close_session(self, owner: str) -> None:
        session = self.sessions.pop(owner, None)
        if session is None:
            return
        try:
            await session.context.close()
        except Exception:  # the browser may already be gone
            pass

    async def tabs(self, owner: str) -> list[dict[str, Any]]:
        session = await self.session(owner)
        out = []
        for i, page in enumerate(session.pages):
            out.append({"index": i, "url": page.url, "title": await page.title(), "current": i == session.current})
        return out

    # -- downloads -----------------------------------------------------------------------

    async def _save_download(self, session: TabSession, download: Any) -> None:
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(download.suggested_filename or "download").name).strip("._") or "download"
        try:
            # Chromium finishes the file in our private folder; we copy it into the workspace through
            # the sandbox, so a link the model planted at the folder or the name cannot redirect it.
            source = await download.path()
            target = await asyncio.to_thread(self._place_download, Path(source), name)
        except Exception as err:
            self.download_failures += 1
            log.warning("browser: download %s refused or failed: %s", name, err)
            self.kernel.publish("browser.download_failed", owner=session.owner, name=name, error=str(err)[:300])
            return
        session.downloads.append(str(target.relative_to(self.workspace)))
        self.kernel.publish("browser.downloaded", owner=session.owner, path=str(target.relative_to(self.workspace)))

    def _place_download(self, source: Path, name: str) -> Path:
        """Copy a finished download to ``downloads_dir/name`` (``name-1`` ... when taken); never through a link."""
        sandbox = Sandbox.for_kernel(self.kernel)
        folder = self.workspace / self.settings.downloads_dir
        ok, why, real_folder = sandbox.check_write(folder)
        if not ok:
            raise PathDenied(why)
        os.makedirs(real_folder, exist_ok=True)
        stem, suffix = Path(name).stem, Path(name).suffix
        for n in range(1000):
            target = folder / (name if n == 0 else f"{stem}-{n}{suffix}")
            if os.path.lexists(target):
                continue  # taken (a link included): never replaced, never followed
            try:
                with sandbox.open(target, "xb") as out, open(source, "rb") as data:
                    shutil.copyfileobj(data, out)
            except FileExistsError:
                continue
            return target
        raise FileExistsError(f"{folder} already holds 1000 files named like {name}")
