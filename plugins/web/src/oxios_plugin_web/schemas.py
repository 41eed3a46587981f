"""Request and response bodies of the REST API (msgspec Structs).

Request bodies forbid unknown fields: a typo in a client is a 422 naming the
field, never a silently ignored setting. Response bodies whose items come
straight from a kernel service are documented as open objects (``Item``),
since the service owns their fields.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from oxios import CronJobSpec

Item = dict[str, Any]


class Request(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Base of every request body."""


# -- chat ---------------------------------------------------------------------------


class ChatRequest(Request):
    """``content`` (or its alias ``message``, as in the channel guide) is the text to send."""

    content: str | None = None
    message: str | None = None
    user_id: str = "default"
    session_id: str | None = None
    space_id: str | None = None
    persona: str | None = None


class ChatResponse(msgspec.Struct, kw_only=True):
    id: str
    echo: str
    reply: str
    response: str
    session_id: str
    space_id: str | None
    space_tag: str | None = None
    phase: str
    seed_id: str | None = None
    agent_id: str | None = None
    evaluation_passed: bool | None = None
    exit_code: int = 0
    duration_ms: int = 0
    error: str | None = None


# -- system -------------------------------------------------------------------------


class Health(msgspec.Struct, kw_only=True):
    status: Literal["ok"]
    version: str


class Readiness(msgspec.Struct, kw_only=True):
    status: Literal["healthy", "degraded"]
    version: str
    uptime_secs: float
    components: dict[str, Item]


class Status(msgspec.Struct, kw_only=True):
    service: str
    status: str
    version: str
    uptime: str
    uptime_secs: float
    channels: dict[str, Any]
    components: dict[str, Any]
    plugins: list[str] = []


class ConfigUpdated(msgspec.Struct, kw_only=True):
    status: Literal["updated"]
    changed: list[str]  # keys this request wrote
    applied: list[str]  # keys the reload applied to the running daemon
    restart_required: list[str]  # keys that keep their running value until `oxios restart`
    config: Item  # the running config (secrets redacted)


# -- workspace ----------------------------------------------------------------------


class TreeNode(msgspec.Struct, kw_only=True, omit_defaults=True):
    name: str
    path: str
    type: Literal["file", "dir"]
    size: int = 0
    children: list[TreeNode] | None = None
    truncated: bool = False


class FileWritten(msgspec.Struct, kw_only=True):
    status: Literal["written"]
    path: str
    size: int


# -- skills -------------------------------------------------------------------------


class SkillCreate(Request):
    """A new skill: ``body`` is the SKILL.md text below the frontmatter."""

    name: str
    description: str
    body: str = ""
    scope: Literal["user", "workspace"] = "user"
    fields: Item = {}


class SkillContent(msgspec.Struct, kw_only=True):
    name: str
    content: str


# -- memory -------------------------------------------------------------------------


class MemoryCreate(Request):
    content: str
    name: str = ""
    category: str = ""
    type: str | None = None
    tier: Literal["hot", "warm", "cold"] | None = None
    importance: float | None = None
    pinned: bool = False


class MemoryPut(Request):
    """``PUT /api/memory/{name}``: create or replace the memory called ``name``."""

    content: str
    category: str = ""
    type: str | None = None
    tier: Literal["hot", "warm", "cold"] | None = None
    importance: float | None = None
    pinned: bool | None = None


class MemorySearch(Request):
    query: str
    k: int = 10
    limit: int | None = None  # alias of k


class MemoryHitOut(msgspec.Struct, kw_only=True):
    record: Item
    score: float
    why: str = ""


class MemorySearchResult(msgspec.Struct, kw_only=True):
    query: str
    mode: str
    hits: list[MemoryHitOut]


# -- sessions, personas -------------------------------------------------------------


class SessionsPrune(Request):
    ttl_hours: float | None = None
    max_sessions: int | None = None


class Pruned(msgspec.Struct, kw_only=True):
    status: Literal["pruned"]
    removed: int


class SessionDetail(msgspec.Struct, kw_only=True):
    id: str
    user_id: str
    space_id: str | None = None
    title: str = ""
    persona: str | None = None
    active_persona_id: str | None = None
    active_seed_id: str | None = None
    created_at: float
    updated_at: float
    metadata: Item = {}
    messages: list[Item] = []
    user_messages: list[Item] = []
    agent_responses: list[Item] = []


class PersonaBody(Request):
    """Fields of a persona; the persona service validates them (a new one needs ``system_prompt``).

    ``tools``: patterns like a role's (``["tier:read", "grep", "!exec"]``) that narrow the tools
    of agents wearing the persona; ``[]`` lifts the restriction.
    """

    name: str | None = None
    description: str | None = None
    system_prompt: str | None = None
    model: str | None = None
    tools: list[str] | None = None


class Persona(msgspec.Struct, kw_only=True):
    name: str
    description: str = ""
    system_prompt: str = ""
    model: str = ""
    tools: list[str] = []
    builtin: bool = False
    active: bool = False
    created: float
    updated: float


class ActivePersona(Request):
    id: str | None = None
    name: str | None = None


# -- cron ---------------------------------------------------------------------------


class CronJobCreate(CronJobSpec, kw_only=True, forbid_unknown_fields=True):
    """A new job: the fields of ``[cron.jobs.NAME]`` plus its name (the host's own definition)."""


# Every field of a job but its name, each optional: what an edit may change.
CronJobEdit = msgspec.defstruct(
    "CronJobEdit",
    [(f.name, f.type | None, None) for f in msgspec.structs.fields(CronJobSpec) if f.name != "name"],
    bases=(Request,),
    kw_only=True,
    forbid_unknown_fields=True,
)


# -- security: approvals, audit, permissions -------------------------------------------


class ApprovalDecision(Request):
    """``scope`` other than ``once`` also leaves a grant (agent, session or global) for similar requests."""

    reason: str = ""
    scope: Literal["once", "agent", "session", "global"] = "once"
    pattern: str | None = None
    expires_secs: float | None = None


class AuditExport(Request):
    format: Literal["json", "jsonl"] = "jsonl"
    agent: str | None = None
    since: float | None = None
    limit: int | None = None


class AuditVerify(msgspec.Struct, kw_only=True):
    """The chain check: ``valid`` (alias of ``ok``), and where it broke when it did."""

    valid: bool
    ok: bool
    entries: int
    first_seq: int | None = None
    last_seq: int | None = None
    checkpoints: int = 0
    bad_seq: int | None = None
    problem: str | None = None
    detail: str = ""


class PermissionsUpdate(Request):
    role: str | None = None
    tools: list[str] | None = None
    exec_modes: list[str] | None = None
    paths: list[str] | None = None
    network: bool | None = None
    manage_agents: bool | None = None
    manage_config: bool | None = None
    manage_audit: bool | None = None
    fork_agents: bool | None = None


# -- git, budget ------------------------------------------------------------------------


class GitRestore(Request):
    """``ref`` (or its alias ``commit``): a sha, tag or ``HEAD~N``."""

    ref: str | None = None
    commit: str | None = None


class BudgetSet(Request):
    max_tokens: int | None = None
    max_cost_usd: float | None = None


class BudgetReserve(Request):
    tokens: int = 0
    cost_usd: float = 0.0


class ResourceOverload(msgspec.Struct, kw_only=True):
    overloaded: bool
    snapshot: Item


class AgentKilled(msgspec.Struct, kw_only=True):
    status: Literal["killed"]
    id: str
