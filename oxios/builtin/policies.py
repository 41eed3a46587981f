"""Default policies: files stay in the workspace, exec only for allowlisted binaries.

The security subsystem (``oxios.security``) grows these into the full rule
set; this module is where the built-in votes enter the ``check_action`` hook.
"""

from __future__ import annotations

import os
from pathlib import Path

from oxios_hookspecs import Action, ActionContext, Decision, hookimpl

NAME = "workspace"


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False


@hookimpl
def check_action(action: Action, context: ActionContext) -> Decision | None:
    kernel = context.kernel
    if action.kind == "path" and context.workspace:
        root = Path(context.workspace).resolve()
        target = Path(os.path.expanduser(action.path))
        if not target.is_absolute():
            target = root / target
        real = target.resolve()
        if _inside(real, root):
            return Decision(verdict="allow", reason="inside the workspace", policy=NAME)
        return Decision(verdict="deny", reason=f"{action.path} is outside the workspace {root}", policy=NAME)
    if action.kind == "exec" and kernel is not None:
        if action.mode != "structured" or not action.argv:
            return Decision(verdict="deny", reason="only structured exec (binary + arguments) is enabled", policy=NAME)
        binary = action.argv[0]
        allowed = kernel.config.exec.allowed_commands
        if "/" in binary or binary not in allowed:
            return Decision(verdict="deny", reason=f"{binary} is not on exec.allowed_commands", policy=NAME)
        return Decision(verdict="allow", reason=f"{binary} is on exec.allowed_commands", policy=NAME)
    return None
