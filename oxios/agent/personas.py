"""Personas: named system prompts (and optional model and tool list) an agent can wear.

Dev, Review and Research are built in (they can be edited, not deleted);
users add their own. One persona is active for new sessions; a session or a
single message may name another.

A persona's ``tools`` (patterns like a role's: ``["tier:read", "grep"]``;
empty means no restriction) narrow what the agent's role allows; the rule
itself is :meth:`oxios.security.rbac.Rbac.refusal`. Review is read-only and
Research reads and reaches the network unless edited.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from ..kernel import Conflict, NotFound
from ..security.rbac import check_tool_patterns

BUILTIN_TOOLS = {"Review": ["tier:read", "skill"], "Research": ["tier:read", "tier:network"]}


def _sql_text(value: list[str]) -> str:
    return "'" + json.dumps(value).replace("'", "''") + "'"


MIGRATIONS = [
    """
    CREATE TABLE personas (
        name TEXT PRIMARY KEY,
        description TEXT NOT NULL DEFAULT '',
        system_prompt TEXT NOT NULL DEFAULT '',
        model TEXT NOT NULL DEFAULT '',
        builtin INTEGER NOT NULL DEFAULT 0,
        created REAL NOT NULL,
        updated REAL NOT NULL
    );
    """,
    # 2: tool restrictions; the built-in Review and Research get theirs on existing installs too.
    [
        "ALTER TABLE personas ADD COLUMN tools TEXT NOT NULL DEFAULT '[]'",
        *(
            f"UPDATE personas SET tools = {_sql_text(tools)} WHERE name = '{name}' AND builtin = 1"
            for name, tools in BUILTIN_TOOLS.items()
        ),
    ],
]

BUILTIN = {
    "Dev": (
        "Software development, coding, implementation",
        "You are Dev, a software engineer. Read the code before changing it, make small verified changes, "
        "run the tests you touch, and explain what you changed and why.",
    ),
    "Review": (
        "Code review, quality analysis, best practices",
        "You are Review, a careful code reviewer. Look for bugs, security problems, unclear names and missing "
        "tests; cite file and line; rank findings by severity; do not rewrite code unless asked.",
    ),
    "Research": (
        "Investigation, analysis, information gathering",
        "You are Research, an analyst. Gather facts from the workspace and your tools, separate what you found "
        "from what you infer, and cite where each fact came from.",
    ),
}

KV = ("personas", "active")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$")


class Personas:
    """Service ``personas``: list/get/create/update/delete/activate/active/resolve."""

    def __init__(self, kernel: Any) -> None:
        self.kernel = kernel
        self.state = kernel.state
        self.state.migrate("personas", MIGRATIONS)
        now = time.time()
        for name, (description, prompt) in BUILTIN.items():
            self.state.execute(
                "INSERT OR IGNORE INTO personas(name, description, system_prompt, tools, builtin, created, updated)"
                " VALUES (?, ?, ?, ?, 1, ?, ?)",
                (name, description, prompt, json.dumps(BUILTIN_TOOLS.get(name, [])), now, now),
            )

    @staticmethod
    def _row(row: Any) -> dict[str, Any]:
        return {**dict(row), "builtin": bool(row["builtin"]), "tools": json.loads(row["tools"])}

    def _find(self, name: str) -> dict[str, Any] | None:
        row = self.state.one("SELECT * FROM personas WHERE name = ? COLLATE NOCASE", (name,))
        return None if row is None else self._row(row)

    def _audit(self, action: str, name: str, actor: str, **metadata: Any) -> None:
        # A persona's prompt and tools steer every agent that wears it: changes belong on the chain.
        trail = self.kernel.services.get("audit")
        if trail is not None:
            trail.append(actor or "system", f"persona.{action}", name, True, f"persona {name} {action}d", metadata)

    def get(self, name: str) -> dict[str, Any]:
        found = self._find(name)
        if found is None:
            raise NotFound(f"no persona {name!r} (known: {', '.join(p['name'] for p in self.list())})")
        found["active"] = found["name"] == self.active_name()
        return found

    def list(self) -> list[dict[str, Any]]:
        active = self.active_name()
        return [
            {**self._row(r), "active": r["name"] == active}
            for r in self.state.all("SELECT * FROM personas ORDER BY builtin DESC, name")
        ]

    def create(
        self,
        name: str,
        *,
        system_prompt: str,
        description: str = "",
        model: str = "",
        tools: list[str] | None = None,
        actor: str = "system",
    ) -> dict[str, Any]:
        """A new persona; ``tools`` patterns restrict the tools of agents wearing it (empty: no restriction)."""
        if not NAME_RE.match(name or ""):
            raise ValueError("a persona name is 1-64 letters, digits, spaces, '.', '_' or '-'")
        if not system_prompt.strip():
            raise ValueError("a persona needs a system_prompt")
        patterns = check_tool_patterns(tools if tools is not None else [])
        if self._find(name) is not None:
            raise Conflict(f"persona {name!r} already exists; edit it or pick another name")
        now = time.time()
        self.state.execute(
            "INSERT INTO personas(name, description, system_prompt, model, tools, builtin, created, updated)"
            " VALUES (?, ?, ?, ?, ?, 0, ?, ?)",
            (name, description, system_prompt, model, json.dumps(patterns), now, now),
        )
        self._audit("create", name, actor, tools=patterns, model=model)
        return self.get(name)

    def update(self, name: str, *, actor: str = "system", **fields: Any) -> dict[str, Any]:
        """Change some fields; ``tools=[]`` lifts the persona's tool restriction."""
        current = self.get(name)
        unknown = set(fields) - {"description", "system_prompt", "model", "tools"}
        if unknown:
            raise ValueError(f"cannot update persona fields {sorted(unknown)}")
        fields = {k: v for k, v in fields.items() if v is not None}
        if "system_prompt" in fields and not str(fields["system_prompt"]).strip():
            raise ValueError("a persona needs a system_prompt")
        if "tools" in fields:
            fields["tools"] = json.dumps(check_tool_patterns(fields["tools"]))
        if fields:
            sets = ", ".join(f"{k} = ?" for k in fields)
            self.state.execute(
                f"UPDATE personas SET {sets}, updated = ? WHERE name = ?", (*fields.values(), time.time(), current["name"])
            )
            self._audit("update", current["name"], actor, fields=sorted(fields))
        return self.get(current["name"])

    def delete(self, name: str, *, actor: str = "system") -> None:
        current = self.get(name)
        if current["builtin"]:
            raise Conflict(f"{current['name']} is a built-in persona; it can be edited but not deleted")
        self.state.execute("DELETE FROM personas WHERE name = ?", (current["name"],))
        if self.active_name() == current["name"]:
            self.state.kv_delete(*KV)
        self._audit("delete", current["name"], actor)

    def activate(self, name: str) -> dict[str, Any]:
        current = self.get(name)
        self.state.kv_set(*KV, current["name"])
        self.kernel.publish("persona.activated", name=current["name"])
        return self.get(current["name"])

    def deactivate(self) -> None:
        """No persona is active any more: messages that name none get the base prompt."""
        if self.active_name() is not None:
            self.state.kv_delete(*KV)
            self.kernel.publish("persona.activated", name=None)

    def active_name(self) -> str | None:
        return self.state.kv_get(*KV)

    def active(self) -> dict[str, Any] | None:
        name = self.active_name()
        return self._find(name) if name else None

    def resolve(self, name: str | None) -> dict[str, Any] | None:
        """The named persona, else the active one, else None (unknown names raise NotFound)."""
        if name:
            return self.get(name)
        return self.active()


def start(kernel: Any) -> Personas:
    personas = Personas(kernel)
    for method in ("list", "get", "create", "update", "delete", "activate", "deactivate"):
        kernel.expose(f"personas.{method}", getattr(personas, method))
    return personas
