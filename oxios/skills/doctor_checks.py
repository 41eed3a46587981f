"""`oxios doctor` findings for skills: unreadable SKILL.md files, changed skills, missing setup."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..doctor import Finding, check


@check
def _skills(config: Any) -> Iterable[Finding]:
    if config is None:
        return
    from ..cli.skill_cmds import skills_service

    with skills_service() as svc:
        report = svc.report()
    rows = report["skills"]
    ready = sum(1 for r in rows if r["status"] == "ready")
    yield Finding("skills", "ok", f"{len(rows)} skills, {ready} ready")
    for problem in report["problems"]:
        if problem["skipped"]:
            yield Finding("skills", "warn", f"{problem['file']} was skipped: {problem['message']}",
                          f"fix its frontmatter; `oxios skill validate {problem['file']}` shows every problem")  # fmt: skip
    for row in rows:
        if row["status"] == "changed":
            yield Finding("skills", "warn", f"skill {row['name']} changed since it was enabled ({row['folder']})",
                          f"review the files, then `oxios skill enable {row['name']}`")  # fmt: skip
        elif row["status"] == "needs_setup":
            yield Finding("skills", "warn", f"skill {row['name']} needs setup: {'; '.join(row['reasons'])}",
                          f"`oxios skill {row['name']}` shows its install steps")  # fmt: skip
