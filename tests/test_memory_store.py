"""The sqlite memory backend: CRUD, search modes, ranking, crash repair and index rebuilds."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from memory_fixtures import QUERIES, TOPICS, FakeClock, close_backend, open_backend

from oxios.memory.store import InvalidMemory, MemoryTooLarge
from oxios.memory.vectors import INDEX_FILE, META_FILE
from oxios_hookspecs import MemoryRecord


async def test_crud_roundtrip(tmp_path: Path) -> None:
    b = await open_backend(tmp_path)
    rec = await b.put(MemoryRecord(content="The staging server is staging.example.org", name="staging", category="infra"))
    got = await b.get(rec.id)
    assert got is not None and got.content == rec.content and got.name == "staging" and got.category == "infra"
    assert (await b.get_by_name("staging")).id == rec.id  # type: ignore[union-attr]

    updated = await b.update(rec.id, content="The staging server is stage2.example.org", importance=0.9)
    assert updated is not None and updated.importance == 0.9
    assert (await b.get(rec.id)).content.startswith("The staging server is stage2")  # type: ignore[union-attr]
    hits = await b.search("stage2", "keyword", 5)
    assert [h.record.id for h in hits] == [rec.id]

    assert await b.list() and b.count() == 1
    assert await b.delete(rec.id) is True
    assert await b.get(rec.id) is None
    assert await b.delete(rec.id) is False
    assert await b.update("no-such-id", content="x") is None
    assert await b.search("stage2", "hybrid", 5) == []
    await close_backend(b)


async def test_bad_input_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    b = await open_backend(tmp_path)
    with pytest.raises(InvalidMemory, match="empty"):
        await b.put(MemoryRecord(content="   "))
    with pytest.raises(MemoryTooLarge) as err:
        await b.put(MemoryRecord(content="x" * 40_000))
    assert err.value.limit == 32 * 1024
    with pytest.raises(InvalidMemory, match="importance"):
        await b.put(MemoryRecord(content="ok", importance=3.0))
    await b.put(MemoryRecord(content="first", name="dup"))
    with pytest.raises(InvalidMemory, match="name already exists"):
        await b.put(MemoryRecord(content="second", name="dup"))
    rec = await b.put(MemoryRecord(content="third"))
    with pytest.raises(InvalidMemory, match="cannot update"):
        await b.update(rec.id, key=5)
    with pytest.raises(InvalidMemory, match="tier"):
        await b.update(rec.id, tier="lukewarm")
    with pytest.raises(InvalidMemory, match="mode"):
        await b.search("x", "fuzzy", 3)
    assert b.count() == 2
    await close_backend(b)


async def test_fts_operators_in_queries_are_not_injected(tmp_path: Path) -> None:
    b = await open_backend(tmp_path)
    await b.put(MemoryRecord(content="NEAR the OR operator AND quotes are plain words here"))
    for query in ['"', "NEAR(a b)", "content:x", "a OR", "*", "-x", "AND AND", "'; DROP TABLE memory_records; --"]:
        await b.search(query, "keyword", 5)  # must not raise an FTS5 syntax error
    assert b.count() == 1
    hits = await b.search("operator quotes", "keyword", 5)
    assert len(hits) == 1
    await close_backend(b)


async def _load_labelled(b) -> dict[str, str]:  # id -> topic
    topic_of = {}
    for topic, texts in TOPICS.items():
        for text in texts:
            rec = await b.put(MemoryRecord(content=text))
            topic_of[rec.id] = topic
    return topic_of


@pytest.mark.parametrize("mode", ["keyword", "semantic", "hybrid"])
async def test_each_mode_ranks_the_right_topic_first(tmp_path: Path, mode: str) -> None:
    b = await open_backend(tmp_path)
    topic_of = await _load_labelled(b)
    for query, topic in QUERIES:
        hits = await b.search(query, mode, 3)
        assert hits, (mode, query)
        assert topic_of[hits[0].record.id] == topic, (mode, query, [h.record.content for h in hits])
        assert hits[0].why
        if mode == "keyword":
            assert hits[0].why.startswith("keyword: matched")
        if mode == "semantic":
            assert "cosine" in hits[0].why
        # Scores come back best first.
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    await close_backend(b)


async def test_hybrid_finds_what_each_single_mode_misses(tmp_path: Path) -> None:
    b = await open_backend(tmp_path)
    topic_of = await _load_labelled(b)
    # Morphology only: no query word appears verbatim, char n-grams still link them.
    semantic = await b.search("deployments", "semantic", 3)
    assert semantic and topic_of[semantic[0].record.id] == "deploy"
    hybrid = await b.search("Miso vaccination", "hybrid", 5)
    assert topic_of[hybrid[0].record.id] == "pets"
    assert "fused from both" in hybrid[0].why
    # Hits of the right topic outrank every other topic's in hybrid mode (3 relevant per topic).
    for query, topic in QUERIES:
        top3 = [topic_of[h.record.id] for h in await b.search(query, "hybrid", 3)]
        assert top3.count(topic) >= 2, (query, top3)
    await close_backend(b)


async def test_mmr_drops_near_duplicates(tmp_path: Path) -> None:
    b = await open_backend(tmp_path)
    for i in range(4):
        await b.put(MemoryRecord(content=f"The build server password rotates every month{'!' * i}"))
    await b.put(MemoryRecord(content="The build server runs on a separate VLAN from the office network"))
    plain = await b.search("build server", "hybrid", 2)
    diverse = await b.search("build server", "hybrid", 2, mmr=True)
    assert all("password" in h.record.content for h in plain)
    assert any("VLAN" in h.record.content for h in diverse)
    await close_backend(b)


async def test_cold_tier_is_searched_only_on_request(tmp_path: Path) -> None:
    b = await open_backend(tmp_path)
    rec = await b.put(MemoryRecord(content="Archived note about the old Jenkins server", tier="cold"))
    assert await b.search("jenkins", "hybrid", 5) == []
    hits = await b.search("jenkins", "hybrid", 5, tiers=("hot", "warm", "cold"))
    assert [h.record.id for h in hits] == [rec.id]
    await close_backend(b)


async def test_restart_keeps_everything_and_reuses_the_saved_index(tmp_path: Path) -> None:
    b = await open_backend(tmp_path)
    topic_of = await _load_labelled(b)
    await close_backend(b)
    meta = json.loads((tmp_path / "memory" / META_FILE).read_text())
    assert meta["count"] == len(topic_of)

    b2 = await open_backend(tmp_path)
    assert b2.index_state == "ready" and len(b2.index) == len(topic_of)
    assert b2.progress["total"] == 0  # loaded, not rebuilt
    hits = await b2.search("Lisbon conference", "semantic", 1)
    assert topic_of[hits[0].record.id] == "travel"
    await close_backend(b2)


async def test_crash_between_sqlite_commit_and_index_write_is_repaired(tmp_path: Path) -> None:
    b = await open_backend(tmp_path)
    saved = await b.put(MemoryRecord(content="Saved before the crash: the VPN endpoint is vpn.example.net"))
    await b.flush()
    watermark = b.index.watermark

    # The index write fails after SQLite committed: the put still succeeds (SQLite has it).
    def broken_upsert(*_a, **_k):
        raise OSError("disk full")

    b.index.upsert = broken_upsert  # type: ignore[method-assign]
    lost = await b.put(MemoryRecord(content="Committed but never indexed: the Grafana dashboard is at grafana.example.net"))
    assert await b.get(lost.id) is not None
    # ... and then the process dies without saving the index.
    await close_backend(b, crash=True)

    b2 = await open_backend(tmp_path)
    assert b2.index.watermark >= watermark
    hits = await b2.search("grafana dashboard", "semantic", 3)
    assert hits and hits[0].record.id == lost.id
    assert (await b2.search("VPN endpoint", "semantic", 1))[0].record.id == saved.id
    assert len(b2.index) == 2
    await close_backend(b2)


async def test_failed_index_write_is_repaired_without_restart(tmp_path: Path) -> None:
    b = await open_backend(tmp_path)
    original = b.index.upsert
    b.index.upsert = lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom"))  # type: ignore[method-assign]
    rec = await b.put(MemoryRecord(content="Ticket numbers start with OPS- in the tracker"))
    b.index.upsert = original  # type: ignore[method-assign]
    hits = await b.search("tracker ticket numbers", "semantic", 3)  # the search repairs first
    assert [h.record.id for h in hits] == [rec.id]
    await close_backend(b)


async def test_deletes_after_the_last_save_are_replayed(tmp_path: Path) -> None:
    b = await open_backend(tmp_path)
    keep = await b.put(MemoryRecord(content="Keep me: the office wifi is called Orbit"))
    gone = await b.put(MemoryRecord(content="Delete me: the office printer is called Orbit too"))
    await b.flush()
    await b.delete(gone.id)
    await close_backend(b, crash=True)  # the saved index still holds the deleted vector

    b2 = await open_backend(tmp_path)
    assert len(b2.index) == 1
    assert [h.record.id for h in await b2.search("office Orbit", "semantic", 5)] == [keep.id]
    await close_backend(b2)


@pytest.mark.parametrize("damage", ["garbage", "truncate", "delete", "meta"])
async def test_corrupt_or_missing_index_is_rebuilt(tmp_path: Path, damage: str) -> None:
    b = await open_backend(tmp_path)
    topic_of = await _load_labelled(b)
    await close_backend(b)
    index_file = tmp_path / "memory" / INDEX_FILE
    if damage == "garbage":
        index_file.write_bytes(b"\x00not an index\xff" * 100)
    elif damage == "truncate":
        data = index_file.read_bytes()
        index_file.write_bytes(data[: len(data) // 2])
    elif damage == "delete":
        index_file.unlink()
    else:
        (tmp_path / "memory" / META_FILE).write_text("{not json")

    b2 = await open_backend(tmp_path)  # waits for the background rebuild
    assert b2.progress["reason"] in ("corrupt", "missing") and b2.progress["done"] == len(topic_of)
    assert b2.index_state == "ready" and len(b2.index) == len(topic_of)
    hits = await b2.search("cat named Miso", "semantic", 1)
    assert topic_of[hits[0].record.id] == "pets"
    await close_backend(b2)
    # The rebuilt index was saved: the next start loads it.
    b3 = await open_backend(tmp_path)
    assert b3.progress["total"] == 0 and len(b3.index) == len(topic_of)
    await close_backend(b3)


async def test_keyword_search_works_while_the_index_rebuilds(tmp_path: Path) -> None:
    b = await open_backend(tmp_path)
    await b.put(MemoryRecord(content="The on-call rotation changes on Mondays"))
    await close_backend(b)
    (tmp_path / "memory" / INDEX_FILE).unlink()
    from oxios.memory.embedder import HashingEmbedder
    from oxios.memory.store import SQLiteMemoryBackend
    from oxios.state import StateStore

    b2 = SQLiteMemoryBackend(StateStore(tmp_path / "state.db"), HashingEmbedder(dim=256), tmp_path / "memory", clock=FakeClock())
    await b2.start()
    assert b2.index_state == "rebuilding"  # the task has not run yet
    hits = await b2.search("on-call rotation", "hybrid", 3)
    assert hits and "keyword only" in hits[0].why
    await b2.wait_ready()
    assert (await b2.search("on-call rotation", "hybrid", 3))[0].why.count("cosine") == 1
    await close_backend(b2)


async def test_switching_embedder_reembeds_everything(tmp_path: Path) -> None:
    b = await open_backend(tmp_path, dim=256)
    topic_of = await _load_labelled(b)
    await close_backend(b)
    b2 = await open_backend(tmp_path, dim=128)  # another vector space: the saved index cannot be used
    assert b2.progress["reason"] == "embedder changed"
    assert b2.progress["done"] == b2.progress["total"] == len(topic_of)
    assert b2.index.index.ndim == 128
    assert topic_of[(await b2.search("billing invoices Postgres", "semantic", 1))[0].record.id] == "database"
    await close_backend(b2)


async def test_fts_stays_in_step_with_records(tmp_path: Path) -> None:
    b = await open_backend(tmp_path)
    rec = await b.put(MemoryRecord(content="alpha bravo"))
    await b.update(rec.id, content="charlie delta")
    assert await b.search("alpha", "keyword", 3) == []
    assert len(await b.search("charlie", "keyword", 3)) == 1
    await b.delete(rec.id)
    rows = b.state.all("SELECT rowid FROM memory_fts WHERE memory_fts MATCH 'charlie'")
    assert rows == []
    with pytest.raises(sqlite3.OperationalError):
        b.state.execute("SELECT * FROM memory_fts WHERE memory_fts MATCH '\"'")  # raw FTS would have failed
    await close_backend(b)


def test_common_words_are_dropped_from_keyword_queries_only_when_rarer_ones_remain() -> None:
    from oxios.memory.ranking import fts_query

    fraction = {"server": 0.5, "grafana": 0.001, "the": 0.9}.get
    assert fts_query("the server grafana", lambda w: fraction(w, 0.0)) == '"grafana" OR "grafa"*'
    assert fts_query("server", lambda w: fraction(w, 0.0)) == '"server" OR "serve"*'
    assert '"server"' in fts_query("the server grafana")


async def test_corrupt_corpus_statistics_trigger_a_rebuild(tmp_path: Path) -> None:
    from oxios.memory.vectors import CORPUS_FILE

    b = await open_backend(tmp_path)
    topic_of = await _load_labelled(b)
    await close_backend(b)
    (tmp_path / "memory" / CORPUS_FILE).write_bytes(b"PK\x03\x04 not really a zip")
    b2 = await open_backend(tmp_path)
    assert b2.progress["reason"] == "corpus statistics missing" and b2.embedder.n_docs == len(topic_of)
    assert topic_of[(await b2.search("Lisbon conference hotel", "semantic", 1))[0].record.id] == "travel"
    await close_backend(b2)


async def test_a_failing_embedder_never_takes_memory_down(tmp_path: Path) -> None:
    b = await open_backend(tmp_path)
    await b.put(MemoryRecord(content="The backup bucket is s3://acme-backups"))
    await close_backend(b)
    (tmp_path / "memory" / INDEX_FILE).unlink()
    from oxios.memory.embedder import HashingEmbedder
    from oxios.memory.store import SQLiteMemoryBackend
    from oxios.state import StateStore

    class BrokenEmbedder(HashingEmbedder):
        def embed_array(self, texts):
            raise RuntimeError("model server unreachable")

    b2 = SQLiteMemoryBackend(StateStore(tmp_path / "state.db"), BrokenEmbedder(dim=256), tmp_path / "memory", clock=FakeClock())
    await b2.start()
    await b2.wait_ready()  # does not raise
    status = b2.status()
    assert status["index_state"] == "failed" and "unreachable" in status["index_progress"]["error"]
    hits = await b2.search("backup bucket", "hybrid", 3)
    assert hits and "keyword only" in hits[0].why
    saved = await b2.put(MemoryRecord(content="Writes still land in SQLite"))
    assert await b2.get(saved.id) is not None
    await close_backend(b2)
