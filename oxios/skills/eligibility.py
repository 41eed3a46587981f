"""Whether a skill can work here (binaries, env, OS, config) and whether its files changed."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import blake3

from .discover import SKIP_DIRS
from .model import Eligibility, Skill

_OS_ALIASES = {
    "linux": {"linux"},
    "darwin": {"darwin", "macos", "mac", "osx"},
    "win32": {"win32", "windows", "win"},
}


def current_os(platform: str | None = None) -> set[str]:
    platform = platform or sys.platform
    for key, names in _OS_ALIASES.items():
        if platform.startswith(key):
            return names
    return {platform}


def _config_has(config: Any, key: str) -> bool:
    """A dotted config key is present and not empty (``channels.telegram.token``)."""
    if config is None:
        return False
    import msgspec

    node: Any = msgspec.to_builtins(config) if not isinstance(config, dict) else config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return node not in (None, "", [], {}, False)


def missing_requirements(
    skill: Skill,
    *,
    environ: Mapping[str, str] | None = None,
    config: Any = None,
    platform: str | None = None,
) -> dict[str, list[str]]:
    """What this machine lacks for ``skill``: ``{"bins": [...], "env": [...], ...}``."""
    env = os.environ if environ is None else environ
    path = env.get("PATH", "")
    req = skill.requires
    missing: dict[str, list[str]] = {}
    bins = [b for b in req.bins if shutil.which(b, path=path) is None]
    if bins:
        missing["bins"] = bins
    if req.any_bins and not any(shutil.which(b, path=path) for b in req.any_bins):
        missing["any_bins"] = list(req.any_bins)
    env_missing = [name for name in req.env if not env.get(name)]
    if env_missing:
        missing["env"] = env_missing
    config_missing = [key for key in req.config if not _config_has(config, key)]
    if config_missing:
        missing["config"] = config_missing
    if skill.os and not (current_os(platform) & set(skill.os)):
        missing["os"] = list(skill.os)
    return missing


def describe_missing(missing: dict[str, list[str]]) -> list[str]:
    text = {
        "bins": "binaries not on PATH: {}",
        "any_bins": "needs one of these binaries on PATH: {}",
        "env": "environment variables not set: {}",
        "config": "config keys not set: {}",
        "os": "only runs on: {}",
    }
    return [text[k].format(", ".join(v)) for k, v in missing.items()]


def evaluate(
    skill: Skill,
    *,
    enabled: bool,
    changed: bool,
    environ: Mapping[str, str] | None = None,
    config: Any = None,
    platform: str | None = None,
) -> Eligibility:
    """disabled > changed > always > missing requirements > ready."""
    if not enabled:
        return Eligibility(status="disabled", reasons=["disabled by the user (`oxios skill enable NAME` turns it on)"])
    if changed:
        return Eligibility(
            status="changed",
            reasons=["the skill's files changed since it was enabled; review them, then `oxios skill enable NAME`"],
        )
    missing = missing_requirements(skill, environ=environ, config=config, platform=platform)
    if skill.always:
        return Eligibility(status="ready", missing=missing, reasons=["always: requirements are not checked"])
    if missing:
        return Eligibility(status="needs_setup", missing=missing, reasons=describe_missing(missing))
    return Eligibility(status="ready")


# -- integrity ----------------------------------------------------------------------


def _files(folder: Path) -> list[tuple[str, Path, os.stat_result]]:
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        for name in sorted(filenames):
            path = Path(dirpath) / name
            try:
                st = path.stat()
            except OSError:
                continue
            out.append((path.relative_to(folder).as_posix(), path, st))
    return out


_HASH_CACHE: dict[tuple[Any, ...], str] = {}


def folder_hash(folder: Path) -> str:
    """blake3 over every file's relative path and bytes, in a stable order.

    The result is cached on (path, size, mtime) of every file, so checking a
    prompt's worth of skills each turn costs a stat per file, not a read.
    """
    folder = Path(folder)
    files = _files(folder)
    signature = (str(folder), *((rel, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino) for rel, _, st in files))
    cached = _HASH_CACHE.get(signature)
    if cached is not None:
        return cached
    hasher = blake3.blake3()
    for rel, path, _ in files:
        hasher.update(rel.encode() + b"\0")
        try:
            with open(path, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 16), b""):
                    hasher.update(chunk)
        except OSError:
            hasher.update(b"<unreadable>")
        hasher.update(b"\0")
    digest = hasher.hexdigest()
    if len(_HASH_CACHE) > 4096:
        _HASH_CACHE.clear()
    _HASH_CACHE[signature] = digest
    return digest
