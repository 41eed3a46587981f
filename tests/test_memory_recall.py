"""Proactive recall's similarity floor: the embedder's own recommendation, unless the config names one."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from oxios.config import ConfigError, load
from oxios.memory.embedder import HashingEmbedder
from oxios.memory.service import DEFAULT_RECALL_MIN_SIMILARITY
from oxios_hookspecs import hookimpl

QUESTION = "which weekday do we push new versions live"
ANSWER = "Deploys to production happen on Fridays after the standup."  # shares no word with the question


class AngleEmbedder:
    """A toy embedder: the answer sits at cosine 0.5 from the question, everything else is orthogonal noise."""

    name = "angle"
    dim = 16

    def __init__(self, floor: Any) -> None:
        if floor is not None:
            self.recall_min_similarity = floor
        self.id = "angle-16"

    def embed_array(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            if text == QUESTION:
                out[i, 0] = 1.0
            elif text == ANSWER:
                out[i, 0], out[i, 1] = 0.5, np.sqrt(0.75)
            else:
                out[i, 2 + sum(map(ord, text)) % (self.dim - 2)] = 1.0
        return out

    async def embed(self, texts: list[str]) -> list[list[float]]:
        return self.embed_array(texts).tolist()


class AnglePlugin:
    def __init__(self, floor: Any = None) -> None:
        self.floor = floor

    @hookimpl
    def embedder(self, name: str, config: Any) -> Any:
        return AngleEmbedder(self.floor) if name == "angle" else None


async def _recall(factory: Any, floor: Any, configured: Any = "auto") -> tuple[float, str]:
    config = {"memory": {"embedder": "angle", "recall_min_similarity": configured}}
    async with factory(plugins=[AnglePlugin(floor)], config=config) as kernel:
        memory = kernel.service("memory")
        await memory.put(ANSWER)
        for i in range(5):
            await memory.put(f"Unrelated note number {i} about the garden")
        return memory.recall_min_similarity(), await memory.recall(QUESTION)


async def test_the_embedders_own_floor_decides_what_recall_lets_in(oxios_kernel_factory: Any) -> None:
    floor, block = await _recall(oxios_kernel_factory, 0.6)  # the answer (cosine 0.5) is below it
    assert floor == 0.6 and ANSWER not in block
    floor, block = await _recall(oxios_kernel_factory, 0.4)
    assert floor == 0.4 and ANSWER in block.split("Relevant memories:")[1]
    assert "Unrelated note" not in block  # orthogonal: below any floor


async def test_the_config_overrides_the_embedder(oxios_kernel_factory: Any) -> None:
    floor, block = await _recall(oxios_kernel_factory, 0.6, configured=0.45)
    assert floor == 0.45 and ANSWER in block
    floor, block = await _recall(oxios_kernel_factory, 0.1, configured=0.55)
    assert floor == 0.55 and ANSWER not in block


async def test_an_embedder_without_a_usable_floor_gets_the_default(
    oxios_kernel_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    assert (await _recall(oxios_kernel_factory, None))[0] == DEFAULT_RECALL_MIN_SIMILARITY == 0.2
    with caplog.at_level(logging.WARNING, logger="oxios.memory.service"):
        for bad in (5.0, "high", True):
            assert (await _recall(oxios_kernel_factory, bad))[0] == DEFAULT_RECALL_MIN_SIMILARITY
    assert "unusable recall floor 5.0" in caplog.text and "'high'" in caplog.text


async def test_the_built_in_embedder_declares_its_floor(oxios_kernel: Any) -> None:
    memory = oxios_kernel.service("memory")
    assert isinstance(memory.embedder, HashingEmbedder)
    assert memory.recall_min_similarity() == HashingEmbedder.recall_min_similarity == 0.2
    assert memory.status()["recall_min_similarity"] == 0.2


def test_a_floor_outside_zero_to_one_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"memory.recall_min_similarity: Expected `float` <= 1.0"):
        load(tmp_path / "none.toml", overrides={"memory": {"recall_min_similarity": 1.5}}, environ={})
    with pytest.raises(ConfigError, match=r"memory\.recall_min_similarity"):
        load(tmp_path / "none.toml", overrides={"memory": {"recall_min_similarity": "lenient"}}, environ={})
    assert (
        load(tmp_path / "none.toml", environ={"OXIOS__MEMORY__RECALL_MIN_SIMILARITY": "0.35"}).memory.recall_min_similarity
        == 0.35
    )
