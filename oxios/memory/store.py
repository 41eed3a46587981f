"""The default memory backend: records in SQLite (FTS5 for BM25), vectors in usearch.

Every write commits to SQLite first; the vector index follows. Each content
change bumps a sequence number (deletes leave a tombstone with theirs); the
saved index records the sequence it includes, so on start everything after
it is replayed, and a crash between the commit and the index write costs
nothing. A missing, corrupt or foreign index is rebuilt in the background
(keyword search keeps working meanwhile), never fatal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from oxios_hookspecs import MemoryHit, MemoryRecord

from ..kernel import Conflict
from . import ranking
from .decay import Clock, system_clock
from .schema import COLUMNS, MIGRATIONS, NAMESPACE, TIERS, UPDATABLE, record_values, row_to_record
from .vectors import CORPUS_FILE, DTYPES, VectorIndex, _atomic_write

log = logging.getLogger(__name__)

MAX_CONTENT_BYTES = 32 * 1024
EXACT_BELOW = 20_000  # measured by bench/memory.py: at 10k exact search beats HNSW on 2 cores
BATCH = 512


class InvalidMemory(ValueError):
    """A record the store refuses (empty, too large, bad field); nothing was written."""


class MemoryConflict(InvalidMemory, Conflict):
    """A write that clashes with a stored record (a name already taken); nothing was written."""


class MemoryTooLarge(InvalidMemory):
    def __init__(self, size: int, limit: int) -> None:
        self.size, self.limit = size, limit
        super().__init__(f"memory content is {size} bytes; the limit is {limit}")


def embedder_id(embedder: Any) -> str:
    return getattr(embedder, "id", None) or f"{type(embedder).__module__}.{type(embedder).__qualname__}-{embedder.dim}"


def validate(record: MemoryRecord, limit: int = MAX_CONTENT_BYTES) -> None:
    if not record.content or not record.content.strip():
        raise InvalidMemory("memory content is empty")
    size = len(record.content.encode())
    if size > limit:
        raise MemoryTooLarge(size, limit)
    if record.tier not in TIERS:
        raise InvalidMemory(f"unknown tier {record.tier!r}; expected hot, warm or cold")
    for field in ("importance", "protection"):
        value = getattr(record, field)
        if not 0.0 <= value <= 1.0:
            raise InvalidMemory(f"{field} must be between 0 and 1, got {value}")


class SQLiteMemoryBackend:
    """put/get/update/delete/list/search over one SQLite database and one usearch file."""

    name = "sqlite"

    def __init__(
        self, state: Any, embedder: Any, directory: Path, *, clock: Clock = system_clock, vector_dtype: str = "f16"
    ) -> None:
        if vector_dtype not in DTYPES:
            raise InvalidMemory(
                f"unknown vector dtype {vector_dtype!r} (memory.vector_dtype); expected one of {', '.join(DTYPES)}"
            )
        self.state = state
        self.embedder = embedder
        self.dir = Path(directory)
        self.clock = clock
        self.index = VectorIndex(self.dir, embedder.dim, embedder_id(embedder), vector_dtype)
        self.index_state = "starting"
        self.progress: dict[str, Any] = {"reason": "", "done": 0, "total": 0}
        self._has_corpus = all(hasattr(embedder, a) for a in ("observe", "forget", "dump", "load", "reset_corpus"))
        self._inflight: set[int] = set()  # committed sequences not yet in the index
        self._dirty = 0
        self._needs_repair = False
        self._rebuild: asyncio.Task[None] | None = None
        self._saved_at = time.monotonic()
        self._total = 0  # records, kept in step by put/delete (IDF needs it on every search)

    # -- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        self.state.migrate(NAMESPACE, MIGRATIONS)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._total = self.count()
        why = self.index.load()
        if why == "loaded" and self._has_corpus and not self._load_corpus():
            why = "corpus statistics missing"
        if why == "loaded":
            try:
                await self._replay(self.index.watermark)
            except Exception:
                log.exception("memory index replay failed; rebuilding from SQLite")
                self.start_rebuild("replay failed")
                return
            self.index_state = "ready"
            if self._dirty:
                await self.flush()
        elif self.count() == 0:
            self.index.reset()  # nothing to rebuild from: start empty, ready at once
            self.index_state = "ready"
        else:
            self.start_rebuild(why)

    async def stop(self) -> None:
        if self._rebuild is not None and not self._rebuild.done():
            self._rebuild.cancel()
            try:
                await self._rebuild
            except (asyncio.CancelledError, Exception):
                pass
        else:
            await self.flush()

    async def wait_ready(self) -> None:
        """Wait for a background rebuild (tests, benchmarks and `oxios memory` use it)."""
        if self._rebuild is not None:
            await asyncio.shield(self._rebuild)

    def _load_corpus(self) -> bool:
        path = self.dir / CORPUS_FILE
        try:
            self.embedder.load(path.read_bytes())
            return True
        except Exception as err:  # missing, truncated, not a zip, another dimension: rebuild
            log.info("memory corpus statistics unusable (%s)", err)
            return False

    async def flush(self) -> None:
        """Save the index and corpus statistics, stamped with the sequence they include."""
        if self.index_state != "ready" or (self._dirty == 0 and self.index.watermark == self._watermark()):
            return
        watermark = self._watermark()
        self._dirty = 0
        if self._has_corpus:
            data = self.embedder.dump()
            await asyncio.to_thread(_atomic_write, self.dir / CORPUS_FILE, data)
        await asyncio.to_thread(self.index.save, watermark)
        self._saved_at = time.monotonic()

    async def flush_if_due(self) -> None:
        """The periodic save: after 1% of the index changed, or every 10 minutes when dirty
        (a large index is expensive to write; replay covers what is not saved yet)."""
        due = self._dirty >= max(1, len(self.index) // 100) or time.monotonic() - self._saved_at >= 600
        if due:
            await self.flush()

    def _seq(self) -> int:
        row = self.state.one("SELECT seq FROM memory_counter WHERE id = 1")
        return int(row["seq"]) if row else 0

    def _watermark(self) -> int:
        return min(self._inflight) - 1 if self._inflight else self._seq()

    # -- vectors ----------------------------------------------------------------------

    async def embed(self, texts: list[str]) -> np.ndarray:
        fn = getattr(self.embedder, "embed_array", None)
        if fn is not None:
            return await asyncio.to_thread(fn, texts)
        arr = np.asarray(await self.embedder.embed(texts), dtype=np.float32).reshape(len(texts), self.embedder.dim)
        norms = np.linalg.norm(arr, axis=1, keepdims=True)
        return arr / np.where(norms > 0, norms, 1.0)

    async def _index(self, keys: list[int], texts: list[str], seqs: Sequence[int], *, observe: bool = False) -> None:
        """Bring the index up to date after a commit; a failure is repaired later, never lost."""
        try:
            if observe:  # new texts: count them into the corpus statistics on the same pass
                vectors = await asyncio.to_thread(self.embedder.observe_and_embed, texts)
                await asyncio.to_thread(self.index.upsert, np.asarray(keys, dtype=np.uint64), vectors)
                self._dirty += len(keys)
            elif self.index_state == "ready":
                vectors = await self.embed(texts)
                await asyncio.to_thread(self.index.upsert, np.asarray(keys, dtype=np.uint64), vectors)
                self._dirty += len(keys)
            self._inflight.difference_update(seqs)
        except Exception:
            log.exception("memory index update failed; it will be repaired from SQLite")
            self._needs_repair = True

    async def _replay(self, watermark: int) -> int:
        """Re-index records changed after ``watermark`` and drop tombstoned keys (idempotent)."""
        done = 0
        last_key = 0
        while True:
            rows = self.state.all(
                "SELECT key, content FROM memory_records WHERE seq > ? AND key > ? ORDER BY key LIMIT ?",
                (watermark, last_key, BATCH),
            )
            if not rows:
                break
            texts = [r["content"] for r in rows]
            if self._has_corpus:
                await asyncio.to_thread(self.embedder.observe, texts)
            vectors = await self.embed(texts)
            await asyncio.to_thread(self.index.upsert, np.asarray([r["key"] for r in rows], dtype=np.uint64), vectors)
            done += len(rows)
            last_key = rows[-1]["key"]
        dead = [r["key"] for r in self.state.all("SELECT key FROM memory_tombstones WHERE seq > ?", (watermark,))]
        self.index.remove(dead)
        self._dirty += done + len(dead)
        if done or dead:
            log.info("memory index: replayed %d changes and %d deletions after sequence %d", done, len(dead), watermark)
        return done + len(dead)

    async def repair(self) -> None:
        """Replay everything after the last saved index (after a failed index write)."""
        if self._needs_repair and self.index_state == "ready":
            self._needs_repair = False
            await self._replay(self.index.watermark)
            self._inflight.clear()

    def start_rebuild(self, reason: str) -> None:
        """Rebuild the vector index from SQLite in the background (keyword search still works).
        A rebuild already running is cancelled: the new one starts from the current embedder."""
        previous = self._rebuild if self._rebuild is not None and not self._rebuild.done() else None
        if previous is not None:
            previous.cancel()
        log.log(logging.WARNING if self.count() else logging.DEBUG, "memory index: rebuilding from SQLite (%s)", reason)
        self.index_state = "rebuilding"
        self.progress = {"reason": reason, "done": 0, "total": self.count()}
        self._rebuild = asyncio.create_task(self._rebuild_index(reason, previous), name="oxios-memory-rebuild")

    async def _rebuild_index(self, reason: str, previous: asyncio.Task[None] | None = None) -> None:
        if previous is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await previous
        try:
            await self._build_fresh_index(reason)
        except asyncio.CancelledError:
            raise
        except Exception as err:  # never fatal: keyword search keeps working, status says why
            log.exception("memory index rebuild failed")
            self.index_state = "failed"
            self.progress["error"] = f"{type(err).__name__}: {err}"

    async def _build_fresh_index(self, reason: str) -> None:
        start_seq = self._seq()
        total = self.count()
        self.progress["total"] = total
        fresh = VectorIndex(self.dir, self.embedder.dim, self.index.embedder_id, self.index.dtype)
        if self._has_corpus:
            # IDF first: every vector in the new index is weighted by the same statistics.
            self.embedder.reset_corpus()
            async for rows in self._batches():
                await asyncio.to_thread(self.embedder.observe, [r["content"] for r in rows])
        async for rows in self._batches():
            vectors = await self.embed([r["content"] for r in rows])
            await asyncio.to_thread(fresh.upsert, np.asarray([r["key"] for r in rows], dtype=np.uint64), vectors)
            self.progress["done"] += len(rows)
        fresh.watermark = start_seq
        self.index.replace_with(fresh)
        self.index_state = "ready"
        self._inflight.clear()
        await self._replay(start_seq)  # writes that landed while we were building
        self._dirty += 1
        await self.flush()
        log.info("memory index: rebuilt %d records (%s)", total, reason)

    async def _batches(self) -> Any:
        last_key = 0
        while True:
            rows = self.state.all(
                "SELECT key, content FROM memory_records WHERE key > ? ORDER BY key LIMIT ?", (last_key, BATCH * 4)
            )
            if not rows:
                return
            yield rows
            last_key = rows[-1]["key"]

    # -- writes -------------------------------------------------------------------------

    def _next_seqs(self, conn: sqlite3.Connection, n: int) -> range:
        row = conn.execute("UPDATE memory_counter SET seq = seq + ? WHERE id = 1 RETURNING seq", (n,)).fetchone()
        end = int(row[0])
        return range(end - n + 1, end + 1)

    async def put(self, record: MemoryRecord) -> MemoryRecord:
        return (await self.put_many([record]))[0]

    async def put_many(self, records: list[MemoryRecord]) -> list[MemoryRecord]:
        for r in records:
            validate(r)
        keys: list[int] = []
        try:
            with self.state.transaction() as conn:
                seqs = self._next_seqs(conn, len(records))
                for record, seq in zip(records, seqs, strict=True):
                    values = record_values(record)
                    values.update(updated=self.clock(), seq=seq)
                    cols = ", ".join(values)
                    cur = conn.execute(
                        f"INSERT INTO memory_records({cols}) VALUES ({', '.join('?' * len(values))})", list(values.values())
                    )
                    keys.append(int(cur.lastrowid or 0))
        except sqlite3.IntegrityError as err:
            raise MemoryConflict(_integrity_message(err)) from None
        self._total += len(records)
        self._inflight.update(seqs)
        texts = [r.content for r in records]
        if self._has_corpus and self.index_state == "ready" and hasattr(self.embedder, "observe_and_embed"):
            await self._index(keys, texts, seqs, observe=True)
        else:
            if self._has_corpus:
                await asyncio.to_thread(self.embedder.observe, texts)
            await self._index(keys, texts, seqs)
        return records

    async def update(self, id: str, **fields: Any) -> MemoryRecord | None:
        unknown = set(fields) - UPDATABLE
        if unknown:
            raise InvalidMemory(f"cannot update {', '.join(sorted(unknown))}; updatable: {', '.join(sorted(UPDATABLE))}")
        row = self.state.one(f"SELECT {COLUMNS} FROM memory_records WHERE id = ?", (id,))
        if row is None:
            return None
        old = row_to_record(row)
        try:
            new = msgspec.convert(msgspec.to_builtins(msgspec.structs.replace(old, **fields)), MemoryRecord)
        except (msgspec.ValidationError, TypeError) as err:
            raise InvalidMemory(str(err)) from None
        validate(new)
        changed = new.content != old.content
        values = record_values(new)
        values.pop("id")
        try:
            with self.state.transaction() as conn:
                seq = self._next_seqs(conn, 1) if changed else range(0)
                sets = ", ".join(f"{c} = ?" for c in values)
                extra = ", seq = ?" if changed else ""
                conn.execute(
                    f"UPDATE memory_records SET {sets}, updated = ?{extra} WHERE id = ?",
                    [*values.values(), self.clock(), *seq, id],
                )
        except sqlite3.IntegrityError as err:
            raise MemoryConflict(_integrity_message(err)) from None
        if changed:
            self._inflight.update(seq)
            if self._has_corpus:
                self.embedder.forget([old.content])
                self.embedder.observe([new.content])
            await self._index([int(row["key"])], [new.content], seq)
        return new

    async def delete(self, id: str) -> bool:
        with self.state.transaction() as conn:
            row = conn.execute("SELECT key, content FROM memory_records WHERE id = ?", (id,)).fetchone()
            if row is None:
                return False
            conn.execute("DELETE FROM memory_records WHERE key = ?", (row["key"],))
            seq = self._next_seqs(conn, 1)[0]
            conn.execute("INSERT OR REPLACE INTO memory_tombstones(key, seq) VALUES (?, ?)", (row["key"], seq))
        self._total = max(0, self._total - 1)
        if self._has_corpus:
            self.embedder.forget([row["content"]])
        try:
            self.index.remove([int(row["key"])])
            self._dirty += 1
        except Exception:
            log.exception("memory index removal failed; it will be repaired from SQLite")
            self._needs_repair = True
        return True

    async def touch(self, ids: list[str]) -> None:
        """Record an access (it slows forgetting)."""
        if ids:
            marks = ",".join("?" * len(ids))
            self.state.execute(
                f"UPDATE memory_records SET accessed = ?, access_count = access_count + 1 WHERE id IN ({marks})",
                [self.clock(), *ids],
            )

    # -- reads ----------------------------------------------------------------------------

    async def get(self, id: str) -> MemoryRecord | None:
        row = self.state.one(f"SELECT {COLUMNS} FROM memory_records WHERE id = ?", (id,))
        return row_to_record(row) if row else None

    async def get_by_name(self, name: str) -> MemoryRecord | None:
        row = self.state.one(f"SELECT {COLUMNS} FROM memory_records WHERE name = ? AND name != ''", (name,))
        return row_to_record(row) if row else None

    def _where(self, tier: str | None, type: str | None, category: str | None) -> tuple[str, list[Any]]:
        clauses, params = [], []
        for col, value in (("tier", tier), ("type", type), ("category", category)):
            if value:
                clauses.append(f"{col} = ?")
                params.append(value)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params

    async def list(
        self, *, tier: str | None = None, limit: int = 50, offset: int = 0, type: str | None = None, category: str | None = None
    ) -> list[MemoryRecord]:
        where, params = self._where(tier, type, category)
        rows = self.state.all(
            f"SELECT {COLUMNS} FROM memory_records{where} ORDER BY updated DESC, key DESC LIMIT ? OFFSET ?",
            [*params, max(0, limit), max(0, offset)],
        )
        return [row_to_record(r) for r in rows]

    def count(self, *, tier: str | None = None, type: str | None = None, category: str | None = None) -> int:
        where, params = self._where(tier, type, category)
        return int(self.state.one(f"SELECT COUNT(*) AS n FROM memory_records{where}", params)["n"])

    def rows_by_key(self, keys: list[int]) -> dict[int, tuple[MemoryRecord, int]]:
        out: dict[int, tuple[MemoryRecord, int]] = {}
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            rows = self.state.all(f"SELECT {COLUMNS} FROM memory_records WHERE key IN ({','.join('?' * len(chunk))})", chunk)
            out.update({int(r["key"]): (row_to_record(r), int(r["key"])) for r in rows})
        return out

    def key_of(self, id: str) -> int | None:
        row = self.state.one("SELECT key FROM memory_records WHERE id = ?", (id,))
        return int(row["key"]) if row else None

    # -- search ----------------------------------------------------------------------------

    def doc_counts(self, words: list[str]) -> dict[str, float]:
        """How many memories hold each word. The hashing embedder keeps these counts (by stem)
        anyway; otherwise FTS5 counts them, capped just above the share from which a word
        counts as common (past it the exact count changes neither pruning nor weights much)."""
        fraction = getattr(self.embedder, "doc_fraction", None)
        if fraction is not None and getattr(self.embedder, "n_docs", 0) > 0:
            return {w: fraction(w) * self._total for w in words}
        cap = int(self._total * ranking.COMMON_ABOVE) + 1
        return {
            w: float(
                self.state.one(
                    "SELECT count(*) AS n FROM (SELECT 1 FROM memory_fts WHERE memory_fts MATCH ? LIMIT ?)",
                    (ranking.word_match(w), cap),
                )["n"]
            )
            for w in words
        }

    def keyword_candidates(
        self, query: str, n: int, tiers: Sequence[str], counts: dict[str, float] | None = None
    ) -> list[tuple[int, float]]:
        # Dropping very common words only pays (and is only safe) on a large corpus.
        share = None
        if self._total >= ranking.PRUNE_COMMON_FROM:
            held = counts if counts is not None else self.doc_counts(ranking.query_words(query))

            def share(word: str) -> float:
                return held.get(word, 0.0) / self._total

        expr = ranking.fts_query(query, share)
        if not expr:
            return []
        marks = ",".join("?" * len(tiers))
        rows = self.state.all(
            "SELECT r.key AS key, bm25(memory_fts, 1.0, 0.5, 0.5) AS s FROM memory_fts"
            f" JOIN memory_records r ON r.key = memory_fts.rowid WHERE memory_fts MATCH ? AND r.tier IN ({marks})"
            " ORDER BY s LIMIT ?",
            [expr, *tiers, n],
        )
        return [(int(r["key"]), -float(r["s"])) for r in rows]

    async def query_vector(self, query: str) -> np.ndarray | None:
        """The query's vector, or None while the index cannot answer."""
        if self.index_state != "ready":
            return None
        return (await self.embed([query]))[0]

    async def vector_candidates(self, vector: np.ndarray | None, n: int, *, exact: bool = False) -> list[tuple[int, float]]:
        if vector is None or self.index_state != "ready":
            return []
        # Below EXACT_BELOW vectors a brute-force scan is both faster than HNSW and exact.
        exact = exact or len(self.index) < EXACT_BELOW
        found = await asyncio.to_thread(self.index.search, vector, n, exact=exact)
        return [(key, cos) for key, cos in found if cos > 0.0]  # at or below zero: no similarity at all

    async def _gather_evidence(
        self,
        candidates: dict[int, ranking.Candidate],
        records: dict[int, tuple[MemoryRecord, int]],
        query: str,
        query_vector: np.ndarray | None,
        counts: dict[str, float],
    ) -> None:
        """What confidence fusion needs: each keyword hit's coverage of the query, and
        every candidate's cosine in units of a typical memory's."""
        terms = ranking.QueryTerms.build(ranking.query_words(query), counts, max(self._total, 1))
        for key, c in candidates.items():
            if c.keyword_rank is not None and key in records:
                c.matched = ranking.matched_terms(query, ranking.searchable_text(records[key][0]))
                c.coverage = terms.coverage(c.matched)
        if query_vector is None:
            return
        missing = [key for key, c in candidates.items() if c.cosine is None]

        def read_index() -> tuple[dict[int, float], tuple[float, float]]:
            return self.index.cosines(query_vector, missing), self.index.background(query_vector)

        # In a thread: the index lock may be held by a batch being added.
        cosines, (mean, spread) = await asyncio.to_thread(read_index)
        for key, cos in cosines.items():
            candidates[key].cosine = cos
        for c in candidates.values():
            if c.cosine is not None:
                c.sigmas = (c.cosine - mean) / spread

    async def search(
        self,
        query: str,
        mode: str = "hybrid",
        k: int = 10,
        *,
        tiers: Sequence[str] = ("hot", "warm"),
        mmr: bool = False,
        weighting: bool | None = None,
        touch: bool = False,
        exact: bool = False,
        min_similarity: float = 0.0,
        fusion: str = "confidence",
    ) -> list[MemoryHit]:
        """``fusion="rrf"`` (reciprocal rank fusion) is the benchmarks' baseline for hybrid mode."""
        if mode not in ("keyword", "semantic", "hybrid"):
            raise InvalidMemory(f"unknown search mode {mode!r}; expected keyword, semantic or hybrid")
        if fusion not in ("confidence", "rrf"):
            raise InvalidMemory(f"unknown fusion {fusion!r}; expected confidence or rrf")
        k = max(1, min(int(k), 200))
        await self.repair()
        n = max(k * 4, 50)
        confident = mode == "hybrid" and fusion == "confidence"
        counts = self.doc_counts(ranking.query_words(query)) if confident else None
        keyword = self.keyword_candidates(query, n, tiers, counts) if mode != "semantic" else []
        # Over-fetch vectors: tier filtering happens after the index answers.
        query_vector = await self.query_vector(query) if mode != "keyword" else None
        vector = await self.vector_candidates(query_vector, n * 2, exact=exact)
        vector = [(key, cos) for key, cos in vector if cos >= min_similarity]
        candidates = ranking.collect(keyword, vector)
        records = self.rows_by_key(list(candidates))
        if mode == "keyword":
            for c in candidates.values():
                c.score = c.keyword_score
        elif mode == "semantic":
            for c in candidates.values():
                c.score = c.cosine or 0.0
        elif confident:
            await self._gather_evidence(candidates, records, query, query_vector, counts or {})
            ranking.fuse(candidates.values(), min_similarity)
        else:
            ranking.fuse_rrf(candidates.values())
        now = self.clock()
        pool = []
        for key, c in candidates.items():
            found = records.get(key)
            if found is None or found[0].tier not in tiers:
                continue
            if weighting if weighting is not None else mode == "hybrid":
                c.score *= ranking.boost(found[0], now)
            pool.append(c)
        pool.sort(key=lambda c: c.score, reverse=True)
        if mode != "keyword" and self.index_state != "ready":
            note = f"vector index {self.index_state} ({self.progress['done']}/{self.progress['total']}): keyword only"
            for c in pool:
                c.notes.append(note)
        if mmr and len(pool) > k:
            pool = pool[: k * 3]
            vectors = await self.embed([records[c.key][0].content for c in pool])
            chosen = ranking.mmr(pool, {c.key: vectors[i] for i, c in enumerate(pool)}, k)
        else:
            chosen = pool[:k]
        hits = [
            MemoryHit(record=records[c.key][0], score=round(c.score, 6), why=ranking.explain(c, query, records[c.key][0], mode))
            for c in chosen
        ]
        if touch:
            await self.touch([h.record.id for h in hits])
        return hits

    def status(self) -> dict[str, Any]:
        return {
            "healthy": True,
            "enabled": True,
            "backend": self.name,
            "embedder": self.index.embedder_id,
            "vector_dtype": self.index.dtype,
            "total_entries": self.count(),
            "index_size": len(self.index),
            "index_state": self.index_state,
            "index_progress": dict(self.progress) if self.index_state != "ready" else None,
        }


def _integrity_message(err: sqlite3.IntegrityError) -> str:
    if "name" in str(err):
        return "a memory with that name already exists (names are unique; update it or use another name)"
    return f"conflicting memory: {err}"
