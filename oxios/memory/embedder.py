"""The default embedder: a hashing vectorizer with IDF weights from the corpus.

No download, no key, no model. Text becomes word unigrams, word bigrams and
character 3-5-grams (which catch "deploy"/"deployment"/"deploys"); each
feature is hashed into a 2^20 space where document frequencies are counted,
weighted by sublinear TF times smoothed IDF, then folded into ``dim`` dense
signed buckets and L2-normalised. It is a fuzzy lexical embedder: strong on
wording overlap and morphology, blind to synonyms it never sees together.
A model-based embedder is a plugin away (the ``embedder`` hook).
"""

from __future__ import annotations

import asyncio
import io
import itertools
import re
import threading
import zlib

import numpy as np

FEATURE_BITS = 20
FEATURE_SPACE = 1 << FEATURE_BITS
_MASK = FEATURE_SPACE - 1
_WORD = re.compile(r"\w+", re.UNICODE)
# Weights per feature family: whole words count most, fragments least.
UNIGRAM_WEIGHT = 1.0  # the stemmed word
EXACT_WORD_WEIGHT = 0.3
BIGRAM_WEIGHT = 0.6
CHARGRAM_WEIGHT = 0.3
_WORD_CACHE_LIMIT = 200_000

STOPWORDS = frozenset(
    """a an and are as at be been but by can could did do does for from had has have he her his i if in into is it its
    me my of on or our she so than that the their them then there these they this to was we were what when where which
    who will with would you your not no yes just about up out over also very""".split()
)


def feature_hash(text: str) -> int:
    """Stable across processes (unlike hash()): crc32 into the feature space."""
    return zlib.crc32(text.encode()) & _MASK


_SUFFIXES = sorted(
    ("ations", "ation", "ings", "ing", "ers", "er", "edly", "ed", "ies", "es", "s", "ly", "ments", "ment", "ness", "ity", "ive"),
    key=len,
    reverse=True,
)


def stem(word: str) -> str:
    """A crude suffix stripper: "deployments", "deploying", "deployed" -> "deploy"."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens, stopwords dropped (shared with keyword query building)."""
    return [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS]


class HashingEmbedder:
    """``dim``-dimensional hashed TF-IDF vectors; keeps document frequencies of the corpus."""

    name = "hashing"
    version = 2
    # Recall's cosine floor: the answer's cosine is low (hashed features rarely collide) but noise
    # lower still; bench/memory_quality.py prints what each embedder's floor keeps and lets in.
    recall_min_similarity = 0.2

    def __init__(self, dim: int = 384) -> None:
        if dim < 16:
            raise ValueError("hashing embedder needs dim >= 16")
        self.dim = dim
        self.df = np.zeros(FEATURE_SPACE, dtype=np.int32)
        self.n_docs = 0
        self._lock = threading.Lock()
        self._word_cache: dict[str, np.ndarray] = {}
        # Fixed arithmetic hashes (not numpy's RNG, whose streams may change) fold features into dims.
        idx = np.arange(FEATURE_SPACE, dtype=np.uint64)
        mixed = (idx * np.uint64(0x9E3779B1)) & np.uint64(0xFFFFFFFF)
        self._bucket = ((mixed >> np.uint64(7)) % np.uint64(dim)).astype(np.int32)
        self._sign = np.where(((idx * np.uint64(0x85EBCA6B)) >> np.uint64(13)) & np.uint64(1), 1.0, -1.0).astype(np.float32)

    @property
    def id(self) -> str:
        """Identity of the vector space: a change means stored vectors must be re-embedded."""
        return f"{self.name}-v{self.version}-{self.dim}"

    # -- features -------------------------------------------------------------

    def _word_features(self, word: str) -> np.ndarray:
        cached = self._word_cache.get(word)
        if cached is not None:
            return cached
        padded = f"<{word}>"
        grams = {padded[i : i + n] for n in (3, 4, 5) for i in range(len(padded) - n + 1)} if len(word) > 2 else set()
        feats = np.fromiter((feature_hash("c:" + g) for g in grams), dtype=np.int64, count=len(grams))
        # The stem is the word's main feature; the exact form adds a little on top.
        out = np.concatenate(([feature_hash("s:" + stem(word)), feature_hash("w:" + word)], feats)).astype(np.int64)
        if len(self._word_cache) >= _WORD_CACHE_LIMIT:
            self._word_cache.clear()
        self._word_cache[word] = out
        return out

    def features(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(feature ids, weights) of one text, duplicates summed."""
        words = tokenize(text)
        if not words:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        ids: list[np.ndarray] = []
        weights: list[np.ndarray] = []
        for w in words:
            f = self._word_features(w)
            ids.append(f)
            wt = np.full(len(f), CHARGRAM_WEIGHT, dtype=np.float32)
            wt[0] = UNIGRAM_WEIGHT
            wt[1] = EXACT_WORD_WEIGHT
            weights.append(wt)
        if len(words) > 1:
            stems = [stem(w) for w in words]
            bigrams = np.fromiter((feature_hash(f"b:{a} {b}") for a, b in itertools.pairwise(stems)), dtype=np.int64)
            ids.append(bigrams)
            weights.append(np.full(len(bigrams), BIGRAM_WEIGHT, dtype=np.float32))
        all_ids = np.concatenate(ids)
        all_w = np.concatenate(weights)
        uniq, inverse = np.unique(all_ids, return_inverse=True)
        return uniq, np.bincount(inverse, weights=all_w).astype(np.float32)

    # -- corpus statistics --------------------------------------------------------

    def observe(self, texts: list[str], *, sign: int = 1) -> None:
        """Count ``texts`` into (sign=1) or out of (sign=-1) the document frequencies."""
        with self._lock:
            for text in texts:
                uniq, _ = self.features(text)
                self.df[uniq] += sign
                self.n_docs += sign
            if sign < 0:
                np.maximum(self.df, 0, out=self.df)
                self.n_docs = max(0, self.n_docs)

    def forget(self, texts: list[str]) -> None:
        self.observe(texts, sign=-1)

    def reset_corpus(self) -> None:
        with self._lock:
            self.df[:] = 0
            self.n_docs = 0

    def doc_fraction(self, word: str) -> float:
        """Share of the corpus containing ``word`` (by stem); 0 for an empty corpus."""
        if self.n_docs <= 0:
            return 0.0
        return float(self.df[feature_hash("s:" + stem(word.lower()))]) / self.n_docs

    def idf(self, ids: np.ndarray) -> np.ndarray:
        return (np.log((1.0 + self.n_docs) / (1.0 + self.df[ids])) + 1.0).astype(np.float32)

    def dump(self) -> bytes:
        buf = io.BytesIO()
        nz = np.nonzero(self.df)[0].astype(np.int32)
        np.savez_compressed(buf, ids=nz, counts=self.df[nz], n_docs=np.array([self.n_docs]), dim=np.array([self.dim]))
        return buf.getvalue()

    def load(self, data: bytes) -> None:
        with np.load(io.BytesIO(data)) as z:
            if int(z["dim"][0]) != self.dim:
                raise ValueError("corpus statistics belong to another dimension")
            df = np.zeros(FEATURE_SPACE, dtype=np.int32)
            df[z["ids"]] = z["counts"]
            n_docs = int(z["n_docs"][0])
        with self._lock:
            self.df = df
            self.n_docs = n_docs

    # -- vectors ------------------------------------------------------------------

    def observe_and_embed(self, texts: list[str]) -> np.ndarray:
        """Count ``texts`` into the corpus and embed them, extracting features once."""
        feats = [self.features(t) for t in texts]
        with self._lock:
            for ids, _ in feats:
                self.df[ids] += 1
            self.n_docs += len(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, (ids, tf) in enumerate(feats):
            out[i] = self._vector(ids, tf)
        return out

    def embed_one(self, text: str) -> np.ndarray:
        return self._vector(*self.features(text))

    def _vector(self, ids: np.ndarray, tf: np.ndarray) -> np.ndarray:
        vec = np.zeros(self.dim, dtype=np.float32)
        if len(ids) == 0:
            return vec
        values = np.log1p(tf) * self.idf(ids) * self._sign[ids]
        vec += np.bincount(self._bucket[ids], weights=values, minlength=self.dim).astype(np.float32)
        norm = float(np.linalg.norm(vec))
        return vec / norm if norm > 0 else vec

    def embed_array(self, texts: list[str]) -> np.ndarray:
        """Vectors as a float32 matrix (rows L2-normalised; all-zero for empty text)."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            out[i] = self.embed_one(text)
        return out

    async def embed(self, texts: list[str]) -> list[list[float]]:
        return (await asyncio.to_thread(self.embed_array, texts)).tolist()
