"""Whether a skill can work here (binaries, env, OS, config) and whether its files changed."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import blake3

from .discover import SKIP_DIRS
from .fingerprint import Fingerprint, key_of
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
    which: Callable[..., str | None] | None = None,
) -> dict[str, list[str]]:
    """What this machine lacks for ``skill``: ``{"bins": [...], "env": [...], ...}``.

    ``which`` replaces :func:`shutil.which` (called as ``which(name, path=PATH)``),
    e.g. memoised for the length of one listing of many skills.
    """
    env = os.environ if environ is None else environ
    path = env.get("PATH", "")
    find = which or shutil.which
    req = skill.requires
    missing: dict[str, list[str]] = {}
    bins = [b for b in req.bins if find(b, path=path) is None]
    if bins:
        missing["bins"] = bins
    if req.any_bins and not any(find(b, path=path) for b in req.any_bins):
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
    which: Callable[..., str | None] | None = None,
) -> Eligibility:
    """disabled > changed > always > missing requirements > ready."""
    if not enabled:
        return Eligibility(status="disabled", reasons=["disabled by the user (`oxios skill enable NAME` turns it on)"])
    if changed:
        return Eligibility(
            status="changed",
            reasons=["the skill's files changed since it was enabled; review them, then `oxios skill enable NAME`"],
        )
    missing = missing_requirements(skill, environ=environ, config=config, platform=platform, which=which)
    if skill.always:
        return Eligibility(status="ready", missing=missing, reasons=["always: requirements are not checked"])
    if missing:
        return Eligibility(status="needs_setup", missing=missing, reasons=describe_missing(missing))
    return Eligibility(status="ready")


# -- integrity ----------------------------------------------------------------------


def _files(folder: Path, watch: Fingerprint | None = None) -> list[tuple[str, Path, os.stat_result]]:
    out = []
    if watch is not None:
        watch.add(folder)  # also when missing: creating it must count as a change
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        if watch is not None:
            # A file added, removed or renamed in a folder changes the folder's mtime; each
            # sub-folder is watched from its parent, so one that cannot be listed now is too.
            for name in dirnames:
                watch.add(os.path.join(dirpath, name))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            try:
                st = path.stat()
            except OSError:
                if watch is not None:
                    watch.add(path, stat=False)  # unreadable now; watched as such
                continue
            if watch is not None:
                watch.add(path, key_of(st))
            out.append((path.relative_to(folder).as_posix(), path, st))
    return out


# folder -> (fingerprint of its folders and files, hash): a hit costs a stat per path, no walk.
_FOLDER_HASHES: dict[str, tuple[Fingerprint, str]] = {}


def folder_hash(folder: str | os.PathLike[str]) -> str:
    """blake3 over every file's relative path and bytes, in a stable order.

    Reused while a stat of every folder and file in it matches (see
    :mod:`.fingerprint`), so checking a prompt's worth of skills each turn
    costs a stat per path, not a walk and a read. When any stat differs, the
    bytes are hashed again: the digest, not the stat, decides "changed". A
    folder whose newest timestamp is within the racy window is hashed from
    its bytes on every call, since a same-size rewrite in the same tick
    keeps every stat field equal.
    """
    key = os.fspath(folder)
    hit = _FOLDER_HASHES.get(key)
    if hit is not None and hit[0].still_valid():
        return hit[1]
    watch = Fingerprint()
    hasher = blake3.blake3()
    for rel, path, _ in _files(Path(folder), watch):
        hasher.update(rel.encode() + b"\0")
        try:
            with open(path, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 16), b""):
                    hasher.update(chunk)
        except OSError:
            hasher.update(b"<unreadable>")
        hasher.update(b"\0")
    digest = hasher.hexdigest()
    if not watch.racy:
        if len(_FOLDER_HASHES) > 4096:
            _FOLDER_HASHES.clear()
        _FOLDER_HASHES[key] = (watch, digest)
    return digest
