"""Spaces: topic contexts inside a session, so topics do not contaminate each other.

Each space keeps a bag of keywords from its messages. A new message goes to
the space it names, else to the most similar space (cosine over keyword
counts) when the similarity passes a threshold, else, when it carries enough
words of its own, to a new space; short follow-ups ("and the second one?")
stay in the current space. The agent then sees only that space's history.
Similarity is keyword-based (no embedding model needed at run time).
"""

from __future__ import annotations

import json
import math
import re
import time
from collections import Counter
from typing import Any

from oxios_hookspecs import new_id

from ..kernel import NotFound

MIGRATIONS = [
    """
    CREATE TABLE spaces (
        id TEXT PRIMARY KEY,
        session_id TEXT NOT NULL,
        name TEXT NOT NULL,
        tag TEXT NOT NULL,
        keywords TEXT NOT NULL DEFAULT '{}',
        message_count INTEGER NOT NULL DEFAULT 0,
        created REAL NOT NULL,
        updated REAL NOT NULL
    );
    CREATE INDEX spaces_session ON spaces(session_id);
    """,
]

SIMILARITY_THRESHOLD = 0.2
MIN_NEW_TOPIC_WORDS = 4  # fewer content words than this: a follow-up, stays in the current space
MAX_KEYWORDS = 200
STOPWORDS = set(
    "a an and are as at be but by can could did do does for from had has have how i if in into is it its me my no "
    "not of on or our please so that the their them then there these this those to was we were what when where "
    "which who why will with would you your yes ok okay hi hello thanks thank just also about now let lets get "
    "show tell give make some any all more most very much one two here want need like".split()
)
EMOJI = ["🗂", "🧪", "🛠", "📚", "🔍", "💡", "📝", "🚀", "🧭", "🧩", "📦", "🔧"]


def keywords(text: str) -> Counter[str]:
    words = re.findall(r"[a-zA-Z][a-zA-Z0-9_+-]{2,}", text.lower())
    return Counter(w for w in words if w not in STOPWORDS)


def cosine(a: Counter[str], b: Counter[str]) -> float:
    if not a or not b:
        return 0.0
    dot = sum(a[w] * b.get(w, 0) for w in a)
    na = math.sqrt(sum(v * v for v in a.values()))
    nb = math.sqrt(sum(v * v for v in b.values()))
    return dot / (na * nb) if na and nb else 0.0


class Spaces:
    """Service ``spaces``: create/list/get/switch/delete/route."""

    def __init__(self, kernel: Any) -> None:
        self.kernel = kernel
        self.state = kernel.state
        self.state.migrate("spaces", MIGRATIONS)

    def _row(self, row: Any) -> dict[str, Any]:
        out = dict(row)
        out["keywords"] = json.loads(out["keywords"] or "{}")
        return out

    def list(self, session_id: str) -> list[dict[str, Any]]:
        current = self._current(session_id)
        rows = self.state.all("SELECT * FROM spaces WHERE session_id = ? ORDER BY created", (session_id,))
        return [{**self._row(r), "current": r["id"] == current} for r in rows]

    def get(self, space_id: str) -> dict[str, Any]:
        row = self.state.one("SELECT * FROM spaces WHERE id = ?", (space_id,))
        if row is None:
            raise NotFound(f"no space {space_id}")
        return self._row(row)

    def create(self, session_id: str, name: str = "", *, text: str = "") -> dict[str, Any]:
        words = keywords(text or name)
        name = name or " ".join(w for w, _ in words.most_common(3)) or "general"
        count = self.state.one("SELECT COUNT(*) AS n FROM spaces WHERE session_id = ?", (session_id,))
        emoji = EMOJI[(int(count["n"]) if count else 0) % len(EMOJI)]
        now = time.time()
        space_id = new_id()
        self.state.execute(
            "INSERT INTO spaces(id, session_id, name, tag, keywords, created, updated) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (space_id, session_id, name, f"[{emoji} {name}]", json.dumps(dict(words)), now, now),
        )
        self.kernel.publish("space.created", session_id=session_id, space_id=space_id, name=name)
        return self.get(space_id)

    def switch(self, session_id: str, space_id: str) -> dict[str, Any]:
        space = self.get(space_id)
        if space["session_id"] != session_id:
            raise NotFound(f"space {space_id} is not in session {session_id}")
        self.state.execute("UPDATE sessions SET space_id = ? WHERE id = ?", (space_id, session_id))
        return space

    def delete(self, space_id: str) -> None:
        space = self.get(space_id)
        self.state.execute("DELETE FROM spaces WHERE id = ?", (space_id,))
        self.state.execute("UPDATE sessions SET space_id = NULL WHERE id = ? AND space_id = ?", (space["session_id"], space_id))

    def _current(self, session_id: str) -> str | None:
        row = self.state.one("SELECT space_id FROM sessions WHERE id = ?", (session_id,))
        return row["space_id"] if row else None

    def route(self, session_id: str, text: str, *, space_id: str | None = None) -> dict[str, Any]:
        """The space this message belongs to (named, most similar, current, or a new one)."""
        words = keywords(text)
        if space_id:
            space = self.switch(session_id, space_id)
        else:
            spaces = self.list(session_id)
            current = next((s for s in spaces if s["current"]), None)
            scored = sorted(((cosine(words, Counter(s["keywords"])), s) for s in spaces), key=lambda p: -p[0])
            if not spaces:
                space = self.create(session_id, text=text)
            elif scored[0][0] >= SIMILARITY_THRESHOLD:
                space = scored[0][1]
            elif len(words) < MIN_NEW_TOPIC_WORDS:
                space = current or scored[0][1]
            else:
                space = self.create(session_id, text=text)
            self.switch(session_id, space["id"])
        self._learn(space, words)
        return self.get(space["id"])

    def _learn(self, space: dict[str, Any], words: Counter[str]) -> None:
        merged = Counter(space["keywords"]) + words
        top = dict(merged.most_common(MAX_KEYWORDS))
        self.state.execute(
            "UPDATE spaces SET keywords = ?, message_count = message_count + 1, updated = ? WHERE id = ?",
            (json.dumps(top), time.time(), space["id"]),
        )


def start(kernel: Any) -> Spaces:
    spaces = Spaces(kernel)
    kernel.expose("spaces.list", spaces.list)
    return spaces
