"""Built-in memory plugin: the "sqlite" backend, the "hashing" embedder, and the memory tools.

Agents reach memory through four tools; each looks the "memory" service up
at call time, so the tools answer with a clear error when memory is off.
"""

from __future__ import annotations

from typing import Any

import msgspec

from oxios_hookspecs import ActionContext, ToolResult, hookimpl

from ..toolbox import tool


@hookimpl
def embedder(name: str, config: Any) -> Any:
    if name != "hashing":
        return None
    from ..memory.embedder import HashingEmbedder

    return HashingEmbedder(dim=getattr(config, "embedding_dim", 384))


@hookimpl
def memory_backend(name: str, config: Any, kernel: Any) -> Any:
    if name != "sqlite":
        return None
    from ..memory.service import MemoryUnavailable
    from ..memory.store import SQLiteMemoryBackend

    chosen = kernel.plugins.hook.embedder(name=config.embedder, config=config)
    if chosen is None:
        raise MemoryUnavailable(f"no embedder named {config.embedder!r} (memory.embedder); is its plugin installed?")
    return SQLiteMemoryBackend(
        kernel.state, chosen, kernel.paths.home / "memory", vector_dtype=getattr(config, "vector_dtype", "f16")
    )


def _service(context: ActionContext) -> Any:
    kernel = context.kernel
    return kernel.services.get("memory") if kernel is not None else None


_OFF = ToolResult.error("memory is not available (memory.enabled is false or the memory service failed to start)")


async def memory_search(
    query: str, mode: str = "hybrid", k: int = 5, include_cold: bool = False, context: ActionContext | None = None
) -> Any:
    """Search long-term memory. mode: "hybrid" (default; keyword + meaning), "keyword" or "semantic".
    Returns the best k memories with their id, type, content and why each matched."""
    svc = _service(context) if context else None
    if svc is None:
        return _OFF
    try:
        hits = await svc.search(query, mode, max(1, min(k, 50)), include_cold=include_cold)
    except ValueError as err:
        return ToolResult.error(str(err))
    if not hits:
        return ToolResult(content="no matching memories", data=[])
    lines = [f"{h.record.id} [{h.record.type}] {h.record.content}\n  why: {h.why}" for h in hits]
    return ToolResult(content="\n".join(lines), data=msgspec.to_builtins(hits))


@tool(tier="write")
async def memory_save(
    content: str,
    name: str = "",
    type: str = "",
    category: str = "",
    pinned: bool = False,
    context: ActionContext | None = None,
) -> Any:
    """Remember something for future sessions. type is inferred when empty (user_profile, preference,
    decision, skill, knowledge, fact, episode, session, conversation). Use pinned only for things
    that must always be in mind. Returns the new memory's id."""
    svc = _service(context) if context else None
    if svc is None:
        return _OFF
    try:
        record = await svc.put(
            content,
            name=name,
            type=type or None,
            category=category,
            pinned=pinned,
            session_id=context.session_id if context else "",
            source="agent",
        )
    except ValueError as err:
        return ToolResult.error(str(err))
    return ToolResult(content=f"saved memory {record.id} as {record.type}", data=msgspec.to_builtins(record))


@tool(tier="write")
async def memory_update(
    id: str,
    content: str | None = None,
    type: str | None = None,
    category: str | None = None,
    pinned: bool | None = None,
    context: ActionContext | None = None,
) -> Any:
    """Correct or refine a memory by id (from memory_search). Only the given fields change."""
    from ..kernel import NotFound

    svc = _service(context) if context else None
    if svc is None:
        return _OFF
    fields = {
        k: v for k, v in {"content": content, "type": type, "category": category, "pinned": pinned}.items() if v is not None
    }
    if not fields:
        return ToolResult.error("nothing to update: give content, type, category or pinned")
    try:
        record = await svc.update(id, **fields)
    except NotFound as err:
        return ToolResult.error(str(err))
    except ValueError as err:
        return ToolResult.error(str(err))
    return ToolResult(content=f"updated memory {record.id}", data=msgspec.to_builtins(record))


@tool(tier="write")
async def memory_delete(id: str, context: ActionContext | None = None) -> Any:
    """Forget a memory by id (from memory_search), e.g. when it is wrong or the user asks."""
    from ..kernel import NotFound

    svc = _service(context) if context else None
    if svc is None:
        return _OFF
    try:
        await svc.delete(id)
    except NotFound as err:
        return ToolResult.error(str(err))
    return ToolResult(content=f"deleted memory {id}")


@hookimpl
def register_tools(register: Any) -> None:
    for fn in (memory_search, memory_save, memory_update, memory_delete):
        register(fn)
