"""The SQLite state store: WAL, numbered migrations, transactions."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from oxios.state import StateStore

STEPS = [
    "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);",
    ["ALTER TABLE notes ADD COLUMN tag TEXT", "CREATE INDEX notes_tag ON notes(tag)"],
]


def test_wal_and_core_schema(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.db")
    assert store.one("PRAGMA journal_mode")[0] == "wal"
    assert store.schema_version("core") >= 1
    store.close()


def test_migrations_run_once_in_order_and_are_idempotent(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.db")
    assert store.migrate("notes", STEPS) == 2
    assert store.migrate("notes", STEPS) == 0
    assert store.schema_version("notes") == 2
    store.close()
    reopened = StateStore(tmp_path / "state.db")
    assert reopened.migrate("notes", STEPS) == 0
    # A later release adds a step: only the new one runs.
    assert reopened.migrate("notes", [*STEPS, "ALTER TABLE notes ADD COLUMN extra INTEGER"]) == 1
    assert reopened.schema_version("notes") == 3
    reopened.close()


def test_failed_migration_rolls_back_and_keeps_version(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.db")
    store.migrate("notes", STEPS[:1])
    with pytest.raises(sqlite3.OperationalError):
        store.migrate("notes", [STEPS[0], ["ALTER TABLE notes ADD COLUMN ok TEXT", "THIS IS NOT SQL"]])
    assert store.schema_version("notes") == 1
    cols = [r["name"] for r in store.all("PRAGMA table_info(notes)")]
    assert "ok" not in cols  # the half-applied step was rolled back
    store.close()


def test_transaction_rolls_back_on_error(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.db")
    store.migrate("notes", STEPS[:1])
    with pytest.raises(RuntimeError):
        with store.transaction() as conn:
            conn.execute("INSERT INTO notes(body) VALUES ('a')")
            raise RuntimeError("boom")
    assert store.one("SELECT count(*) AS n FROM notes")["n"] == 0
    store.close()


def test_kv_and_backup(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.db")
    store.kv_set("ns", "k", {"a": [1, 2]})
    assert store.kv_get("ns", "k") == {"a": [1, 2]}
    assert store.kv_items("ns") == {"k": {"a": [1, 2]}}
    store.backup_to(tmp_path / "copy.db")
    copy = StateStore(tmp_path / "copy.db")
    assert copy.kv_get("ns", "k") == {"a": [1, 2]}
    assert store.kv_delete("ns", "k") and store.kv_get("ns", "k") is None
    copy.close()
    store.close()
