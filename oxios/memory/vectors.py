"""The usearch HNSW index, persisted next to the database and always rebuildable.

The index file is a cache of SQLite, never the truth: its sidecar
``index.meta.json`` records the embedder that made the vectors, the scalar
type they are stored in, the change sequence (watermark) it includes and a
blake3 digest of the file. A file that is missing, corrupt, truncated, made by
another embedder or stored in another scalar type is rebuilt; changes after
the watermark are replayed on start. Files are replaced atomically.

Vectors are stored as ``f16`` by default: about half the memory of ``f32``,
cosines within 1e-4 and the same HNSW recall; ``i8`` saves a third more but
loses recall (bench/memory_dtype.py measures all three on the same vectors).
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import blake3
import numpy as np
from usearch.index import Index

log = logging.getLogger(__name__)

INDEX_FILE = "index.usearch"
META_FILE = "index.meta.json"
CORPUS_FILE = "corpus.npz"
DTYPES = ("f32", "f16", "i8")
BACKGROUND_SAMPLE = 256  # stored vectors that stand for "a typical memory"
MIN_BACKGROUND = 32  # below this many, a random direction's statistics stand in


@dataclass
class IndexMeta:
    embedder: str
    dim: int
    watermark: int
    count: int
    digest: str
    dtype: str = "f32"  # files written before the scalar type was recorded are f32


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _digest(path: Path) -> str:
    h = blake3.blake3()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


class VectorIndex:
    """Cosine HNSW over L2-normalised vectors, keyed by the record's integer key."""

    def __init__(self, directory: Path, dim: int, embedder_id: str, dtype: str = "f16") -> None:
        if dtype not in DTYPES:
            raise ValueError(f"unknown vector dtype {dtype!r}; expected one of {', '.join(DTYPES)}")
        self.dir = Path(directory)
        self.dim = dim
        self.embedder_id = embedder_id
        self.dtype = dtype
        self.lock = threading.RLock()
        self.index = self._new()
        self.watermark = 0
        self._sample: np.ndarray | None = None
        self._sampled_at = -1

    def _new(self) -> Index:
        # Inner product on normalised vectors is cosine; distances come back as 1 - cos. For i8
        # usearch's inner product is of the raw integers, so the cosine metric is used there.
        metric = "cos" if self.dtype == "i8" else "ip"
        return Index(ndim=self.dim, metric=metric, dtype=self.dtype, connectivity=32, expansion_add=200, expansion_search=256)

    @property
    def path(self) -> Path:
        return self.dir / INDEX_FILE

    @property
    def meta_path(self) -> Path:
        return self.dir / META_FILE

    def __len__(self) -> int:
        return len(self.index)

    # -- persistence ---------------------------------------------------------------

    def load(self) -> str:
        """Load the saved index. Returns "loaded", or why it cannot be used: "missing",
        "corrupt", "embedder changed" or "dtype changed" (the caller rebuilds)."""
        if not self.path.exists() or not self.meta_path.exists():
            return "missing"
        try:
            meta = IndexMeta(**json.loads(self.meta_path.read_text()))
        except (ValueError, TypeError) as err:
            log.warning("memory index metadata unreadable (%s); rebuilding", err)
            return "corrupt"
        if meta.embedder != self.embedder_id or meta.dim != self.dim:
            return "embedder changed"
        if meta.dtype != self.dtype:
            return "dtype changed"
        try:
            if _digest(self.path) != meta.digest:
                log.warning("memory index file does not match its digest; rebuilding")
                return "corrupt"
            index = self._new()
            expected = index.dtype
            index.load(str(self.path))
        except (OSError, RuntimeError, ValueError) as err:
            log.warning("memory index unreadable (%s); rebuilding", err)
            return "corrupt"
        if index.dtype != expected:  # usearch adopts the file's type silently
            return "dtype changed"
        if index.ndim != self.dim or len(index) != meta.count:
            return "corrupt"
        with self.lock:
            self.index = index
            self.watermark = meta.watermark
            self._sample = None
        return "loaded"

    def save(self, watermark: int) -> None:
        """Write the index, then its metadata (both atomic). A crash between the two
        leaves an older watermark, and replaying from it is idempotent."""
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(INDEX_FILE + ".tmp")
        with self.lock:
            self.index.save(str(tmp))
            count = len(self.index)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        meta = IndexMeta(self.embedder_id, self.dim, watermark, count, _digest(self.path), self.dtype)
        _atomic_write(self.meta_path, json.dumps(meta.__dict__).encode())
        self.watermark = watermark

    def reset(self) -> None:
        with self.lock:
            self.index = self._new()
            self.watermark = 0
            self._sample = None

    def replace_with(self, other: VectorIndex) -> None:
        with self.lock:
            self.index = other.index
            self.watermark = other.watermark
            self._sample = None

    # -- vectors ------------------------------------------------------------------

    def upsert(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        keys = np.asarray(keys, dtype=np.uint64)
        if len(keys) == 0:
            return
        with self.lock:
            present = [int(k) for k in keys if self.index.contains(int(k))]
            if present:
                self.index.remove(np.asarray(present, dtype=np.uint64))
            # Zero vectors (text with no words) carry no meaning; keyword search still finds them.
            keep = np.linalg.norm(vectors, axis=1) > 0
            if keep.any():
                self.index.add(keys[keep], np.ascontiguousarray(vectors[keep], dtype=np.float32))

    def remove(self, keys: list[int]) -> None:
        with self.lock:
            present = [k for k in keys if self.index.contains(k)]
            if present:
                self.index.remove(np.asarray(present, dtype=np.uint64))

    def search(self, vector: np.ndarray, k: int, *, exact: bool = False) -> list[tuple[int, float]]:
        """Nearest keys with cosine similarity, best first."""
        with self.lock:
            if len(self.index) == 0 or not np.any(vector):
                return []
            matches = self.index.search(np.asarray(vector, dtype=np.float32), min(k, len(self.index)), exact=exact)
        return [(int(key), 1.0 - float(dist)) for key, dist in zip(matches.keys, matches.distances, strict=False)]

    def search_many(self, vectors: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        """Nearest keys for each row (one batched, multi-threaded call)."""
        with self.lock:
            if len(self.index) == 0 or len(vectors) == 0:
                return [[] for _ in range(len(vectors))]
            matches = self.index.search(np.ascontiguousarray(vectors, dtype=np.float32), min(k, len(self.index)))
        # usearch answers a one-row batch with plain Matches, a larger one with BatchMatches.
        rows = [matches] if len(vectors) == 1 else [matches[i] for i in range(len(vectors))]
        return [[(int(key), 1.0 - float(d)) for key, d in zip(m.keys, m.distances, strict=False)] for m in rows]

    def vector(self, key: int) -> np.ndarray | None:
        with self.lock:
            if not self.index.contains(key):
                return None
            return _unit(np.asarray(self.index.get(key), dtype=np.float32))

    def cosines(self, vector: np.ndarray, keys: list[int]) -> dict[int, float]:
        """Cosine of ``vector`` with each stored key (keys without a vector are left out)."""
        with self.lock:
            present = [k for k in keys if self.index.contains(k)]
            if not present or not np.any(vector):
                return {}
            stored = np.asarray(self.index.get(np.asarray(present, dtype=np.uint64)), dtype=np.float32)
        return dict(zip(present, (_unit(stored) @ np.asarray(vector, dtype=np.float32)).tolist(), strict=True))

    def background(self, vector: np.ndarray) -> tuple[float, float]:
        """Mean and standard deviation of the cosine between ``vector`` and a typical stored
        memory (a sample of the index, redrawn as it grows or shrinks by a tenth). With too
        few memories, those of a random direction in ``dim`` dimensions: 0 and 1/sqrt(dim)."""
        with self.lock:
            size = len(self.index)
            if self._sample is None or abs(size - self._sampled_at) > max(MIN_BACKGROUND, self._sampled_at // 10):
                self._sample = self._draw_sample(size)
                self._sampled_at = size
            sample = self._sample
        if len(sample) < MIN_BACKGROUND:
            return 0.0, 1.0 / math.sqrt(self.dim)
        sims = sample @ np.asarray(vector, dtype=np.float32)
        return float(sims.mean()), max(float(sims.std()), 1e-6)

    def _draw_sample(self, size: int) -> np.ndarray:
        if size < MIN_BACKGROUND:
            return np.zeros((0, self.dim), dtype=np.float32)
        keys = np.asarray(self.index.keys, dtype=np.uint64)
        rng = np.random.default_rng(size)  # reproducible for a given index
        chosen = keys if size <= BACKGROUND_SAMPLE else rng.choice(keys, BACKGROUND_SAMPLE, replace=False)
        return _unit(np.asarray(self.index.get(chosen), dtype=np.float32))


def _unit(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (i8 vectors come back as integers; f16 ones slightly off)."""
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)
