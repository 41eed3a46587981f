"""Memory benchmark (not a test): throughput, latency, HNSW recall, RSS and retrieval quality.

    .venv/bin/python bench/memory.py                   # 10k and 100k records
    .venv/bin/python bench/memory.py --sizes 10000     # one size
    .venv/bin/python bench/memory.py --dtype f32       # vectors stored as f32 (default: f16, as shipped)
    .venv/bin/python bench/memory.py --million         # adds 1M (slow on 2 cores: over an hour)

The corpus is generated: topics made of "concepts" (invented words with
morphological variants and a synonym), about ten documents per topic, so
queries phrased with other inflections and synonyms have known relevant
documents. Every figure is printed next to a baseline measured in the same
run: a plain SQLite insert, a LIKE scan, exact (brute-force) vector search,
and a random ranking. Memory is reported as the store's own growth (RSS after
filling minus RSS before opening it) and the usearch index's share of it; the
benchmark keeps no copy of the vectors. bench/memory_dtype.py compares the
vector dtypes on identical vectors.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import resource
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from oxios.memory.embedder import HashingEmbedder
from oxios.memory.store import EXACT_BELOW, SQLiteMemoryBackend
from oxios.memory.vectors import DTYPES
from oxios.state import StateStore
from oxios_hookspecs import MemoryRecord

SUFFIXES = ("", "s", "ing", "ed", "ation", "er")
DOCS_PER_TOPIC = 10
QUERIES = 200


def pseudo_words(rng: random.Random, n: int) -> list[str]:
    """Distinct pronounceable invented words (no real-word overlap between concepts)."""
    cons, vows = "bdfgklmnprstvz", "aeiou"
    out: set[str] = set()
    while len(out) < n:
        out.add("".join(rng.choice(cons) + rng.choice(vows) for _ in range(rng.randint(2, 3))) + rng.choice(cons))
    return sorted(out)


class Corpus:
    def __init__(self, size: int, seed: int = 7) -> None:
        rng = random.Random(seed)
        self.rng = rng
        n_topics = max(10, size // DOCS_PER_TOPIC)
        n_concepts = int(n_topics * 1.5)
        words = pseudo_words(rng, n_concepts * 2 + 600)
        rng.shuffle(words)
        self.stems = words[:n_concepts]
        self.synonyms = words[n_concepts : 2 * n_concepts]
        self.filler = words[2 * n_concepts :]
        self.topics = [rng.sample(range(n_concepts), 4) for _ in range(n_topics)]
        self.size = size

    def render(self, concept: int, synonym_p: float) -> str:
        stem = self.synonyms[concept] if self.rng.random() < synonym_p else self.stems[concept]
        return stem + self.rng.choice(SUFFIXES)

    def filler_words(self, n: int) -> list[str]:
        # Zipf-like: a few filler words are everywhere, most are rare.
        return [self.filler[min(len(self.filler) - 1, int(self.rng.paretovariate(1.2)) - 1)] for _ in range(n)]

    def document(self, topic: int) -> str:
        concepts = self.rng.sample(self.topics[topic], 3)
        words = [self.render(c, 0.25) for c in concepts] + self.filler_words(7)
        if self.rng.random() < 0.5:  # a stray concept from another topic
            words.append(self.render(self.rng.randrange(len(self.stems)), 0.25))
        self.rng.shuffle(words)
        return " ".join(words).capitalize() + "."

    def query(self, topic: int, typo_p: float = 0.0) -> str:
        concepts = self.rng.sample(self.topics[topic], 2)
        words = [self.typo(self.render(c, 0.5)) if self.rng.random() < typo_p else self.render(c, 0.5) for c in concepts]
        return " ".join(words + self.filler_words(2))

    def typo(self, word: str) -> str:
        """One slip of the keyboard: swap two neighbours or drop a letter (not the first)."""
        i = self.rng.randrange(1, len(word) - 1)
        if self.rng.random() < 0.5:
            return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
        return word[:i] + word[i + 1 :]

    def documents(self) -> list[tuple[int, str]]:
        n_topics = len(self.topics)
        return [(i % n_topics, self.document(i % n_topics)) for i in range(self.size)]


def percentile(values: list[float], p: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000, p))


def ndcg_at_10(ranked: list[int], relevant: set[int]) -> float:
    dcg = sum(1.0 / math.log2(i + 2) for i, key in enumerate(ranked[:10]) if key in relevant)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(10, len(relevant))))
    return dcg / ideal if ideal else 0.0


def disk_mb(workdir: Path, size: int) -> tuple[float, float]:
    """Sizes of the SQLite files and of the index directory."""
    db = sum(f.stat().st_size for f in workdir.glob(f"memory-{size}.db*")) / 2**20
    index = sum(f.stat().st_size for f in (workdir / f"memory-{size}").iterdir()) / 2**20
    return db, index


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    """Resident set size now (Linux), else the peak."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return peak_rss_mb()


async def run_size(size: int, workdir: Path, dtype: str) -> None:
    print(f"\n=== {size:,} records ===")
    corpus = Corpus(size)
    docs = corpus.documents()
    rss_before = peak_rss_mb()

    # Baseline: the same rows into a plain SQLite table (no FTS, no vectors).
    plain = sqlite3.connect(workdir / f"plain-{size}.db")
    plain.execute("CREATE TABLE t (id TEXT, content TEXT)")
    started = time.perf_counter()
    for i in range(0, size, 1000):
        with plain:
            plain.executemany("INSERT INTO t VALUES (?, ?)", [(str(j), docs[j][1]) for j in range(i, min(size, i + 1000))])
    plain_secs = time.perf_counter() - started

    state = StateStore(workdir / f"memory-{size}.db")
    rss_store = rss_mb()
    backend = SQLiteMemoryBackend(state, HashingEmbedder(), workdir / f"memory-{size}", vector_dtype=dtype)
    await backend.start()
    await backend.wait_ready()
    key_topic: dict[int, int] = {}
    started = time.perf_counter()
    for i in range(0, size, 1000):
        batch = [MemoryRecord(content=text) for _, text in docs[i : i + 1000]]
        await backend.put_many(batch)
    insert_secs = time.perf_counter() - started
    # Keys are assigned in insertion order (AUTOINCREMENT from 1).
    key_topic = {i + 1: docs[i][0] for i in range(size)}
    started = time.perf_counter()
    for j in range(500):
        await backend.put(MemoryRecord(content=corpus.document(j % len(corpus.topics))))
    single_rate = 500 / (time.perf_counter() - started)
    for j in range(500):
        key_topic[size + j + 1] = j % len(corpus.topics)
    await backend.flush()
    store_mb = rss_mb() - rss_store
    print(
        f"insert (batches of 1000): {size / insert_secs:,.0f} records/s   baseline plain SQLite insert: {size / plain_secs:,.0f} rows/s"
    )
    print(f"insert (one put each):    {single_rate:,.0f} records/s")

    rng = random.Random(11)
    topics = [rng.randrange(len(corpus.topics)) for _ in range(QUERIES)]
    queries = [corpus.query(t) for t in topics]
    relevant = [{k for k, tt in key_topic.items() if tt == t} for t in topics]

    # Latency per mode, through the full search path (FTS/HNSW + hydration + fusion).
    results: dict[str, list[list[int]]] = {}
    runs = (
        ("keyword", False, "confidence"),
        ("semantic", False, "confidence"),
        ("hybrid", False, "confidence"),
        ("semantic", True, "confidence"),
        ("hybrid", True, "confidence"),
        ("hybrid", False, "rrf"),  # the fusion it replaced, as a baseline
    )
    for mode, exact, fusion in runs:
        times, ranked = [], []
        for q in queries:
            t0 = time.perf_counter()
            hits = await backend.search(q, mode, 10, exact=exact, fusion=fusion)
            times.append(time.perf_counter() - t0)
            keys = [backend.key_of(h.record.id) for h in hits]
            ranked.append([k for k in keys if k is not None])
        label = f"{mode}{' exact' if exact else ''}{' rrf' if fusion == 'rrf' else ''}"
        results[label] = ranked
        results[label + ":t"] = times  # type: ignore[assignment]

    # Baseline for keyword search: a full LIKE scan ranked by how many query words (5-letter prefixes) match.
    like_times = []
    for q in queries:
        words = [f"%{w[:5]}%" for w in q.split()]
        score = " + ".join("(content LIKE ?)" for _ in words)
        t0 = time.perf_counter()
        state.all(f"SELECT key, {score} AS s FROM memory_records WHERE s > 0 ORDER BY s DESC LIMIT 10", words)
        like_times.append(time.perf_counter() - t0)

    def lat(label: str) -> str:
        t = results[label + ":t"]
        return f"p50 {percentile(t, 50):7.2f} ms  p99 {percentile(t, 99):7.2f} ms"  # type: ignore[arg-type]

    print(
        f"keyword  (FTS5 BM25):        {lat('keyword')}   baseline full LIKE scan: p50 {percentile(like_times, 50):.2f} ms  p99 {percentile(like_times, 99):.2f} ms"
    )
    engine = "exact, under 20k" if len(backend.index) < EXACT_BELOW else "HNSW"
    print(f"{f'semantic ({engine}):':<29}{lat('semantic')}   baseline exact scan: {lat('semantic exact')}")
    fused = "FTS5+exact+fusion" if len(backend.index) < EXACT_BELOW else "FTS5+HNSW+fusion"
    print(
        f"{f'hybrid   ({fused}):':<29}{lat('hybrid')}   baselines: with exact scan {lat('hybrid exact')}; with RRF {lat('hybrid rrf')}"
    )

    # HNSW recall@10 against exact search over the very vectors stored in the index (usearch's
    # brute force, which is also the baseline: no copy of the vectors is made).
    index = backend.index.index
    qvecs = backend.embedder.embed_array(queries)
    hits_total = hits_wide = 0
    raw_times, exact_times = [], []
    for qv in qvecs:
        t0 = time.perf_counter()
        approx = index.search(qv, 10)
        raw_times.append(time.perf_counter() - t0)
        # What search() does: ask the index for 100 candidates, keep the best 10.
        wide = index.search(qv, 100)
        t0 = time.perf_counter()
        top = set(map(int, index.search(qv, 10, exact=True).keys))
        exact_times.append(time.perf_counter() - t0)
        hits_total += len(set(map(int, approx.keys)) & top)
        hits_wide += len(set(map(int, wide.keys[:10])) & top)
    n = 10 * len(qvecs)
    print(
        f"HNSW recall@10 vs exact:  {hits_total / n:.4f} asking for 10, {hits_wide / n:.4f} asking for 100 as search() does"
        f"   (raw index p50 {percentile(raw_times, 50):.3f} ms vs exact scan p50 {percentile(exact_times, 50):.3f} ms)"
    )

    # Retrieval quality on the labelled queries, then on the same topics asked with typos.
    rnd = random.Random(3)
    all_keys = list(key_topic)
    random_ndcg = float(np.mean([ndcg_at_10(rnd.sample(all_keys, 10), rel) for rel in relevant]))
    quality = {
        label: float(np.mean([ndcg_at_10(r, rel) for r, rel in zip(results[label], relevant, strict=True)]))
        for label in ("keyword", "semantic", "hybrid", "semantic exact", "hybrid rrf")
    }
    print(
        f"nDCG@10 (inflections+synonyms): keyword {quality['keyword']:.3f}  vector {quality['semantic']:.3f}  hybrid {quality['hybrid']:.3f}"
        f"   baselines: hybrid with RRF {quality['hybrid rrf']:.3f}, exact vector {quality['semantic exact']:.3f}, random {random_ndcg:.4f}"
    )
    typo_queries = [corpus.query(t, typo_p=0.6) for t in topics]
    typo_quality = {}
    for mode, fusion in (("keyword", "confidence"), ("semantic", "confidence"), ("hybrid", "confidence"), ("hybrid", "rrf")):
        scores = []
        for q, rel in zip(typo_queries, relevant, strict=True):
            keys_found = [backend.key_of(h.record.id) for h in await backend.search(q, mode, 10, fusion=fusion)]
            scores.append(ndcg_at_10([k for k in keys_found if k is not None], rel))
        typo_quality[mode + (" rrf" if fusion == "rrf" else "")] = float(np.mean(scores))
    print(
        f"nDCG@10 (same, with typos):     keyword {typo_quality['keyword']:.3f}  vector {typo_quality['semantic']:.3f}  hybrid {typo_quality['hybrid']:.3f}"
        f"   baselines: hybrid with RRF {typo_quality['hybrid rrf']:.3f}, random {random_ndcg:.4f}"
    )
    db_mb, idx_mb = disk_mb(workdir, size)
    raw_mb = len(index) * backend.embedder.dim * 4 / 2**20
    print(
        f"memory: the store grew RSS by {store_mb:,.0f} MB, of which the usearch index ({dtype}) holds"
        f" {index.memory_usage / 2**20:,.0f} MB (capacity {index.capacity:,}; the vectors as f32 would be {raw_mb:,.0f} MB);"
        f" peak RSS {peak_rss_mb():,.0f} MB (before this size: {rss_before:,.0f} MB)"
    )
    print(f"on disk: SQLite {db_mb:,.0f} MB, index {idx_mb:,.0f} MB")
    await backend.stop()
    state.close()
    plain.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated record counts")
    parser.add_argument("--million", action="store_true", help="also run 1,000,000 records")
    parser.add_argument("--dtype", default="f16", choices=DTYPES, help="how the index stores vectors (memory.vector_dtype)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if args.million:
        sizes.append(1_000_000)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"oxios memory benchmark: hashing embedder (384-d), usearch HNSW (M=32, ef_add=200, ef_search=256, {args.dtype}),"
        f" {os.cpu_count()} CPUs, load average {load}"
    )
    with tempfile.TemporaryDirectory(prefix="oxios-bench-") as tmp:
        for size in sizes:
            asyncio.run(run_size(size, Path(tmp), args.dtype))


if __name__ == "__main__":
    main()
