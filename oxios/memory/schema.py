"""SQLite schema of the memory namespace and record <-> row conversion."""

from __future__ import annotations

import sqlite3
from typing import Any

import msgspec

from oxios_hookspecs import MemoryRecord

NAMESPACE = "memory"

MIGRATIONS: list[str] = [
    # 1: records (key is the vector index key; AUTOINCREMENT so a key is never reused),
    #    FTS5 kept in step by triggers inside the same transaction, the change sequence
    #    and tombstones the vector index replays from, the dream change log and runs, topics.
    """
    CREATE TABLE memory_records (
        key INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL DEFAULT '',
        content TEXT NOT NULL,
        type TEXT NOT NULL DEFAULT 'fact',
        category TEXT NOT NULL DEFAULT '',
        tier TEXT NOT NULL DEFAULT 'warm',
        importance REAL NOT NULL DEFAULT 0.5,
        protection REAL NOT NULL DEFAULT 0,
        pinned INTEGER NOT NULL DEFAULT 0,
        created REAL NOT NULL,
        accessed REAL NOT NULL,
        updated REAL NOT NULL,
        access_count INTEGER NOT NULL DEFAULT 0,
        session_ids TEXT NOT NULL DEFAULT '[]',
        source TEXT NOT NULL DEFAULT '',
        seq INTEGER NOT NULL DEFAULT 0
    );
    CREATE UNIQUE INDEX memory_records_name ON memory_records(name) WHERE name != '';
    CREATE INDEX memory_records_tier ON memory_records(tier, updated);
    CREATE INDEX memory_records_seq ON memory_records(seq);
    CREATE VIRTUAL TABLE memory_fts USING fts5(
        content, name, category, content='memory_records', content_rowid='key',
        tokenize='porter unicode61', prefix='5 6'
    );
    CREATE TRIGGER memory_records_ai AFTER INSERT ON memory_records BEGIN
        INSERT INTO memory_fts(rowid, content, name, category) VALUES (new.key, new.content, new.name, new.category);
    END;
    CREATE TRIGGER memory_records_ad AFTER DELETE ON memory_records BEGIN
        INSERT INTO memory_fts(memory_fts, rowid, content, name, category)
        VALUES ('delete', old.key, old.content, old.name, old.category);
    END;
    CREATE TRIGGER memory_records_au AFTER UPDATE OF content, name, category ON memory_records BEGIN
        INSERT INTO memory_fts(memory_fts, rowid, content, name, category)
        VALUES ('delete', old.key, old.content, old.name, old.category);
        INSERT INTO memory_fts(rowid, content, name, category) VALUES (new.key, new.content, new.name, new.category);
    END;
    CREATE TABLE memory_tombstones (key INTEGER PRIMARY KEY, seq INTEGER NOT NULL);
    CREATE TABLE memory_counter (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL);
    INSERT INTO memory_counter(id, seq) VALUES (1, 0);
    CREATE TABLE memory_changes (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id TEXT NOT NULL DEFAULT '',
        ts REAL NOT NULL,
        op TEXT NOT NULL,
        record_id TEXT NOT NULL,
        before TEXT,
        after TEXT,
        reason TEXT NOT NULL DEFAULT '',
        reverted INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX memory_changes_run ON memory_changes(run_id, id);
    CREATE TABLE memory_dream_runs (
        id TEXT PRIMARY KEY,
        trigger TEXT NOT NULL DEFAULT '',
        started REAL NOT NULL,
        finished REAL,
        phase TEXT NOT NULL,
        cursor INTEGER NOT NULL DEFAULT 0,
        stats TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE memory_topics (
        topic TEXT PRIMARY KEY,
        count INTEGER NOT NULL,
        record_ids TEXT NOT NULL,
        updated REAL NOT NULL
    );
    """,
]

COLUMNS = (
    "key, id, name, content, type, category, tier, importance, protection, pinned, created, accessed, "
    "access_count, session_ids, source"
)

# Fields a caller may change with update(); the rest are managed by the store.
UPDATABLE = frozenset(
    {
        "name",
        "content",
        "type",
        "category",
        "tier",
        "importance",
        "protection",
        "pinned",
        "session_ids",
        "source",
        "accessed",
        "access_count",
    }
)
TIERS = ("hot", "warm", "cold")


def row_to_record(row: sqlite3.Row) -> MemoryRecord:
    return MemoryRecord(
        id=row["id"],
        name=row["name"],
        content=row["content"],
        type=row["type"],
        category=row["category"],
        tier=row["tier"],
        importance=row["importance"],
        protection=row["protection"],
        pinned=bool(row["pinned"]),
        created=row["created"],
        accessed=row["accessed"],
        access_count=row["access_count"],
        session_ids=msgspec.json.decode(row["session_ids"]),
        source=row["source"],
    )


def record_values(record: MemoryRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name,
        "content": record.content,
        "type": record.type,
        "category": record.category,
        "tier": record.tier,
        "importance": float(record.importance),
        "protection": float(record.protection),
        "pinned": int(record.pinned),
        "created": record.created,
        "accessed": record.accessed,
        "access_count": record.access_count,
        "session_ids": msgspec.json.encode(record.session_ids).decode(),
        "source": record.source,
    }


def snapshot(record: MemoryRecord) -> str:
    """A record as JSON, for the change log (enough to restore it exactly)."""
    return msgspec.json.encode(record).decode()


def restore(data: str) -> MemoryRecord:
    return msgspec.json.decode(data, type=MemoryRecord)
