"""Hybrid search fuses keyword and vector evidence by confidence, and says why each result matched."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
from memory_fixtures import FakeClock, close_backend

from oxios.memory import ranking
from oxios.memory.ranking import Candidate, QueryTerms
from oxios.memory.store import SQLiteMemoryBackend
from oxios.state import StateStore
from oxios_hookspecs import MemoryRecord

# -- the fusion function on its own --------------------------------------------------------


def _fused(candidates: list[Candidate], rrf: bool = False) -> list[int]:
    (ranking.fuse_rrf if rrf else ranking.fuse)(candidates)
    return [c.key for c in sorted(candidates, key=lambda c: c.score, reverse=True)]


def test_confident_vectors_beat_keyword_hits_on_a_common_word() -> None:
    # Keyword search found 1 and 2 through "user" alone, a small share of the query's weight;
    # the vectors put 3 far above a typical memory, and 1 barely above one.
    candidates = [
        Candidate(1, keyword_rank=1, keyword_score=2.1, coverage=0.15, vector_rank=2, cosine=0.12, sigmas=0.6),
        Candidate(2, keyword_rank=2, keyword_score=2.0, coverage=0.15, cosine=0.05, sigmas=0.2),
        Candidate(3, vector_rank=1, cosine=0.41, sigmas=5.0),
    ]
    assert _fused(candidates)[0] == 3
    assert candidates[0].keyword_weight == 0.15
    # Reciprocal rank fusion weighs the weak keyword hit like the strong vector one: 1 (in both lists) wins.
    assert _fused([Candidate(**vars(c)) for c in candidates], rrf=True)[0] == 1


def test_confident_keyword_hits_beat_noisy_vectors() -> None:
    # 1 holds every word of the query (a code name the embedder cannot read); the vectors' best
    # guesses stand barely above a typical memory.
    candidates = [
        Candidate(1, keyword_rank=1, keyword_score=9.5, coverage=1.0, cosine=0.50, sigmas=1.0),
        Candidate(2, keyword_rank=2, keyword_score=3.0, coverage=0.3, vector_rank=2, cosine=0.61, sigmas=2.1),
        Candidate(3, vector_rank=1, cosine=0.63, sigmas=2.4),
    ]
    assert _fused(candidates) == [1, 2, 3]
    # RRF lets the memory found by both lists win, though keyword search matched a third of the query.
    assert _fused([Candidate(**vars(c)) for c in candidates], rrf=True)[0] == 2


def test_without_vectors_keyword_order_stands_and_without_keywords_vector_order() -> None:
    keyword_only = [
        Candidate(1, keyword_rank=1, keyword_score=5.0, coverage=0.2),
        Candidate(2, keyword_rank=2, keyword_score=4.0, coverage=0.2),
    ]
    assert _fused(keyword_only) == [1, 2] and keyword_only[0].keyword_weight == 1.0  # index rebuilding
    vector_only = [Candidate(5, vector_rank=2, cosine=0.2, sigmas=2.0), Candidate(4, vector_rank=1, cosine=0.3, sigmas=3.0)]
    assert _fused(vector_only) == [4, 5] and vector_only[0].keyword_weight == 0.0


def test_vector_evidence_below_the_floor_counts_for_nothing() -> None:
    below = Candidate(1, keyword_rank=1, keyword_score=1.0, coverage=0.5, cosine=0.15, sigmas=3.0)
    assert ranking.vector_evidence(below, min_similarity=0.2) == 0.0
    assert ranking.vector_evidence(below) == 3.0 / ranking.CERTAIN_SIGMAS
    assert ranking.vector_evidence(Candidate(2, cosine=0.9, sigmas=40.0)) == 1.0  # capped
    assert ranking.vector_evidence(Candidate(3, cosine=-0.1, sigmas=1.0)) == 0.0


def test_coverage_weighs_rare_words_above_common_ones() -> None:
    terms = QueryTerms.build(["user", "occupation"], {"user": 900, "occupation": 0}, total=1000)
    assert terms.weights["occupation"] > 4 * terms.weights["user"]
    assert terms.coverage(["user"]) < 0.15 < 0.85 < terms.coverage(["occupation"])
    assert terms.coverage(["user", "occupation", "user"]) == 1.0
    assert terms.coverage([]) == terms.coverage(["user"])  # an FTS5 hit matched at least the lightest word
    assert QueryTerms.build([], {}, total=10).coverage(["x"]) == 0.0


def test_matched_terms_follow_stems_and_prefixes() -> None:
    assert ranking.matched_terms("names of my kids", "My name is Dana") == ["names"]
    assert ranking.matched_terms("deploys", "the deployment ran") == ["deploys"]
    assert ranking.matched_terms("Vault secrets", "nothing related") == []


# -- through the real store -------------------------------------------------------------------


class TableEmbedder:
    """Vectors chosen by the test: listed texts get theirs, any other text a fixed pseudo-random one."""

    name = "table"
    dim = 32

    def __init__(self, table: dict[str, np.ndarray]) -> None:
        self.table = {text: v / np.linalg.norm(v) for text, v in table.items()}
        self.id = f"table-{self.dim}"

    def embed_array(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            vector = self.table.get(text)
            if vector is None:
                vector = np.random.default_rng(zlib.crc32(text.encode())).normal(size=self.dim)
                vector /= np.linalg.norm(vector)
            out[i] = vector
        return out

    async def embed(self, texts: list[str]) -> list[list[float]]:
        return self.embed_array(texts).tolist()


def _axis(i: int, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=TableEmbedder.dim) * noise
    v[i] += 1.0
    return v


async def _open(tmp_path: Path, embedder: TableEmbedder) -> SQLiteMemoryBackend:
    backend = SQLiteMemoryBackend(StateStore(tmp_path / "state.db"), embedder, tmp_path / "memory", clock=FakeClock())
    await backend.start()
    await backend.wait_ready()
    return backend


async def test_a_paraphrase_is_left_to_the_vectors_when_keywords_share_only_common_words(tmp_path: Path) -> None:
    query = "what is the user's occupation"
    answer = "Dana works as a backend engineer at a logistics company"
    embedder = TableEmbedder({query: _axis(0), answer: _axis(0, noise=0.4, seed=1)})
    b = await _open(tmp_path, embedder)
    await b.put(MemoryRecord(content=answer))
    for i in range(40):  # each shares "user" (and nothing else) with the question
        await b.put(MemoryRecord(content=f"The user asked about invoice batch {i} yesterday"))
    assert (await b.search(query, "keyword", 3))[0].record.content != answer  # keyword search is wrong
    rrf = await b.search(query, "hybrid", 3, fusion="rrf", weighting=False)
    assert rrf[0].record.content != answer  # ... and rank fusion follows it

    hits = await b.search(query, "hybrid", 3, weighting=False)
    assert hits[0].record.content == answer
    assert hits[0].why.startswith("semantic: cosine") and "σ above a typical memory" in hits[0].why
    assert "fused (keyword weight 0." in hits[0].why
    wrong = hits[1].why
    assert wrong.startswith("keyword: matched 'user' (BM25 #") and "of the query's weight" in wrong
    await close_backend(b)


async def test_a_code_name_is_left_to_keywords_when_the_vectors_guess(tmp_path: Path) -> None:
    query = "ZX81 rollout plan"
    answer = "The ZX81 rollout plan starts with the Lisbon office in March"
    decoys = [f"Office move checklist {i} for the facilities team" for i in range(30)]
    # The embedder cannot read the code name: the query lands next to the decoys.
    table = {query: _axis(1), answer: _axis(5)} | {d: _axis(1, noise=0.9, seed=i) for i, d in enumerate(decoys)}
    b = await _open(tmp_path, TableEmbedder(table))
    for text in [*decoys, answer]:
        await b.put(MemoryRecord(content=text))
    assert (await b.search(query, "semantic", 3))[0].record.content != answer

    hits = await b.search(query, "hybrid", 3, weighting=False)
    assert hits[0].record.content == answer
    assert "keyword: matched 'zx81', 'rollout', 'plan' (BM25 #1, 100% of the query's weight)" in hits[0].why
    assert "fused (keyword weight 1.00, vector 0.00)" in hits[0].why
    await close_backend(b)


async def test_keyword_counts_come_from_fts_when_the_embedder_keeps_none(tmp_path: Path) -> None:
    b = await _open(tmp_path, TableEmbedder({}))
    await b.put_many([MemoryRecord(content=f"standup notes {i}" + (" about grafana" if i < 3 else "")) for i in range(100)])
    # Counted up to just past the share from which a word counts as common (8% of 100 memories).
    assert b.doc_counts(["standup", "grafana", "nowhere"]) == {"standup": 9.0, "grafana": 3.0, "nowhere": 0.0}
    await close_backend(b)
