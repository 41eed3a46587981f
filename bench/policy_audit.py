"""Policy and audit benchmark (not a test): `kernel.check_action` throughput and `audit.verify()` time.

    .venv/bin/python bench/policy_audit.py            # 1000 checks per kind; verify at 10k and 100k entries
    .venv/bin/python bench/policy_audit.py --quick    # 300 checks per kind; verify at 5k and 10k entries

`check_action` asks every policy (rbac, exec rules, path sandbox, SSRF) and
appends the decision to the hash-linked audit chain. Baselines in the same run:
a bare SQLite INSERT (autocommit, same pragmas: WAL, synchronous=NORMAL) into
a table shaped like audit_log, in the same temporary folder; and, for verify,
a plain `SELECT * FROM audit_log ORDER BY seq` over the same rows. URL actions
use IP literals, so no DNS lookup is timed.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sqlite3
import time
from pathlib import Path
from typing import Any

from _common import Sample, fmt_secs, header, machine_line, print_rows, temp_home, time_async, time_sync

from oxios.security.engine import evaluate
from oxios.testing import make_kernel_factory
from oxios_hookspecs import Action

AUDIT_SHAPED_TABLE = """
CREATE TABLE bench_log (
    seq INTEGER PRIMARY KEY, ts REAL NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, resource TEXT NOT NULL,
    allowed INTEGER NOT NULL, reason TEXT NOT NULL, metadata TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL
)
"""
METADATA = '{"policy":"path","role":"user","session":"","tool":"","verdict":"allow","votes":[]}'


def bare_insert_baseline(folder: Path, n: int) -> Sample:
    """One autocommitted INSERT per call, as cheap as a durable append can be here."""
    conn = sqlite3.connect(folder / "baseline.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(AUDIT_SHAPED_TABLE)
    counter = iter(range(1, n + 1))

    def insert() -> None:
        seq = next(counter)
        conn.execute(
            "INSERT INTO bench_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (seq, time.time(), "system", "policy.path", "read /tmp/x", 1, "inside the workspace", METADATA, "0" * 64, "f" * 64),
        )

    try:
        return time_sync("baseline: bare SQLite INSERT (autocommit)", insert, n)
    finally:
        conn.close()


def actions(workspace: Path) -> list[tuple[str, Action]]:
    (workspace / "notes.txt").write_text("hello\n")
    return [
        ("path read, inside workspace (allow)", Action(kind="path", path=str(workspace / "notes.txt"), access="read")),
        ("path read /etc/shadow (deny)", Action(kind="path", path="/etc/shadow", access="read")),
        ("path write, inside workspace (allow)", Action(kind="path", path=str(workspace / "out.txt"), access="write")),
        ("exec `ls -la notes.txt` (allow)", Action(kind="exec", argv=["ls", "-la", "notes.txt"], cwd=str(workspace))),
        ("exec `rm -rf /` (deny)", Action(kind="exec", argv=["rm", "-rf", "/"], cwd=str(workspace))),
        ("url http://93.184.215.14/ (allow)", Action(kind="url", url="http://93.184.215.14/index.html")),
        ("url http://169.254.169.254/ (deny)", Action(kind="url", url="http://169.254.169.254/latest/meta-data/")),
    ]


async def bench_checks(kernel: Any, n: int, folder: Path) -> None:
    context = kernel.context(agent_id="bench-agent", session_id="bench-session")
    audit = kernel.service("audit")
    base = bare_insert_baseline(folder, n)
    rows: list[tuple[Sample, Sample | None]] = [(base, None)]
    appended = iter(range(n))

    def append() -> None:
        audit.append(
            "bench-agent", "policy.path", f"read /tmp/{next(appended)}", True, "inside the workspace", {"verdict": "allow"}
        )

    rows.append((time_sync("audit.append alone (hash chain, checkpoints)", append, n), base))
    verdicts: list[str] = []
    for label, action in actions(kernel.paths.workspace):
        verdict = await kernel.check_action(action, context)
        verdicts.append(f"{label}: {verdict.verdict} by {verdict.policy} ({verdict.reason[:70]})")

        async def check(action: Action = action) -> None:
            await kernel.check_action(action, context)

        async def vote(action: Action = action) -> None:
            await evaluate(kernel, action, context)

        rows.append((await time_async(f"check_action: {label}", check, n), base))
        rows.append((await time_async(f"  policies only, no audit: {label}", vote, n), base))
    header(f"kernel.check_action, {n} calls each (sequential; includes the audit append)")
    print_rows(rows)
    print()
    for line in verdicts:
        print("verdict  " + line)


def fill_audit(audit: Any, target: int) -> Sample:
    """Append entries until the chain holds ``target``, timing each append (checkpoints included)."""
    head = audit.head()
    durations: list[float] = []
    start = time.perf_counter()
    for i in range((head["seq"] if head else 0), target):
        t0 = time.perf_counter()
        audit.append("bench-agent", "policy.exec", f"ls -la file{i}.txt", i % 7 != 0, "allowed by exec rules", {"n": i})
        durations.append(time.perf_counter() - t0)
    return Sample("audit.append while filling", durations, time.perf_counter() - start)


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def tenth_means(durations: list[float]) -> str:
    """Mean append time over the first and last tenth: does appending slow down as the chain grows?"""
    tenth = max(1, len(durations) // 10)
    first, last = sum(durations[:tenth]) / tenth, sum(durations[-tenth:]) / tenth
    return f"append mean {fmt_secs(first)} (first tenth) -> {fmt_secs(last)} (last tenth)"


def bench_verify(kernel: Any, sizes: list[int], repeats: int) -> None:
    audit = kernel.service("audit")
    conn = kernel.state.connect()  # a connection of its own for the baseline's plain SELECT
    rows: list[tuple[Sample, Sample | None]] = []
    notes: list[str] = []
    reports: list[Any] = []
    for size in sizes:
        fill = fill_audit(audit, size)
        head = audit.head()
        entries = head["seq"] if head else 0

        def select_all() -> None:
            conn.execute("SELECT * FROM audit_log ORDER BY seq").fetchall()

        rss_before = max_rss_mb()  # verify runs before the baseline, so the peak it reaches is its own
        sample = time_sync(f"audit.verify(), {entries} entries", lambda: reports.append(audit.verify()), repeats)
        rss_after = max_rss_mb()
        base = time_sync(f"baseline: SELECT * ORDER BY seq, {entries} rows", select_all, repeats)
        rows += [(base, None), (sample, base)]
        report = reports[-1]
        notes.append(
            f"{entries} entries: verify ok={report.ok}, {report.checkpoints} checkpoints, "
            f"{fmt_secs(sample.p50 / max(1, entries))} per entry, peak RSS {rss_before:.0f} -> {rss_after:.0f} MB | "
            f"filling: {len(fill.durations)} appends in {fmt_secs(fill.wall)}, p50 {fmt_secs(fill.p50)}, "
            f"p99 {fmt_secs(fill.p99)}, max {fmt_secs(max(fill.durations, default=0.0))}; {tenth_means(fill.durations)}"
        )
    conn.close()
    header(f"audit.verify() on a fresh chain, {repeats} runs each")
    print_rows(rows, latency="p90")
    print()
    for line in notes:
        print(line)


async def main_async(checks: int, sizes: list[int], repeats: int) -> None:
    with temp_home() as home:
        async with make_kernel_factory(home)() as kernel:
            await bench_checks(kernel, checks, home.parent)
    with temp_home() as home:  # a fresh chain, so it holds exactly the sizes asked for
        async with make_kernel_factory(home)() as kernel:
            bench_verify(kernel, sizes, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="300 checks per kind; verify at 5k and 10k entries")
    parser.add_argument("--checks", type=int, default=None)
    args = parser.parse_args()
    checks = args.checks or (300 if args.quick else 1000)
    sizes = [5_000, 10_000] if args.quick else [10_000, 100_000]
    print(f"policy/audit benchmark | {machine_line()}")
    asyncio.run(main_async(checks, sizes, repeats=3))


if __name__ == "__main__":
    main()
