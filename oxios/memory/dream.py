"""Consolidation ("dream"): merge, re-tier, summarise, prune, index topics.

Phases run in order and each is idempotent; the run row records the phase and
a cursor (the last record key done), so an interrupted run resumes where it
stopped. Every change to a record is written to ``memory_changes`` with the
record before and after (and appended to the audit chain when it exists), so
a run can be reverted change by change.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
import numpy as np

from oxios_hookspecs import MemoryRecord

from . import decay
from .embedder import HashingEmbedder, feature_hash, tokenize
from .schema import COLUMNS, restore, row_to_record, snapshot

log = logging.getLogger(__name__)

PHASES = ("merge", "summarize", "tiers", "prune", "topics", "done")  # summarize before episodes decay into cold
EPISODIC = ("episode", "conversation", "session")
_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")

Summarizer = Callable[[list[str]], Awaitable[str | None]]


@dataclass
class DreamSettings:
    hot_token_budget: int = 3000
    decay_threshold: float = 0.05
    merge_similarity: float = 0.9
    merge_overlap: float = 0.6
    summarize_after_days: float = 7.0
    summarize_min_group: int = 3


@dataclass
class DreamRun:
    id: str
    trigger: str
    phase: str
    cursor: int = 0
    stats: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    resumed: bool = False


def _word_set(text: str) -> set[str]:
    return set(tokenize(text))


def near_duplicate(a: str, b: str, overlap: float) -> bool:
    """A second guard after cosine: the words must mostly agree and every number must match,
    so "server A is 10.0.0.1" never swallows "server B is 10.0.0.2"."""
    if sorted(_NUMBER.findall(a)) != sorted(_NUMBER.findall(b)):
        return False
    wa, wb = _word_set(a), _word_set(b)
    if not wa or not wb:
        return a.strip().lower() == b.strip().lower()
    return len(wa & wb) / len(wa | wb) >= overlap


def extractive_summary(texts: list[str], limit_chars: int = 700) -> str:
    """The sentences that carry the group's most frequent content words, in original order."""
    sentences = [s.strip() for t in texts for s in _SENTENCE.split(t) if s.strip()]
    freq = Counter(w for s in sentences for w in set(tokenize(s)))
    scored = sorted(
        range(len(sentences)),
        key=lambda i: -sum(freq[w] for w in set(tokenize(sentences[i]))) / (1 + len(tokenize(sentences[i])) ** 0.5),
    )
    chosen: list[int] = []
    used = 0
    seen: set[str] = set()
    most = min(6, max(2, round(len(sentences) * 0.4)))  # a summary, not a copy
    for i in scored:
        key = sentences[i].lower()
        if key in seen:
            continue
        if len(chosen) >= most:
            break
        if used + len(sentences[i]) > limit_chars and chosen:
            break
        chosen.append(i)
        seen.add(key)
        used += len(sentences[i]) + 1
    return " ".join(sentences[i] for i in sorted(chosen))


class Dream:
    """One consolidation pass over a :class:`~oxios.memory.store.SQLiteMemoryBackend`."""

    def __init__(
        self,
        backend: Any,
        settings: DreamSettings,
        *,
        clock: decay.Clock = decay.system_clock,
        audit: Callable[[], Any] = lambda: None,
        summarizer: Summarizer | None = None,
        on_change: Callable[[str], None] | None = None,
    ) -> None:
        self.backend = backend
        self.state = backend.state
        self.settings = settings
        self.clock = clock
        self.audit = audit
        self.summarizer = summarizer
        self.on_change = on_change  # tests use it to interrupt a run mid-phase

    # -- run bookkeeping ------------------------------------------------------------

    def _open_run(self, trigger: str) -> DreamRun:
        row = self.state.one("SELECT * FROM memory_dream_runs WHERE finished IS NULL ORDER BY started DESC LIMIT 1")
        if row is not None:
            stats = defaultdict(int, msgspec.json.decode(row["stats"]))
            return DreamRun(row["id"], row["trigger"], row["phase"], int(row["cursor"]), stats, resumed=True)
        run = DreamRun(uuid.uuid4().hex[:12], trigger, PHASES[0])
        self.state.execute(
            "INSERT INTO memory_dream_runs(id, trigger, started, phase, cursor, stats) VALUES (?, ?, ?, ?, 0, '{}')",
            (run.id, trigger, time.time(), run.phase),
        )
        return run

    def _checkpoint(self, run: DreamRun, *, finished: bool = False) -> None:
        self.state.execute(
            "UPDATE memory_dream_runs SET phase = ?, cursor = ?, stats = ?, finished = ? WHERE id = ?",
            (run.phase, run.cursor, msgspec.json.encode(dict(run.stats)).decode(), time.time() if finished else None, run.id),
        )

    async def _change(self, run: DreamRun, op: str, before: MemoryRecord | None, after: MemoryRecord | None, reason: str) -> None:
        record_id = (after or before).id  # type: ignore[union-attr]
        cur = self.state.execute(
            "INSERT INTO memory_changes(run_id, ts, op, record_id, before, after, reason) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                run.id,
                time.time(),
                op,
                record_id,
                snapshot(before) if before else None,
                snapshot(after) if after else None,
                reason,
            ),
        )
        run.stats[op] += 1
        audit = self.audit()
        if audit is not None:
            try:
                audit.append(
                    "memory.dream",
                    f"memory.{op}",
                    record_id,
                    True,
                    reason,
                    {"change_id": cur.lastrowid, "run_id": run.id, "before": _brief(before), "after": _brief(after)},
                )
            except Exception:
                log.exception("audit append failed for memory change %s", cur.lastrowid)
        if self.on_change is not None:
            self.on_change(op)

    # -- the run -------------------------------------------------------------------------

    async def run(self, trigger: str = "manual") -> dict[str, Any]:
        run = self._open_run(trigger)
        started = PHASES.index(run.phase)
        for phase in PHASES[started:-1]:
            run.phase = phase
            self._checkpoint(run)
            await getattr(self, f"_{phase}")(run)
            run.cursor = 0
        run.phase = "done"
        self._checkpoint(run, finished=True)
        return {"run_id": run.id, "trigger": run.trigger, "resumed": run.resumed, "changes": dict(run.stats)}

    def _records_after(self, key: int, limit: int = 200) -> list[tuple[int, MemoryRecord]]:
        rows = self.state.all(f"SELECT {COLUMNS} FROM memory_records WHERE key > ? ORDER BY key LIMIT ?", (key, limit))
        return [(int(r["key"]), row_to_record(r)) for r in rows]

    async def _merge(self, run: DreamRun) -> None:
        s = self.settings
        while batch := self._records_after(run.cursor):
            vectors = await self.backend.embed([r.content for _, r in batch])
            # One batched search per batch, off the event loop (the daemon keeps answering).
            neighbours = await asyncio.to_thread(self.backend.index.search_many, vectors, 6)
            for (key, record), vector, near in zip(batch, vectors, neighbours, strict=True):
                current = await self.backend.get(record.id)
                if current is not None and np.any(vector):
                    for other_key, cos in near:
                        if other_key == key or cos < s.merge_similarity:
                            continue
                        other = self.backend.rows_by_key([other_key]).get(other_key)
                        if other is None or not near_duplicate(current.content, other[0].content, s.merge_overlap):
                            continue
                        current = await self._merge_pair(run, current, other[0]) or current
                run.cursor = key
                self._checkpoint(run)

    async def _merge_pair(self, run: DreamRun, a: MemoryRecord, b: MemoryRecord) -> MemoryRecord | None:
        if a.pinned and b.pinned:
            return None
        # Keep the pinned one, else the more important, else the older.
        keeper, dup = sorted((a, b), key=lambda r: (not r.pinned, -r.importance, r.created))
        if dup.pinned:
            return None
        merged = {
            "session_ids": list(dict.fromkeys([*keeper.session_ids, *dup.session_ids])),
            "access_count": keeper.access_count + dup.access_count,
            "importance": max(keeper.importance, dup.importance),
            "protection": max(keeper.protection, dup.protection),
            "accessed": max(keeper.accessed, dup.accessed),
        }
        if len(dup.content) > len(keeper.content) and not dup.pinned and not keeper.pinned:
            merged["content"] = dup.content  # keep the fuller wording
        after = await self.backend.update(keeper.id, **merged)
        await self._change(run, "merge", keeper, after, f"absorbed near-duplicate {dup.id}")
        if await self.backend.delete(dup.id):
            await self._change(run, "delete", dup, None, f"near-duplicate of {keeper.id}")
        return after

    async def _tiers(self, run: DreamRun) -> None:
        records = [r for _, r in self._all_records()]
        for record in records:
            protection = decay.auto_protection(record)
            if protection != record.protection:
                after = await self.backend.update(record.id, protection=protection)
                await self._change(run, "update", record, after, f"auto-protection {record.protection} -> {protection}")
                record.protection = protection
        plan = decay.plan_tiers(records, self.clock(), self.settings.hot_token_budget)
        by_id = {r.id: r for r in records}
        for record_id, (old, new) in plan.moves.items():
            after = await self.backend.update(record_id, tier=new)
            await self._change(run, "update", by_id[record_id], after, f"tier {old} -> {new}")

    def _all_records(self) -> list[tuple[int, MemoryRecord]]:
        out: list[tuple[int, MemoryRecord]] = []
        key = 0
        while batch := self._records_after(key, 2000):
            out.extend(batch)
            key = batch[-1][0]
        return out

    async def _summarize(self, run: DreamRun) -> None:
        s = self.settings
        cutoff = self.clock() - s.summarize_after_days * decay.DAY
        marks = ",".join("?" * len(EPISODIC))
        rows = self.state.all(
            f"SELECT {COLUMNS} FROM memory_records WHERE type IN ({marks}) AND created < ? AND tier != 'cold'"
            " AND pinned = 0 AND source NOT LIKE 'dream:%' ORDER BY created",
            [*EPISODIC, cutoff],
        )
        groups: dict[tuple[str, str], list[MemoryRecord]] = defaultdict(list)
        for row in rows:
            r = row_to_record(row)
            year, week, _ = datetime.fromtimestamp(r.created, UTC).isocalendar()
            groups[(f"{year}-W{week:02d}", r.category)].append(r)
        for (week, category), members in sorted(groups.items()):
            if len(members) < s.summarize_min_group:
                continue
            name = f"dream-summary-{week}-{category or 'general'}-{members[0].id[:8]}"
            summary = await self.backend.get_by_name(name)
            if summary is None:
                text = await self._summary_text([m.content for m in members])
                summary = MemoryRecord(
                    content=f"Summary of {len(members)} episodes ({week}): {text}",
                    name=name,
                    type="episode",
                    category=category,
                    importance=min(1.0, max(m.importance for m in members) + 0.1),
                    session_ids=list(dict.fromkeys(sid for m in members for sid in m.session_ids)),
                    source="dream:summary",
                    created=self.clock(),
                    accessed=self.clock(),
                )
                await self.backend.put(summary)
                await self._change(run, "create", None, summary, f"summary of {len(members)} episodes from {week}")
            for m in members:
                after = await self.backend.update(m.id, tier="cold")
                await self._change(run, "update", m, after, f"archived into summary {summary.id}")

    async def _summary_text(self, texts: list[str]) -> str:
        if self.summarizer is not None:
            try:
                text = await self.summarizer(texts)
                if text and text.strip():
                    return text.strip()
            except Exception as err:  # a model outage must not stop consolidation
                log.warning("memory summarizer failed (%s); using the extractive summary", err)
        return extractive_summary(texts)

    async def _prune(self, run: DreamRun) -> None:
        now = self.clock()
        while batch := self._records_after(run.cursor):
            for key, record in batch:
                if not decay.is_protected(record) and decay.strength(record, now) < self.settings.decay_threshold:
                    if await self.backend.delete(record.id):
                        await self._change(
                            run, "delete", record, None, f"strength {decay.strength(record, now):.3f} below threshold"
                        )
                run.cursor = key
            self._checkpoint(run)

    async def _topics(self, run: DreamRun) -> None:
        """The topic index: category and leading keywords -> records ("what do I know about")."""
        topics: dict[str, list[str]] = defaultdict(list)
        embedder = self.backend.embedder
        for _, r in self._all_records():
            names = {r.category.lower()} if r.category else set()
            words = sorted({w for w in tokenize(r.content) if len(w) > 3 and not w.isdigit()})
            if words and isinstance(embedder, HashingEmbedder):
                # Rarest words name the topic best (IDF of the word's unigram feature).
                idf = embedder.idf(np.array([feature_hash("w:" + w) for w in words]))
                names.update(words[i] for i in np.argsort(-idf, kind="stable")[:2])
            else:
                names.update(w for w, _ in Counter(words).most_common(2))
            for name in names:
                topics[name].append(r.id)
        now = time.time()
        with self.state.transaction() as conn:
            conn.execute("DELETE FROM memory_topics")
            conn.executemany(
                "INSERT INTO memory_topics(topic, count, record_ids, updated) VALUES (?, ?, ?, ?)",
                [(t, len(ids), msgspec.json.encode(ids[:50]).decode(), now) for t, ids in topics.items()],
            )
        run.stats["topics"] = len(topics)


def _brief(record: MemoryRecord | None) -> dict[str, Any] | None:
    if record is None:
        return None
    data = msgspec.to_builtins(record)
    data["content"] = record.content[:2000]
    return data


async def revert(backend: Any, run_id: str, *, audit: Callable[[], Any] = lambda: None) -> int:
    """Undo a run's changes, newest first. Returns how many were undone."""
    rows = backend.state.all("SELECT * FROM memory_changes WHERE run_id = ? AND reverted = 0 ORDER BY id DESC", (run_id,))
    undone = 0
    for row in rows:
        before = restore(row["before"]) if row["before"] else None
        if row["op"] == "create":
            await backend.delete(row["record_id"])
        elif row["op"] == "delete" and before is not None:
            if await backend.get(before.id) is None:
                await backend.put(before)
        elif before is not None:
            fields = {
                f: getattr(before, f)
                for f in (
                    "content",
                    "name",
                    "type",
                    "category",
                    "tier",
                    "importance",
                    "protection",
                    "pinned",
                    "session_ids",
                    "accessed",
                    "access_count",
                )
            }
            await backend.update(before.id, **fields)
        backend.state.execute("UPDATE memory_changes SET reverted = 1 WHERE id = ?", (row["id"],))
        undone += 1
        a = audit()
        if a is not None:
            a.append(
                "memory.dream",
                f"memory.revert.{row['op']}",
                row["record_id"],
                True,
                f"reverted change {row['id']}",
                {"run_id": run_id},
            )
    return undone
