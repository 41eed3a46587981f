"""What a loaded skill is: the SKILL.md frontmatter, normalised across dialects.

One struct holds the Agent Skills spec fields, Oxios's own fields, OpenClaw's
``metadata.openclaw`` block and Claude Code's fields, so the rest of Oxios
never needs to know which agent a skill was written for.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

SkillSource = Literal["agent", "workspace", "user", "package", "bundled"]
SkillStatus = Literal["ready", "needs_setup", "disabled", "changed"]

# Highest priority first: a skill found in an earlier source shadows the same
# name in a later one.
SOURCE_PRIORITY: tuple[SkillSource, ...] = ("agent", "workspace", "user", "package", "bundled")

SKILL_FILE = "SKILL.md"


class Requirements(msgspec.Struct, kw_only=True):
    """What must be true on this machine before a skill is usable."""

    bins: list[str] = []
    any_bins: list[str] = []
    env: list[str] = []
    config: list[str] = []

    def is_empty(self) -> bool:
        return not (self.bins or self.any_bins or self.env or self.config)


class Skill(msgspec.Struct, kw_only=True):
    """A parsed SKILL.md and where it came from."""

    name: str
    description: str
    folder: str
    file: str
    body: str = ""
    source: SkillSource = "user"
    source_dir: str = ""
    plugin: str = ""
    # Agent Skills spec
    license: str = ""
    compatibility: str = ""
    metadata: dict[str, Any] = {}
    allowed_tools: list[str] = []
    # Oxios (and OpenClaw's equivalents)
    requires: Requirements = msgspec.field(default_factory=Requirements)
    install: list[dict[str, Any]] = []
    os: list[str] = []
    always: bool = False
    user_invocable: bool = True
    disable_model_invocation: bool = False
    emoji: str = ""
    homepage: str = ""
    author: str = ""
    version: str = ""
    primary_env: str = ""
    # Claude Code
    argument_hint: str = ""
    when_to_use: str = ""
    # Which dialects contributed fields, and what the loader noticed.
    dialects: list[str] = []
    warnings: list[str] = []
    frontmatter: dict[str, Any] = {}

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "source": self.source,
            "location": self.file,
            "emoji": self.emoji,
        }


class Eligibility(msgspec.Struct, kw_only=True):
    """Whether a skill may reach a prompt, and what is missing if not."""

    status: SkillStatus
    missing: dict[str, list[str]] = {}
    reasons: list[str] = []


class LoadProblem(msgspec.Struct, kw_only=True):
    """A SKILL.md that was skipped (or loaded with warnings) and why."""

    file: str
    message: str
    skipped: bool = True


class Shadowed(msgspec.Struct, kw_only=True):
    """A skill hidden by a higher-priority skill of the same name."""

    name: str
    file: str
    source: SkillSource
    shadowed_by: str
    shadowed_by_source: SkillSource
