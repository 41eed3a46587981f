"""Ranking: FTS5 query building, reciprocal rank fusion, weighting, MMR, and why."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from oxios_hookspecs import MemoryRecord

from .decay import DAY
from .embedder import tokenize

RRF_K = 60  # the constant from Cormack et al.; damps the head of each list


def _prefix(word: str) -> str:
    """A crude stem for prefix matching: porter maps "deploy" to "deploi" but
    "deployments" to "deploy", so exact stems alone miss obvious matches."""
    if len(word) >= 8:
        return word[:6]
    if len(word) >= 6:
        return word[:5]
    return ""


COMMON_ABOVE = 0.08  # words in more than this share of memories barely rank but cost a lot
PRUNE_COMMON_FROM = 5000  # corpus size from which common query words are dropped


def fts_query(query: str, doc_fraction: Callable[[str], float] | None = None) -> str:
    """A safe FTS5 MATCH expression: each word quoted (no operator injection), OR-ed,
    plus a prefix term for long words (served by the FTS5 prefix index). With corpus
    statistics, very common words are dropped while rarer ones remain."""
    words = list(dict.fromkeys(tokenize(query)))[:32]
    if doc_fraction is not None and len(words) > 1:
        rare = [w for w in words if doc_fraction(w) <= COMMON_ABOVE]
        words = rare or [min(words, key=doc_fraction)]
    terms: list[str] = []
    for w in words:
        terms.append('"' + w.replace('"', '""') + '"')
        stem = _prefix(w)
        if stem:
            terms.append('"' + stem.replace('"', '""') + '"*')
    return " OR ".join(dict.fromkeys(terms))


@dataclass
class Candidate:
    key: int
    keyword_rank: int | None = None
    keyword_score: float = 0.0
    vector_rank: int | None = None
    cosine: float = 0.0
    score: float = 0.0
    notes: list[str] = field(default_factory=list)


def fuse(keyword: list[tuple[int, float]], vector: list[tuple[int, float]]) -> dict[int, Candidate]:
    """Reciprocal rank fusion of two best-first lists of (key, score)."""
    out: dict[int, Candidate] = {}
    for rank, (key, score) in enumerate(keyword, start=1):
        c = out.setdefault(key, Candidate(key))
        c.keyword_rank, c.keyword_score = rank, score
        c.score += 1.0 / (RRF_K + rank)
    for rank, (key, cos) in enumerate(vector, start=1):
        c = out.setdefault(key, Candidate(key))
        c.vector_rank, c.cosine = rank, cos
        c.score += 1.0 / (RRF_K + rank)
    return out


def boost(record: MemoryRecord, now: float) -> float:
    """Mild importance and recency weighting: relevance still decides, these break near-ties."""
    recency = math.exp(-max(0.0, now - record.accessed) / (30 * DAY))
    return 1.0 + 0.2 * (record.importance - 0.5) + 0.1 * recency + (0.05 if record.pinned else 0.0)


def matched_terms(query: str, content: str) -> list[str]:
    """Query words found in the content (prefix match, so "deploys" finds "deployment")."""
    words = set(tokenize(content))
    found = []
    for q in dict.fromkeys(tokenize(query)):
        stem = q[:5] if len(q) > 5 else q
        if any(w.startswith(stem) for w in words):
            found.append(q)
    return found


def explain(c: Candidate, query: str, record: MemoryRecord, mode: str) -> str:
    parts = []
    if c.keyword_rank is not None:
        terms = matched_terms(query, record.content + " " + record.name + " " + record.category)
        shown = ", ".join(repr(t) for t in terms[:6]) or "the query"
        parts.append(f"keyword: matched {shown} (BM25 #{c.keyword_rank})")
    if c.vector_rank is not None:
        parts.append(f"semantic: cosine {c.cosine:.2f} (#{c.vector_rank})")
    if mode == "hybrid":
        parts.append("fused by RRF" + (" from both" if c.keyword_rank and c.vector_rank else ""))
    parts.extend(c.notes)
    return "; ".join(parts)


def mmr(candidates: list[Candidate], vectors: dict[int, np.ndarray], k: int, lam: float = 0.7) -> list[Candidate]:
    """Maximal marginal relevance: drop near-duplicates in favour of diverse results."""
    if not candidates:
        return []
    top = max(c.score for c in candidates) or 1.0
    chosen: list[Candidate] = []
    pool = list(candidates)
    while pool and len(chosen) < k:
        best, best_value = None, -math.inf
        for c in pool:
            v = vectors.get(c.key)
            redundancy = 0.0
            if v is not None and chosen:
                redundancy = (
                    max(float(v @ vectors[s.key]) for s in chosen if s.key in vectors)
                    if any(s.key in vectors for s in chosen)
                    else 0.0
                )
            value = lam * (c.score / top) - (1 - lam) * redundancy
            if value > best_value:
                best, best_value = c, value
        assert best is not None
        if best.vector_rank is not None or best.keyword_rank is not None:
            chosen.append(best)
        pool.remove(best)
    return chosen
