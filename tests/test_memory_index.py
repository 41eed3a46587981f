"""The vector index: its scalar type (f32/f16/i8), rebuilt when the stored one differs, and its statistics."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from memory_fixtures import QUERIES, TOPICS, FakeClock, close_backend
from usearch.index import ScalarKind

from oxios.config import ConfigError, load
from oxios.memory.embedder import HashingEmbedder
from oxios.memory.store import InvalidMemory, SQLiteMemoryBackend
from oxios.memory.vectors import META_FILE, VectorIndex
from oxios.state import StateStore
from oxios_hookspecs import MemoryRecord

KINDS = {"f32": ScalarKind.F32, "f16": ScalarKind.F16, "i8": ScalarKind.I8}


async def _open(tmp: Path, dtype: str) -> SQLiteMemoryBackend:
    backend = SQLiteMemoryBackend(
        StateStore(tmp / "state.db"), HashingEmbedder(dim=256), tmp / "memory", clock=FakeClock(), vector_dtype=dtype
    )
    await backend.start()
    await backend.wait_ready()
    return backend


async def _fill(backend: SQLiteMemoryBackend) -> dict[str, str]:
    topic_of = {}
    for topic, texts in TOPICS.items():
        for text in texts:
            topic_of[(await backend.put(MemoryRecord(content=text))).id] = topic
    return topic_of


def _meta(tmp: Path) -> dict:
    return json.loads((tmp / "memory" / META_FILE).read_text())


@pytest.mark.parametrize(("before", "after"), [("f32", "f16"), ("f16", "i8"), ("i8", "f32")])
async def test_an_index_stored_in_another_dtype_is_rebuilt(tmp_path: Path, before: str, after: str) -> None:
    b = await _open(tmp_path, before)
    topic_of = await _fill(b)
    await close_backend(b)
    assert _meta(tmp_path)["dtype"] == before

    b2 = await _open(tmp_path, after)
    assert b2.progress["reason"] == "dtype changed" and b2.progress["done"] == len(topic_of)
    assert b2.index.index.dtype == KINDS[after] and b2.status()["vector_dtype"] == after
    for query, topic in QUERIES:
        assert topic_of[(await b2.search(query, "hybrid", 1))[0].record.id] == topic
    await close_backend(b2)
    assert _meta(tmp_path)["dtype"] == after
    b3 = await _open(tmp_path, after)  # saved in the new type: loaded, not rebuilt
    assert b3.progress["total"] == 0 and len(b3.index) == len(topic_of)
    await close_backend(b3)


async def test_an_index_saved_before_dtypes_were_recorded_is_f32(tmp_path: Path) -> None:
    b = await _open(tmp_path, "f32")
    await _fill(b)
    await close_backend(b)
    meta = _meta(tmp_path)
    del meta["dtype"]
    (tmp_path / "memory" / META_FILE).write_text(json.dumps(meta))

    b2 = await _open(tmp_path, "f32")
    assert b2.progress["total"] == 0 and b2.index_state == "ready"  # loaded as it is
    await close_backend(b2, crash=True)
    b3 = await _open(tmp_path, "f16")
    assert b3.progress["reason"] == "dtype changed" and b3.index.index.dtype == ScalarKind.F16
    await close_backend(b3)


async def test_a_file_whose_type_disagrees_with_its_metadata_is_rebuilt(tmp_path: Path) -> None:
    b = await _open(tmp_path, "f32")
    topic_of = await _fill(b)
    await close_backend(b)
    meta = _meta(tmp_path)
    meta["dtype"] = "f16"  # the digest still matches the (f32) file
    (tmp_path / "memory" / META_FILE).write_text(json.dumps(meta))

    b2 = await _open(tmp_path, "f16")  # usearch would load the f32 file and silently stay f32
    assert b2.progress["reason"] == "dtype changed" and b2.progress["done"] == len(topic_of)
    assert b2.index.index.dtype == ScalarKind.F16
    await close_backend(b2)


async def test_an_unknown_dtype_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidMemory, match=r"unknown vector dtype 'f64' \(memory.vector_dtype\); expected one of f32, f16, i8"):
        SQLiteMemoryBackend(StateStore(tmp_path / "state.db"), HashingEmbedder(dim=64), tmp_path / "memory", vector_dtype="f64")
    with pytest.raises(ValueError, match="unknown vector dtype"):
        VectorIndex(tmp_path, 8, "x", dtype="bf16")
    with pytest.raises(ConfigError, match=r"memory\.vector_dtype"):
        load(tmp_path / "none.toml", overrides={"memory": {"vector_dtype": "f64"}}, environ={})


def _unit_rows(n: int, dim: int, seed: int = 0) -> np.ndarray:
    rows = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.mark.parametrize(("dtype", "tolerance"), [("f32", 1e-5), ("f16", 2e-3), ("i8", 3e-2)])
def test_every_dtype_answers_with_cosines(tmp_path: Path, dtype: str, tolerance: float) -> None:
    index = VectorIndex(tmp_path, 64, "x", dtype=dtype)
    rows = _unit_rows(200, 64)
    index.upsert(np.arange(1, 201, dtype=np.uint64), rows)
    query = _unit_rows(1, 64, seed=1)[0]
    exact = rows @ query
    found = index.search(query, 5, exact=True)
    assert [key for key, _ in found] == [int(k) + 1 for k in np.argsort(-exact)[:5]]
    for key, cos in found:
        assert abs(cos - exact[key - 1]) < tolerance, (dtype, key, cos, exact[key - 1])
    cosines = index.cosines(query, [3, 7, 999])
    assert set(cosines) == {3, 7} and abs(cosines[3] - exact[2]) < tolerance
    assert np.linalg.norm(index.vector(3)) == pytest.approx(1.0, abs=1e-5)


def test_the_background_is_a_sample_of_stored_memories_or_a_random_direction(tmp_path: Path) -> None:
    index = VectorIndex(tmp_path, 64, "x", dtype="f32")
    query = _unit_rows(1, 64, seed=1)[0]
    assert index.background(query) == (0.0, 1.0 / math.sqrt(64))  # too few memories
    # All memories lean one way: a typical memory is far from zero cosine with the query.
    rows = _unit_rows(300, 64) + 2 * query
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    index.upsert(np.arange(1, 301, dtype=np.uint64), rows)
    mean, spread = index.background(query)
    sims = rows @ query
    assert abs(mean - sims.mean()) < 0.02 and abs(spread - sims.std()) < 0.02
    assert index.background(query) == (mean, spread)  # the same sample until the index grows
