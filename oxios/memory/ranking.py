"""Ranking: FTS5 query building, fusion of keyword and vector evidence, weighting, MMR, and why.

Hybrid search fuses by confidence rather than by rank. A keyword hit's
evidence is the share of the query's IDF weight it matches (a memory that
shares only "user" with a question about a user's job covers little of it);
a vector hit's is how many standard deviations its cosine stands above the
cosine of a typical stored memory, which puts every embedder on one scale.
The query's best keyword coverage decides how far keyword evidence is
trusted at all: a query whose words the memories do not contain is left to
the vectors. Reciprocal rank fusion, which weighs both lists alike however
weak their hits, stays available as the benchmarks' baseline.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from oxios_hookspecs import MemoryRecord

from .decay import DAY
from .embedder import stem, tokenize

RRF_K = 60  # the constant from Cormack et al.; damps the head of each list
CERTAIN_SIGMAS = 8.0  # a cosine this many standard deviations above a typical memory's counts as full evidence
TIE_BREAK = 1e-3  # vector evidence still orders keyword hits that are otherwise equal
MAX_QUERY_WORDS = 32


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


def query_words(query: str) -> list[str]:
    """The query's distinct words, stopwords dropped, at most MAX_QUERY_WORDS."""
    return list(dict.fromkeys(tokenize(query)))[:MAX_QUERY_WORDS]


def _word_terms(word: str) -> list[str]:
    """One word quoted (no operator injection), plus a prefix term for long words
    (served by the FTS5 prefix index)."""
    terms = ['"' + word.replace('"', '""') + '"']
    head = _prefix(word)
    if head:
        terms.append('"' + head.replace('"', '""') + '"*')
    return terms


def word_match(word: str) -> str:
    """The FTS5 expression keyword search uses for one word."""
    return " OR ".join(_word_terms(word))


def fts_query(query: str, doc_fraction: Callable[[str], float] | None = None) -> str:
    """A safe FTS5 MATCH expression: each word quoted, OR-ed, plus a prefix term for
    long words. With corpus statistics, very common words are dropped while rarer ones remain."""
    words = query_words(query)
    if doc_fraction is not None and len(words) > 1:
        rare = [w for w in words if doc_fraction(w) <= COMMON_ABOVE]
        words = rare or [min(words, key=doc_fraction)]
    return " OR ".join(dict.fromkeys(term for w in words for term in _word_terms(w)))


def idf(count: float, total: float) -> float:
    """Inverse document frequency, never negative: rare words weigh most, a word no memory holds most of all."""
    return math.log(1.0 + total / (count + 0.5))


@dataclass
class QueryTerms:
    """The query's words with their IDF weights (from the memories' document counts)."""

    weights: dict[str, float]

    @classmethod
    def build(cls, words: Iterable[str], counts: Mapping[str, float], total: float) -> QueryTerms:
        return cls({w: idf(counts.get(w, 0.0), total) for w in words})

    def coverage(self, matched: Iterable[str]) -> float:
        """Share of the query's weight that the ``matched`` words carry (0..1). FTS5 matched
        at least one word even when the word-by-word check finds none (its stemmer reaches
        further), so such a hit is credited with the lightest word."""
        whole = sum(self.weights.values())
        if whole <= 0:
            return 0.0
        found = sum(self.weights.get(w, 0.0) for w in set(matched))
        return (found or min(self.weights.values())) / whole


@dataclass
class Candidate:
    key: int
    keyword_rank: int | None = None
    keyword_score: float = 0.0  # BM25 (higher is better)
    matched: list[str] | None = None  # query words the memory contains
    coverage: float = 0.0  # share of the query's IDF weight they carry
    vector_rank: int | None = None
    cosine: float | None = None
    sigmas: float | None = None  # cosine above a typical memory's, in standard deviations
    keyword_weight: float | None = None  # the fusion's trust in keyword evidence for this query
    score: float = 0.0
    notes: list[str] = field(default_factory=list)


def collect(keyword: list[tuple[int, float]], vector: list[tuple[int, float]]) -> dict[int, Candidate]:
    """The union of two best-first lists of (key, score): BM25 and cosine."""
    out: dict[int, Candidate] = {}
    for rank, (key, score) in enumerate(keyword, start=1):
        c = out.setdefault(key, Candidate(key))
        c.keyword_rank, c.keyword_score = rank, score
    for rank, (key, cos) in enumerate(vector, start=1):
        c = out.setdefault(key, Candidate(key))
        c.vector_rank, c.cosine = rank, cos
    return out


def fuse_rrf(candidates: Iterable[Candidate]) -> None:
    """Reciprocal rank fusion (the benchmarks' baseline): each list's rank alone, however weak the hit."""
    for c in candidates:
        c.score = sum(1.0 / (RRF_K + rank) for rank in (c.keyword_rank, c.vector_rank) if rank is not None)


def keyword_evidence(c: Candidate, top_bm25: float) -> float:
    """0..1: coverage squared (half the query's weight is far weaker evidence than all of
    it), scaled by BM25 relative to the best hit to keep BM25's order among equals."""
    if c.keyword_rank is None or top_bm25 <= 0:
        return 0.0
    return c.coverage**2 * math.sqrt(max(0.0, c.keyword_score) / top_bm25)


def vector_evidence(c: Candidate, min_similarity: float = 0.0) -> float:
    """0..1: standard deviations above a typical memory, CERTAIN_SIGMAS and more counting fully."""
    if c.sigmas is None or c.cosine is None or c.cosine < min_similarity or c.cosine <= 0.0:
        return 0.0
    return min(1.0, max(0.0, c.sigmas / CERTAIN_SIGMAS))


def fuse(candidates: Iterable[Candidate], min_similarity: float = 0.0) -> None:
    """Convex combination of keyword and vector evidence, weighted by the query's best keyword coverage."""
    pool = list(candidates)
    listed = [c for c in pool if c.keyword_rank is not None]
    top_bm25 = max((c.keyword_score for c in listed), default=0.0)
    # Without vectors (index rebuilding, embedder failing) keyword evidence is all there is.
    has_vectors = any(c.sigmas is not None for c in pool)
    weight = max((c.coverage for c in listed), default=0.0) if has_vectors else 1.0
    for c in pool:
        c.keyword_weight = weight
        vector = vector_evidence(c, min_similarity)
        c.score = weight * keyword_evidence(c, top_bm25) + (1.0 - weight + TIE_BREAK) * vector


def boost(record: MemoryRecord, now: float) -> float:
    """Mild importance and recency weighting: relevance still decides, these break near-ties."""
    recency = math.exp(-max(0.0, now - record.accessed) / (30 * DAY))
    return 1.0 + 0.2 * (record.importance - 0.5) + 0.1 * recency + (0.05 if record.pinned else 0.0)


def matched_terms(query: str, content: str) -> list[str]:
    """Query words found in the content: by stem and prefix, as FTS5's porter stemmer and
    prefix terms find them ("deploys" finds "deployment", "names" finds "name")."""
    words = set(tokenize(content))
    stems = words | {stem(w) for w in words}
    found = []
    for q in query_words(query):
        root = stem(q)
        head = root[:5] if len(root) > 5 else root
        if any(w.startswith(head) for w in stems):
            found.append(q)
    return found


def searchable_text(record: MemoryRecord) -> str:
    """What keyword search indexes: content, name and category."""
    return f"{record.content} {record.name} {record.category}"


def explain(c: Candidate, query: str, record: MemoryRecord, mode: str) -> str:
    parts = []
    if c.keyword_rank is not None:
        terms = c.matched if c.matched is not None else matched_terms(query, searchable_text(record))
        shown = ", ".join(repr(t) for t in terms[:6]) or "the query"
        share = f", {c.coverage:.0%} of the query's weight" if c.matched is not None else ""
        parts.append(f"keyword: matched {shown} (BM25 #{c.keyword_rank}{share})")
    if c.cosine is not None and (c.vector_rank is not None or mode == "hybrid"):
        where = [f"#{c.vector_rank}"] if c.vector_rank is not None else []
        if c.sigmas is not None and mode == "hybrid":
            where.append(f"{c.sigmas:.1f}σ above a typical memory")
        parts.append(f"semantic: cosine {c.cosine:.2f}" + (f" ({', '.join(where)})" if where else ""))
    if mode == "hybrid":
        both = " from both" if c.keyword_rank is not None and c.vector_rank is not None else ""
        if c.keyword_weight is None:
            parts.append(f"fused by RRF{both}")
        else:
            parts.append(f"fused{both} (keyword weight {c.keyword_weight:.2f}, vector {1.0 - c.keyword_weight:.2f})")
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
