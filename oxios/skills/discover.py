"""Finding SKILL.md files: bounded walks over the skill sources, by priority.

A walk stops at a folder holding a SKILL.md (its scripts/ and references/
are the skill's, not more skills), never enters .git or node_modules, does
enter dot-folders (collections keep skills under .claude/ or .curated/), and
is bounded in depth and in folders visited so a huge tree cannot stall it.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from .model import SKILL_FILE, LoadProblem, Shadowed, Skill, SkillSource
from .parse import SkillParseError, parse_skill

# Parsed SKILL.md files by (path, size, mtime, ctime, inode): the system prompt lists
# skills every turn, and YAML parsing is most of what that costs.
_PARSED: dict[tuple[str, int, int, int, int], Skill] = {}


def _parse_cached(file: Path) -> Skill:
    st = file.stat()
    key = (str(file), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    cached = _PARSED.get(key)
    if cached is None:
        cached = parse_skill(file)
        if len(_PARSED) > 2048:
            _PARSED.clear()
        _PARSED[key] = cached
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


def _skill_file(folder: Path) -> Path | None:
    for name in (SKILL_FILE, "skill.md"):
        candidate = folder / name
        if candidate.is_file():
            return candidate
    return None


def find_skill_files(root: Path, *, max_depth: int = 6, max_dirs: int = MAX_DIRS_PER_ROOT) -> list[Path]:
    """Every SKILL.md under ``root`` (or ``root``'s own), breadth-first and bounded."""
    root = Path(root)
    if not root.is_dir():
        return []
    own = _skill_file(root)
    if own is not None:
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
            skill_file = _skill_file(child)
            if skill_file is not None:
                found.append(skill_file)
            elif depth + 1 < max_depth:
                frontier.append((child, depth + 1))
    return found


def discover(sources: list[SourceDir], *, max_depth: int = 6) -> Discovery:
    """Load every skill from ``sources`` (highest priority first).

    A name seen again in a later (lower-priority) place is recorded as
    shadowed. A skill that cannot be loaded is recorded as a problem; it
    never hides the others.
    """
    result = Discovery()
    seen_folders: set[str] = set()
    for src in sources:
        for file in find_skill_files(src.path, max_depth=max_depth):
            real = os.path.realpath(file.parent)
            if real in seen_folders:
                continue
            seen_folders.add(real)
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
