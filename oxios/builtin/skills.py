"""Built-in skills plugin: the bundled skills/ folder and the ``skill`` tool.

The tool is how a model loads a skill's instructions on demand (progressive
disclosure): the system prompt lists names and descriptions only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from oxios_hookspecs import ActionContext, ToolResult, hookimpl

# skills/ at the root of this checkout (code-review, debug, refactor ...).
BUNDLED_DIR = Path(__file__).resolve().parents[2] / "skills"


@hookimpl
def register_skills(register: Any) -> None:
    if BUNDLED_DIR.is_dir():
        register(BUNDLED_DIR)


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
