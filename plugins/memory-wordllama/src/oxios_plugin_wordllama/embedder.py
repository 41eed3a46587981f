"""WordLlama's l2_supercat token vectors, mean-pooled: a meaning-aware embedder with no model download.

The wordllama wheel ships the 256-d weights (``weights/l2_supercat_256.safetensors``,
16 MB, float16) and their Llama-2 tokenizer (``tokenizers/l2_supercat_tokenizer_config.json``).
Its own ``WordLlama.load()`` looks for the tokenizer under ``tokenizer/`` and so
downloads it from Hugging Face, and importing ``wordllama`` calls
``logging.basicConfig`` on the root logger; this module therefore reads the
two files itself (tokenizers + safetensors) and never imports ``wordllama``.
The vectors are the ones ``WordLlamaInference.embed(norm=True)`` returns
(the plugin's tests compare them).
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
from pathlib import Path

import numpy as np

WEIGHTS = Path("weights") / "l2_supercat_256.safetensors"
TOKENIZER = Path("tokenizers") / "l2_supercat_tokenizer_config.json"
TENSOR = "embedding.weight"
DIM = 256


class ModelFilesMissing(RuntimeError):
    """The wordllama package, or the files its wheel ships, cannot be found."""


def bundled_dir() -> Path:
    """The installed ``wordllama`` package directory (found without importing it)."""
    spec = importlib.util.find_spec("wordllama")
    if spec is None or spec.origin is None:
        raise ModelFilesMissing("the wordllama package is not installed (pip install 'wordllama>=0.4,<0.5')")
    return Path(spec.origin).parent


def _digest(paths: list[Path]) -> str:
    h = hashlib.blake2b(digest_size=6)
    for path in paths:
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
    return h.hexdigest()


class WordLlamaEmbedder:
    """``dim``-dimensional, L2-normalised means of WordLlama token vectors."""

    name = "wordllama"
    # Recall's cosine floor: unrelated memories pass it about as rarely as they pass the hashing
    # embedder's 0.2 (0.4% on bench/memory_labelled.py's set, which keeps 55% of the answers).
    recall_min_similarity = 0.3

    def __init__(self, model_dir: Path | None = None) -> None:
        from safetensors import safe_open
        from tokenizers import Tokenizer

        root = Path(model_dir) if model_dir is not None else bundled_dir()
        files = [root / WEIGHTS, root / TOKENIZER]
        missing = [str(p) for p in files if not p.is_file()]
        if missing:
            raise ModelFilesMissing(
                f"wordllama model files not found: {', '.join(missing)} (reinstall 'wordllama>=0.4,<0.5' from its wheel)"
            )
        with safe_open(str(files[0]), framework="np") as fh:
            if TENSOR not in fh.keys():
                raise ModelFilesMissing(f"{files[0]} has no {TENSOR!r} tensor")
            table = fh.get_tensor(TENSOR)
        if table.ndim != 2 or table.shape[1] != DIM:
            raise ModelFilesMissing(f"{files[0]} holds a {table.shape} table; expected (vocabulary, {DIM})")
        self.table = np.ascontiguousarray(table, dtype=np.float32)
        self.tokenizer = Tokenizer.from_file(str(files[1]))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self.dim = DIM
        # The vector space is these two files: another wordllama release with other weights
        # changes the id, and the memory index is rebuilt.
        self.id = f"wordllama-l2_supercat-{DIM}-{_digest(files)}"

    def embed_array(self, texts: list[str]) -> np.ndarray:
        """Vectors as a float32 matrix (rows L2-normalised; all-zero for text with no tokens)."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        last = len(self.table) - 1
        for i, enc in enumerate(self.tokenizer.encode_batch(list(texts), add_special_tokens=False)):
            if not enc.ids:
                continue
            ids = np.minimum(np.asarray(enc.ids, dtype=np.int64), last)
            vec = self.table[ids].mean(axis=0)
            norm = float(np.linalg.norm(vec))
            if norm > 0:
                out[i] = vec / norm
        return out

    async def embed(self, texts: list[str]) -> list[list[float]]:
        return (await asyncio.to_thread(self.embed_array, texts)).tolist()
