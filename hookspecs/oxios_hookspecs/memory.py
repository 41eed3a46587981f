"""Memory hooks: where agents remember, and how text becomes vectors."""

from __future__ import annotations

from typing import Any

from .markers import hookspec


@hookspec(firstresult=True)
def memory_backend(name: str, config: Any, kernel: Any) -> Any:
    """Return the memory backend called ``name``, or ``None`` if not yours.

    Called once at start with ``[memory] backend``. The first non-``None``
    result is used (firstresult), so a plugin can replace the built-in
    ``sqlite`` backend by answering for its own name.

    :param name: the backend name from config.
    :param config: the ``[memory]`` section.
    :param kernel: the kernel facade (state store, embedder, paths).
    :return: a :class:`oxios_hookspecs.protocols.MemoryBackend` or ``None``.

    .. versionadded:: 0.1
    """


@hookspec(firstresult=True)
def embedder(name: str, config: Any) -> Any:
    """Return the embedder called ``name``, or ``None`` if not yours.

    Called once at start with ``[memory] embedder``; the first non-``None``
    result is used.

    :param name: the embedder name from config.
    :param config: the ``[memory]`` section.
    :return: a :class:`oxios_hookspecs.protocols.Embedder` or ``None``.

    .. versionadded:: 0.1
    """
