"""The web channel plugin: serves :func:`create_app` with uvicorn inside the daemon.

``register_channels`` adds a channel named ``web``; the kernel starts it
with the gateway, and it listens on ``gateway.host:gateway.port``
(default 127.0.0.1:4200) in the daemon's own event loop.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

from oxios_hookspecs import OutgoingMessage, hookimpl

log = logging.getLogger("oxios.web")


class WebChannel:
    """The ``web`` channel: a uvicorn server task serving the REST API, SSE, WebSocket and UI."""

    name = "web"
    supports_streaming = True

    def __init__(self, kernel: Any, *, host: str | None = None, port: int | None = None) -> None:
        self.kernel = kernel
        self.host = host or kernel.config.gateway.host
        self.port = kernel.config.gateway.port if port is None else port
        self.app: Any = None
        self.server: Any = None
        self._task: asyncio.Task[None] | None = None

    async def start(self, gateway: Any) -> None:
        import uvicorn

        from .app import create_app
        from .settings import load_settings

        settings = load_settings(self.kernel.config)
        self.app = create_app(self.kernel)
        config = uvicorn.Config(
            self.app,
            host=self.host,
            port=self.port,
            log_config=None,  # the daemon's logging (redacting, rotated) stays in charge
            access_log=False,  # access lines would carry ?token= query strings
            lifespan="on",
            timeout_graceful_shutdown=int(settings.shutdown_timeout_secs) or 1,
            ws_max_size=256 * 1024,
        )
        sock = self._bind()
        self.server = uvicorn.Server(config)
        self.server.install_signal_handlers = lambda: None  # type: ignore[method-assign]  # the daemon owns signals
        self._task = asyncio.create_task(self._serve(sock), name="oxios-web")
        # Wait until it listens (or failed: port taken), so start() reports the truth.
        while not self.server.started:
            if self._task.done():
                error = self._task.exception()
                raise OSError(f"web server could not listen on {self.host}:{self.port}: {error or 'see the log'}")
            await asyncio.sleep(0.02)
        sockets = [s for server in self.server.servers for s in server.sockets]
        if sockets:
            self.port = sockets[0].getsockname()[1]
        log.info("web UI and API on http://%s:%s", self.host, self.port)

    def _bind(self) -> socket.socket:
        """Bind here, not in uvicorn: uvicorn answers a taken port with sys.exit, which would end the daemon."""
        family, kind, proto, _, address = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as err:
            sock.close()
            raise OSError(f"web server cannot listen on {self.host}:{self.port}: {err.strerror or err}") from None
        sock.set_inheritable(True)
        return sock

    async def _serve(self, sock: socket.socket) -> None:
        try:
            await self.server.serve(sockets=[sock])
        except SystemExit as exc:  # uvicorn's way to report a failed startup; never let it reach the daemon
            raise RuntimeError(f"the web server stopped during startup (exit code {exc.code})") from None
        finally:
            sock.close()

    async def stop(self) -> None:
        if self.server is None or self._task is None:
            return
        self.app.state.event_streams.close_all()
        self.server.should_exit = True
        try:
            await asyncio.wait_for(self._task, timeout=10)
        except (TimeoutError, asyncio.CancelledError):
            self._task.cancel()
        self._task = None

    async def send(self, outgoing: OutgoingMessage) -> None:
        """Proactive messages (cron results ...) reach browsers as an SSE event."""
        self.kernel.publish(
            "channel.message", channel="web", session_id=outgoing.session_id, chat_id=outgoing.chat_id, message=outgoing.content
        )

    def status(self) -> dict[str, Any]:
        running = bool(self.server is not None and self.server.started and self._task and not self._task.done())
        return {"state": "running" if running else "stopped", "running": running, "url": f"http://{self.host}:{self.port}"}


@hookimpl
def register_channels(register: Any, kernel: Any) -> None:
    register(WebChannel(kernel))
