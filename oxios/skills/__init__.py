"""SKILL.md packages: discovery, parsing, eligibility, integrity and the prompt index.

The service lives in :mod:`oxios.skills.service` (``kernel.services["skills"]``);
:func:`parse_skill` and :func:`validate` read one file; :func:`discover` walks
the sources.
"""

from __future__ import annotations

from .discover import Discovery, SourceDir, discover, find_skill_files
from .eligibility import folder_hash, missing_requirements
from .model import SOURCE_PRIORITY, Eligibility, LoadProblem, Requirements, Shadowed, Skill
from .parse import Report, SkillParseError, parse_skill, validate
from .service import SkillError, SkillsService, render_skill_md

__all__ = [
    "SOURCE_PRIORITY",
    "Discovery",
    "Eligibility",
    "LoadProblem",
    "Report",
    "Requirements",
    "Shadowed",
    "Skill",
    "SkillError",
    "SkillParseError",
    "SkillsService",
    "SourceDir",
    "discover",
    "find_skill_files",
    "folder_hash",
    "missing_requirements",
    "parse_skill",
    "render_skill_md",
    "validate",
]
