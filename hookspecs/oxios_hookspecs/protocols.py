"""The minimal shapes behind the hooks.

These are ``typing.Protocol`` classes: a plugin never subclasses anything
from Oxios, it only has to look like this. They grow with optional methods,
never by changing the ones here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol, runtime_checkable

from .types import (
    Action,
    ActionContext,
    Decision,
    MemoryHit,
    MemoryRecord,
    ModelInfo,
    ModelRequest,
    ModelResponse,
    OutgoingMessage,
    SearchMode,
    StreamEvent,
    ToolResult,
    ToolSpec,
)


@runtime_checkable
class Gateway(Protocol):
    """What a channel talks to. ``submit`` runs the message and streams the reply."""

    async def submit(self, message: Any, on_token: Callable[[str], Awaitable[None]] | None = None) -> Any: ...


@runtime_checkable
class Channel(Protocol):
    name: str
    supports_streaming: bool

    async def start(self, gateway: Gateway) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, outgoing: OutgoingMessage) -> None: ...


@runtime_checkable
class Tool(Protocol):
    spec: ToolSpec

    async def call(self, args: dict[str, Any], context: ActionContext) -> ToolResult: ...


@runtime_checkable
class Provider(Protocol):
    name: str

    def models(self) -> list[ModelInfo]: ...

    def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]: ...

    async def complete(self, request: ModelRequest) -> ModelResponse: ...


@runtime_checkable
class Embedder(Protocol):
    dim: int

    async def embed(self, texts: list[str]) -> list[list[float]]: ...


@runtime_checkable
class MemoryBackend(Protocol):
    async def put(self, record: MemoryRecord) -> MemoryRecord: ...

    async def get(self, id: str) -> MemoryRecord | None: ...

    async def update(self, id: str, **fields: Any) -> MemoryRecord | None: ...

    async def delete(self, id: str) -> bool: ...

    async def list(self, *, tier: str | None = None, limit: int = 50, offset: int = 0) -> list[MemoryRecord]: ...

    async def search(self, query: str, mode: SearchMode = "hybrid", k: int = 10) -> list[MemoryHit]: ...


@runtime_checkable
class Scheduler(Protocol):
    async def submit(self, job: Callable[[], Awaitable[Any]], priority: int = 0, *, name: str = "") -> Any: ...

    async def cancel(self, id: str) -> bool: ...

    def stats(self) -> dict[str, Any]: ...


@runtime_checkable
class Policy(Protocol):
    def check_action(self, action: Action, context: ActionContext) -> Decision | None: ...


__all__ = [
    "Channel",
    "Embedder",
    "Gateway",
    "MemoryBackend",
    "Policy",
    "Provider",
    "Scheduler",
    "Tool",
]
