"""Finding SKILL.md files: bounded walks over the skill sources, by priority.

A walk stops at a folder holding a SKILL.md (its scripts/ and references/
are the skill's, not more skills), never enters .git or node_modules, does
enter dot-folders (collections keep skills under .claude/ or .curated/), and
is bounded in depth and in folders visited so a huge tree cannot stall it.

:class:`DiscoveryCache` keeps one discovery per list of sources and reuses it
while a stat of every folder and SKILL.md the walk looked at still matches
(see :mod:`.fingerprint`); the system prompt lists skills every turn.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from .fingerprint import Fingerprint, StatKey, is_racy, key_of
from .model import SKILL_FILE, LoadProblem, Shadowed, Skill, SkillSource
from .parse import SkillParseError, parse_skill

# Parsed SKILL.md files by path and stat key: when one source changes, the
# others' SKILL.md files are not parsed again (YAML is most of a parse).
_PARSED: dict[tuple[str, StatKey], Skill] = {}


def _parse_cached(file: Path) -> Skill:
    now = time.time_ns()
    st_key = key_of(file.stat())
    cached = _PARSED.get((str(file), st_key))
    if cached is None:
        cached = parse_skill(file)
        if not is_racy(st_key, now):  # a same-tick rewrite would keep this key: parse again next time
            if len(_PARSED) > 2048:
                _PARSED.clear()
            _PARSED[(str(file), st_key)] = cached
    return msgspec.structs.replace(cached)  # a copy: discovery sets source fields on it


log = logging.getLogger(__name__)

SKIP_DIRS = frozenset(
    {".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", "venv", ".tox", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
)
MAX_DIRS_PER_ROOT = 5000


@dataclass(frozen=True)
class SourceDir:
    """A folder to search, the source it counts as, and who registered it."""

    path: Path
    source: SkillSource
    plugin: str = ""


@dataclass
class Discovery:
    skills: dict[str, Skill] = field(default_factory=dict)
    shadowed: list[Shadowed] = field(default_factory=list)
    problems: list[LoadProblem] = field(default_factory=list)
    # Each loaded skill's folder with symlinks resolved (realpath), by ``Skill.folder``.
    real_folders: dict[str, str] = field(default_factory=dict)

    def copy(self) -> Discovery:
        """A copy whose skills and lists the caller may change without touching the cached one."""
        return Discovery(
            skills={name: msgspec.structs.replace(skill) for name, skill in self.skills.items()},
            shadowed=list(self.shadowed),
            problems=list(self.problems),
            real_folders=dict(self.real_folders),
        )


def _skill_file(folder: Path) -> Path | None:
    for name in (SKILL_FILE, "skill.md"):
        candidate = folder / name
        if candidate.is_file():
            return candidate
    return None


def find_skill_files(
    root: Path, *, max_depth: int = 6, max_dirs: int = MAX_DIRS_PER_ROOT, watch: Fingerprint | None = None
) -> list[Path]:
    """Every SKILL.md under ``root`` (or ``root``'s own), breadth-first and bounded.

    With ``watch``, every path whose change could change the answer is added
    to it: ``root``, each folder listed, each sub-folder checked for a
    SKILL.md (a SKILL.md appearing in it changes its mtime) and each SKILL.md.
    """
    root = Path(root)
    if watch is not None:
        watch.add(root)  # a missing root is watched too: creating it changes its stat from None
    if not root.is_dir():
        return []
    own = _skill_file(root)
    if own is not None:
        if watch is not None:
            watch.add(own)
        return [own]
    found: list[Path] = []
    seen: set[str] = {os.path.realpath(root)}
    frontier: list[tuple[Path, int]] = [(root, 0)]
    visited = 0
    while frontier:
        folder, depth = frontier.pop(0)
        visited += 1
        if visited > max_dirs:
            log.warning("skill discovery under %s stopped after %d folders", root, max_dirs)
            break
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            if entry.name in SKIP_DIRS:
                continue
            try:
                if not entry.is_dir():  # follows symlinks: linked skill folders are common
                    continue
            except OSError:
                continue
            real = os.path.realpath(entry.path)
            if real in seen:
                continue  # a symlink loop or the same folder twice
            seen.add(real)
            child = Path(entry.path)
            if watch is not None:
                watch.add(child)
            skill_file = _skill_file(child)
            if skill_file is not None:
                found.append(skill_file)
                if watch is not None:
                    watch.add(skill_file)
            elif depth + 1 < max_depth:
                frontier.append((child, depth + 1))
    return found


def discover(sources: list[SourceDir], *, max_depth: int = 6, watch: Fingerprint | None = None) -> Discovery:
    """Load every skill from ``sources`` (highest priority first).

    A name seen again in a later (lower-priority) place is recorded as
    shadowed. A skill that cannot be loaded is recorded as a problem; it
    never hides the others.
    """
    result = Discovery()
    seen_folders: set[str] = set()
    for src in sources:
        for file in find_skill_files(src.path, max_depth=max_depth, watch=watch):
            real = os.path.realpath(file.parent)
            if real in seen_folders:
                continue
            seen_folders.add(real)
            result.real_folders[str(file.parent)] = real
            try:
                skill = _parse_cached(file)
            except SkillParseError as err:
                log.warning("skill %s skipped: %s", file, err)
                result.problems.append(LoadProblem(file=str(file), message=str(err)))
                continue
            except Exception as err:  # a bug in one file must not hide the rest
                log.exception("skill %s failed to load", file)
                result.problems.append(LoadProblem(file=str(file), message=f"{type(err).__name__}: {err}"))
                continue
            skill.source = src.source
            skill.source_dir = str(src.path)
            skill.plugin = src.plugin
            for warning in skill.warnings:
                result.problems.append(LoadProblem(file=str(file), message=warning, skipped=False))
            winner = result.skills.get(skill.name)
            if winner is not None:
                result.shadowed.append(
                    Shadowed(
                        name=skill.name,
                        file=skill.file,
                        source=skill.source,
                        shadowed_by=winner.file,
                        shadowed_by_source=winner.source,
                    )
                )
                continue
            result.skills[skill.name] = skill
    return result


class DiscoveryCache:
    """:func:`discover` results by source list, reused while their fingerprint holds.

    A hit costs one ``stat`` per watched folder and SKILL.md; a miss walks
    and discovers again (unchanged SKILL.md files still come from the parse
    cache). Racy fingerprints are never reused (see :mod:`.fingerprint`).
    """

    MAX_ENTRIES = 256  # one per agent with its own skills folder; cleared when exceeded

    def __init__(self) -> None:
        self._entries: dict[tuple[tuple[SourceDir, ...], int], tuple[Fingerprint, Discovery]] = {}

    def discover(self, sources: list[SourceDir], *, max_depth: int = 6) -> Discovery:
        key = (tuple(sources), max_depth)
        hit = self._entries.get(key)
        if hit is not None and hit[0].still_valid():
            return hit[1].copy()
        watch = Fingerprint()
        result = discover(sources, max_depth=max_depth, watch=watch)
        if len(self._entries) >= self.MAX_ENTRIES:
            self._entries.clear()
        self._entries[key] = (watch, result)
        return result.copy()

    def clear(self) -> None:
        self._entries.clear()
