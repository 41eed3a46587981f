"""Reading one SKILL.md: frontmatter, dialects, and the lenient rules.

The loader follows the Agent Skills client guide: a skill is skipped only
when it cannot be understood (no description, YAML that stays broken after
retrying with quoted values); everything else loads with warnings. The same
checks, counted strictly, are what ``oxios skill validate`` reports.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from .model import Requirements, Skill

NAME_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
MAX_NAME = 64
MAX_DESCRIPTION = 1024
MAX_COMPATIBILITY = 500
MAX_BODY_LINES = 500  # the spec recommends keeping SKILL.md under this

SPEC_FIELDS = {"name", "description", "license", "compatibility", "metadata", "allowed-tools"}
OXIOS_FIELDS = {
    "requires", "install", "os", "always", "user-invocable", "disable-model-invocation",
    "emoji", "homepage", "author", "version", "primary-env",
}  # fmt: skip
CLAUDE_FIELDS = {"argument-hint", "when_to_use", "when-to-use", "model", "context", "agent", "hooks"}
OPENCLAW_KEYS = ("openclaw", "clawdbot", "clawdis")  # the block's current and earlier names


class SkillParseError(Exception):
    """A SKILL.md that cannot be loaded at all; the message names the file."""


class Report:
    """Spec errors and warnings found while reading one SKILL.md."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.warnings: list[str] = []

    def error(self, message: str) -> None:
        self.errors.append(message)

    def warn(self, message: str) -> None:
        self.warnings.append(message)


# -- frontmatter --------------------------------------------------------------------


def split_frontmatter(text: str) -> tuple[str | None, str]:
    """``(yaml_text, body)``; ``yaml_text`` is None when there is no frontmatter."""
    text = text.lstrip("\ufeff")
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        return None, text
    for i in range(1, len(lines)):
        if lines[i].strip() in ("---", "..."):
            return "".join(lines[1:i]), "".join(lines[i + 1 :])
    return None, text


_RISKY_START = tuple("@`%&*!|>'\"[{")
_KEY_VALUE = re.compile(r"^(\s*(?:-\s+)?[A-Za-z0-9_.-]+):[ \t]+(.+?)\s*$")


def quote_values(yaml_text: str) -> str:
    """Quote plain scalars that YAML chokes on (``description: Use when: ...``).

    Agents write frontmatter by hand; the commonest breakage is a colon or a
    leading backtick inside an unquoted value. Values that already are
    quoted, flow collections or block scalars are left alone.
    """
    out = []
    for line in yaml_text.splitlines():
        m = _KEY_VALUE.match(line)
        if m:
            key, value = m.group(1), m.group(2)
            starts_structured = value[0] in "'\"[{|>&*!"
            risky = ": " in value or " #" in value or value.endswith(":") or value[0] in "@`%"
            if risky and not starts_structured:
                escaped = value.replace("\\", "\\\\").replace('"', '\\"')
                line = f'{key}: "{escaped}"'
        out.append(line)
    return "\n".join(out) + "\n"


def load_frontmatter(yaml_text: str, report: Report) -> dict[str, Any]:
    """Parse YAML; on failure retry with quoted values; raise if still broken."""
    try:
        data = yaml.safe_load(yaml_text)
    except yaml.YAMLError as first:
        try:
            data = yaml.safe_load(quote_values(yaml_text))
        except yaml.YAMLError:
            raise SkillParseError(f"frontmatter is not valid YAML: {_first_line(first)}") from None
        report.error(f"frontmatter is not valid YAML ({_first_line(first)}); it loads only after quoting values")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SkillParseError(f"frontmatter must be a mapping of fields, got {type(data).__name__}")
    return {str(k): v for k, v in data.items()}


def _first_line(err: Exception) -> str:
    return " ".join(str(err).split())[:200]


# -- value coercion (odd types are kept, never fatal) ---------------------------------


def as_str(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return str(value)


def as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "on", "1")
    if isinstance(value, (int, float)):
        return bool(value)
    return False


def as_list(value: Any) -> list[str]:
    """A list of strings from a list, a comma/space separated string, or one value."""
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple, set)):
        return [as_str(v) for v in value if as_str(v)]
    if isinstance(value, str):
        return split_tools(value)
    return [as_str(value)]


def split_tools(text: str) -> list[str]:
    """Split ``"Read, Bash(git diff:*) Grep"`` on commas and spaces outside parentheses."""
    items: list[str] = []
    depth = 0
    buf = ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        if depth == 0 and (ch == "," or ch.isspace()):
            if buf.strip():
                items.append(buf.strip())
            buf = ""
            continue
        buf += ch
    if buf.strip():
        items.append(buf.strip())
    return items


def as_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return {str(k): v for k, v in value.items()}
    if isinstance(value, str) and value.strip().startswith("{"):
        try:  # OpenClaw writes metadata as one line of JSON; some tools quote it.
            parsed = json.loads(value)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def _requirements(value: Any) -> Requirements:
    if isinstance(value, (list, str)):  # `requires: [git, jq]` means binaries
        return Requirements(bins=as_list(value))
    data = as_dict(value)
    return Requirements(
        bins=as_list(data.get("bins")),
        any_bins=as_list(data.get("any_bins", data.get("anyBins", data.get("any-bins")))),
        env=as_list(data.get("env")),
        config=as_list(data.get("config")),
    )


def _install_steps(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        return [{"kind": "shell", "command": as_str(value)}]
    steps = []
    for step in value:
        if isinstance(step, dict):
            steps.append({str(k): v for k, v in step.items()})
        elif isinstance(step, str):
            steps.append({"kind": "shell", "command": step})
    return steps


def _merge_requirements(first: Requirements, second: Requirements) -> Requirements:
    def union(a: list[str], b: list[str]) -> list[str]:
        return list(dict.fromkeys([*a, *b]))

    return Requirements(
        bins=union(first.bins, second.bins),
        any_bins=union(first.any_bins, second.any_bins),
        env=union(first.env, second.env),
        config=union(first.config, second.config),
    )


# -- the whole file -----------------------------------------------------------------


def parse_skill(file: Path, *, strict_report: Report | None = None) -> Skill:
    """Read ``file`` (a SKILL.md) into a :class:`Skill`.

    Raises :class:`SkillParseError` when the skill must be skipped. Warnings
    (and, in ``strict_report``, spec errors) are recorded; loading is lenient.
    """
    report = strict_report or Report()
    try:
        text = file.read_text(encoding="utf-8", errors="replace")
    except OSError as err:
        raise SkillParseError(f"cannot read: {err.strerror or err}") from None
    yaml_text, body = split_frontmatter(text)
    if yaml_text is None:
        raise SkillParseError("no YAML frontmatter (the file must start with a --- block holding name and description)")
    fm = load_frontmatter(yaml_text, report)
    folder = file.parent
    dialects: list[str] = []

    name = as_str(fm.get("name"))
    if not name:
        report.error("name is missing")
        name = folder.name
    elif name != folder.name:
        report.error(f"name {name!r} does not match its folder {folder.name!r}")
    if not NAME_RE.match(name) or len(name) > MAX_NAME:
        report.error(
            f"name {name!r} must be 1-{MAX_NAME} lowercase letters, digits and single hyphens, not starting or ending with one"
        )

    description = as_str(fm.get("description"))
    if not description:
        raise SkillParseError("description is missing or empty (agents choose skills by their description)")
    if len(description) > MAX_DESCRIPTION:
        report.error(f"description is {len(description)} characters; the spec allows {MAX_DESCRIPTION}")

    compatibility = as_str(fm.get("compatibility"))
    if len(compatibility) > MAX_COMPATIBILITY:
        report.error(f"compatibility is {len(compatibility)} characters; the spec allows {MAX_COMPATIBILITY}")

    raw_metadata = fm.get("metadata")
    metadata = as_dict(raw_metadata)
    if raw_metadata is not None and not isinstance(raw_metadata, dict) and not metadata:
        report.warn(f"metadata should be a mapping, got {type(raw_metadata).__name__}; kept as {{}}")
    odd = [k for k, v in metadata.items() if not isinstance(v, str) and k not in OPENCLAW_KEYS]
    if odd:
        report.warn(f"metadata values should be strings; kept as they are: {', '.join(sorted(odd))}")

    if "allowed-tools" in fm and not isinstance(fm["allowed-tools"], (str, list)):
        report.warn("allowed-tools should be a string or a list")
    allowed_tools = as_list(fm.get("allowed-tools", fm.get("allowed_tools")))

    if any(k in fm for k in SPEC_FIELDS - {"name", "description"}):
        dialects.append("agentskills")
    requires = _requirements(fm.get("requires"))
    install = _install_steps(fm.get("install"))
    os_list = [o.lower() for o in as_list(fm.get("os"))]
    always = as_bool(fm.get("always"))
    emoji = as_str(fm.get("emoji"))
    homepage = as_str(fm.get("homepage"))
    primary_env = as_str(fm.get("primary-env", fm.get("primaryEnv")))
    if any(k in fm for k in OXIOS_FIELDS):
        dialects.append("oxios")

    # OpenClaw keeps its fields in metadata.openclaw; top-level fields win.
    for key in OPENCLAW_KEYS:
        block = as_dict(metadata.get(key))
        if not block:
            continue
        dialects.append("openclaw")
        requires = _merge_requirements(requires, _requirements(block.get("requires")))
        install = install or _install_steps(block.get("install"))
        os_list = os_list or [o.lower() for o in as_list(block.get("os"))]
        always = always or as_bool(block.get("always"))
        emoji = emoji or as_str(block.get("emoji"))
        homepage = homepage or as_str(block.get("homepage"))
        primary_env = primary_env or as_str(block.get("primaryEnv"))
        break

    if any(k in fm for k in CLAUDE_FIELDS):
        dialects.append("claude-code")
    known = SPEC_FIELDS | OXIOS_FIELDS | CLAUDE_FIELDS | {"allowed_tools", "primaryEnv", "user_invocable"}
    unknown = sorted(k for k in fm if k not in known)
    if unknown:
        report.warn(f"unknown frontmatter fields kept as they are: {', '.join(unknown)}")

    if not body.strip():
        report.warn("the body is empty: a skill's instructions go below the frontmatter")
    elif body.count("\n") > MAX_BODY_LINES:
        report.warn(
            f"SKILL.md body has {body.count(chr(10))} lines; keep it under {MAX_BODY_LINES} and move detail to references/"
        )

    return Skill(
        name=name,
        description=description,
        folder=str(folder),
        file=str(file),
        body=body.strip("\n"),
        license=as_str(fm.get("license")),
        compatibility=compatibility,
        metadata=metadata,
        allowed_tools=allowed_tools,
        requires=requires,
        install=install,
        os=os_list,
        always=always,
        user_invocable=as_bool(fm.get("user-invocable", fm.get("user_invocable", True))),
        disable_model_invocation=as_bool(fm.get("disable-model-invocation")),
        emoji=emoji,
        homepage=homepage,
        author=as_str(fm.get("author")),
        version=as_str(fm.get("version")),
        primary_env=primary_env,
        argument_hint=as_str(fm.get("argument-hint")),
        when_to_use=as_str(fm.get("when_to_use", fm.get("when-to-use"))),
        dialects=dialects or ["agentskills"],
        warnings=[*report.errors, *report.warnings],
        frontmatter=_jsonable(fm),
    )


def _jsonable(value: Any) -> Any:
    """YAML can produce dates and sets; keep the frontmatter JSON-friendly."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def validate(path: Path) -> Report:
    """Spec errors and warnings for a skill folder or SKILL.md (``oxios skill validate``)."""
    path = Path(path)
    file = path / "SKILL.md" if path.is_dir() else path
    report = Report()
    if not file.is_file():
        report.error(f"{file}: no SKILL.md here")
        return report
    try:
        parse_skill(file, strict_report=report)
    except SkillParseError as err:
        report.error(str(err))
    return report
