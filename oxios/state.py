"""The state store: one SQLite database in WAL mode under OXIOS_HOME.

It is the one place state that must survive lives. Each subsystem (and any
plugin) owns a *namespace* of numbered migrations; ``schema_version`` records
how far each namespace has gone, so migrations run once, in order, each in
its own transaction.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec

Migration = str | Sequence[str]
"""One migration step: a SQL script, or several statements run in order."""

CORE_MIGRATIONS: list[Migration] = [
    # 1: sessions, their messages, personas, agents, key-value settings.
    """
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL DEFAULT 'default',
        channel TEXT NOT NULL DEFAULT '',
        title TEXT NOT NULL DEFAULT '',
        persona TEXT,
        space_id TEXT,
        active_seed_id TEXT,
        metadata TEXT NOT NULL DEFAULT '{}',
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE INDEX sessions_updated ON sessions(updated_at);
    CREATE TABLE messages (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        role TEXT NOT NULL,
        content TEXT NOT NULL,
        space_id TEXT,
        metadata TEXT NOT NULL DEFAULT '{}',
        created_at REAL NOT NULL
    );
    CREATE INDEX messages_session ON messages(session_id, seq);
    CREATE TABLE kv (
        namespace TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (namespace, key)
    );
    """,
]


class StateError(Exception):
    """The state store could not do what was asked."""


class StateStore:
    """A thin, thread-safe wrapper over one SQLite connection.

    Calls are short and synchronous; SQLite in WAL mode answers them in
    microseconds, so they run on the event loop's thread. Long work (index
    builds, backups) belongs in a thread with :meth:`connect` of its own.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn = self.connect()
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            " namespace TEXT PRIMARY KEY, version INTEGER NOT NULL, updated_at REAL NOT NULL)"
        )
        self.migrate("core", CORE_MIGRATIONS)

    def connect(self) -> sqlite3.Connection:
        """A new connection with Oxios's settings (WAL, foreign keys, busy timeout)."""
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    # -- migrations ---------------------------------------------------------

    def schema_version(self, namespace: str) -> int:
        row = self.one("SELECT version FROM schema_version WHERE namespace = ?", (namespace,))
        return int(row["version"]) if row else 0

    def migrate(self, namespace: str, migrations: Sequence[Migration]) -> int:
        """Run the migrations of ``namespace`` not yet applied; return how many ran."""
        ran = 0
        with self._lock:
            current = self.schema_version(namespace)
            for number, step in enumerate(migrations, start=1):
                if number <= current:
                    continue
                with self.transaction() as conn:
                    statements = [step] if isinstance(step, str) else list(step)
                    for sql in statements:
                        for stmt in _split_sql(sql):
                            conn.execute(stmt)
                    conn.execute(
                        "INSERT INTO schema_version(namespace, version, updated_at) VALUES (?, ?, ?)"
                        " ON CONFLICT(namespace) DO UPDATE SET version = excluded.version,"
                        " updated_at = excluded.updated_at",
                        (namespace, number, time.time()),
                    )
                ran += 1
        return ran

    # -- queries ------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``; rolled back on any error."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._conn.execute(sql, params)

    def all(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def one(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Row | None:
        with self._lock:
            return self._conn.execute(sql, params).fetchone()

    # -- key-value settings ---------------------------------------------------

    def kv_get(self, namespace: str, key: str, default: Any = None) -> Any:
        row = self.one("SELECT value FROM kv WHERE namespace = ? AND key = ?", (namespace, key))
        return msgspec.json.decode(row["value"]) if row else default

    def kv_set(self, namespace: str, key: str, value: Any) -> None:
        self.execute(
            "INSERT INTO kv(namespace, key, value, updated_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(namespace, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            (namespace, key, msgspec.json.encode(value).decode(), time.time()),
        )

    def kv_delete(self, namespace: str, key: str) -> bool:
        return self.execute("DELETE FROM kv WHERE namespace = ? AND key = ?", (namespace, key)).rowcount > 0

    def kv_items(self, namespace: str) -> dict[str, Any]:
        rows = self.all("SELECT key, value FROM kv WHERE namespace = ? ORDER BY key", (namespace,))
        return {r["key"]: msgspec.json.decode(r["value"]) for r in rows}

    # -- maintenance -----------------------------------------------------------

    def backup_to(self, target: Path) -> None:
        """A consistent copy through SQLite's online backup API (safe while running)."""
        dest = sqlite3.connect(target)
        try:
            with self._lock:
                self._conn.backup(dest)
        finally:
            dest.close()

    def healthy(self) -> bool:
        try:
            return self.one("SELECT 1") is not None
        except sqlite3.Error:
            return False

    def close(self) -> None:
        with self._lock:
            try:
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass
            self._conn.close()


def _split_sql(script: str) -> list[str]:
    """Split a migration script into complete statements (triggers stay whole)."""
    statements: list[str] = []
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                statements.append(buf.strip())
            buf = ""
    if buf.strip():
        statements.append(buf.strip())
    return statements


def backup_file(source: Path, target: Path) -> None:
    """Back up a database file we do not hold open (e.g. while the daemon runs)."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dest = sqlite3.connect(target)
    try:
        src.backup(dest)
    finally:
        src.close()
        dest.close()
