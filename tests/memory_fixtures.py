"""Shared fixtures for the memory tests: a real SQLite store, the hashing embedder, a fake clock."""

from __future__ import annotations

from pathlib import Path

from oxios.memory.embedder import HashingEmbedder
from oxios.memory.store import SQLiteMemoryBackend
from oxios.state import StateStore

T0 = 1_800_000_000.0  # a fixed "now" for tests (2027-01-15)
DAY = 86400.0


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, days: float) -> None:
        self.now += days * DAY


async def open_backend(tmp: Path, clock: FakeClock | None = None, *, dim: int = 256) -> SQLiteMemoryBackend:
    """A started backend over tmp/state.db and tmp/memory (reopening the same tmp = a restart)."""
    state = StateStore(tmp / "state.db")
    backend = SQLiteMemoryBackend(state, HashingEmbedder(dim=dim), tmp / "memory", clock=clock or FakeClock())
    await backend.start()
    await backend.wait_ready()
    return backend


async def close_backend(backend: SQLiteMemoryBackend, *, crash: bool = False) -> None:
    """Stop cleanly, or "crash": drop everything without saving the index."""
    if not crash:
        await backend.stop()
    backend.state.close()


# A labelled corpus: topics with paraphrase-like variations; queries name their relevant topic.
TOPICS: dict[str, list[str]] = {
    "deploy": [
        "Production deploys happen every Friday at noon after the release checklist",
        "We ship the deployment to production on Fridays around 12:00",
        "The release pipeline deploys the main branch to prod weekly on Friday",
    ],
    "database": [
        "The billing service stores invoices in a Postgres database",
        "Invoices for billing live in PostgreSQL tables",
        "Postgres backups for the billing database run nightly",
    ],
    "editor": [
        "The user prefers vim keybindings in every editor",
        "Always configure the editor with vim mode for the user",
        "The user likes modal editing like vim",
    ],
    "travel": [
        "The user is flying to Lisbon for a conference in March",
        "Conference trip to Lisbon booked for March, flights confirmed",
        "Hotel in Lisbon reserved near the conference venue",
    ],
    "pets": [
        "The user has a cat named Miso who is three years old",
        "Miso the cat needs her vaccination in spring",
        "The user's cat Miso likes tuna treats",
    ],
}
QUERIES: list[tuple[str, str]] = [
    ("when do we deploy to production", "deploy"),
    ("which database holds billing invoices", "database"),
    ("editor keybindings preference", "editor"),
    ("trip to Lisbon conference", "travel"),
    ("what is the name of the user's cat", "pets"),
]
