"""The "a2a" service: the A2A server on its own port, for the daemon's lifetime."""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

from .settings import A2ASettings

log = logging.getLogger(__name__)


class A2AService:
    def __init__(self, kernel: Any, settings: A2ASettings) -> None:
        self.kernel = kernel
        self.settings = settings
        self._server: Any = None
        self._task: asyncio.Task[None] | None = None
        self.port: int | None = None

    async def start(self) -> None:
        """Serve on ``host:port`` when a port is configured (port 0 means: only inside the web plugin)."""
        if not self.settings.port:
            return
        import uvicorn

        from .server import build_app

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.settings.host, self.settings.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(build_app(self.kernel, self.settings), log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="oxios-a2a-server")

    async def stop(self) -> None:
        tasks = self.kernel.services.get("a2a_tasks")
        if tasks is not None:  # first: ends the runs and their open streams, so the server can stop at once
            await tasks.stop()
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=10)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()

    def status(self) -> dict[str, Any]:
        running = self._task is not None and not self._task.done()
        return {"healthy": running or not self.settings.port, "detail": None, "port": self.port, "serving": running}
