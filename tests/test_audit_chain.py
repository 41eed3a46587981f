"""The audit chain: tampering through raw SQLite is found at the right seq; proofs; pruning."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from oxios.security.audit import AuditLog, entry_hash
from oxios.state import StateStore


@pytest.fixture
def log(tmp_path: Path) -> AuditLog:
    audit = AuditLog(StateStore(tmp_path / "state.db"), checkpoint_every=10)
    for i in range(1, 26):
        audit.append(f"agent-{i % 3}", "tool.call", f"resource-{i}", i % 4 != 0, f"reason {i}", {"i": i})
    return audit


def _raw(log: AuditLog) -> sqlite3.Connection:
    """A raw connection, as an attacker with file access would use (triggers dropped first)."""
    conn = sqlite3.connect(log.state.path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    for trigger in ("audit_log_no_update", "audit_log_no_delete", "audit_leaves_no_update"):
        conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    return conn


def _rehash(conn: sqlite3.Connection, seq: int) -> None:
    row = conn.execute("SELECT * FROM audit_log WHERE seq = ?", (seq,)).fetchone()
    digest = entry_hash(
        row["seq"],
        row["ts"],
        row["actor"],
        row["action"],
        row["resource"],
        bool(row["allowed"]),
        row["reason"],
        row["metadata"],
        row["prev_hash"],
    )
    conn.execute("UPDATE audit_log SET hash = ? WHERE seq = ?", (digest, seq))


def test_clean_chain_verifies(log: AuditLog) -> None:
    report = log.verify()
    assert report.ok and report.entries == 25 and report.checkpoints == 2 and report.bad_seq is None


def test_triggers_forbid_update_and_delete(log: AuditLog) -> None:
    conn = sqlite3.connect(log.state.path, isolation_level=None)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE audit_log SET reason = 'x' WHERE seq = 3")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM audit_log WHERE seq = 3")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM audit_checkpoints")


@pytest.mark.parametrize("seq", [1, 5, 13, 25])
@pytest.mark.parametrize(
    "column,value",
    [
        ("reason", "nothing to see"),
        ("allowed", 1),
        ("actor", "someone-else"),
        ("resource", "/etc/shadow"),
        ("metadata", '{"i":999}'),
        ("ts", 1.0),
    ],
)
def test_edit_detected_at_its_seq(log: AuditLog, seq: int, column: str, value: Any) -> None:
    conn = _raw(log)
    if column == "allowed":
        value = 1 - conn.execute("SELECT allowed FROM audit_log WHERE seq = ?", (seq,)).fetchone()[0]
    conn.execute(f"UPDATE audit_log SET {column} = ? WHERE seq = ?", (value, seq))
    report = log.verify()
    assert not report.ok and report.bad_seq == seq and report.problem == "hash"


def test_edit_with_recomputed_hash_breaks_the_next_link(log: AuditLog) -> None:
    conn = _raw(log)
    conn.execute("UPDATE audit_log SET reason = 'forged' WHERE seq = 7")
    _rehash(conn, 7)
    report = log.verify()
    assert (report.bad_seq, report.problem) == (8, "link")


def test_rewritten_suffix_caught_by_checkpoint(log: AuditLog) -> None:
    conn = _raw(log)
    conn.execute("UPDATE audit_log SET reason = 'forged' WHERE seq = 7")
    prev = conn.execute("SELECT hash FROM audit_log WHERE seq = 6").fetchone()[0]
    for seq in range(7, 26):
        conn.execute("UPDATE audit_log SET prev_hash = ? WHERE seq = ?", (prev, seq))
        _rehash(conn, seq)
        prev = conn.execute("SELECT hash FROM audit_log WHERE seq = ?", (seq,)).fetchone()[0]
    conn.execute("UPDATE audit_head SET hash = ? WHERE id = 1", (prev,))
    report = log.verify()
    assert not report.ok and report.problem == "checkpoint" and report.bad_seq == 10


@pytest.mark.parametrize("seq", [1, 9, 17])
def test_delete_detected_at_its_seq(log: AuditLog, seq: int) -> None:
    _raw(log).execute("DELETE FROM audit_log WHERE seq = ?", (seq,))
    report = log.verify()
    assert (report.bad_seq, report.problem) == (seq, "missing")


def test_delete_last_entry_detected(log: AuditLog) -> None:
    _raw(log).execute("DELETE FROM audit_log WHERE seq = 25")
    report = log.verify()
    assert (report.bad_seq, report.problem) == (25, "missing")


@pytest.mark.parametrize("seq", [2, 11, 20])
def test_reorder_detected_at_first_moved_seq(log: AuditLog, seq: int) -> None:
    conn = _raw(log)
    a = dict(conn.execute("SELECT * FROM audit_log WHERE seq = ?", (seq,)).fetchone())
    b = dict(conn.execute("SELECT * FROM audit_log WHERE seq = ?", (seq + 1,)).fetchone())
    cols = [c for c in a if c != "seq"]
    for row, target in ((b, seq), (a, seq + 1)):
        conn.execute(
            f"UPDATE audit_log SET {', '.join(f'{c} = ?' for c in cols)} WHERE seq = ?", [row[c] for c in cols] + [target]
        )
    report = log.verify()
    assert not report.ok and report.bad_seq == seq and report.problem in ("link", "hash")


@pytest.mark.parametrize("after", [3, 12])
def test_insert_detected(log: AuditLog, after: int) -> None:
    conn = _raw(log)
    for seq in range(25, after, -1):
        conn.execute("UPDATE audit_log SET seq = seq + 1 WHERE seq = ?", (seq,))
    prev = conn.execute("SELECT hash, ts FROM audit_log WHERE seq = ?", (after,)).fetchone()
    conn.execute(
        "INSERT INTO audit_log VALUES (?, ?, 'agent-x', 'tool.call', 'x', 1, 'inserted', '{}', ?, ?)",
        (after + 1, prev["ts"], prev["hash"], "ab" * 32),
    )
    report = log.verify()
    assert (report.bad_seq, report.problem) == (after + 1, "hash")


def test_consistent_insert_breaks_the_following_link(log: AuditLog) -> None:
    conn = _raw(log)
    for seq in range(25, 5, -1):
        conn.execute("UPDATE audit_log SET seq = seq + 1 WHERE seq = ?", (seq,))
    prev = conn.execute("SELECT hash, ts FROM audit_log WHERE seq = 5").fetchone()
    digest = entry_hash(6, prev["ts"], "agent-x", "tool.call", "x", True, "inserted", "{}", prev["hash"])
    conn.execute(
        "INSERT INTO audit_log VALUES (6, ?, 'agent-x', 'tool.call', 'x', 1, 'inserted', '{}', ?, ?)",
        (prev["ts"], prev["hash"], digest),
    )
    report = log.verify()
    assert (report.bad_seq, report.problem) == (7, "link")


def test_time_going_backwards_and_future_detected(log: AuditLog) -> None:
    conn = _raw(log)
    earlier = conn.execute("SELECT ts FROM audit_log WHERE seq = 3").fetchone()[0] - 100
    conn.execute("UPDATE audit_log SET ts = ? WHERE seq = 4", (earlier,))
    _rehash(conn, 4)
    assert (log.verify().bad_seq, log.verify().problem) == (4, "order")
    conn.execute("UPDATE audit_log SET ts = ? WHERE seq = 4", (time.time() + 10**6,))
    _rehash(conn, 4)
    assert (log.verify().bad_seq, log.verify().problem) == (4, "time")


def test_secrets_redacted(tmp_path: Path) -> None:
    audit = AuditLog(StateStore(tmp_path / "s.db"))
    entry = audit.append(
        "agent",
        "tool.call",
        "curl -H 'Authorization: Bearer abcdefghijklmnop'",
        True,
        "used sk-ant-abcdefghijklmnopqrstuvwxyz",
        {"api_key": "plain-secret-value", "nested": {"password": "hunter22"}, "cmd": "token=abcdef123456"},
    )
    raw = json.dumps(audit.export())
    for secret in ("abcdefghijklmnop", "sk-ant-abcdefghijklmnop", "plain-secret-value", "hunter22", "abcdef123456"):
        assert secret not in raw
    assert entry is not None and entry.metadata["api_key"] == "[REDACTED]"
    assert audit.verify().ok


def test_inclusion_proofs(log: AuditLog) -> None:
    for seq in (1, 7, 20):
        proof = log.proof(seq)
        assert proof["tree_size"] >= seq
        ok, detail = log.verify_proof(proof)
        assert ok, detail
    proof = log.proof(7)
    forged = dict(proof, entry=dict(proof["entry"], reason="forged"))
    assert not log.verify_proof(forged)[0]
    assert not log.verify_proof(dict(proof, path=proof["path"][:-1]))[0]
    assert not log.verify_proof(dict(proof, root="00" * 32))[0]
    with pytest.raises(LookupError):
        log.proof(999)


def test_checkpoint_on_stop_and_prune_keeps_verifiability(log: AuditLog) -> None:
    log.stop()
    assert log.checkpoints()[-1]["tree_size"] == 25
    removed = log.prune(keep=10)
    assert removed == 15
    report = log.verify()
    assert report.ok, report
    assert report.first_seq == 16
    ok, detail = log.verify_proof(log.proof(3))  # a pruned entry is still provable from its kept hash
    assert ok, detail
    conn = _raw(log)
    conn.execute("UPDATE audit_leaves SET hash = ? WHERE seq = 4", ("cd" * 32,))
    assert not log.verify().ok


def test_cli_verify_tail_export_proof(oxios_cli: Any, oxios_home: Path, tmp_path: Path) -> None:
    from oxios.config import load
    from oxios.kernel import Paths

    db = Paths.from_config(oxios_home, load(oxios_home / "config.toml", environ={})).db
    audit = AuditLog(StateStore(db), checkpoint_every=5)
    for i in range(12):
        audit.append("agent-a" if i % 2 else "agent-b", "tool.call", f"r{i}", True, "ok", {})
    result = oxios_cli("audit", "verify")
    assert result.exit_code == 0 and "ok" in result.output
    tail = oxios_cli("audit", "tail", "-n", "3", "--json")
    assert [e["seq"] for e in json.loads(tail.output)] == [10, 11, 12]
    export = oxios_cli("audit", "export", "--format", "jsonl", "--agent", "agent-a")
    lines = [json.loads(line) for line in export.output.splitlines()]
    assert len(lines) == 6 and all(e["actor"] == "agent-a" for e in lines)
    assert len(json.loads(oxios_cli("audit", "export", "--format", "json", "--since", "1h").output)) == 12
    proof_file = tmp_path / "proof.json"
    assert oxios_cli("audit", "proof", "4", "--output", str(proof_file)).exit_code == 0
    assert oxios_cli("audit", "verify", "--proof", str(proof_file)).exit_code == 0
    data = json.loads(proof_file.read_text())
    data["leaf"] = "00" * 32
    proof_file.write_text(json.dumps(data))
    assert oxios_cli("audit", "verify", "--proof", str(proof_file)).exit_code == 1
    _raw(audit).execute("UPDATE audit_log SET reason = 'tampered' WHERE seq = 6")
    broken = oxios_cli("audit", "verify")
    assert broken.exit_code == 1 and "entry 6" in broken.output


@pytest.mark.parametrize("size", [1, 2, 3, 7, 8, 9, 31, 64, 65])
def test_frontier_root_matches_full_tree(size: int) -> None:
    from oxios.security import merkle

    leaves = [bytes([i % 256]) * 32 for i in range(size)]
    frontier = merkle.Frontier()
    for leaf in leaves:
        frontier.push(leaf)
    assert frontier.root() == merkle.root(leaves)
    for index in range(size):
        path = merkle.inclusion_path(leaves, index)
        assert merkle.root_from_path(leaves[index], index, size, path) == frontier.root()


def test_two_writers_share_one_chain(tmp_path: Path) -> None:
    """The daemon and a CLI process append to the same database; checkpoints stay right."""
    daemon = AuditLog(StateStore(tmp_path / "state.db"), checkpoint_every=4)
    cli = AuditLog(StateStore(tmp_path / "state.db"), checkpoint_every=4)
    for i in range(30):
        (daemon if i % 3 else cli).append("x", "tool.call", str(i), True, "ok", {})
    daemon.stop()
    report = cli.verify()
    assert report.ok and report.entries == 30 and report.checkpoints >= 7, report
