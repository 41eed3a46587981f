"""Approvals: a human decides what a policy would only ``ask``.

An ask becomes a persisted approval and an ``approval.requested`` event; the
asking agent awaits the answer (``security.approval_timeout_secs``; silence
is a deny) while every other agent goes on. Approving may leave a *grant*,
scoped by tool + binary + argument pattern, for one agent, one session or
everyone, with an expiry, so the same request does not ask again. Shells,
interpreters and wrappers are never granted with wildcards. With no human
able to answer (``context.interactive`` False: cron, headless runs) an ask is
a deny, and audited as such.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from fnmatch import fnmatchcase
from typing import Any

from oxios_hookspecs import Action, ActionContext

from .audit import scrub
from .engine import Verdict
from .exec_rules import grant_pattern_allowed

SCOPES = ("once", "agent", "session", "global")
DEFAULT_GRANT_SECS = 24 * 3600
_POLL_SECS = 0.5

MIGRATIONS: list[str] = [
    """
    CREATE TABLE approvals (
        id TEXT PRIMARY KEY,
        agent_id TEXT NOT NULL,
        session_id TEXT NOT NULL,
        tool TEXT NOT NULL,
        kind TEXT NOT NULL,
        binary TEXT NOT NULL,
        subject TEXT NOT NULL,
        action TEXT NOT NULL,
        resource TEXT NOT NULL,
        reason TEXT NOT NULL,
        status TEXT NOT NULL,
        created REAL NOT NULL,
        expires REAL NOT NULL,
        resolved_at REAL,
        resolved_by TEXT,
        scope TEXT,
        grant_id TEXT
    );
    CREATE INDEX approvals_status ON approvals(status, created);
    CREATE TABLE approval_grants (
        id TEXT PRIMARY KEY,
        tool TEXT NOT NULL,
        binary TEXT NOT NULL,
        arg_pattern TEXT NOT NULL,
        scope TEXT NOT NULL,
        scope_id TEXT NOT NULL,
        created REAL NOT NULL,
        expires REAL NOT NULL,
        created_by TEXT NOT NULL,
        approval_id TEXT,
        revoked INTEGER NOT NULL DEFAULT 0
    );
    """,
]


class ApprovalError(ValueError):
    """An approval that cannot be resolved as asked (already resolved, expired, bad scope)."""


def subject_of(action: Action) -> tuple[str, str, str]:
    """``(tool, binary, argument text)``: what a grant is matched against."""
    if action.kind == "exec":
        tool = action.tool or "exec"
        if action.mode == "shell" or (action.command and not action.argv):
            return tool, "sh", action.command
        return tool, action.argv[0] if action.argv else "", " ".join(action.argv[1:])
    if action.kind == "tool":
        return action.tool, "", json.dumps(action.args, sort_keys=True, default=str)
    if action.kind == "path":
        return action.tool or "path", "", f"{action.access} {action.path}"
    if action.kind == "url":
        return action.tool or "url", "", action.url
    return action.name or action.kind, "", action.resource


def _escape(text: str) -> str:
    """A glob matching exactly ``text``."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def _row(row: Any) -> dict[str, Any]:
    out = dict(row)
    out["action"] = json.loads(out["action"])
    return out


class Approvals:
    """The ``approvals`` service."""

    def __init__(self, kernel: Any) -> None:
        self.kernel = kernel
        self.state = kernel.state
        self.state.migrate("approvals", MIGRATIONS)
        self._waiters: dict[str, asyncio.Future[Verdict]] = {}

    @property
    def timeout_secs(self) -> float:
        return float(self.kernel.config.security.approval_timeout_secs)

    def _audit(self, actor: str, action: str, resource: str, allowed: bool, reason: str, **meta: Any) -> None:
        audit = self.kernel.services.get("audit")
        if audit is not None:
            audit.append(actor, action, resource, allowed, reason, meta)

    # -- grants --------------------------------------------------------------------------

    def find_grant(self, action: Action, context: ActionContext) -> dict[str, Any] | None:
        tool, binary, text = subject_of(action)
        rows = self.state.all(
            "SELECT * FROM approval_grants WHERE tool = ? AND binary = ? AND revoked = 0 AND expires > ?",
            (tool, binary, time.time()),
        )
        for row in rows:
            scope_ok = (
                row["scope"] == "global"
                or (row["scope"] == "agent" and row["scope_id"] == context.agent_id and context.agent_id)
                or (row["scope"] == "session" and row["scope_id"] == context.session_id and context.session_id)
            )
            if scope_ok and fnmatchcase(text, row["arg_pattern"]):
                return dict(row)
        return None

    def grants(self, include_expired: bool = False) -> list[dict[str, Any]]:
        sql = "SELECT * FROM approval_grants"
        if not include_expired:
            sql += f" WHERE revoked = 0 AND expires > {time.time()!r}"
        return [dict(r) for r in self.state.all(sql + " ORDER BY created")]

    def grant(self, action: Action, *, scope: str, scope_id: str, by: str, expires_secs: float | None = None) -> str:
        """Approve ``action`` up front (exactly this action) for an agent, a session or everyone.

        The same rules as an approval answered with a grant: never a wildcard for a shell or interpreter.
        """
        tool, binary, text = subject_of(action)
        row = {
            "id": None,
            "tool": tool,
            "binary": binary,
            "subject": text,
            "kind": action.kind,
            "action": {"tier": action.tier},
            "agent_id": scope_id if scope == "agent" else "",
            "session_id": scope_id if scope == "session" else "",
        }
        return self._create_grant(row, scope, None, expires_secs, by)

    def revoke_grants_by(self, by: str) -> int:
        """Revoke every live grant created by ``by`` (e.g. a cron job that changed or went away)."""
        return self.state.execute("UPDATE approval_grants SET revoked = 1 WHERE created_by = ? AND revoked = 0", (by,)).rowcount

    def revoke_grant(self, grant_id: str, by: str = "operator") -> dict[str, Any]:
        if self.state.execute("UPDATE approval_grants SET revoked = 1 WHERE id = ?", (grant_id,)).rowcount == 0:
            raise _not_found(f"no grant {grant_id}")
        self._audit(by, "approval.grant_revoked", grant_id, True, "grant revoked")
        return dict(self.state.one("SELECT * FROM approval_grants WHERE id = ?", (grant_id,)))

    # -- asking --------------------------------------------------------------------------

    async def request(self, action: Action, context: ActionContext, reason: str = "") -> Verdict:
        """Wait for a human's answer to an ``ask``; returns an allow or deny :class:`Verdict`."""
        tool, binary, text = subject_of(action)
        resource = action.describe()
        actor = context.agent_id or "system"
        grant = self.find_grant(action, context)
        if grant is not None:
            why = f"granted by {grant['scope']} grant {grant['id']} ({grant['tool']} {grant['binary']} {grant['arg_pattern']})"
            self._audit(actor, "approval.grant_used", resource, True, why, grant=grant["id"], tool=tool)
            return Verdict(verdict="allow", reason=why, policy="approvals")
        if not context.interactive:
            why = f"needs approval ({reason or 'ask'}) but no human can answer in a headless run"
            self._audit(actor, "approval.headless_deny", resource, False, why, tool=tool, session=context.session_id)
            return Verdict(verdict="deny", reason=why, policy="approvals")
        approval_id = uuid.uuid4().hex[:12]
        now = time.time()
        expires = now + self.timeout_secs
        self.state.execute(
            "INSERT INTO approvals(id, agent_id, session_id, tool, kind, binary, subject, action, resource, reason,"
            " status, created, expires) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
            (
                approval_id,
                context.agent_id,
                context.session_id,
                tool,
                action.kind,
                binary,
                text,
                json.dumps(scrub(_action_dict(action)), default=str),
                resource,
                reason,
                now,
                expires,
            ),
        )
        self._audit(actor, "approval.requested", resource, False, reason, approval=approval_id, tool=tool)
        self.kernel.publish(
            "approval.requested",
            id=approval_id,
            agent_id=context.agent_id,
            session_id=context.session_id,
            tool=tool,
            resource=resource,
            reason=reason,
            expires=expires,
        )
        future: asyncio.Future[Verdict] = asyncio.get_running_loop().create_future()
        self._waiters[approval_id] = future
        try:
            while True:
                remaining = expires - time.time()
                if remaining <= 0:
                    return self._time_out(approval_id, actor, resource)
                try:
                    return await asyncio.wait_for(asyncio.shield(future), min(remaining, _POLL_SECS))
                except TimeoutError:
                    # Another process (the CLI without a daemon) may have answered in the store.
                    settled = self._settled(approval_id)
                    if settled is not None:
                        return settled
        except asyncio.CancelledError:
            self.state.execute(
                "UPDATE approvals SET status = 'cancelled', resolved_at = ? WHERE id = ? AND status = 'pending'",
                (time.time(), approval_id),
            )
            raise
        finally:
            self._waiters.pop(approval_id, None)

    def _settled(self, approval_id: str) -> Verdict | None:
        row = self.state.one("SELECT status, resolved_by FROM approvals WHERE id = ?", (approval_id,))
        if row is None or row["status"] == "pending":
            return None
        allowed = row["status"] == "approved"
        return Verdict(
            verdict="allow" if allowed else "deny",
            policy="approvals",
            reason=f"{row['status']} by {row['resolved_by'] or 'operator'} (approval {approval_id})",
        )

    def _time_out(self, approval_id: str, actor: str, resource: str) -> Verdict:
        changed = self.state.execute(
            "UPDATE approvals SET status = 'timeout', resolved_at = ? WHERE id = ? AND status = 'pending'",
            (time.time(), approval_id),
        ).rowcount
        if not changed:
            settled = self._settled(approval_id)
            if settled is not None:
                return settled
        why = f"nobody answered approval {approval_id} within {self.timeout_secs:g} s"
        self._audit(actor, "approval.timeout", resource, False, why, approval=approval_id)
        self.kernel.publish("approval.resolved", id=approval_id, status="timeout")
        return Verdict(verdict="deny", reason=why, policy="approvals")

    # -- answering -------------------------------------------------------------------------

    def get(self, approval_id: str) -> dict[str, Any]:
        row = self.state.one("SELECT * FROM approvals WHERE id = ?", (approval_id,))
        if row is None:
            raise _not_found(f"no approval {approval_id}")
        return _row(row)

    def list(self, status: str = "pending") -> list[dict[str, Any]]:
        if status == "all":
            rows = self.state.all("SELECT * FROM approvals ORDER BY created")
        elif status == "expired":
            rows = self.state.all(
                "SELECT * FROM approvals WHERE status = 'timeout' OR (status = 'pending' AND expires <= ?) ORDER BY created",
                (time.time(),),
            )
        elif status == "pending":
            rows = self.state.all(
                "SELECT * FROM approvals WHERE status = 'pending' AND expires > ? ORDER BY created", (time.time(),)
            )
        else:
            rows = self.state.all("SELECT * FROM approvals WHERE status = ? ORDER BY created", (status,))
        return [_row(r) for r in rows]

    def approve(
        self,
        approval_id: str,
        scope: str = "once",
        pattern: str | None = None,
        expires_secs: float | None = None,
        by: str = "operator",
        reason: str = "",
    ) -> dict[str, Any] | bool:
        """Allow one pending approval; with a scope other than ``once``, also leave a grant.

        Returns the resolved approval, or False when it is no longer pending
        (already decided or expired); unknown ids raise NotFound.
        """
        if scope not in SCOPES:
            raise ApprovalError(f"scope must be one of {', '.join(SCOPES)}, not {scope!r}")
        row = self._pending(approval_id)
        if row is None:
            return False
        grant_id = None
        if scope != "once":
            grant_id = self._create_grant(row, scope, pattern, expires_secs, by)
        if not self._resolve(row, "approved", by, scope, grant_id, reason):
            return False
        return self.get(approval_id)

    def reject(self, approval_id: str, by: str = "operator", reason: str = "") -> dict[str, Any] | bool:
        """Deny one pending approval; False when it is no longer pending."""
        row = self._pending(approval_id)
        if row is None or not self._resolve(row, "rejected", by, None, None, reason):
            return False
        return self.get(approval_id)

    def _pending(self, approval_id: str) -> dict[str, Any] | None:
        row = self.get(approval_id)
        if row["status"] != "pending" or row["expires"] <= time.time():
            return None
        return row

    def _create_grant(self, row: dict[str, Any], scope: str, pattern: str | None, expires_secs: float | None, by: str) -> str:
        pattern = _escape(row["subject"]) if pattern is None else pattern
        binary = row["binary"]
        tier = row["action"].get("tier")
        if not grant_pattern_allowed(binary, pattern) or (
            row["kind"] == "tool" and tier == "exec" and any(c in pattern for c in "*?[")
        ):
            raise ApprovalError(
                f"a wildcard grant for {binary or row['tool']} would allow any code to run;"
                " approve once or grant the exact command"
            )
        scope_id = {"agent": row["agent_id"], "session": row["session_id"], "global": "*"}[scope]
        if not scope_id:
            raise ApprovalError(f"the request has no {scope} id to scope a grant to")
        grant_id = uuid.uuid4().hex[:12]
        now = time.time()
        self.state.execute(
            "INSERT INTO approval_grants(id, tool, binary, arg_pattern, scope, scope_id, created, expires, created_by,"
            " approval_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                grant_id,
                row["tool"],
                binary,
                pattern,
                scope,
                scope_id,
                now,
                now + (expires_secs if expires_secs is not None else DEFAULT_GRANT_SECS),
                by,
                row["id"],
            ),
        )
        self._audit(
            by,
            "approval.grant_created",
            f"{row['tool']} {binary} {pattern}".strip(),
            True,
            f"{scope} grant",
            grant=grant_id,
            scope=scope,
            scope_id=scope_id,
        )
        return grant_id

    def _resolve(
        self, row: dict[str, Any], status: str, by: str, scope: str | None, grant_id: str | None, reason: str = ""
    ) -> bool:
        changed = self.state.execute(
            "UPDATE approvals SET status = ?, resolved_at = ?, resolved_by = ?, scope = ?, grant_id = ? WHERE id = ?"
            " AND status = 'pending'",
            (status, time.time(), by, scope, grant_id, row["id"]),
        ).rowcount
        if not changed:
            return False
        allowed = status == "approved"
        self._audit(
            by,
            f"approval.{status}",
            row["resource"],
            allowed,
            reason or f"{status} by {by}",
            approval=row["id"],
            agent=row["agent_id"],
            scope=scope,
        )
        self.kernel.publish("approval.resolved", id=row["id"], status=status, by=by)
        future = self._waiters.get(row["id"])
        if future is not None and not future.done():
            future.set_result(
                Verdict(
                    verdict="allow" if allowed else "deny", policy="approvals", reason=f"{status} by {by} (approval {row['id']})"
                )
            )
        return True

    def status(self) -> dict[str, Any]:
        return {"healthy": True, "detail": None, "pending": len(self.list()), "waiting": len(self._waiters)}


def _action_dict(action: Action) -> dict[str, Any]:
    import msgspec

    return msgspec.to_builtins(action)


def _not_found(message: str) -> LookupError:
    from ..kernel import NotFound

    return NotFound(message)


def start(kernel: Any) -> Approvals:
    service = Approvals(kernel)
    kernel.expose("approvals.list", service.list)
    kernel.expose("approvals.get", service.get)
    kernel.expose("approvals.approve", service.approve)
    kernel.expose("approvals.reject", service.reject)
    kernel.expose("approvals.grants", service.grants)
    kernel.expose("approvals.revoke_grant", service.revoke_grant)
    return service
