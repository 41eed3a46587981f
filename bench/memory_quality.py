"""Memory retrieval quality per embedder (not a test): keyword vs vector vs hybrid, and what embedding costs.

    .venv/bin/python bench/memory_quality.py                              # hashing and wordllama (if installed)
    .venv/bin/python bench/memory_quality.py --embedders hashing --synthetic 2000

Every embedder is looked up through the ``embedder`` hook, as the daemon does,
and runs through the real search path (SQLite FTS5, the vector index, fusion).
Hybrid search is measured twice in the same run: with confidence fusion (what
search does) and with reciprocal rank fusion (what it did before, the baseline).
Two labelled sets:

- **English** (bench/memory_labelled.py): 135 memories an agent would keep;
  60 queries that share words with their answer ("overlap") and 70 that share
  none ("paraphrase", checked here against keyword search's own FTS5 rules).
- **synthetic** (bench/memory.py's generator): invented words with
  inflections and invented synonyms. No pretrained model can know those
  synonyms, so this set only measures robustness to wording.

Baselines measured in the same run: the hashing embedder (the default), keyword
search (the same FTS5 query whatever the embedder), hybrid with RRF and a random
ranking.
Quality is nDCG@10 and recall@5 (memory_search returns 5 by default).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from memory import Corpus, ndcg_at_10
from memory_labelled import QUERIES, RECORDS

from oxios.config import MemoryConfig
from oxios.memory.ranking import fts_query
from oxios.memory.store import SQLiteMemoryBackend
from oxios.state import StateStore
from oxios_hookspecs import MemoryRecord

# (label, search mode, fusion): hybrid-rrf is the baseline the confidence fusion replaced.
MODES = (
    ("keyword", "keyword", "confidence"),
    ("vector", "semantic", "confidence"),
    ("hybrid-rrf", "hybrid", "rrf"),
    ("hybrid", "hybrid", "confidence"),
)
RECALL_AT = 5

Query = tuple[str, str, frozenset[int]]  # kind, text, relevant keys


def recall_at(ranked: list[int], relevant: frozenset[int], k: int = RECALL_AT) -> float:
    return len(set(ranked[:k]) & relevant) / len(relevant) if relevant else 0.0


def keyword_reachable(records: Sequence[str], queries: list[Query]) -> list[bool]:
    """Whether keyword search can match any answer of each query at all (an FTS5
    table with the memory store's tokenizer, queried with its MATCH expression)."""
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE f USING fts5(content, tokenize='porter unicode61', prefix='5 6')")
    db.executemany("INSERT INTO f(rowid, content) VALUES (?, ?)", [(i + 1, t) for i, t in enumerate(records)])
    out = []
    for _, text, relevant in queries:
        expr = fts_query(text)
        keys = {r[0] for r in db.execute("SELECT rowid FROM f WHERE f MATCH ?", (expr,))} if expr else set()
        out.append(bool(keys & relevant))
    db.close()
    return out


def english_set() -> tuple[list[str], list[Query]]:
    names = list(RECORDS)
    key = {name: i + 1 for i, name in enumerate(names)}  # keys follow insertion order
    queries = [(kind, text, frozenset(key[n] for n in answers)) for kind, text, answers in QUERIES]
    return [RECORDS[n] for n in names], queries


def synthetic_set(size: int) -> tuple[list[str], list[Query]]:
    corpus = Corpus(size)
    docs = corpus.documents()
    rng = random.Random(11)
    topics = [rng.randrange(len(corpus.topics)) for _ in range(200)]
    by_topic: dict[int, set[int]] = {}
    for i, (topic, _) in enumerate(docs):
        by_topic.setdefault(topic, set()).add(i + 1)
    queries = [("synthetic", corpus.query(t), frozenset(by_topic[t])) for t in topics]
    return [text for _, text in docs], queries


async def evaluate(embedder: Any, texts: list[str], queries: list[Query], workdir: Path) -> dict[str, Any]:
    """Fill a fresh store with ``texts`` and rank every query in every mode."""
    state = StateStore(workdir / "memory.db")
    backend = SQLiteMemoryBackend(state, embedder, workdir / "index")
    await backend.start()
    started = time.perf_counter()
    for i in range(0, len(texts), 500):
        await backend.put_many([MemoryRecord(content=t) for t in texts[i : i + 500]])
    fill_secs = time.perf_counter() - started
    ranked: dict[str, list[list[int]]] = {}
    for label, mode, fusion in MODES:
        ranked[label] = []
        for _, text, _ in queries:
            hits = await backend.search(text, mode, 10, weighting=False, fusion=fusion)
            ranked[label].append([k for k in (backend.key_of(h.record.id) for h in hits) if k is not None])
    # Cosines of each query with its answers and with everything else (calibration of floors).
    qv = await backend.embed([q[1] for q in queries])
    dv = await backend.embed(texts)
    sims = qv @ dv.T
    answer, other = [], []
    for i, (_, _, relevant) in enumerate(queries):
        mask = np.zeros(len(texts), dtype=bool)
        mask[[k - 1 for k in relevant]] = True
        answer.extend(sims[i, mask].tolist())
        other.extend(sims[i, ~mask].tolist())
    await backend.stop()
    state.close()
    floor = getattr(embedder, "recall_min_similarity", None)
    return {"ranked": ranked, "fill_secs": fill_secs, "answer_cos": answer, "other_cos": other, "floor": floor}


def score(ranked: list[list[int]], queries: list[Query], pick: list[bool]) -> tuple[float, float]:
    chosen = [(r, q[2]) for r, q, p in zip(ranked, queries, pick, strict=True) if p]
    if not chosen:
        return 0.0, 0.0
    return (
        float(np.mean([ndcg_at_10(r, rel) for r, rel in chosen])),
        float(np.mean([recall_at(r, rel) for r, rel in chosen])),
    )


def random_baseline(n_texts: int, queries: list[Query], pick: list[bool]) -> tuple[float, float]:
    rng = random.Random(3)
    ranked = [rng.sample(range(1, n_texts + 1), min(10, n_texts)) for _ in queries]
    return score(ranked, queries, pick)


def print_quality(title: str, results: dict[str, dict[str, Any]], texts: list[str], queries: list[Query]) -> None:
    groups: dict[str, list[bool]] = {}
    for kind in dict.fromkeys(q[0] for q in queries):
        groups[kind] = [q[0] == kind for q in queries]
    if len(groups) > 1:
        groups["all"] = [True] * len(queries)
    reach = keyword_reachable(texts, queries)
    print(f"\n{title}: {len(texts):,} memories, {len(queries)} queries   nDCG@10 / recall@{RECALL_AT}")
    for kind, pick in groups.items():
        n = sum(pick)
        reachable = sum(r for r, p in zip(reach, pick, strict=True) if p)
        rnd = random_baseline(len(texts), queries, pick)
        first = next(iter(results.values()))["ranked"]["keyword"]
        answered = sum(bool(r) for r, p in zip(first, pick, strict=True) if p)
        print(
            f"  {kind} ({n} queries; keyword search can match an answer of {reachable}, returns hits for {answered})"
            f"   random {rnd[0]:.3f} / {rnd[1]:.3f}"
        )
        for name, res in results.items():
            cells = []
            for label, _, _ in MODES:
                nd, rc = score(res["ranked"][label], queries, pick)
                cells.append(f"{label} {nd:.3f} / {rc:.3f}")
            print(f"    {name:<10} " + "   ".join(cells))


def print_cosines(results: dict[str, dict[str, Any]]) -> None:
    print("\ncosine of query and answer vs query and any other memory (English set), and each embedder's recall floor")
    for name, res in results.items():
        a, o = np.asarray(res["answer_cos"]), np.asarray(res["other_cos"])
        floor = res["floor"] if res["floor"] is not None else 0.2
        print(
            f"    {name:<10} answer p50 {np.median(a):.2f}   others p50 {np.median(o):.2f}  p99 {np.percentile(o, 99):.2f}"
            f"   floor {floor:.2f}: keeps {np.mean(a >= floor) * 100:.0f}% of answers, lets in {np.mean(o >= floor) * 100:.1f}% of others"
        )


async def embed_rate(embedder: Any, texts: list[str], batch: int = 64) -> tuple[float, float]:
    """(texts per second in batches, p50 seconds for one short query), via the store's embed path."""
    backend = SQLiteMemoryBackend.__new__(SQLiteMemoryBackend)
    backend.embedder = embedder
    started = time.perf_counter()
    for i in range(0, len(texts), batch):
        await backend.embed(texts[i : i + batch])
    rate = len(texts) / (time.perf_counter() - started)
    singles = []
    for text in [q[1] for q in QUERIES][:100]:
        t0 = time.perf_counter()
        await backend.embed([text])
        singles.append(time.perf_counter() - t0)
    return rate, float(np.median(singles))


COLD = """
import asyncio, sys, time
t0 = time.perf_counter()
from oxios.config import MemoryConfig
from oxios.plugins import PluginManager
pm = PluginManager()
pm.load()
t1 = time.perf_counter()
e = pm.hook.embedder(name=sys.argv[1], config=MemoryConfig())
asyncio.run(e.embed(["when do we deploy"]))
print(t1 - t0, time.perf_counter() - t1)
"""


def cold_start(name: str, runs: int = 3) -> tuple[float, float]:
    """Median (plugin loading, embedder construction + first vector) in a fresh interpreter."""
    loads, firsts = [], []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", COLD, name], capture_output=True, text=True, check=True)
        load, first = map(float, out.stdout.split()[-2:])
        loads.append(load)
        firsts.append(first)
    return float(np.median(loads)), float(np.median(firsts))


def resolve_embedders(names: list[str]) -> dict[str, Any]:
    from oxios.plugins import PluginManager

    pm = PluginManager()
    pm.load()
    out = {}
    for name in names:
        embedder = pm.hook.embedder(name=name, config=MemoryConfig())
        if embedder is None:
            print(f"(skipped {name!r}: no plugin answers the embedder hook for it)")
            continue
        out[name] = embedder
    return out


def fresh(embedder: Any) -> Any:
    """An embedder with corpus statistics (hashing) starts each store from none."""
    if hasattr(embedder, "reset_corpus"):
        embedder.reset_corpus()
    return embedder


async def run(embedders: dict[str, Any], synthetic: int, cold: bool) -> None:
    english_texts, english_queries = english_set()
    with tempfile.TemporaryDirectory(prefix="oxios-bench-") as tmp:
        english: dict[str, dict[str, Any]] = {}
        synth: dict[str, dict[str, Any]] = {}
        synth_texts, synth_queries = synthetic_set(synthetic) if synthetic else ([], [])
        for name, embedder in embedders.items():
            for sub in (f"en-{name}", f"syn-{name}"):
                (Path(tmp) / sub).mkdir()
            english[name] = await evaluate(fresh(embedder), english_texts, english_queries, Path(tmp) / f"en-{name}")
            if synthetic:
                synth[name] = await evaluate(fresh(embedder), synth_texts, synth_queries, Path(tmp) / f"syn-{name}")
    print_quality("English set", english, english_texts, english_queries)
    if synthetic:
        print_quality("synthetic set (invented words)", synth, synth_texts, synth_queries)
    print_cosines(english)

    print("\nembedding cost (2 cores; batches of 64 through the store's embed path)")
    sample = (english_texts * 8 + (synth_texts or english_texts))[:2000]
    for name, embedder in embedders.items():
        rate, one = await embed_rate(embedder, sample)
        fill = synth[name]["fill_secs"] if synthetic else english[name]["fill_secs"]
        n = len(synth_texts) if synthetic else len(english_texts)
        line = f"    {name:<10} {rate:>9,.0f} texts/s   one query {one * 1000:6.2f} ms   store fill {n / fill:,.0f} records/s"
        if cold:
            load, first = cold_start(name)
            line += f"   fresh process: plugins {load:.2f} s, embedder + first vector {first:.2f} s"
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--embedders", default="hashing,wordllama", help="comma-separated embedder names")
    parser.add_argument("--synthetic", type=int, default=10_000, help="synthetic corpus size (0 skips it)")
    parser.add_argument("--no-cold", action="store_true", help="skip the fresh-process load timing")
    args = parser.parse_args()
    embedders = resolve_embedders([n for n in args.embedders.split(",") if n])
    if not embedders:
        sys.exit("no embedder to measure")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"oxios memory quality benchmark: {', '.join(embedders)}; {os.cpu_count()} CPUs, load average {load}")
    asyncio.run(run(embedders, args.synthetic, not args.no_cold))


if __name__ == "__main__":
    main()
