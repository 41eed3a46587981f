"""The wordllama plugin's hook implementation (entry point ``wordllama`` in group ``oxios``).

Selected with ``[memory] embedder = "wordllama"``.
"""

from __future__ import annotations

from typing import Any

from oxios_hookspecs import hookimpl

NAME = "wordllama"


@hookimpl
def embedder(name: str, config: Any) -> Any:
    if name != NAME:
        return None
    from .embedder import WordLlamaEmbedder

    return WordLlamaEmbedder()
