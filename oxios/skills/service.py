"""The "skills" service: sources, enable/disable, integrity, the prompt index.

Discovery, parsing and folder hashes are cached, each checked on every call
by a stat of every folder and file it was computed from (see
:mod:`.fingerprint`), so a skill folder copied in or edited while the daemon
runs is seen at the next turn. The enabled flag and recorded hash are read
from the state store on every call, so the CLI and the daemon always agree.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import msgspec

from .discover import Discovery, DiscoveryCache, SourceDir
from .eligibility import evaluate, folder_hash
from .model import SKILL_FILE, Eligibility, Skill
from .parse import MAX_DESCRIPTION, NAME_RE

log = logging.getLogger(__name__)

STATE_NAMESPACE = "skills"
CHARS_PER_TOKEN = 4  # a rough, model-independent estimate, good enough for a budget
MENTION_RE = re.compile(r"(?<![\w$\\])\$([a-z0-9]+(?:-[a-z0-9]+)*)(?![\w-])")
MAX_LOAD_FILES = 50
MAX_READ_BYTES = 256 * 1024


class SkillError(Exception):
    """A skill operation that cannot be done (bad name, read-only source ...)."""


class SkillsService:
    """Skills for one Oxios home. Usable with or without a running kernel."""

    def __init__(
        self,
        *,
        config: Any,
        home: Path,
        workspace: Path,
        state: Any,
        plugins: Any = None,
        environ: Mapping[str, str] | None = None,
        user_home: Path | None = None,
        events: Any = None,
    ) -> None:
        self.config = config
        self.home = Path(home)
        self.workspace = Path(workspace)
        self.state = state
        self.plugins = plugins
        self._environ = environ
        self._user_home = user_home
        self.events = events
        self._package_dirs: list[SourceDir] | None = None
        self._discovery = DiscoveryCache()

    @property
    def environ(self) -> Mapping[str, str]:
        return os.environ if self._environ is None else self._environ

    # -- sources --------------------------------------------------------------------

    def package_dirs(self) -> list[SourceDir]:
        """Folders registered through ``register_skills``; built-in plugins count as bundled."""
        if self._package_dirs is None:
            dirs: list[SourceDir] = []
            if self.plugins is not None:

                def make_register(plugin: str) -> Any:
                    info = self.plugins.info.get(plugin)
                    source = "bundled" if info is not None and info.builtin else "package"

                    def register(path: Any) -> None:
                        dirs.append(SourceDir(Path(path), source, plugin))

                    return register

                self.plugins.collect("register_skills", make_register)
            # Installed packages outrank what Oxios bundles.
            self._package_dirs = [d for d in dirs if d.source == "package"] + [d for d in dirs if d.source == "bundled"]
        return self._package_dirs

    def sources(self, agent_id: str = "") -> list[SourceDir]:
        """Every folder searched, highest priority first."""
        user_home = self._user_home or Path(self.environ.get("HOME") or Path.home())
        out: list[SourceDir] = []
        if agent_id:
            out.append(SourceDir(self.workspace / "agents" / agent_id / "skills", "agent"))
        out += [
            SourceDir(self.workspace / "skills", "workspace"),
            SourceDir(self.workspace / ".agents" / "skills", "workspace"),
            SourceDir(self.home / "skills", "user"),
            SourceDir(user_home / ".agents" / "skills", "user"),
        ]
        out += [SourceDir(Path(os.path.expanduser(d)), "user") for d in self.config.skills.extra_dirs]
        out += self.package_dirs()
        return out

    def discover(self, agent_id: str = "") -> Discovery:
        return self._discovery.discover(self.sources(agent_id), max_depth=self.config.skills.max_depth)

    # -- enable state and integrity ----------------------------------------------------

    def _record(self, skill: Skill) -> dict[str, Any] | None:
        # An agent's own skill is recorded under its folder: keyed by name, one agent's
        # copy would mark the same-named skill every other agent sees as changed.
        key = f"{skill.name}@{skill.folder}" if skill.source == "agent" else skill.name
        record = self.state.kv_get(STATE_NAMESPACE, key)
        if record is None and skill.source != "bundled":
            # Trust on first sight: the hash is recorded when a skill is first
            # seen, so a later change to its files is caught.
            record = {"enabled": True, "hash": folder_hash(Path(skill.folder)), "folder": skill.folder,
                      "recorded_at": time.time(), "how": "first-seen"}  # fmt: skip
            self.state.kv_set(STATE_NAMESPACE, key, record)
        return record

    def eligibility(self, skill: Skill, *, which: Callable[..., str | None] | None = None) -> Eligibility:
        record = self._record(skill)
        enabled = True if record is None else bool(record.get("enabled", True))
        changed = False
        if enabled and record is not None and record.get("hash"):
            changed = folder_hash(skill.folder) != record["hash"]
        return evaluate(skill, enabled=enabled, changed=changed, environ=self.environ, config=self.config, which=which)

    # -- reading ------------------------------------------------------------------------

    def skill(self, name: str, agent_id: str = "") -> Skill:
        from ..kernel import NotFound

        found = self.discover(agent_id).skills.get(name)
        if found is None:
            raise NotFound(f"no skill named {name!r} (`oxios skills` lists them)")
        return found

    def _row(self, skill: Skill, elig: Eligibility) -> dict[str, Any]:
        return {
            **skill.summary(),
            "folder": skill.folder,
            "plugin": skill.plugin,
            "status": elig.status,
            "eligible": elig.status == "ready",
            "missing": elig.missing,
            "reasons": elig.reasons,
            "warnings": skill.warnings,
            "user_invocable": skill.user_invocable,
            "model_invocable": not skill.disable_model_invocation,
        }

    def list(self, agent_id: str = "") -> list[dict[str, Any]]:
        found = self.discover(agent_id)
        return [self._row(s, self.eligibility(s)) for s in sorted(found.skills.values(), key=lambda s: s.name)]

    def report(self, agent_id: str = "") -> dict[str, Any]:
        """Skills with eligibility, plus the shadowed ones and the files that were skipped or warned about."""
        found = self.discover(agent_id)
        return {
            "skills": [self._row(s, self.eligibility(s)) for s in sorted(found.skills.values(), key=lambda s: s.name)],
            "shadowed": msgspec.to_builtins(found.shadowed),
            "problems": msgspec.to_builtins(found.problems),
        }

    def get(self, name: str, agent_id: str = "") -> dict[str, Any]:
        """Details: every field, the requirements check, install steps, shadowed copies."""
        found = self.discover(agent_id)
        skill = found.skills.get(name)
        if skill is None:
            from ..kernel import NotFound

            raise NotFound(f"no skill named {name!r} (`oxios skills` lists them)")
        from .install import install_plan

        out = msgspec.to_builtins(skill)
        out.pop("body", None)
        out.update(self._row(skill, self.eligibility(skill)))
        out["install_steps"] = [msgspec.to_builtins(step) for step in install_plan(skill)]
        out["shadowed"] = [msgspec.to_builtins(s) for s in found.shadowed if s.name == name]
        out["files"] = _list_files(Path(skill.folder))
        return out

    def content(self, name: str, agent_id: str = "") -> str:
        """The SKILL.md text as it is on disk."""
        return Path(self.skill(name, agent_id).file).read_text(encoding="utf-8", errors="replace")

    # -- changing -----------------------------------------------------------------------

    def enable(self, name: str) -> dict[str, Any]:
        """Turn a skill on and record its folder's hash (re-enabling accepts changed files)."""
        skill = self.skill(name)
        record = {"enabled": True, "hash": folder_hash(Path(skill.folder)), "folder": skill.folder,
                  "recorded_at": time.time(), "how": "enabled"}  # fmt: skip
        self.state.kv_set(STATE_NAMESPACE, name, record)
        self._publish("skill.enabled", name=name, hash=record["hash"])
        return self._row(skill, self.eligibility(skill))

    def disable(self, name: str) -> dict[str, Any]:
        skill = self.skill(name)
        record = dict(self.state.kv_get(STATE_NAMESPACE, name) or {})
        record.update(enabled=False, folder=skill.folder, recorded_at=time.time())
        self.state.kv_set(STATE_NAMESPACE, name, record)
        self._publish("skill.disabled", name=name)
        return self._row(skill, self.eligibility(skill))

    def create(
        self,
        name: str,
        description: str,
        body: str = "",
        *,
        scope: str = "user",
        fields: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Write a new skill folder (user: OXIOS_HOME/skills, workspace: <workspace>/skills)."""
        if not NAME_RE.match(name or "") or len(name) > 64:
            raise SkillError(f"invalid skill name {name!r}: use lowercase letters, digits and single hyphens (max 64)")
        if not description or not description.strip():
            raise SkillError("a skill needs a description (agents choose skills by it)")
        if len(description) > MAX_DESCRIPTION:
            raise SkillError(f"description is longer than {MAX_DESCRIPTION} characters")
        roots = {"user": self.home / "skills", "workspace": self.workspace / "skills"}
        if scope not in roots:
            raise SkillError(f"scope must be one of {', '.join(roots)}")
        folder = roots[scope] / name
        if folder.exists():
            from ..kernel import Conflict

            raise Conflict(f"{folder} already exists")
        folder.parent.mkdir(parents=True, exist_ok=True)
        folder.mkdir()
        (folder / SKILL_FILE).write_text(render_skill_md(name, description, body, fields), encoding="utf-8")
        self._publish("skill.created", name=name, folder=str(folder))
        return self.enable(name)

    def delete(self, name: str) -> dict[str, Any]:
        """Remove a user or workspace skill folder; bundled and package skills are read-only."""
        skill = self.skill(name)
        if skill.source not in ("user", "workspace", "agent"):
            raise SkillError(f"{name} comes from {skill.source} ({skill.plugin or skill.source_dir}); uninstall that instead")
        shutil.rmtree(skill.folder)
        self.state.kv_delete(STATE_NAMESPACE, name)
        self._publish("skill.deleted", name=name, folder=skill.folder)
        return {"name": name, "deleted": True, "folder": skill.folder}

    def _publish(self, event: str, **data: Any) -> None:
        if self.events is not None:
            self.events.publish(event, **data)

    # -- use by agents --------------------------------------------------------------------

    def ready(self, agent_id: str = "") -> list[Skill]:
        return self._ready(self.discover(agent_id))

    def _ready(self, found: Discovery) -> list[Skill]:
        which = functools.lru_cache(maxsize=None)(shutil.which)  # one PATH search per binary per call
        return [s for s in found.skills.values() if self.eligibility(s, which=which).status == "ready"]

    def prompt_index(self, token_budget: int | None = None, agent_id: str = "") -> str:
        """The ``<available_skills>`` block for the system prompt, within ``token_budget``.

        Only ready skills the model may invoke are listed, highest-priority
        source first. When the budget runs out the rest are counted, not
        listed, so the model knows the ``skill`` tool can find more.
        """
        budget_chars = (token_budget if token_budget is not None else self.config.skills.prompt_token_budget) * CHARS_PER_TOKEN
        from .model import SOURCE_PRIORITY

        skills = [s for s in self.ready(agent_id) if not s.disable_model_invocation]
        if not skills:
            return ""
        skills.sort(key=lambda s: (SOURCE_PRIORITY.index(s.source), s.name))
        head = (
            "Skills hold instructions for specialised tasks. When a task matches a skill's description, "
            "load it with the `skill` tool (or read its SKILL.md at the location) before acting.\n"
            "<available_skills>\n"
        )
        tail = "</available_skills>"
        used = len(head) + len(tail)
        entries: list[str] = []
        for i, skill in enumerate(skills):
            entry = (
                "  <skill>\n"
                f"    <name>{escape(skill.name)}</name>\n"
                f"    <description>{escape(' '.join(skill.description.split()))}</description>\n"
                f"    <location>{escape(skill.file)}</location>\n"
                "  </skill>\n"
            )
            if used + len(entry) > budget_chars:
                left = len(skills) - i
                entries.append(
                    f"  <!-- {left} more skill(s) not listed (token budget); the skill tool can load them by name -->\n"
                )
                break
            entries.append(entry)
            used += len(entry)
        if not any("<skill>" in e for e in entries):
            return ""
        return head + "".join(entries) + tail

    def load(self, name: str, agent_id: str = "", *, by_user: bool = False) -> str:
        """A skill's instructions for the model (the ``skill`` tool and ``$name``)."""
        skill = self.skill(name, agent_id)
        if skill.disable_model_invocation and not by_user:
            raise SkillError(f"skill {name} can only be invoked by the user (${name})")
        if by_user and not skill.user_invocable:
            raise SkillError(f"skill {name} is not user-invocable")
        elig = self.eligibility(skill)
        if elig.status != "ready":
            raise SkillError(f"skill {name} is {elig.status}: {'; '.join(elig.reasons)}")
        files = [f for f in _list_files(Path(skill.folder)) if f != SKILL_FILE]
        listing = ""
        if files:
            shown = files[:MAX_LOAD_FILES]
            more = f" (+{len(files) - len(shown)} more)" if len(files) > len(shown) else ""
            listing = "\nFiles in this skill (read one with the skill tool's `file` argument): " + ", ".join(shown) + more
        self._publish("skill.loaded", name=name, agent_id=agent_id, by_user=by_user)
        return (
            f'<skill name="{escape(skill.name)}" location="{escape(skill.file)}">\n'
            f"Base directory of this skill: {skill.folder} (relative paths below resolve against it).{listing}\n\n"
            f"{skill.body}\n</skill>"
        )

    def read_file(self, name: str, relpath: str, agent_id: str = "") -> str:
        """A file inside a ready skill's folder, read-only (the ``skill`` tool's ``file``).

        The path must stay inside the folder after resolving symlinks and
        ``..``; the skill must be ready, so a changed skill's new files are
        never served.
        """
        skill = self.skill(name, agent_id)
        elig = self.eligibility(skill)
        if elig.status != "ready":
            raise SkillError(f"skill {name} is {elig.status}: {'; '.join(elig.reasons)}")
        root = Path(skill.folder).resolve()
        if not relpath or Path(relpath).is_absolute():
            raise SkillError("give a path relative to the skill's folder, e.g. references/guide.md")
        target = (root / relpath).resolve()
        if target != root and root not in target.parents:
            raise SkillError(f"{relpath} is outside the skill's folder")
        if not target.is_file():
            raise SkillError(f"{relpath} is not a file in skill {name} (files: {', '.join(_list_files(root)[:20])})")
        if target.stat().st_size > MAX_READ_BYTES:
            raise SkillError(f"{relpath} is larger than {MAX_READ_BYTES // 1024} KiB")
        return target.read_text(encoding="utf-8", errors="replace")

    def mentions(self, text: str) -> list[str]:
        """``$skill-name`` mentions in ``text``, in order, without repeats."""
        return list(dict.fromkeys(MENTION_RE.findall(text or "")))

    def mention_context(self, text: str, agent_id: str = "") -> str:
        """The bodies of the skills ``text`` mentions as ``$skill-name`` ("" when none).

        Words like ``$HOME`` or ``$5`` that name no skill are left alone. A
        mentioned skill that is not ready gets a one-line note instead, so the
        model can tell the user why.
        """
        names = self.mentions(text)
        if not names:
            return ""
        known = self.discover(agent_id).skills
        blocks: list[str] = []
        for name in names:
            if name not in known:
                continue
            try:
                blocks.append(self.load(name, agent_id, by_user=True))
            except SkillError as err:
                blocks.append(f"[skill {name} was not loaded: {err}]")
        return "\n\n".join(blocks)

    def expand_mentions(self, text: str, agent_id: str = "") -> str:
        """``text`` followed by the bodies of the skills it mentions as ``$skill-name``."""
        extra = self.mention_context(text, agent_id)
        return f"{text}\n\n{extra}" if extra else text

    def allowed_read_roots(self, agent_id: str = "") -> list[str]:
        """Folders of ready skills: the read tool may read inside them (read-only)."""
        found = self.discover(agent_id)
        return [found.real_folders.get(s.folder) or str(Path(s.folder).resolve()) for s in self._ready(found)]

    def status(self) -> dict[str, Any]:
        try:
            rows = self.list()
        except Exception as err:
            return {"healthy": False, "detail": str(err)}
        ready = sum(1 for r in rows if r["status"] == "ready")
        return {"healthy": True, "detail": f"{len(rows)} skills, {ready} ready"}


def _list_files(folder: Path, limit: int = 500) -> list[str]:
    from .discover import SKIP_DIRS

    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        for name in sorted(filenames):
            out.append((Path(dirpath) / name).relative_to(folder).as_posix())
            if len(out) >= limit:
                return out
    return out


def render_skill_md(name: str, description: str, body: str = "", fields: dict[str, Any] | None = None) -> str:
    """A SKILL.md with valid frontmatter (YAML-dumped, so any text is quoted right)."""
    import yaml

    front = {"name": name, "description": description, **(fields or {})}
    text = yaml.safe_dump(front, sort_keys=False, allow_unicode=True, width=1000).strip()
    body = body.strip() or (
        f"# {name}\n\n"
        "## When to use\n\nDescribe the situations this skill is for.\n\n"
        "## Steps\n\n1. First step.\n2. Second step.\n"
    )
    return f"---\n{text}\n---\n\n{body}\n"


def start(kernel: Any) -> SkillsService:
    """Kernel SERVICES factory for ``skills``."""
    service = SkillsService(
        config=kernel.config,
        home=kernel.paths.home,
        workspace=kernel.paths.workspace,
        state=kernel.state,
        plugins=kernel.plugins,
        events=kernel.events,
    )
    for method in ("list", "report", "get", "content", "enable", "disable", "create", "delete", "prompt_index"):
        kernel.expose(f"skills.{method}", getattr(service, method))
    return service
