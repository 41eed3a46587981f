"""Built-in skills plugin: the bundled skills and the ``skill`` tool.

The bundled skills (code-review, debug, refactor ...) are package data in
oxios/skills/bundled/, so a wheel carries them and they are found the same
way in a checkout, an editable install and a normal install.

The tool is how a model loads a skill's instructions on demand (progressive
disclosure): the system prompt lists names and descriptions only.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

from oxios_hookspecs import ActionContext, ToolResult, hookimpl


def bundled_dir() -> Path:
    """oxios/skills/bundled wherever the oxios package is imported from."""
    # str(): a Traversable that is a real folder; a zipped install gives a path that is not a folder, and is skipped.
    return Path(str(files("oxios.skills") / "bundled"))


@hookimpl
def register_skills(register: Any) -> None:
    folder = bundled_dir()
    if folder.is_dir():
        register(folder)


async def skill(name: str, context: ActionContext, file: str = "") -> ToolResult:
    """Load a skill's instructions by name, or one of its files.

    Use it when a task matches a skill listed in <available_skills> and
    follow the instructions it returns. To read a file the instructions
    mention (scripts/, references/ ...), call it again with ``file`` set to
    the path relative to the skill's folder.
    """
    from ..skills import SkillError

    kernel = context.kernel
    service = kernel.services.get("skills") if kernel is not None else None
    if service is None:
        return ToolResult.error("skills are not available in this Oxios")
    try:
        if file:
            return ToolResult(content=service.read_file(name, file, context.agent_id))
        return ToolResult(content=service.load(name, context.agent_id))
    except LookupError as err:
        ready = sorted(s.name for s in service.ready(context.agent_id) if not s.disable_model_invocation)
        return ToolResult.error(f"{err.args[0] if err.args else err}; ready skills: {', '.join(ready) or 'none'}")
    except SkillError as err:
        return ToolResult.error(str(err))


@hookimpl
def register_tools(register: Any) -> None:
    register(skill, tier="read")
