"""The wordllama embedder: found through the hook, offline, faithful to wordllama, and useful to memory search."""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from oxios_plugin_wordllama import ModelFilesMissing, WordLlamaEmbedder
from oxios_plugin_wordllama import plugin as wordllama_plugin
from oxios_plugin_wordllama.embedder import TOKENIZER, WEIGHTS, bundled_dir

MEMORIES = [
    "Deploys to production happen on Fridays after the 2 pm standup.",
    "I drink my coffee black, no sugar.",
    "Our cat Pixel needs her thyroid pill every morning.",
    "Secrets are stored in Vault, never in the repository.",
    "The flight to Lisbon leaves Berlin at 6:40 am on 2 August.",
    "I am allergic to peanuts.",
]


@pytest.fixture(scope="module")
def embedder() -> WordLlamaEmbedder:
    return WordLlamaEmbedder()


def test_the_hook_answers_for_wordllama_only_through_the_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    from oxios.config import MemoryConfig
    from oxios.plugins import PluginManager

    monkeypatch.setenv("OXIOS_LOAD_PLUGINS", "wordllama")
    pm = PluginManager()
    pm.load()
    assert pm.info["wordllama"].distribution == "oxios-plugin-wordllama"
    found = pm.hook.embedder(name="wordllama", config=MemoryConfig())
    assert isinstance(found, WordLlamaEmbedder) and found.dim == 256
    assert type(pm.hook.embedder(name="hashing", config=MemoryConfig())).__name__ == "HashingEmbedder"
    assert pm.hook.embedder(name="nosuch", config=MemoryConfig()) is None


def test_vectors_are_the_ones_wordllama_computes(embedder: WordLlamaEmbedder) -> None:
    from safetensors import safe_open
    from tokenizers import Tokenizer

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        from wordllama.inference import WordLlamaInference
    finally:  # importing wordllama configures the root logger; keep other tests' logging as it was
        for handler in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(handler)
        root.setLevel(level)
    with safe_open(str(bundled_dir() / WEIGHTS), framework="np") as fh:
        table = fh.get_tensor("embedding.weight")
    reference = WordLlamaInference(table, Tokenizer.from_file(str(bundled_dir() / TOKENIZER)))
    texts = ["when do we deploy", "Grüße aus Köln, 東京 and emoji 🚀", "x" * 3000, *MEMORIES]
    expected = reference.embed(texts, norm=True)
    np.testing.assert_allclose(embedder.embed_array(texts), expected, atol=1e-5)


def test_a_paraphrase_finds_its_memory(embedder: WordLlamaEmbedder) -> None:
    # None of these queries shares a word with the memory it should find.
    docs = embedder.embed_array(MEMORIES)
    for query, answer in [
        ("which weekday do we push new versions live", 0),
        ("does the user want milk or sweetener in hot beverages", 1),
        ("medication for the pet", 2),
        ("where do we keep passwords and tokens", 3),
        ("what time does the plane take off", 4),
        ("food the user cannot tolerate", 5),
    ]:
        sims = docs @ embedder.embed_array([query])[0]
        assert int(np.argmax(sims)) == answer, (query, sims.round(2).tolist())


def test_rows_are_unit_length_and_text_without_tokens_is_zero(embedder: WordLlamaEmbedder) -> None:
    assert embedder.embed_array([]).shape == (0, 256)
    rows = embedder.embed_array(["", "a memory", "Another one."])
    assert rows.dtype == np.float32 and rows.shape == (3, 256)
    assert not rows[0].any()
    np.testing.assert_allclose(np.linalg.norm(rows[1:], axis=1), 1.0, rtol=1e-5)


async def test_embed_is_the_async_protocol_method(embedder: WordLlamaEmbedder) -> None:
    vectors = await embedder.embed(["a memory"])
    assert len(vectors) == 1 and len(vectors[0]) == 256
    np.testing.assert_allclose(vectors[0], embedder.embed_array(["a memory"])[0], rtol=1e-6)


def test_loads_and_embeds_with_the_network_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"network use: {args!r}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    fresh = WordLlamaEmbedder()
    assert fresh.embed_array(["offline"]).any()


def test_loading_leaves_the_root_logger_alone() -> None:
    # A fresh interpreter: importing wordllama itself would add a stderr handler to the root logger.
    code = (
        "import logging; from oxios_plugin_wordllama import WordLlamaEmbedder; "
        "WordLlamaEmbedder().embed_array(['x']); import sys; "
        "root = logging.getLogger(); print(len(root.handlers), root.level, 'wordllama' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["0", str(logging.WARNING), "False"], done.stdout + done.stderr


def test_the_id_names_the_files_so_other_weights_rebuild_the_index(embedder: WordLlamaEmbedder, tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    copy = tmp_path / "model"
    (copy / WEIGHTS).parent.mkdir(parents=True)
    (copy / TOKENIZER).parent.mkdir(parents=True)
    shutil.copy(bundled_dir() / TOKENIZER, copy / TOKENIZER)
    save_file({"embedding.weight": (embedder.table * 2).astype(np.float16)}, str(copy / WEIGHTS))
    other = WordLlamaEmbedder(copy)
    assert other.id.startswith("wordllama-l2_supercat-256-") and other.id != embedder.id
    assert WordLlamaEmbedder().id == embedder.id


def test_missing_or_wrong_model_files_are_a_clear_error(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    with pytest.raises(ModelFilesMissing, match=r"model files not found: .*l2_supercat_256\.safetensors"):
        WordLlamaEmbedder(tmp_path)
    (tmp_path / WEIGHTS).parent.mkdir(parents=True)
    (tmp_path / TOKENIZER).parent.mkdir(parents=True)
    shutil.copy(bundled_dir() / TOKENIZER, tmp_path / TOKENIZER)
    save_file({"embedding.weight": np.zeros((10, 64), dtype=np.float16)}, str(tmp_path / WEIGHTS))
    with pytest.raises(ModelFilesMissing, match=r"\(10, 64\) table; expected \(vocabulary, 256\)"):
        WordLlamaEmbedder(tmp_path)
    save_file({"other": np.zeros((10, 256), dtype=np.float16)}, str(tmp_path / WEIGHTS))
    with pytest.raises(ModelFilesMissing, match=r"no 'embedding\.weight' tensor"):
        WordLlamaEmbedder(tmp_path)


async def test_memory_search_by_meaning_in_a_kernel(oxios_kernel_factory: Any) -> None:
    config = {"memory": {"embedder": "wordllama"}}
    async with oxios_kernel_factory(plugins=[wordllama_plugin], config=config) as kernel:
        memory = kernel.service("memory")
        assert memory.status()["embedder"].startswith("wordllama-l2_supercat-256-")
        for text in MEMORIES:
            await memory.put(text)
        hits = await memory.search("which weekday do we push new versions live", "semantic", 3)
        assert hits[0].record.content == MEMORIES[0]
        assert "semantic: cosine" in hits[0].why
        # Keyword search has nothing to match here; hybrid still finds it through the vectors.
        assert not await memory.search("which weekday do we push new versions live", "keyword", 3)
        hybrid = await memory.search("which weekday do we push new versions live", "hybrid", 3)
        assert hybrid[0].record.content == MEMORIES[0]
        # Recall uses the floor this embedder recommends, not the hashing embedder's 0.2.
        assert memory.recall_min_similarity() == WordLlamaEmbedder.recall_min_similarity == 0.3


def test_the_recall_floor_keeps_answers_and_leaves_unrelated_memories_out(embedder: WordLlamaEmbedder) -> None:
    # One question per memory, in the memory's own words: each clears the floor, no other pair does.
    questions = ["when do we deploy to production", "how do I take my coffee", "cat thyroid pill"]
    questions += ["where are secrets stored", "flight to Lisbon", "peanut allergy"]
    sims = embedder.embed_array(questions) @ embedder.embed_array(MEMORIES).T
    floor = embedder.recall_min_similarity
    assert (np.diag(sims) >= floor).all(), sims.round(2).tolist()
    assert (sims[~np.eye(len(MEMORIES), dtype=bool)] < floor).all(), sims.round(2).tolist()
    assert 0.2 < floor < 0.5
