"""Roles and per-agent permissions.

Built-in roles are ``admin``, ``superuser`` and ``user``; ``[security.roles.NAME]``
in config adds roles or replaces a built-in one. Each agent runs under a role
(its context's role unless an operator assigned one) and may carry overrides of
single capabilities, persisted in the state store (namespace ``rbac``).

``tools`` entries are glob patterns over tool names (``"*"``, ``"read_*"``) or
tiers (``"tier:read"``); a ``"!name"`` entry removes a tool again. A tool may
also need a capability (``ToolSpec.capability``: ``delegate`` needs
``fork_agents``). A persona may narrow the tools further with patterns of
the same grammar (an agent runs as the persona recorded on it).

One rule (:meth:`Rbac.refusal`) decides which tool specs the turn loop
offers the model (:meth:`Rbac.offered_tools`) and, as the ``rbac`` policy,
every call: hiding a tool is for the model's sake, the call-time check is
the boundary.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from fnmatch import fnmatchcase
from typing import Any

import msgspec

from oxios_hookspecs import ToolSpec

from ..config import RoleConfig

BUILTIN_ROLES: dict[str, RoleConfig] = {
    "admin": RoleConfig(
        tools=["*"],
        exec_modes=["structured", "shell"],
        network=True,
        manage_agents=True,
        manage_config=True,
        manage_audit=True,
        fork_agents=True,
    ),
    "superuser": RoleConfig(tools=["*"], exec_modes=["structured"], network=True, manage_agents=True, fork_agents=True),
    "user": RoleConfig(tools=["*"], exec_modes=["structured"], network=True),
}
CAPABILITIES = tuple(RoleConfig.__struct_fields__)
# The yes/no capabilities, the ones a tool may declare it needs.
TOOL_CAPABILITIES = tuple(name for name, value in msgspec.structs.asdict(RoleConfig()).items() if isinstance(value, bool))
TIERS = ("read", "write", "exec", "network")
_NAMESPACE = "rbac"


class UnknownRole(LookupError):
    """A role name that is neither built in nor configured."""


def roles(config: Any) -> dict[str, RoleConfig]:
    """Every role: built-ins overlaid by ``security.roles``."""
    return {**BUILTIN_ROLES, **config.security.roles}


def patterns_permit(patterns: list[str], tool: str, tier: str | None) -> bool:
    """Whether ``tools`` patterns (a role's or a persona's) admit the tool; the last word goes to ``!`` entries."""
    allowed = False
    for entry in patterns:
        negate = entry.startswith("!")
        pattern = entry[1:] if negate else entry
        hit = (pattern.startswith("tier:") and tier == pattern[5:]) or fnmatchcase(tool, pattern)
        if hit and negate:
            return False
        allowed = allowed or hit
    return allowed


def tool_permitted(role: RoleConfig, tool: str, tier: str | None) -> bool:
    return patterns_permit(role.tools, tool, tier)


def check_tool_patterns(patterns: Any) -> list[str]:
    """Validate a ``tools`` pattern list (a persona's); returns it stripped, raises ValueError saying what is wrong."""
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        raise ValueError('tools: a list of patterns such as ["tier:read", "grep", "!exec"]')
    cleaned = [p.strip() for p in patterns]
    for entry in cleaned:
        pattern = entry[1:] if entry.startswith("!") else entry
        if not pattern.strip():
            raise ValueError(f"tools: empty pattern {entry!r}")
        if pattern.startswith("tier:") and pattern[5:] not in TIERS:
            raise ValueError(f"tools: unknown tier in {entry!r}; tiers: {', '.join(TIERS)}")
    if cleaned and all(p.startswith("!") for p in cleaned):
        # Patterns admit nothing until one entry matches: exclusions alone would hide every tool.
        raise ValueError('tools: exclusions alone allow nothing; start with "*" (["*", "!exec"])')
    return cleaned


def tool_refusal(role: RoleConfig, tool: str, tier: str | None, capability: str = "") -> str | None:
    """Why ``role`` may not use the tool (to follow "role NAME "), or None when it may."""
    if not tool_permitted(role, tool, tier):
        return f"may not use the tool {tool}"
    if capability and getattr(role, capability, None) is not True:
        return f"lacks {capability}"
    if tier == "network" and not role.network:
        return "has no network access"
    if tier == "exec" and not role.exec_modes:
        return "may not run commands"
    return None


class Rbac:
    """The ``rbac`` service: role of each agent, capability overrides, lookups."""

    def __init__(self, kernel: Any) -> None:
        self.kernel = kernel

    def roles(self) -> dict[str, dict[str, Any]]:
        return {name: msgspec.to_builtins(role) for name, role in roles(self.kernel.config).items()}

    def role(self, name: str) -> RoleConfig:
        found = roles(self.kernel.config).get(name)
        if found is None:
            raise UnknownRole(f"unknown role {name!r}; roles: {', '.join(sorted(roles(self.kernel.config)))}")
        return found

    def _stored(self, agent_id: str) -> dict[str, Any]:
        state = self.kernel.state
        if not agent_id or state is None:
            return {}
        return state.kv_get(_NAMESPACE, agent_id, {}) or {}

    def effective(self, agent_id: str, role_name: str | None = None) -> RoleConfig:
        """The capabilities an agent has now (assigned role, then overrides)."""
        stored = self._stored(agent_id)
        name = stored.get("role") or role_name or self.kernel.config.security.default_role
        try:
            base = self.role(name)
        except UnknownRole:
            # An agent pointing at a role that no longer exists gets nothing.
            return RoleConfig(tools=[], exec_modes=[], paths=[])
        overrides = stored.get("overrides") or {}
        return msgspec.convert({**msgspec.to_builtins(base), **overrides}, RoleConfig) if overrides else base

    def persona_tools(self, agent_id: str) -> tuple[str, list[str]] | None:
        """The persona this agent runs as and its ``tools`` patterns, when that persona restricts tools."""
        agents = self.kernel.services.get("agents")
        personas = self.kernel.services.get("personas")
        if not agent_id or agents is None or personas is None:
            return None
        try:
            name = agents.get(agent_id).get("persona")
            persona = personas.get(name) if name else None
        except LookupError:  # no such agent record, or its persona was deleted since
            return None
        if not persona or not persona.get("tools"):
            return None
        return persona["name"], list(persona["tools"])

    def _judge(self, agent_id: str, role_name: str | None) -> Callable[[str, str | None, str], str | None]:
        """The tool rule for this agent as it stands now: role (with overrides), then persona."""
        role = self.effective(agent_id, role_name)
        label = self._stored(agent_id).get("role") or role_name or self.kernel.config.security.default_role
        persona = self.persona_tools(agent_id)

        def refusal(tool: str, tier: str | None, capability: str = "") -> str | None:
            why = tool_refusal(role, tool, tier, capability)
            if why is not None:
                return f"role {label} {why}"
            if persona is not None and not patterns_permit(persona[1], tool, tier):
                return f"persona {persona[0]} may not use the tool {tool}"
            return None

        return refusal

    def refusal(self, agent_id: str, role_name: str | None, tool: str, tier: str | None, capability: str = "") -> str | None:
        """Why this agent may not use the tool now ("role user lacks fork_agents"), or None when it may."""
        return self._judge(agent_id, role_name)(tool, tier, capability)

    def offered_tools(self, agent_id: str, role_name: str | None, specs: list[ToolSpec]) -> list[ToolSpec]:
        """The specs this agent may use now, in order: what the model is offered.

        Read on every call, so a change of permissions or of the persona's tools applies from the
        agent's next model request.
        """
        refusal = self._judge(agent_id, role_name)
        return [spec for spec in specs if refusal(spec.name, spec.tier, getattr(spec, "capability", "")) is None]

    def get(self, agent_id: str, role_name: str | None = None) -> dict[str, Any]:
        """``GET /api/permissions/{agent}``: role, overrides and the effective capabilities."""
        stored = self._stored(agent_id)
        role = stored.get("role") or role_name or self.kernel.config.security.default_role
        return {
            "agent_id": agent_id,
            "role": role,
            "overrides": stored.get("overrides") or {},
            "effective": msgspec.to_builtins(self.effective(agent_id, role_name)),
            "updated_at": stored.get("updated_at"),
        }

    def put(
        self,
        agent_id: str,
        role: str | None = None,
        overrides: dict[str, Any] | None = None,
        *,
        actor: str = "operator",
        replace: bool = False,
    ) -> dict[str, Any]:
        """``PUT /api/permissions/{agent}``: assign a role and/or capability overrides."""
        if not agent_id:
            raise ValueError("an agent id is required")
        stored = self._stored(agent_id)
        if role is not None:
            self.role(role)  # raises UnknownRole
            stored["role"] = role
        if overrides is not None:
            unknown = set(overrides) - set(CAPABILITIES)
            if unknown:
                raise ValueError(f"unknown capabilities: {', '.join(sorted(unknown))}; known: {', '.join(CAPABILITIES)}")
            merged = dict(overrides) if replace else {**(stored.get("overrides") or {}), **overrides}
            try:
                msgspec.convert({**msgspec.to_builtins(RoleConfig()), **merged}, RoleConfig)
            except msgspec.ValidationError as err:
                raise ValueError(f"invalid permissions: {err}") from None
            stored["overrides"] = merged
        stored["updated_at"] = time.time()
        self.kernel.state.kv_set(_NAMESPACE, agent_id, stored)
        audit = self.kernel.services.get("audit")
        if audit is not None:
            audit.append(
                actor,
                "permissions.update",
                agent_id,
                True,
                "permissions changed",
                {"role": stored.get("role"), "overrides": stored.get("overrides") or {}},
            )
        return self.get(agent_id)

    def reset(self, agent_id: str, *, actor: str = "operator") -> bool:
        removed = self.kernel.state.kv_delete(_NAMESPACE, agent_id)
        audit = self.kernel.services.get("audit")
        if audit is not None and removed:
            audit.append(actor, "permissions.reset", agent_id, True, "permissions reset to the role default", {})
        return removed

    def list(self) -> list[dict[str, Any]]:
        return [self.get(agent_id) for agent_id in self.kernel.state.kv_items(_NAMESPACE)]

    def status(self) -> dict[str, Any]:
        return {"healthy": True, "detail": None, "roles": sorted(roles(self.kernel.config))}


def start(kernel: Any) -> Rbac:
    service = Rbac(kernel)
    kernel.expose("permissions.get", service.get)
    kernel.expose("permissions.put", service.put)
    kernel.expose("permissions.reset", service.reset)
    kernel.expose("permissions.list", service.list)
    kernel.expose("permissions.roles", service.roles)
    return service
