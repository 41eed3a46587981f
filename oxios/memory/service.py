"""The "memory" service: the kernel's one door to memory.

It picks the backend and embedder through the firstresult hooks named in
``[memory]``, classifies and weighs new records, runs consolidation on a
schedule, builds the proactive-recall block, and offers one method per web
route (``page``, ``put``, ``get``, ``upsert``, ``search``, ``tiers``).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from typing import Any

import msgspec

from oxios_hookspecs import MemoryHit, MemoryRecord, Message, ModelRequest

from ..plugins import resolve
from . import decay
from .dream import Dream, DreamSettings, revert
from .kinds import KINDS, base_importance, classify, normalize_type
from .recall import TopicTracker, format_block
from .store import InvalidMemory
from .vectors import VectorIndex

log = logging.getLogger(__name__)

SEARCH_MODES = ("keyword", "semantic", "hybrid")
# Recall's similarity floor for an embedder that recommends none (it suits the hashing embedder).
DEFAULT_RECALL_MIN_SIMILARITY = 0.2
KV = "memory"


class MemoryUnavailable(RuntimeError):
    """The configured backend or embedder does not exist."""


def _type_filter(value: str | None) -> str | None:
    try:
        return normalize_type(value) if value else None
    except ValueError as err:
        raise InvalidMemory(str(err)) from None


class MemoryService:
    def __init__(self, kernel: Any, backend: Any, *, clock: decay.Clock = decay.system_clock) -> None:
        self.kernel = kernel
        self.config = kernel.config.memory
        self.backend = backend
        self.embedder = getattr(backend, "embedder", None)
        self.clock = clock
        self.topics_tracker = TopicTracker()
        self._dream_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[Any]] = []
        self._last_dream: dict[str, Any] | None = None
        params = inspect.signature(backend.search).parameters
        self._search_extras = {"tiers", "mmr", "touch", "min_similarity"} <= set(params)

    def set_clock(self, clock: decay.Clock) -> None:
        """Tests drive decay with a fake clock; the backend stamps records with the same one."""
        self.clock = clock
        if hasattr(self.backend, "clock"):
            self.backend.clock = clock

    async def start(self) -> None:
        starter = getattr(self.backend, "start", None)
        if starter is not None:
            await resolve(starter())
        for name in ("list", "search", "get", "add", "rm", "pin", "dream", "stats", "revert"):
            self.kernel.expose(f"memory.{name}", getattr(self, f"rpc_{name}"))
        self._tasks.append(asyncio.create_task(self._schedule(), name="oxios-memory-dream-schedule"))
        self._tasks.append(asyncio.create_task(self._flush_loop(), name="oxios-memory-flush"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        stopper = getattr(self.backend, "stop", None)
        if stopper is not None:
            await resolve(stopper())

    async def wait_ready(self) -> None:
        waiter = getattr(self.backend, "wait_ready", None)
        if waiter is not None:
            await waiter()

    # -- records ------------------------------------------------------------------------

    async def put(
        self,
        content: str,
        *,
        name: str = "",
        type: str | None = None,
        category: str = "",
        tier: str | None = None,
        importance: float | None = None,
        protection: float = 0.0,
        pinned: bool = False,
        session_id: str = "",
        source: str = "",
    ) -> MemoryRecord:
        """Save a memory; its type is inferred from the content when not given."""
        if not isinstance(content, str) or not content.strip():
            raise InvalidMemory("memory content is empty")
        try:
            kind = normalize_type(type) or classify(content)
        except ValueError as err:
            raise InvalidMemory(str(err)) from None
        now = self.clock()
        record = MemoryRecord(
            content=content,
            name=name or "",
            type=kind,
            category=category or "",
            tier=tier or ("hot" if pinned else "warm"),  # type: ignore[arg-type]
            importance=base_importance(kind) if importance is None else float(importance),
            protection=float(protection),
            pinned=bool(pinned),
            created=now,
            accessed=now,
            session_ids=[session_id] if session_id else [],
            source=source,
        )
        await self.backend.put(record)
        self.kernel.publish("memory.saved", id=record.id, kind=record.type, tier=record.tier)
        return record

    async def upsert(
        self, name: str, *, content: str, category: str = "", type: str | None = None, **fields: Any
    ) -> MemoryRecord:
        """``PUT /api/memory/{name}``: replace the named memory's content, or create it."""
        if not name or not name.strip():
            raise InvalidMemory("memory name is empty")
        existing = await self._by_name(name)
        if existing is None:
            return await self.put(content, name=name, category=category, type=type, **fields)
        changes: dict[str, Any] = {"content": content, "category": category, **fields}
        if type is not None:
            changes["type"] = type
        return await self.update(existing.id, **changes)

    async def _by_name(self, name: str) -> MemoryRecord | None:
        finder = getattr(self.backend, "get_by_name", None)
        if finder is not None:
            return await finder(name)
        return next((r for r in await self.backend.list(limit=100_000) if r.name == name), None)

    async def get(self, id: str, *, touch: bool = True) -> MemoryRecord:
        """A memory by id (or by name); ``NotFound`` when there is none."""
        from ..kernel import NotFound

        record = await self.backend.get(id) or await self._by_name(id)
        if record is None:
            raise NotFound(f"no memory with id or name {id!r}")
        if touch and hasattr(self.backend, "touch"):
            await self.backend.touch([record.id])
        return record

    async def update(self, id: str, **fields: Any) -> MemoryRecord:
        from ..kernel import NotFound

        if "type" in fields:
            try:
                fields["type"] = normalize_type(fields["type"]) or classify(
                    fields.get("content") or (await self.get(id, touch=False)).content
                )
            except ValueError as err:
                raise InvalidMemory(str(err)) from None
        if fields.get("pinned") is True and "tier" not in fields:
            fields["tier"] = "hot"  # pinned means always in mind
        record = await self.backend.update(id, **fields)
        if record is None:
            raise NotFound(f"no memory with id {id!r}")
        self.kernel.publish("memory.updated", id=id, fields=sorted(fields))
        return record

    async def delete(self, id: str) -> bool:
        from ..kernel import NotFound

        record = await self.backend.get(id) or await self._by_name(id)
        if record is None or not await self.backend.delete(record.id):
            raise NotFound(f"no memory with id or name {id!r}")
        self.kernel.publish("memory.deleted", id=record.id)
        return True

    async def pin(self, id: str, pinned: bool = True) -> MemoryRecord:
        """Pinned memories never fade, are never pruned, and stay in the hot tier."""
        record = await self.get(id, touch=False)
        return await self.update(record.id, pinned=pinned, tier="hot" if pinned else "warm")

    async def list(
        self, *, tier: str | None = None, type: str | None = None, category: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[MemoryRecord]:
        if tier and tier not in ("hot", "warm", "cold"):
            raise InvalidMemory(f"unknown tier {tier!r}; expected hot, warm or cold")
        kwargs: dict[str, Any] = {"tier": tier, "limit": max(0, min(int(limit), 1000)), "offset": max(0, int(offset))}
        if type or category:
            kwargs.update(type=_type_filter(type), category=category)
        return await self.backend.list(**kwargs)

    async def page(
        self, *, page: int = 1, limit: int = 50, tier: str | None = None, type: str | None = None, category: str | None = None
    ) -> dict[str, Any]:
        """``GET /api/memory``: ``{"items", "total", "page", "limit"}``."""
        page, limit = max(1, int(page)), max(1, min(int(limit), 1000))
        items = await self.list(tier=tier, type=type, category=category, limit=limit, offset=(page - 1) * limit)
        counter = getattr(self.backend, "count", None)
        total = counter(tier=tier, type=_type_filter(type), category=category) if counter else len(items)
        return {"items": items, "total": total, "page": page, "limit": limit}

    async def tiers(self, *, limit: int = 50) -> dict[str, Any]:
        """``GET /api/memory/tiers``: each tier's count and its most recent records."""
        out: dict[str, Any] = {}
        counter = getattr(self.backend, "count", None)
        for tier in ("hot", "warm", "cold"):
            items = await self.backend.list(tier=tier, limit=limit)
            out[tier] = {"count": counter(tier=tier) if counter else len(items), "items": items}
        return out

    # -- search and recall ----------------------------------------------------------------

    async def search(
        self,
        query: str,
        mode: str = "hybrid",
        k: int = 10,
        *,
        include_cold: bool = False,
        mmr: bool = False,
        touch: bool = True,
        min_similarity: float = 0.0,
    ) -> list[MemoryHit]:
        """``POST /api/memory/search`` (keyword) and ``/semantic``; hybrid for agents."""
        if not isinstance(query, str) or not query.strip():
            raise InvalidMemory("search query is empty")
        if mode not in SEARCH_MODES:
            raise InvalidMemory(f"unknown search mode {mode!r}; expected keyword, semantic or hybrid")
        if not isinstance(k, int) or k < 1:
            raise InvalidMemory("k must be a positive integer")
        if not self._search_extras:
            return await self.backend.search(query, mode, k)
        tiers = ("hot", "warm", "cold") if include_cold else ("hot", "warm")
        return await self.backend.search(
            query, mode, min(k, 200), tiers=tiers, mmr=mmr, touch=touch, min_similarity=min_similarity
        )

    async def semantic(self, query: str, k: int = 10) -> list[MemoryHit]:
        return await self.search(query, "semantic", k)

    def recall_min_similarity(self) -> float:
        """Recall's cosine floor: ``memory.recall_min_similarity``, else the embedder's own
        recommendation (cosines mean different things to different embedders), else 0.2."""
        configured = getattr(self.config, "recall_min_similarity", "auto")
        if configured != "auto":
            return float(configured)
        declared = getattr(self.embedder, "recall_min_similarity", None)
        if isinstance(declared, int | float) and not isinstance(declared, bool) and 0.0 <= declared <= 1.0:
            return float(declared)
        if declared is not None:
            log.warning(
                "embedder %r recommends an unusable recall floor %r; using %s",
                self.config.embedder,
                declared,
                DEFAULT_RECALL_MIN_SIMILARITY,
            )
        return DEFAULT_RECALL_MIN_SIMILARITY

    async def recall(self, text: str, token_budget: int | None = None, *, k: int = 8) -> str:
        """The prompt block for ``text``: hot memories, then relevant ones, within budget."""
        hot = await self.backend.list(tier="hot", limit=200)
        hits: list[MemoryHit] = []
        if text and text.strip():
            # A floor on similarity keeps embedder noise out of the prompt; keyword matches always count.
            hits = await self.search(text, "hybrid", k, mmr=True, min_similarity=self.recall_min_similarity())
        budget = self.config.recall_token_budget if token_budget is None else token_budget
        return format_block(hot, hits, self.config.hot_token_budget, budget)

    async def recall_if_shifted(self, session_id: str, text: str, token_budget: int | None = None) -> str | None:
        """The recall block at a session's first message and when its topic shifts, else ``None``."""
        if self.embedder is None or not hasattr(self.backend, "embed"):
            return await self.recall(text, token_budget)
        vector = (await self.backend.embed([text]))[0]
        if not self.topics_tracker.shifted(session_id, vector):
            return None
        return await self.recall(text, token_budget)

    def topics(self, limit: int = 50) -> list[dict[str, Any]]:
        """The topic index from the last consolidation: what memory knows about."""
        state = getattr(self.backend, "state", None)
        if state is None:
            return []
        rows = state.all("SELECT topic, count FROM memory_topics ORDER BY count DESC, topic LIMIT ?", (limit,))
        return [{"topic": r["topic"], "count": r["count"]} for r in rows]

    # -- consolidation --------------------------------------------------------------------

    def _summarizer(self) -> Any:
        providers = self.kernel.services.get("providers")
        mode = getattr(self.config, "dream_summarizer", "auto")
        if mode == "extractive" or providers is None or not providers.usable():
            return None

        async def summarize(texts: list[str]) -> str | None:
            _, model = providers.default()
            request = ModelRequest(
                model=model,
                system="Summarise these episodes from an agent's memory in at most five sentences. Keep names, dates, numbers and decisions.",
                messages=[Message.user("\n\n".join(f"- {t}" for t in texts))],
                max_tokens=400,
            )
            response = await providers.complete(request)
            return response.message.text

        return summarize

    async def dream(self, trigger: str = "manual", *, on_change: Any = None) -> dict[str, Any]:
        """Consolidate now (resumes an interrupted run). Returns the run report."""
        if not hasattr(self.backend, "state"):
            raise MemoryUnavailable(f"the {self.config.backend!r} backend does not support consolidation")
        async with self._dream_lock:
            await self.wait_ready()
            settings = DreamSettings(hot_token_budget=self.config.hot_token_budget, decay_threshold=self.config.decay_threshold)
            runner = Dream(
                self.backend,
                settings,
                clock=self.clock,
                audit=lambda: self.kernel.services.get("audit"),
                summarizer=self._summarizer(),
                on_change=on_change,
            )
            started = time.monotonic()
            report = await runner.run(trigger)
            report["duration_ms"] = int((time.monotonic() - started) * 1000)
            self.kernel.state.kv_set(KV, "last_dream", {"at": time.time(), **report})
            self.kernel.state.kv_set(KV, "sessions_since_dream", 0)
            self._last_dream = report
            self.kernel.publish("memory.dreamed", **report)
            return report

    async def revert(self, run_id: str) -> int:
        async with self._dream_lock:
            return await revert(self.backend, run_id, audit=lambda: self.kernel.services.get("audit"))

    def changes(self, run_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        where, params = ("WHERE run_id = ?", [run_id]) if run_id else ("", [])
        rows = self.backend.state.all(
            f"SELECT id, run_id, ts, op, record_id, reason, reverted FROM memory_changes {where} ORDER BY id DESC LIMIT ?",
            [*params, limit],
        )
        return [dict(r) for r in rows]

    def _dream_due(self) -> str | None:
        last = self.kernel.state.kv_get(KV, "last_dream") or {}
        sessions = int(self.kernel.state.kv_get(KV, "sessions_since_dream", 0))
        if self.config.dream_after_sessions and sessions >= self.config.dream_after_sessions:
            return f"after {sessions} sessions"
        if not last:
            # First start: the daily clock starts now rather than dreaming at once.
            self.kernel.state.kv_set(KV, "last_dream", {"at": time.time(), "run_id": None})
            return None
        if self.config.dream_interval_hours and time.time() - float(last.get("at", 0)) >= self.config.dream_interval_hours * 3600:
            return "daily"
        return None

    async def _schedule(self) -> None:
        sub = self.kernel.subscribe(types={"session.created"})
        try:
            while True:
                event = await sub.get(timeout=60)
                if event is not None:
                    n = int(self.kernel.state.kv_get(KV, "sessions_since_dream", 0)) + 1
                    self.kernel.state.kv_set(KV, "sessions_since_dream", n)
                # Only the daemon consolidates on a schedule, never a CLI command's short-lived kernel.
                trigger = self._dream_due() if getattr(self.kernel, "daemon", False) else None
                if trigger:
                    try:
                        await self.dream(trigger)
                    except Exception:
                        log.exception("scheduled memory consolidation failed; it resumes next time")
        finally:
            sub.close()

    async def _flush_loop(self) -> None:
        flush = getattr(self.backend, "flush_if_due", None) or getattr(self.backend, "flush", None)
        while flush is not None:
            await asyncio.sleep(30)
            try:
                await flush()
            except Exception:
                log.exception("memory index flush failed; SQLite still has everything")

    # -- embedders ----------------------------------------------------------------------------

    async def switch_embedder(self, name: str) -> dict[str, Any]:
        """Use another embedder: the index is re-embedded in the background (see status())."""
        embedder = await resolve(self.kernel.plugins.hook.embedder(name=name, config=self.config))
        if embedder is None:
            raise MemoryUnavailable(f"no embedder named {name!r} (is its plugin installed?)")
        backend = self.backend
        backend.embedder = self.embedder = embedder
        backend._has_corpus = all(hasattr(embedder, a) for a in ("observe", "forget", "dump", "load", "reset_corpus"))
        from .store import embedder_id

        backend.index = VectorIndex(backend.dir, embedder.dim, embedder_id(embedder), backend.index.dtype)
        backend.start_rebuild("embedder changed")
        return self.status()

    # -- status ---------------------------------------------------------------------------------

    async def stats(self) -> dict[str, Any]:
        counter = getattr(self.backend, "count", None)
        out = self.status()
        if counter is not None:
            out["by_tier"] = {t: counter(tier=t) for t in ("hot", "warm", "cold")}
            out["by_type"] = {k: counter(type=k) for k in KINDS if counter(type=k)}
        out["last_dream"] = self.kernel.state.kv_get(KV, "last_dream")
        out["sessions_since_dream"] = self.kernel.state.kv_get(KV, "sessions_since_dream", 0)
        out["topics"] = self.topics(10)
        return out

    def status(self) -> dict[str, Any]:
        describe = getattr(self.backend, "status", None)
        base = describe() if callable(describe) else {"healthy": True, "enabled": True}
        return {
            **base,
            "embedder_name": self.config.embedder,
            "backend_name": self.config.backend,
            "recall_min_similarity": self.recall_min_similarity(),
        }

    # -- RPC for the CLI (JSON in, JSON out) --------------------------------------------------

    async def rpc_list(self, tier: str | None = None, limit: int = 50, offset: int = 0, type: str | None = None) -> Any:
        return msgspec.to_builtins(await self.list(tier=tier, type=type, limit=limit, offset=offset))

    async def rpc_search(self, query: str, mode: str = "hybrid", k: int = 10, include_cold: bool = False) -> Any:
        return msgspec.to_builtins(await self.search(query, mode, k, include_cold=include_cold))

    async def rpc_get(self, id: str) -> Any:
        return msgspec.to_builtins(await self.get(id))

    async def rpc_add(self, content: str, **fields: Any) -> Any:
        return msgspec.to_builtins(await self.put(content, **fields))

    async def rpc_rm(self, id: str) -> Any:
        return await self.delete(id)

    async def rpc_pin(self, id: str, pinned: bool = True) -> Any:
        return msgspec.to_builtins(await self.pin(id, pinned))

    async def rpc_dream(self) -> Any:
        return await self.dream("cli")

    async def rpc_stats(self) -> Any:
        return await self.stats()

    async def rpc_revert(self, run_id: str) -> Any:
        return await self.revert(run_id)


async def start(kernel: Any) -> MemoryService | None:
    """SERVICES entry: ``None`` when ``memory.enabled`` is false (the facade then says not available)."""
    config = kernel.config.memory
    if not config.enabled:
        return None
    backend = await resolve(kernel.plugins.hook.memory_backend(name=config.backend, config=config, kernel=kernel))
    if backend is None:
        raise MemoryUnavailable(f"no memory backend named {config.backend!r} (memory.backend); is its plugin installed?")
    service = MemoryService(kernel, backend)
    await service.start()
    return service
