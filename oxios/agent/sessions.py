"""Sessions: conversations persisted in the core ``sessions`` / ``messages`` tables.

A session is created on first use (with the id the client chose, if any) and
continued by id. Messages are appended one by one so the user's words are on
disk before any agent runs, and the reply before any channel sees it.
"""

from __future__ import annotations

import json
import time
from typing import Any

from oxios_hookspecs import Message, new_id

from ..kernel import NotFound

# Prune at most this often (seconds): pruning scans the table, and chats are frequent.
PRUNE_INTERVAL_SECS = 3600.0


def _row(row: Any) -> dict[str, Any]:
    out = dict(row)
    if "metadata" in out:
        out["metadata"] = json.loads(out["metadata"] or "{}")
    return out


class Sessions:
    """Service ``sessions``: create/continue/list/get/delete/prune conversations."""

    def __init__(self, kernel: Any) -> None:
        self.kernel = kernel
        self.state = kernel.state
        self._last_prune = 0.0

    @property
    def config(self) -> Any:
        """``[session]`` as the kernel runs it now, so a config reload changes history, TTL and pruning limits live."""
        return self.kernel.config.session

    # -- sessions -----------------------------------------------------------------

    def create(
        self,
        *,
        session_id: str | None = None,
        user_id: str = "default",
        channel: str = "",
        title: str = "",
        persona: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        sid = session_id or new_id()
        now = time.time()
        self.state.execute(
            "INSERT INTO sessions(id, user_id, channel, title, persona, metadata, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (sid, user_id, channel, title, persona, json.dumps(metadata or {}), now, now),
        )
        self.kernel.publish("session.created", session_id=sid, channel=channel)
        self._maybe_prune()
        return self.get(sid)

    def resolve(
        self, session_id: str | None, *, user_id: str = "default", channel: str = "", persona: str | None = None
    ) -> dict[str, Any]:
        """The session ``session_id`` (created with that id when unknown), or a new one."""
        if session_id:
            row = self.state.one("SELECT * FROM sessions WHERE id = ?", (session_id,))
            if row is not None:
                if persona and persona != row["persona"]:
                    self.set_persona(session_id, persona)
                    return self.get(session_id)
                return _row(row)
        return self.create(session_id=session_id, user_id=user_id, channel=channel, persona=persona)

    def get(self, session_id: str) -> dict[str, Any]:
        row = self.state.one("SELECT * FROM sessions WHERE id = ?", (session_id,))
        if row is None:
            raise NotFound(f"no session {session_id}")
        out = _row(row)
        counts = self.state.one("SELECT COUNT(*) AS n FROM messages WHERE session_id = ?", (session_id,))
        out["message_count"] = int(counts["n"]) if counts else 0
        return out

    def list(self, *, limit: int = 50, offset: int = 0, user_id: str | None = None) -> list[dict[str, Any]]:
        sql = (
            "SELECT s.*, (SELECT COUNT(*) FROM messages m WHERE m.session_id = s.id) AS message_count,"
            " (SELECT content FROM messages m WHERE m.session_id = s.id AND m.role = 'user'"
            "  ORDER BY seq LIMIT 1) AS first_message FROM sessions s"
        )
        params: list[Any] = []
        if user_id is not None:
            sql += " WHERE s.user_id = ?"
            params.append(user_id)
        sql += " ORDER BY s.updated_at DESC LIMIT ? OFFSET ?"
        params += [limit, offset]
        return [_row(r) for r in self.state.all(sql, params)]

    def count(self) -> int:
        row = self.state.one("SELECT COUNT(*) AS n FROM sessions")
        return int(row["n"]) if row else 0

    def delete(self, session_id: str) -> None:
        with self.state.transaction() as conn:
            conn.execute("DELETE FROM messages WHERE session_id = ?", (session_id,))
            gone = conn.execute("DELETE FROM sessions WHERE id = ?", (session_id,)).rowcount
        if not gone:
            raise NotFound(f"no session {session_id}")
        self.kernel.publish("session.deleted", session_id=session_id)

    def update(self, session_id: str, **fields: Any) -> dict[str, Any]:
        allowed = {"title", "persona", "space_id", "active_seed_id", "metadata"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"cannot update session fields {sorted(unknown)}")
        self.get(session_id)
        if "metadata" in fields:
            fields["metadata"] = json.dumps(fields["metadata"] or {})
        if fields:
            sets = ", ".join(f"{k} = ?" for k in fields)
            self.state.execute(
                f"UPDATE sessions SET {sets}, updated_at = ? WHERE id = ?", (*fields.values(), time.time(), session_id)
            )
        return self.get(session_id)

    def set_persona(self, session_id: str, persona: str | None) -> dict[str, Any]:
        return self.update(session_id, persona=persona)

    # -- messages -----------------------------------------------------------------

    def append(
        self,
        session_id: str,
        role: str,
        content: str,
        *,
        space_id: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Persist one message (committed when this returns) and touch the session."""
        now = time.time()
        with self.state.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO messages(session_id, role, content, space_id, metadata, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (session_id, role, content, space_id, json.dumps(metadata or {}, default=str), now),
            )
            conn.execute(
                "UPDATE sessions SET updated_at = ?, space_id = COALESCE(?, space_id),"
                " title = CASE WHEN title = '' AND ? = 'user' THEN substr(?, 1, 80) ELSE title END WHERE id = ?",
                (now, space_id, role, content, session_id),
            )
        return {
            "seq": cur.lastrowid,
            "session_id": session_id,
            "role": role,
            "content": content,
            "space_id": space_id,
            "metadata": metadata or {},
            "created_at": now,
        }

    def messages(self, session_id: str, *, space_id: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Messages oldest first; the newest ``limit`` when given (default: session.max_history_messages)."""
        limit = limit or self.config.max_history_messages
        sql = "SELECT * FROM messages WHERE session_id = ?"
        params: list[Any] = [session_id]
        if space_id is not None:
            sql += " AND (space_id = ? OR space_id IS NULL)"
            params.append(space_id)
        sql += " ORDER BY seq DESC LIMIT ?"
        params.append(limit)
        rows = [_row(r) for r in self.state.all(sql, params)]
        rows.reverse()
        return rows

    def history(self, session_id: str, *, space_id: str | None = None, limit: int | None = None) -> list[Message]:
        """The conversation as model messages (user/assistant text), oldest first."""
        out: list[Message] = []
        for row in self.messages(session_id, space_id=space_id, limit=limit):
            if row["role"] not in ("user", "assistant") or not row["content"]:
                continue
            error = row["metadata"].get("error") if isinstance(row["metadata"], dict) else None
            if row["role"] == "assistant" and error and row["content"] == f"[{error}]":
                continue  # a failure note for people, not something the model said
            msg = Message.user(row["content"]) if row["role"] == "user" else Message.assistant(row["content"])
            if out and out[-1].role == msg.role:
                # Providers want alternating roles; merge (a failed turn leaves two user messages).
                out[-1] = type(msg)(role=msg.role, content=[*out[-1].content, *msg.content])
            else:
                out.append(msg)
        return out

    # -- retention ------------------------------------------------------------------

    def prune(self, *, ttl_hours: float | None = None, max_sessions: int | None = None) -> int:
        """Delete sessions older than the TTL, then all but the newest ``max_sessions``; return how many."""
        ttl = self.config.ttl_hours if ttl_hours is None else ttl_hours
        keep = self.config.max_sessions if max_sessions is None else max_sessions
        removed = 0
        with self.state.transaction() as conn:
            if ttl and ttl > 0:
                removed += conn.execute("DELETE FROM sessions WHERE updated_at < ?", (time.time() - ttl * 3600,)).rowcount
            if keep and keep > 0:
                removed += conn.execute(
                    "DELETE FROM sessions WHERE id NOT IN (SELECT id FROM sessions ORDER BY updated_at DESC LIMIT ?)",
                    (keep,),
                ).rowcount
            conn.execute("DELETE FROM messages WHERE session_id NOT IN (SELECT id FROM sessions)")
        self._last_prune = time.time()
        if removed:
            self.kernel.publish("session.pruned", removed=removed)
        return removed

    def _maybe_prune(self) -> None:
        if self.config.auto_prune and time.time() - self._last_prune > PRUNE_INTERVAL_SECS:
            self.prune()

    def status(self) -> dict[str, Any]:
        return {"healthy": True, "detail": None, "sessions": self.count()}


def start(kernel: Any) -> Sessions:
    return Sessions(kernel)
