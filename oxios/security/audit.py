"""The audit chain: append-only, hash-linked, Merkle-checkpointed.

Each entry's hash is blake3 over a canonical JSON encoding of
``[seq, ts, actor, action, resource, allowed, reason, metadata, prev_hash]``,
so changing, removing, reordering or inserting an entry breaks the chain at a
seq that :meth:`AuditLog.verify` names. Every ``audit.checkpoint_every``
entries (and on shutdown) the Merkle root over all entry hashes since genesis
is recorded; inclusion proofs are checked against it. Pruning deletes old
rows but keeps their hashes (``audit_leaves``), anchored by a checkpoint.

Removing the newest entries *and* rewinding ``audit_head`` and the
checkpoints (or putting back an older copy of the database) leaves a chain
that is consistent in itself. So the head is also written outside the
database, to ``audit-head`` next to it (``seq hash``, only ever moving
forward): :meth:`AuditLog.verify` reports entries missing at the end when the
database stops short of it, and a rewritten entry when the hash at that seq
differs.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import msgspec
from blake3 import blake3

from ..logs import redact
from . import merkle

GENESIS = "0" * 64
ANCHOR_NAME = "audit-head"
logger = logging.getLogger(__name__)
_SECRET_KEYS = (
    "api_key",
    "apikey",
    "token",
    "secret",
    "password",
    "passwd",
    "authorization",
    "cookie",
    "private_key",
    "credential",
)
_FUTURE_SLACK_SECS = 300.0

MIGRATIONS: list[str] = [
    """
    CREATE TABLE audit_log (
        seq INTEGER PRIMARY KEY,
        ts REAL NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        resource TEXT NOT NULL,
        allowed INTEGER NOT NULL,
        reason TEXT NOT NULL,
        metadata TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE INDEX audit_log_actor ON audit_log(actor, seq);
    CREATE TABLE audit_head (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, hash TEXT NOT NULL,
                             ts REAL NOT NULL);
    CREATE TABLE audit_checkpoints (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        tree_size INTEGER NOT NULL,
        last_seq INTEGER NOT NULL,
        head_hash TEXT NOT NULL,
        root TEXT NOT NULL,
        created REAL NOT NULL
    );
    CREATE TABLE audit_leaves (seq INTEGER PRIMARY KEY, hash TEXT NOT NULL);
    CREATE TABLE audit_prune (id INTEGER PRIMARY KEY CHECK (id = 1), below INTEGER NOT NULL);
    CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    WHEN OLD.seq >= COALESCE((SELECT below FROM audit_prune WHERE id = 1), 0)
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only (prune through a checkpoint)'); END;
    CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
    BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;
    """,
    # 2: the hashes kept for pruned entries are as immutable as the entries were.
    """
    CREATE TRIGGER audit_leaves_no_update BEFORE UPDATE ON audit_leaves
    BEGIN SELECT RAISE(ABORT, 'pruned audit hashes are append-only'); END;
    CREATE TRIGGER audit_leaves_no_delete BEFORE DELETE ON audit_leaves
    BEGIN SELECT RAISE(ABORT, 'pruned audit hashes are append-only'); END;
    CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
    BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;
    """,
]

_FIELDS = ("seq", "ts", "actor", "action", "resource", "allowed", "reason", "metadata", "prev_hash", "hash")


class AuditEntry(msgspec.Struct, kw_only=True):
    seq: int
    ts: float
    actor: str
    action: str
    resource: str
    allowed: bool
    reason: str
    metadata: dict[str, Any]
    prev_hash: str
    hash: str


class VerifyReport(msgspec.Struct, kw_only=True):
    ok: bool
    entries: int
    first_seq: int | None = None
    last_seq: int | None = None
    checkpoints: int = 0
    bad_seq: int | None = None
    problem: str | None = None  # hash | link | order | time | missing | checkpoint | anchor
    detail: str = ""


def entry_hash(
    seq: int, ts: float, actor: str, action: str, resource: str, allowed: bool, reason: str, metadata_json: str, prev_hash: str
) -> str:
    """blake3 over the canonical encoding of an entry (metadata as its stored canonical JSON)."""
    canonical = json.dumps(
        [seq, repr(float(ts)), actor, action, resource, bool(allowed), reason, metadata_json, prev_hash],
        ensure_ascii=True,
        separators=(",", ":"),
    )
    return blake3(canonical.encode()).hexdigest()


def scrub(value: Any) -> Any:
    """Metadata with secrets removed: secret-named keys blanked, secret-shaped strings redacted."""
    if isinstance(value, dict):
        return {str(k): "[REDACTED]" if any(s in str(k).lower() for s in _SECRET_KEYS) else scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact(str(value))


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=True, separators=(",", ":"), default=str)


def _row_entry(row: Any) -> AuditEntry:
    return AuditEntry(
        seq=row["seq"],
        ts=row["ts"],
        actor=row["actor"],
        action=row["action"],
        resource=row["resource"],
        allowed=bool(row["allowed"]),
        reason=row["reason"],
        metadata=json.loads(row["metadata"]),
        prev_hash=row["prev_hash"],
        hash=row["hash"],
    )


class AuditLog:
    """The ``audit`` service over the kernel's state store."""

    def __init__(
        self, state: Any, *, checkpoint_every: int = 100, enabled: bool = True, events: Any = None, anchor: bool = True
    ) -> None:
        self.state = state
        self.checkpoint_every = max(0, checkpoint_every)
        self.enabled = enabled
        self.events = events
        self._frontier: merkle.Frontier | None = None  # incremental Merkle root for checkpoints
        # The head kept outside the database (see the module docstring); None for an in-memory store.
        path = getattr(state, "path", None)
        self.anchor_path: Path | None = Path(path).with_name(ANCHOR_NAME) if anchor and path is not None else None
        state.migrate("audit", MIGRATIONS)

    # -- writing --------------------------------------------------------------------------

    def append(
        self,
        actor: str,
        action: str,
        resource: str = "",
        allowed: bool = True,
        reason: str = "",
        metadata: dict[str, Any] | None = None,
    ) -> AuditEntry | None:
        """Add one entry (secrets redacted); returns it, or None when auditing is off."""
        if not self.enabled:
            return None
        meta_json = canonical_json(scrub(metadata or {}))
        actor, action = redact(str(actor or "system")), redact(str(action))
        resource, reason = redact(str(resource or "")), redact(str(reason or ""))
        with self.state.transaction() as conn:
            head = conn.execute("SELECT seq, hash, ts FROM audit_head WHERE id = 1").fetchone()
            seq = (head["seq"] if head else 0) + 1
            prev = head["hash"] if head else GENESIS
            # Never let time run backwards inside the chain (clock steps would look like tampering).
            ts = max(time.time(), head["ts"] if head else 0.0)
            digest = entry_hash(seq, ts, actor, action, resource, allowed, reason, meta_json, prev)
            conn.execute(
                "INSERT INTO audit_log(seq, ts, actor, action, resource, allowed, reason, metadata, prev_hash, hash)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (seq, ts, actor, action, resource, int(bool(allowed)), reason, meta_json, prev, digest),
            )
            conn.execute(
                "INSERT INTO audit_head(id, seq, hash, ts) VALUES (1, ?, ?, ?)"
                " ON CONFLICT(id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, ts = excluded.ts",
                (seq, digest, ts),
            )
        self._advance_anchor(seq, digest)
        entry = AuditEntry(
            seq=seq,
            ts=ts,
            actor=actor,
            action=action,
            resource=resource,
            allowed=bool(allowed),
            reason=reason,
            metadata=json.loads(meta_json),
            prev_hash=prev,
            hash=digest,
        )
        if self.checkpoint_every and seq % self.checkpoint_every == 0:
            self.checkpoint()
        return entry

    # -- the head outside the database -----------------------------------------------------

    def _advance_anchor(self, seq: int, digest: str) -> None:
        """Move the outside head forward to ``seq`` (never back: another process may be ahead).

        Written after the entry is committed, so a crash in between leaves it
        behind the database (harmless), never ahead of it (a false alarm).
        """
        if self.anchor_path is None:
            return
        try:
            fd = os.open(self.anchor_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                current = _parse_anchor(os.pread(fd, 256, 0))
                if current is None or current[0] < seq:
                    record = f"{seq} {digest}\n".encode()
                    os.pwrite(fd, record, 0)
                    os.ftruncate(fd, len(record))
            finally:
                os.close(fd)  # also releases the lock
        except OSError:  # the entry is in the chain; a lost anchor only weakens the tail check
            logger.warning("cannot record the audit head in %s", self.anchor_path, exc_info=True)

    def anchor(self) -> tuple[int, str] | None:
        """``(seq, hash)`` of the head recorded outside the database; None when there is none.

        Raises ValueError when the file exists but does not hold a head.
        """
        if self.anchor_path is None:
            return None
        try:
            raw = self.anchor_path.read_bytes()
        except FileNotFoundError:
            return None
        parsed = _parse_anchor(raw)
        if parsed is None:
            raise ValueError(f"{self.anchor_path} does not hold an audit head ('SEQ HASH')")
        return parsed

    def adopt_anchor(self) -> None:
        """Start the outside head from the database's (a first start, or a chain older than the anchor)."""
        head = self.head()
        if head is not None and self.anchor_path is not None and not self.anchor_path.exists():
            self._advance_anchor(head["seq"], head["hash"])

    def _hash_at(self, seq: int) -> str | None:
        row = self.state.one(
            "SELECT hash FROM audit_log WHERE seq = ? UNION ALL SELECT hash FROM audit_leaves WHERE seq = ?", (seq, seq)
        )
        return row["hash"] if row is not None else None

    # -- reading --------------------------------------------------------------------------

    def head(self) -> dict[str, Any] | None:
        row = self.state.one("SELECT seq, hash, ts FROM audit_head WHERE id = 1")
        return dict(row) if row else None

    def _where(self, agent: str | None, action: str | None, since: float | None, after_seq: int) -> tuple[str, list[Any]]:
        sql, params = " WHERE seq > ?", [after_seq]
        if agent:
            sql += " AND actor = ?"
            params.append(agent)
        if action:
            sql += " AND (action = ? OR action LIKE ?)"
            params += [action, action + ".%"]
        if since is not None:
            sql += " AND ts >= ?"
            params.append(since)
        return sql, params

    def entries(
        self,
        *,
        agent: str | None = None,
        action: str | None = None,
        since: float | None = None,
        after_seq: int = 0,
        limit: int | None = None,
        offset: int = 0,
        newest_first: bool = True,
    ) -> list[dict[str, Any]]:
        """Entries as dicts, newest first by default (the API's order)."""
        where, params = self._where(agent, action, since, after_seq)
        sql = "SELECT * FROM audit_log" + where + (" ORDER BY seq DESC" if newest_first else " ORDER BY seq")
        sql += " LIMIT ? OFFSET ?"
        params += [limit if limit else -1, max(0, offset)]
        return [msgspec.to_builtins(_row_entry(r)) for r in self.state.all(sql, params)]

    def count(self, *, agent: str | None = None, action: str | None = None, since: float | None = None) -> int:
        where, params = self._where(agent, action, since, 0)
        row = self.state.one("SELECT COUNT(*) AS n FROM audit_log" + where, params)
        return int(row["n"]) if row else 0

    def export(self, *, agent: str | None = None, since: float | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Entries oldest first (for ``oxios audit export`` and the API)."""
        return self.entries(agent=agent, since=since, limit=limit, newest_first=False)

    def tail(self, n: int = 20, agent: str | None = None) -> list[dict[str, Any]]:
        return list(reversed(self.entries(agent=agent, limit=n)))

    def flush(self) -> dict[str, Any]:
        """Write a checkpoint now (``POST /api/audit/flush``)."""
        return self.checkpoint() or {"tree_size": 0}

    def get(self, seq: int) -> AuditEntry:
        row = self.state.one("SELECT * FROM audit_log WHERE seq = ?", (seq,))
        if row is None:
            raise LookupError(f"no audit entry {seq}")
        return _row_entry(row)

    def _leaves(self, upto: int, after: int = 0) -> list[bytes]:
        """Entry hashes after..upto (pruned ones from audit_leaves), in seq order."""
        rows = self.state.all(
            "SELECT seq, hash FROM audit_leaves WHERE seq > ? AND seq <= ? UNION ALL SELECT seq, hash FROM audit_log"
            " WHERE seq > ? AND seq <= ? AND seq NOT IN (SELECT seq FROM audit_leaves) ORDER BY seq",
            (after, upto, after, upto),
        )
        return [bytes.fromhex(r["hash"]) for r in rows]

    # -- checkpoints and proofs ------------------------------------------------------------

    def checkpoint(self) -> dict[str, Any] | None:
        """Record the Merkle root over every entry so far (no-op when nothing is new)."""
        head = self.head()
        if head is None:
            return None
        last = self.last_checkpoint()
        if last is not None and last["tree_size"] >= head["seq"]:
            return last
        frontier = self._frontier
        if frontier is None or frontier.size > head["seq"]:
            frontier = self._frontier = merkle.Frontier()
        # Catch up with entries appended since (by this or another process): O(new * log n).
        for leaf in self._leaves(head["seq"], after=frontier.size):
            frontier.push(leaf)
        root = frontier.root().hex()
        self.state.execute(
            "INSERT INTO audit_checkpoints(tree_size, last_seq, head_hash, root, created) VALUES (?, ?, ?, ?, ?)",
            (frontier.size, head["seq"], head["hash"], root, time.time()),
        )
        if self.events is not None:
            self.events.publish("audit.checkpoint", tree_size=frontier.size, root=root)
        return self.last_checkpoint()

    def last_checkpoint(self) -> dict[str, Any] | None:
        row = self.state.one("SELECT * FROM audit_checkpoints ORDER BY id DESC LIMIT 1")
        return dict(row) if row is not None else None

    def checkpoints(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.state.all("SELECT * FROM audit_checkpoints ORDER BY id")]

    def proof(self, seq: int) -> dict[str, Any]:
        """An inclusion proof of entry ``seq`` against the newest checkpoint that covers it."""
        cp = self.state.one("SELECT * FROM audit_checkpoints WHERE tree_size >= ? ORDER BY id DESC LIMIT 1", (seq,))
        if cp is None:
            self.checkpoint()
            cp = self.state.one("SELECT * FROM audit_checkpoints WHERE tree_size >= ? ORDER BY id DESC LIMIT 1", (seq,))
        if cp is None or seq < 1:
            raise LookupError(f"no audit entry {seq}")
        leaves = self._leaves(cp["tree_size"])
        entry = None
        row = self.state.one("SELECT * FROM audit_log WHERE seq = ?", (seq,))
        if row is not None:
            entry = msgspec.to_builtins(_row_entry(row))
        return {
            "seq": seq,
            "leaf": leaves[seq - 1].hex(),
            "entry": entry,
            "tree_size": cp["tree_size"],
            "checkpoint_id": cp["id"],
            "root": cp["root"],
            "path": [h.hex() for h in merkle.inclusion_path(leaves, seq - 1)],
        }

    def verify_proof(self, proof: dict[str, Any]) -> tuple[bool, str]:
        """Check a proof: the entry hashes to the leaf, the path leads to the root, the root is recorded."""
        try:
            leaf = bytes.fromhex(proof["leaf"])
            computed = merkle.root_from_path(
                leaf, int(proof["seq"]) - 1, int(proof["tree_size"]), [bytes.fromhex(h) for h in proof["path"]]
            )
        except (KeyError, ValueError, TypeError) as err:
            return False, f"malformed proof: {err}"
        if computed.hex() != proof["root"]:
            return False, "the path does not lead to the stated root"
        entry = proof.get("entry")
        if entry:
            digest = entry_hash(
                entry["seq"],
                entry["ts"],
                entry["actor"],
                entry["action"],
                entry["resource"],
                entry["allowed"],
                entry["reason"],
                canonical_json(entry["metadata"]),
                entry["prev_hash"],
            )
            if digest != proof["leaf"] or entry["seq"] != proof["seq"]:
                return False, "the entry does not hash to the proven leaf"
        recorded = self.state.one(
            "SELECT root FROM audit_checkpoints WHERE tree_size = ? ORDER BY id DESC LIMIT 1", (proof["tree_size"],)
        )
        if recorded is None or recorded["root"] != proof["root"]:
            return False, "the root is not a checkpoint recorded in this audit log"
        return True, f"entry {proof['seq']} is included in checkpoint root {proof['root'][:16]}..."

    # -- verification ---------------------------------------------------------------------

    def verify(self) -> VerifyReport:
        """Walk the chain; report the first entry whose hash, link, order or time is wrong."""
        rows = self.state.all("SELECT * FROM audit_log ORDER BY seq")
        pruned = self.state.all("SELECT seq, hash FROM audit_leaves ORDER BY seq")
        cps = self.checkpoints()

        def bad(seq: int | None, problem: str, detail: str) -> VerifyReport:
            return VerifyReport(
                ok=False,
                entries=len(rows),
                first_seq=rows[0]["seq"] if rows else None,
                last_seq=rows[-1]["seq"] if rows else None,
                checkpoints=len(cps),
                bad_seq=seq,
                problem=problem,
                detail=detail,
            )

        expected_seq = 1
        prev_hash, prev_ts = GENESIS, 0.0
        # Roots at every checkpoint size, computed while walking: O(n log n) for all checkpoints.
        frontier, wanted, roots = merkle.Frontier(), {cp["tree_size"] for cp in cps}, {}

        def grow(digest: str) -> None:
            frontier.push(bytes.fromhex(digest))
            if frontier.size in wanted:
                roots[frontier.size] = frontier.root().hex()

        for leaf in pruned:
            if leaf["seq"] != expected_seq:
                return bad(expected_seq, "missing", f"pruned leaf {expected_seq} is missing")
            prev_hash, expected_seq = leaf["hash"], expected_seq + 1
            grow(leaf["hash"])
        now = time.time()
        for row in rows:
            seq = row["seq"]
            if seq > expected_seq:
                return bad(expected_seq, "missing", f"entry {expected_seq} is missing (next present is {seq})")
            if row["prev_hash"] != prev_hash:
                return bad(seq, "link", f"entry {seq} does not link to the hash of entry {seq - 1}")
            digest = entry_hash(
                seq,
                row["ts"],
                row["actor"],
                row["action"],
                row["resource"],
                bool(row["allowed"]),
                row["reason"],
                row["metadata"],
                row["prev_hash"],
            )
            if digest != row["hash"]:
                return bad(seq, "hash", f"entry {seq} was changed after it was written (hash mismatch)")
            if row["ts"] < prev_ts:
                return bad(seq, "order", f"entry {seq} is older than entry {seq - 1}")
            if row["ts"] > now + _FUTURE_SLACK_SECS:
                return bad(seq, "time", f"entry {seq} is dated in the future")
            prev_hash, prev_ts, expected_seq = row["hash"], row["ts"], seq + 1
            grow(row["hash"])
        head = self.head()
        last_seq = expected_seq - 1
        if head is not None and (head["seq"] != last_seq or head["hash"] != prev_hash):
            if head["seq"] > last_seq:
                return bad(last_seq + 1, "missing", f"entries {last_seq + 1}..{head['seq']} are missing at the end")
            return bad(head["seq"], "link", "the recorded head does not match the last entry")
        for cp in cps:
            if cp["tree_size"] > last_seq:
                return bad(
                    last_seq + 1, "missing", f"checkpoint {cp['id']} covers {cp['tree_size']} entries, only {last_seq} exist"
                )
            if roots.get(cp["tree_size"]) != cp["root"]:
                return bad(
                    cp["last_seq"], "checkpoint", f"checkpoint {cp['id']} root does not match entries 1..{cp['tree_size']}"
                )
        try:
            anchor = self.anchor()
        except ValueError as err:
            return bad(None, "anchor", str(err))
        if anchor is not None:
            anchor_seq, anchor_hash = anchor
            if anchor_seq > last_seq:
                return bad(
                    last_seq + 1,
                    "missing",
                    f"entries {last_seq + 1}..{anchor_seq} are missing at the end: the head recorded outside the "
                    f"database ({self.anchor_path}) is entry {anchor_seq}",
                )
            if anchor_seq >= 1 and self._hash_at(anchor_seq) != anchor_hash:
                return bad(anchor_seq, "link", f"entry {anchor_seq} is not the one recorded outside the database")
        return VerifyReport(
            ok=True,
            entries=len(rows),
            first_seq=rows[0]["seq"] if rows else None,
            last_seq=last_seq or None,
            checkpoints=len(cps),
            detail=f"{last_seq} entries, chain intact",
        )

    # -- pruning ------------------------------------------------------------------------------

    def prune(self, keep: int) -> int:
        """Delete all but the newest ``keep`` entries, anchored by a fresh checkpoint."""
        cp = self.checkpoint()
        if cp is None:
            return 0
        below = cp["last_seq"] - keep + 1
        if below <= 1:
            return 0
        with self.state.transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO audit_leaves(seq, hash) SELECT seq, hash FROM audit_log WHERE seq < ?", (below,))
            conn.execute(
                "INSERT INTO audit_prune(id, below) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET below = excluded.below", (below,)
            )
            removed = conn.execute("DELETE FROM audit_log WHERE seq < ?", (below,)).rowcount
        self.append(
            "system",
            "audit.prune",
            f"seq<{below}",
            True,
            "pruned entries; hashes kept, anchored by a checkpoint",
            {"removed": removed, "checkpoint": cp["id"]},
        )
        return removed

    # -- service --------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        head = self.head()
        return {"healthy": True, "detail": None, "entries": head["seq"] if head else 0, "checkpoints": len(self.checkpoints())}

    def stop(self) -> None:
        try:
            self.checkpoint()
        except Exception:  # shutdown must go on even if the store is gone
            pass


def _parse_anchor(raw: bytes) -> tuple[int, str] | None:
    parts = raw.decode("ascii", "replace").split()
    if len(parts) != 2 or not parts[0].isdigit() or len(parts[1]) != 64:
        return None
    return int(parts[0]), parts[1]


def start(kernel: Any) -> AuditLog:
    cfg = kernel.config.audit
    log = AuditLog(kernel.state, checkpoint_every=cfg.checkpoint_every, enabled=cfg.enabled, events=kernel.events)
    log.adopt_anchor()
    if cfg.retain_entries:
        head = log.head()
        if head and head["seq"] > cfg.retain_entries * 2:
            log.prune(cfg.retain_entries)
    kernel.expose("audit.verify", lambda: msgspec.to_builtins(log.verify()))
    kernel.expose("audit.tail", log.tail)
    kernel.expose("audit.export", log.export)
    kernel.expose("audit.proof", log.proof)
    return log
