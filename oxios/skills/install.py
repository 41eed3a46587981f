"""Install steps: what a skill says it needs installed, as commands the exec policy can judge.

Steps are shown by ``oxios skill NAME`` and run only by ``oxios skill install
NAME``, one by one, each through ``kernel.check_action(Action(kind="exec"))``
and a confirmation. Nothing here runs a command by itself.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from .model import Skill


class InstallStep(msgspec.Struct, kw_only=True):
    label: str
    kind: str
    argv: list[str] = []
    command: str = ""
    mode: Literal["structured", "shell"] = "structured"
    supported: bool = True
    note: str = ""
    bins: list[str] = []

    def describe(self) -> str:
        return self.command or " ".join(self.argv)


def _first(step: dict[str, Any], *keys: str) -> str:
    for key in keys:
        value = step.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


def plan_step(step: dict[str, Any]) -> InstallStep:
    """Turn one frontmatter install entry (Oxios or OpenClaw shape) into a command."""
    kind = str(step.get("kind") or step.get("type") or "").lower()
    label = _first(step, "label", "id") or kind or "install"
    bins = [str(b) for b in step.get("bins", [])] if isinstance(step.get("bins"), list) else []
    package = _first(step, "formula", "package", "module", "name", "pkg")
    argv = step.get("argv")
    if kind == "exec" and isinstance(argv, list) and argv:
        return InstallStep(label=label, kind=kind, argv=[str(a) for a in argv], bins=bins)
    if kind == "brew" and package:
        return InstallStep(label=label, kind=kind, argv=["brew", "install", package], bins=bins)
    if kind in ("apt", "apt-get") and package:
        return InstallStep(label=label, kind=kind, argv=["apt-get", "install", "-y", package], bins=bins)
    if kind in ("pip", "python") and package:
        return InstallStep(label=label, kind=kind, argv=["pip", "install", package], bins=bins)
    if kind in ("uv", "pipx") and package:
        argv = ["uv", "tool", "install", package] if kind == "uv" else ["pipx", "install", package]
        return InstallStep(label=label, kind=kind, argv=argv, bins=bins)
    if kind in ("node", "npm") and package:
        return InstallStep(label=label, kind=kind, argv=["npm", "install", "-g", package], bins=bins)
    if kind == "go" and package:
        return InstallStep(label=label, kind=kind, argv=["go", "install", package], bins=bins)
    if kind in ("cargo", "rust") and package:
        return InstallStep(label=label, kind=kind, argv=["cargo", "install", package], bins=bins)
    command = _first(step, "command", "run", "script")
    if command:
        return InstallStep(label=label, kind=kind or "shell", command=command, mode="shell", bins=bins)
    url = _first(step, "url")
    if kind == "download" and url:
        return InstallStep(label=label, kind=kind, supported=False, note=f"download {url} yourself", bins=bins)
    return InstallStep(label=label, kind=kind or "?", supported=False, note=f"unrecognised install step: {step}", bins=bins)


def install_plan(skill: Skill) -> list[InstallStep]:
    return [plan_step(step) for step in skill.install]
