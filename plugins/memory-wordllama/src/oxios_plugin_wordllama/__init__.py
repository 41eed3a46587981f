"""oxios-plugin-wordllama: the "wordllama" memory embedder, offline and on the CPU."""

from __future__ import annotations

from typing import Any

__all__ = ["ModelFilesMissing", "WordLlamaEmbedder"]


def __getattr__(name: str) -> Any:
    # numpy, tokenizers and safetensors load with the embedder, not with `oxios --help`.
    if name in __all__:
        from . import embedder

        return getattr(embedder, name)
    raise AttributeError(f"module 'oxios_plugin_wordllama' has no attribute {name!r}")
