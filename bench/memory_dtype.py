"""How the vector index stores vectors (not a test): memory, build time, recall and latency per dtype.

    .venv/bin/python bench/memory_dtype.py                       # 20k memories, hashing and wordllama
    .venv/bin/python bench/memory_dtype.py --size 100000 --embedders hashing

bench/memory.py's generated corpus is embedded once per embedder (float32,
the vectors the store would index), then for each dtype (``memory.vector_dtype``:
f32, f16, i8) a fresh process builds a usearch index the way the store does
(same HNSW settings and metric, batches of 1000) and reports the index's memory
(usearch's own count and the RSS it added), its file size, build time, HNSW
recall@10 against exact float32 search, query latency and the largest cosine
error of a stored vector. The f32 row is the baseline, measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from memory import Corpus, rss_mb

from oxios.memory.vectors import DTYPES, VectorIndex

QUERIES = 200


def embed(name: str, size: int, out: Path) -> None:
    """The corpus and queries as float32 vectors, saved to ``out``."""
    from oxios.config import MemoryConfig
    from oxios.plugins import PluginManager

    pm = PluginManager()
    pm.load()
    embedder = pm.hook.embedder(name=name, config=MemoryConfig())
    if embedder is None:
        raise SystemExit(f"no plugin answers the embedder hook for {name!r}")
    corpus = Corpus(size)
    docs = [text for _, text in corpus.documents()]
    rng = random.Random(11)
    queries = [corpus.query(rng.randrange(len(corpus.topics))) for _ in range(QUERIES)]
    if hasattr(embedder, "observe"):  # IDF from the whole corpus, as after a rebuild
        embedder.reset_corpus()
        embedder.observe(docs)
    vectors = np.concatenate([embedder.embed_array(docs[i : i + 5000]) for i in range(0, len(docs), 5000)])
    np.savez(out, vectors=vectors, queries=embedder.embed_array(queries))


def measure(vectors_file: Path, dtype: str) -> dict[str, float]:
    """One dtype, in a fresh process: build, then compare with exact float32 search."""
    data = np.load(vectors_file)
    vectors, queries = data["vectors"], data["queries"]
    exact = [set((np.argpartition(-(vectors @ q), 10)[:10] + 1).tolist()) for q in queries]
    keys = np.arange(1, len(vectors) + 1, dtype=np.uint64)
    before = rss_mb()
    with tempfile.TemporaryDirectory(prefix="oxios-bench-") as tmp:
        index = VectorIndex(Path(tmp), vectors.shape[1], "bench", dtype)
        started = time.perf_counter()
        for i in range(0, len(vectors), 1000):
            index.upsert(keys[i : i + 1000], vectors[i : i + 1000])
        build = time.perf_counter() - started
        grown = rss_mb() - before
        index.save(1)
        file_mb = index.path.stat().st_size / 2**20
    found, times = 0, []
    for q, truth in zip(queries, exact, strict=True):
        t0 = time.perf_counter()
        hits = index.search(q, 100)  # what search() asks for
        times.append(time.perf_counter() - t0)
        found += len({key for key, _ in hits[:10]} & truth)
    sample = keys[:: max(1, len(keys) // 2000)]
    stored = index.cosines(queries[0], sample.tolist())
    error = max(abs(stored[int(k)] - float(vectors[int(k) - 1] @ queries[0])) for k in sample)
    return {
        "index_mb": index.index.memory_usage / 2**20,
        "rss_mb": grown,
        "file_mb": file_mb,
        "build_s": build,
        "recall": found / (10 * len(queries)),
        "p50_ms": float(np.median(times)) * 1000,
        "cos_error": error,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=20_000, help="memories (generated)")
    parser.add_argument("--embedders", default="hashing,wordllama", help="comma-separated embedder names")
    parser.add_argument("--dtypes", default=",".join(DTYPES), help="comma-separated dtypes")
    parser.add_argument("--measure", nargs=2, metavar=("VECTORS", "DTYPE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(Path(args.measure[0]), args.measure[1])))
        return
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"oxios vector dtype benchmark: {args.size:,} memories, HNSW M=32, {os.cpu_count()} CPUs, load average {load}")
    with tempfile.TemporaryDirectory(prefix="oxios-bench-") as tmp:
        for name in [n for n in args.embedders.split(",") if n]:
            vectors_file = Path(tmp) / f"{name}.npz"
            try:
                embed(name, args.size, vectors_file)
            except SystemExit as err:
                print(f"(skipped {name!r}: {err})")
                continue
            print(f"\n{name}")
            base: dict[str, float] | None = None
            for dtype in [d for d in args.dtypes.split(",") if d]:
                done = subprocess.run(
                    [sys.executable, __file__, "--measure", str(vectors_file), dtype], capture_output=True, text=True, check=True
                )
                m = json.loads(done.stdout.splitlines()[-1])
                base = base or m
                print(
                    f"  {dtype:<4} index {m['index_mb']:7,.0f} MB ({m['index_mb'] / base['index_mb']:.2f}x f32)"
                    f"   RSS +{m['rss_mb']:6,.0f} MB   file {m['file_mb']:6,.0f} MB   build {m['build_s']:6.1f} s"
                    f"   recall@10 vs exact f32 {m['recall']:.4f}   query p50 {m['p50_ms']:.2f} ms"
                    f"   cosine error <= {m['cos_error']:.4f}"
                )


if __name__ == "__main__":
    main()
