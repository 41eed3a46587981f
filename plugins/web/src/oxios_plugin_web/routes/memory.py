"""Memory: list, create, get, put-by-name, delete, keyword and semantic search, tiers."""

from __future__ import annotations

from typing import Any

from ..api import KB, PAGING, ActionResult, Call, Endpoint, Page, Param
from ..errors import ApiError
from ..schemas import Item, MemoryCreate, MemoryPut, MemorySearch, MemorySearchResult

MEMORY_BODY_LIMIT = 32 * KB


def _record_fields(body: MemoryCreate | MemoryPut) -> dict[str, Any]:
    if not body.content.strip():
        raise ApiError(422, "content: must not be empty")
    if body.importance is not None and not 0.0 <= body.importance <= 1.0:
        raise ApiError(422, "importance: must be between 0 and 1")
    fields: dict[str, Any] = {"content": body.content, "category": body.category}
    for name in ("type", "tier", "importance", "pinned"):
        value = getattr(body, name)
        if value is not None:
            fields[name] = value
    return fields


async def list_memory(call: Call) -> Any:
    return await call.call(
        "memory",
        "page",
        page=call.query["page"],
        limit=call.query["limit"],
        tier=call.query["tier"],
        category=call.query["category"],
    )


async def create_memory(call: Call) -> Any:
    body: MemoryCreate = call.body
    fields = _record_fields(body)
    return await call.call("memory", "put", fields.pop("content"), name=body.name, source="web", **fields)


async def get_memory(call: Call) -> Any:
    return await call.call("memory", "get", call.path["id"])


async def put_memory(call: Call) -> Any:
    """Create or replace the memory named ``name`` (the user guide's ``PUT /api/memory/my-note``)."""
    fields = _record_fields(call.body)
    return await call.call("memory", "upsert", call.path["id"], **fields)


async def delete_memory(call: Call) -> ActionResult:
    record = await call.call("memory", "get", call.path["id"], touch=False)
    await call.call("memory", "delete", record.id)
    return ActionResult(status="deleted", id=record.id)


async def _search(call: Call, mode: str) -> MemorySearchResult:
    body: MemorySearch = call.body
    if not body.query.strip():
        raise ApiError(422, "query: must not be empty")
    k = body.limit or body.k
    if not 1 <= k <= 100:
        raise ApiError(422, "k: must be between 1 and 100")
    hits = await call.call("memory", "search", body.query, mode=mode, k=k)
    from ..api import to_builtins

    return MemorySearchResult(query=body.query, mode=mode, hits=to_builtins(list(hits)))


async def search_keyword(call: Call) -> MemorySearchResult:
    return await _search(call, "keyword")


async def search_semantic(call: Call) -> MemorySearchResult:
    return await _search(call, "semantic")


async def search_query(call: Call) -> MemorySearchResult:
    """``GET /api/memory/search?q=...&mode=hybrid`` for the UI and curl."""
    mode = call.query["mode"]
    if mode not in ("keyword", "semantic", "hybrid"):
        raise ApiError(422, "mode: must be keyword, semantic or hybrid")
    call.body = MemorySearch(query=call.query["q"], k=call.query["k"])
    return await _search(call, mode)


async def tiers(call: Call) -> Any:
    return await call.call("memory", "tiers")


ENDPOINTS = [
    Endpoint(
        "GET",
        "/api/memory",
        list_memory,
        "List memories",
        "memory",
        response=Page[Item],
        service="memory",
        query=(*PAGING, Param("tier", str, "hot, warm or cold"), Param("category", str, "only this category")),
    ),
    Endpoint(
        "POST",
        "/api/memory",
        create_memory,
        "Create a memory",
        "memory",
        body=MemoryCreate,
        response=Item,
        status=201,
        body_limit=MEMORY_BODY_LIMIT,
        errors=(409, 413),
        service="memory",
    ),
    Endpoint(
        "GET",
        "/api/memory/search",
        search_query,
        "Search memories (query string)",
        "memory",
        response=MemorySearchResult,
        service="memory",
        query=(
            Param("q", str, "what to look for", required=True),
            Param("mode", str, "keyword, semantic or hybrid", "hybrid"),
            Param("k", int, "how many hits", 10, minimum=1, maximum=100),
        ),
    ),
    Endpoint(
        "POST",
        "/api/memory/search",
        search_keyword,
        "Keyword search (full text)",
        "memory",
        body=MemorySearch,
        response=MemorySearchResult,
        body_limit=MEMORY_BODY_LIMIT,
        service="memory",
    ),
    Endpoint(
        "POST",
        "/api/memory/semantic",
        search_semantic,
        "Semantic search (vector similarity)",
        "memory",
        body=MemorySearch,
        response=MemorySearchResult,
        body_limit=MEMORY_BODY_LIMIT,
        service="memory",
    ),
    Endpoint("GET", "/api/memory/tiers", tiers, "Memories by tier (hot, warm, cold)", "memory", response=Item, service="memory"),
    Endpoint("GET", "/api/memory/{id}", get_memory, "One memory, by id or name", "memory", response=Item, service="memory"),
    Endpoint(
        "PUT",
        "/api/memory/{id}",
        put_memory,
        "Create or replace the memory with this name",
        "memory",
        body=MemoryPut,
        response=Item,
        body_limit=MEMORY_BODY_LIMIT,
        errors=(413,),
        service="memory",
    ),
    Endpoint(
        "DELETE",
        "/api/memory/{id}",
        delete_memory,
        "Delete a memory, by id or name",
        "memory",
        response=ActionResult,
        service="memory",
    ),
]
