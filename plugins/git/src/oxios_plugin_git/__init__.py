"""oxios-plugin-git: the workspace is a git repository, written with dulwich."""

from __future__ import annotations

from typing import Any

__all__ = ["GitError", "TagExists", "UnknownRevision", "WorkspaceRepo"]


def __getattr__(name: str) -> Any:
    # dulwich loads on first use, so `oxios --help` does not pay for it.
    if name in __all__:
        from . import repo

        return getattr(repo, name)
    raise AttributeError(f"module 'oxios_plugin_git' has no attribute {name!r}")
