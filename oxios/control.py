"""The daemon's control socket: line-delimited JSON over a 0600 Unix socket.

The CLI uses it to ask the running daemon (status, approvals, agents ...)
instead of racing it on the state store. Subsystems expose methods with
``kernel.expose(name, fn)``; nothing else is reachable.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
from pathlib import Path
from typing import Any

from .plugins import resolve

log = logging.getLogger(__name__)

MAX_LINE = 16 * 1024 * 1024


class ControlError(Exception):
    """The daemon answered with an error, or could not be reached.

    ``type`` is the class name of the daemon-side error (``ConfigError`` ...), empty when unreachable;
    ``kind`` what it means for the caller (``invalid`` input, ``not_found``, ``forbidden`` or ``error``),
    so the CLI exits the same way whether it ran a command itself or through the daemon.
    """

    def __init__(self, message: str, type: str = "", kind: str = "error") -> None:
        super().__init__(message)
        self.type = type
        self.kind = kind


def error_kind(err: BaseException) -> str:
    if isinstance(err, LookupError):
        return "not_found"
    if isinstance(err, ValueError):
        return "invalid"
    if isinstance(err, PermissionError):
        return "forbidden"
    return "error"


class ControlServer:
    def __init__(self, path: Path, methods: dict[str, Any]) -> None:
        self.path = path
        self.methods = methods
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        if self.path.exists():
            self.path.unlink()
        old = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(self._handle, path=str(self.path), limit=MAX_LINE)
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                reply = await self._dispatch(line)
                writer.write(json.dumps(reply, default=_default).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()

    async def _dispatch(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
            method = request["method"]
            params = request.get("params") or {}
        except (ValueError, KeyError, TypeError):
            return {"error": 'malformed request: expected {"method": ..., "params": {...}}'}
        fn = self.methods.get(method)
        if fn is None:
            return {"error": f"unknown method {method!r}"}
        try:
            return {"result": await resolve(fn(**params))}
        except Exception as err:
            log.warning("control method %s failed: %s", method, err)
            return {"error": str(err), "type": type(err).__name__, "kind": error_kind(err)}


def _default(value: Any) -> Any:
    import msgspec

    return msgspec.to_builtins(value)


def call(path: Path, method: str, timeout: float = 30.0, **params: Any) -> Any:
    """Call a method on the running daemon (blocking; for the CLI)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(str(path))
        sock.sendall(json.dumps({"method": method, "params": params}).encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            buf += chunk
    except OSError as err:
        raise ControlError(f"cannot reach the daemon at {path}: {err}") from None
    finally:
        sock.close()
    try:
        reply = json.loads(buf)
    except ValueError:
        raise ControlError("the daemon closed the connection without answering") from None
    if "error" in reply:
        raise ControlError(reply["error"], reply.get("type", ""), reply.get("kind", "error"))
    return reply.get("result")
