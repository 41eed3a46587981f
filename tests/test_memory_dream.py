"""Consolidation on a fixture corpus: merge, re-tier, summarise, prune, topics; resume and revert."""

from __future__ import annotations

from pathlib import Path

import pytest
from memory_fixtures import DAY, T0, FakeClock, close_backend, open_backend

from oxios.memory.dream import Dream, DreamSettings, extractive_summary, near_duplicate, revert
from oxios.memory.kinds import base_importance
from oxios_hookspecs import MemoryRecord


def at(content: str, days_ago: float = 0.0, **kw) -> MemoryRecord:
    kind = kw.pop("type", "fact")
    ts = T0 - days_ago * DAY
    return MemoryRecord(
        content=content, type=kind, importance=kw.pop("importance", base_importance(kind)), created=ts, accessed=ts, **kw
    )


async def load_fixture(b) -> dict[str, MemoryRecord]:
    corpus = {
        "wifi": at("The office wifi password is hunter22", session_ids=["s1"]),
        "wifi_dup": at("The office WiFi password is hunter22.", session_ids=["s2"], access_count=3),
        "server_a": at("Server A address is 10.0.0.1"),
        "server_b": at("Server B address is 10.0.0.2"),
        "british": at("Always answer in British English", type="preference"),
        "british_pinned": at("Always answer in British English.", type="preference", pinned=True, tier="hot"),
        "tz_pin1": at("The user's timezone is Europe/Berlin", pinned=True, tier="hot"),
        "tz_pin2": at("The user's timezone is Europe/Berlin!", pinned=True, tier="hot"),
        "old_chat": at("user: what's the weather\nassistant: sunny", days_ago=400, type="conversation"),
        "old_chat_pinned": at(
            "user: remember my locker is 42\nassistant: noted", days_ago=400, type="conversation", pinned=True, tier="hot"
        ),
        "old_chat_protected": at(
            "user: my badge id is 7781\nassistant: noted", days_ago=400, type="conversation", protection=0.9
        ),
        "profile": at("My name is Ada and I work as a data engineer", type="user_profile"),
    }
    for i, text in enumerate(
        [
            "Standup: Ada fixed the flaky login test and merged the parser refactor.",
            "Standup: the parser refactor landed; Ada is on the login test next.",
            "Standup: Bob reviewed the parser refactor and found a memory leak.",
            "Standup: the memory leak in the parser was fixed by Bob.",
        ]
    ):
        corpus[f"standup{i}"] = at(text, days_ago=30 - i * 0.1, type="episode", category="standup")
    for record in corpus.values():
        await b.put(record)
    return corpus


def test_near_duplicate_guard() -> None:
    assert near_duplicate("The office wifi password is hunter22", "the office WiFi password is hunter22.", 0.6)
    assert not near_duplicate("Server A address is 10.0.0.1", "Server B address is 10.0.0.2", 0.6)
    assert not near_duplicate("Deploy on Friday", "Never deploy on Friday evenings after a long week", 0.6)


def test_extractive_summary_keeps_the_central_sentences() -> None:
    text = extractive_summary(
        [
            "The parser refactor landed. Lunch was pizza.",
            "Bob reviewed the parser refactor.",
            "The parser refactor fixed a leak.",
        ],
        120,
    )
    assert "parser refactor" in text and "pizza" not in text


async def test_dream_consolidates_the_fixture_corpus(tmp_path: Path) -> None:
    clock = FakeClock()
    b = await open_backend(tmp_path, clock)
    c = await load_fixture(b)
    audit: list[tuple] = []

    class Audit:
        def append(self, *args) -> None:
            audit.append(args)

    report = await Dream(b, DreamSettings(), clock=clock, audit=lambda: Audit()).run("test")
    alive = {r.id for r in await b.list(limit=1000)}

    # Duplicates merged into one record that keeps both sessions and the access counts.
    assert (c["wifi"].id in alive) != (c["wifi_dup"].id in alive)
    wifi = await b.get(c["wifi"].id) or await b.get(c["wifi_dup"].id)
    assert set(wifi.session_ids) == {"s1", "s2"} and wifi.access_count >= 3
    # Similar wording, different numbers: both kept.
    assert {c["server_a"].id, c["server_b"].id} <= alive
    # A pinned duplicate wins; two pinned duplicates are both kept.
    assert c["british_pinned"].id in alive and c["british"].id not in alive
    assert {c["tz_pin1"].id, c["tz_pin2"].id} <= alive
    # Decayed below the threshold: pruned, unless pinned or protected.
    assert c["old_chat"].id not in alive
    assert {c["old_chat_pinned"].id, c["old_chat_protected"].id} <= alive
    # Old episodes summarised; originals archived, not deleted.
    summaries = [r for r in await b.list(limit=1000) if r.source == "dream:summary"]
    assert len(summaries) == 1 and "parser" in summaries[0].content and summaries[0].category == "standup"
    for i in range(4):
        assert (await b.get(c[f"standup{i}"].id)).tier == "cold"
    # Tiers: the profile and the pinned go hot.
    assert (await b.get(c["profile"].id)).tier == "hot"
    # Topic index rebuilt.
    topics = {r["topic"] for r in b.state.all("SELECT topic FROM memory_topics")}
    assert "standup" in topics and len(topics) > 5
    # Every change is in the change log and the audit chain.
    changes = b.state.all("SELECT op FROM memory_changes WHERE run_id = ?", (report["run_id"],))
    assert len(changes) == sum(v for k, v in report["changes"].items() if k != "topics") == len(audit)
    assert {"merge", "delete", "create", "update"} <= {r["op"] for r in changes}
    assert all(a[0] == "memory.dream" and a[1].startswith("memory.") for a in audit)

    # A second run right away finds nothing left to merge or prune.
    again = await Dream(b, DreamSettings(), clock=clock).run("test")
    assert again["changes"].get("merge", 0) == 0 and again["changes"].get("delete", 0) == 0
    await close_backend(b)


async def test_dream_is_reversible(tmp_path: Path) -> None:
    clock = FakeClock()
    b = await open_backend(tmp_path, clock)
    c = await load_fixture(b)
    before = {r.id: r for r in await b.list(limit=1000)}
    report = await Dream(b, DreamSettings(), clock=clock).run("test")
    assert c["old_chat"].id not in {r.id for r in await b.list(limit=1000)}

    undone = await revert(b, report["run_id"])
    assert undone > 0
    after = {r.id: r for r in await b.list(limit=1000)}
    assert set(after) == set(before)
    for rid, old in before.items():
        now = after[rid]
        assert (now.content, now.tier, now.pinned, now.session_ids) == (old.content, old.tier, old.pinned, old.session_ids)
    # The restored record is searchable again (re-indexed).
    hits = await b.search("weather sunny", "semantic", 3)
    assert c["old_chat"].id in [h.record.id for h in hits]
    assert await revert(b, report["run_id"]) == 0  # nothing left to undo
    await close_backend(b)


class Interrupt(Exception):
    pass


async def test_interrupted_dream_resumes_where_it_stopped(tmp_path: Path) -> None:
    clock = FakeClock()
    b = await open_backend(tmp_path, clock)
    await load_fixture(b)
    seen: list[str] = []

    def crash_after_three(op: str) -> None:
        seen.append(op)
        if len(seen) == 3:
            raise Interrupt

    with pytest.raises(Interrupt):
        await Dream(b, DreamSettings(), clock=clock, on_change=crash_after_three).run("test")
    run = b.state.one("SELECT * FROM memory_dream_runs")
    assert run["finished"] is None

    # A restart in between: the run row and the records are in SQLite.
    await close_backend(b, crash=True)
    b = await open_backend(tmp_path, clock)
    resumed = await Dream(b, DreamSettings(), clock=clock).run("test")
    assert resumed["resumed"] and resumed["run_id"] == run["id"]
    assert b.state.one("SELECT COUNT(*) AS n FROM memory_dream_runs")["n"] == 1

    # The end state equals an uninterrupted run over the same corpus.
    reference = await open_backend(tmp_path / "ref", FakeClock())
    await load_fixture(reference)
    await Dream(reference, DreamSettings(), clock=clock).run("test")

    def shape(records):
        return sorted((r.content, r.tier, r.pinned) for r in records if r.source != "dream:summary")

    assert shape(await b.list(limit=1000)) == shape(await reference.list(limit=1000))
    await close_backend(b)
    await close_backend(reference)
