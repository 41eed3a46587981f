"""Cron's tables in the state store, and the lease that makes one service the owner.

Everything that must survive a restart is here: the jobs and their schedule
state (next run as a UTC epoch), the run history, the delivery outbox and the
lease. Firing a slot is one transaction that moves ``next_run_at`` only if it
still holds the value this service read (compare-and-set), so a slot fires
at most once even if two services ever both believed they held the lease.
"""

from __future__ import annotations

import socket
from typing import Any

import psutil

from ..state import StateStore

NAMESPACE = "cron"

MIGRATIONS: list[str] = [
    # 1: jobs with their schedule state, run history, delivery outbox, the owner lease.
    """
    CREATE TABLE cron_jobs (
        name TEXT PRIMARY KEY,
        source TEXT NOT NULL,
        spec TEXT NOT NULL,
        paused INTEGER NOT NULL DEFAULT 0,
        pause_reason TEXT NOT NULL DEFAULT '',
        next_run_at REAL,
        anchor REAL NOT NULL,
        last_run_at REAL,
        last_status TEXT NOT NULL DEFAULT '',
        run_count INTEGER NOT NULL DEFAULT 0,
        consecutive_failures INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE INDEX cron_jobs_due ON cron_jobs(next_run_at) WHERE paused = 0;
    CREATE TABLE cron_runs (
        id TEXT PRIMARY KEY,
        job TEXT NOT NULL,
        trigger TEXT NOT NULL,
        scheduled_for REAL,
        missed_slots INTEGER NOT NULL DEFAULT 0,
        started_at REAL NOT NULL,
        finished_at REAL,
        status TEXT NOT NULL,
        summary TEXT NOT NULL DEFAULT '',
        output TEXT NOT NULL DEFAULT '',
        error TEXT,
        input_tokens INTEGER NOT NULL DEFAULT 0,
        output_tokens INTEGER NOT NULL DEFAULT 0,
        cost_usd REAL NOT NULL DEFAULT 0,
        session_id TEXT NOT NULL DEFAULT '',
        agent_id TEXT,
        owner TEXT NOT NULL DEFAULT '',
        delivery_status TEXT NOT NULL DEFAULT 'none',
        delivery_error TEXT
    );
    CREATE INDEX cron_runs_job ON cron_runs(job, started_at);
    CREATE INDEX cron_runs_status ON cron_runs(status);
    CREATE TABLE cron_outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id TEXT,
        job TEXT NOT NULL,
        kind TEXT NOT NULL,
        target TEXT NOT NULL,
        payload TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL,
        last_error TEXT,
        created_at REAL NOT NULL,
        delivered_at REAL
    );
    CREATE INDEX cron_outbox_due ON cron_outbox(status, next_attempt_at);
    CREATE TABLE cron_lease (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        owner TEXT NOT NULL,
        expires_at REAL NOT NULL,
        acquired_at REAL NOT NULL
    );
    """,
]


def migrate(state: StateStore) -> None:
    state.migrate(NAMESPACE, MIGRATIONS)


def owner_gone(owner: str) -> bool:
    """Whether a lease owner (``host:pid:nonce``) is a process on this machine that has ended.

    A daemon killed with SIGKILL never releases its lease; its successor on the same machine
    takes it at once instead of waiting it out, so the runs it left "running" are settled at start.
    An owner on another machine (or a reused pid) keeps its lease until it expires.
    """
    parts = owner.rsplit(":", 2)
    if len(parts) != 3 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    return not psutil.pid_exists(int(parts[1]))


class Lease:
    """The single-owner lease: one row (owner id, expiry), renewed every tick.

    ``acquire(now)`` returns ``"renewed"`` (we held it), ``"acquired"`` (it
    was free, expired or held by a process on this machine that has ended: we
    just became the owner) or ``None`` (another live owner holds it).
    """

    def __init__(self, state: StateStore, owner: str, duration: float) -> None:
        self.state = state
        self.owner = owner
        self.duration = duration

    def acquire(self, now: float) -> str | None:
        with self.state.transaction() as conn:
            row = conn.execute("SELECT owner, expires_at FROM cron_lease WHERE id = 1").fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO cron_lease(id, owner, expires_at, acquired_at) VALUES (1, ?, ?, ?)",
                    (self.owner, now + self.duration, now),
                )
                return "acquired"
            if row["owner"] == self.owner:
                conn.execute("UPDATE cron_lease SET expires_at = ? WHERE id = 1", (now + self.duration,))
                return "renewed" if row["expires_at"] > now else "acquired"
            if row["expires_at"] <= now or owner_gone(row["owner"]):
                conn.execute(
                    "UPDATE cron_lease SET owner = ?, expires_at = ?, acquired_at = ? WHERE id = 1",
                    (self.owner, now + self.duration, now),
                )
                return "acquired"
            return None

    def held(self, conn: Any, now: float) -> bool:
        """Inside a transaction: do we still hold an unexpired lease?"""
        row = conn.execute("SELECT owner, expires_at FROM cron_lease WHERE id = 1").fetchone()
        return row is not None and row["owner"] == self.owner and row["expires_at"] > now

    def release(self) -> None:
        self.state.execute("DELETE FROM cron_lease WHERE id = 1 AND owner = ?", (self.owner,))

    def holder(self) -> dict[str, Any] | None:
        row = self.state.one("SELECT owner, expires_at, acquired_at FROM cron_lease WHERE id = 1")
        return dict(row) if row else None


RUN_COLUMNS = (
    "id, job, trigger, scheduled_for, missed_slots, started_at, finished_at, status, summary, output, error,"
    " input_tokens, output_tokens, cost_usd, session_id, agent_id, owner, delivery_status, delivery_error"
)


def insert_run(conn: Any, **row: Any) -> None:
    columns = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    conn.execute(f"INSERT INTO cron_runs({columns}) VALUES ({marks})", tuple(row.values()))


def prune_runs(state: StateStore, job: str, keep: int) -> None:
    """Keep the newest ``keep`` finished runs of ``job`` (running ones always stay)."""
    state.execute(
        "DELETE FROM cron_runs WHERE job = ? AND status != 'running' AND id NOT IN ("
        " SELECT id FROM cron_runs WHERE job = ? ORDER BY started_at DESC, rowid DESC LIMIT ?)",
        (job, job, max(keep, 1)),
    )
    state.execute(
        "DELETE FROM cron_outbox WHERE job = ? AND status IN ('delivered', 'failed')"
        " AND run_id IS NOT NULL AND run_id NOT IN (SELECT id FROM cron_runs WHERE job = ?)",
        (job, job),
    )
