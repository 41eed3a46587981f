"""The supervisor: agents as processes (fork, exec, wait, kill), persisted.

``fork`` creates an agent record; ``exec`` hands its run to the scheduler;
``spawn`` does both; ``wait`` blocks until it ends; ``kill`` cancels its task
and kills its host processes. Every record (id, session, goal, status,
started, tokens, cost ...) lives in the ``agents`` table, so `oxios agent
list` shows history across restarts; agents left active by a process that
ended (a crash) are marked ``lost`` by the next kernel that starts.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import psutil

from oxios_hookspecs import Action, IncomingMessage, Message, Usage, new_id

from ..kernel import Conflict, NotFound
from ..providers.errors import ProviderError
from .loop import LoopResult, TurnLoop
from .processes import kill_agent_processes

log = logging.getLogger(__name__)

MIGRATIONS = [
    """
    CREATE TABLE agents (
        id TEXT PRIMARY KEY,
        parent_id TEXT,
        group_id TEXT,
        session_id TEXT,
        goal TEXT NOT NULL,
        status TEXT NOT NULL,
        role TEXT NOT NULL DEFAULT 'user',
        persona TEXT,
        model TEXT NOT NULL DEFAULT '',
        priority INTEGER NOT NULL DEFAULT 0,
        owner_pid INTEGER,
        created REAL NOT NULL,
        started REAL,
        finished REAL,
        turns INTEGER NOT NULL DEFAULT 0,
        tool_calls INTEGER NOT NULL DEFAULT 0,
        input_tokens INTEGER NOT NULL DEFAULT 0,
        output_tokens INTEGER NOT NULL DEFAULT 0,
        cost_usd REAL NOT NULL DEFAULT 0,
        result TEXT,
        error TEXT
    );
    CREATE INDEX agents_status ON agents(status);
    CREATE INDEX agents_session ON agents(session_id);
    CREATE INDEX agents_group ON agents(group_id);
    CREATE TABLE agent_groups (
        id TEXT PRIMARY KEY,
        parent_id TEXT,
        name TEXT NOT NULL DEFAULT '',
        created REAL NOT NULL
    );
    """,
]

ACTIVE = ("created", "queued", "running")
ENDED = ("completed", "stopped", "failed", "killed", "zombie", "lost")

TokenCallback = Callable[[str], Awaitable[None]]

BASE_SYSTEM = (
    "You are an Oxios agent. Work in the workspace {workspace} using the tools you are given. "
    "Paths are relative to the workspace. Be concise; when done, answer with the result."
)


class AgentOutcome(msgspec.Struct, kw_only=True):
    agent_id: str
    status: str
    response: str = ""
    error: str | None = None


class _Runtime:
    """What only lives while an agent runs (its spec, scheduler job, streaming callback)."""

    def __init__(self, spec: dict[str, Any], on_token: TokenCallback | None) -> None:
        self.spec = spec
        self.on_token = on_token
        self.job: Any = None
        self.done = asyncio.get_running_loop().create_future()
        self.kill_reason: str | None = None


class Supervisor:
    """Service ``agents``."""

    def __init__(self, kernel: Any) -> None:
        self.kernel = kernel
        self.state = kernel.state
        self.state.migrate("agents", MIGRATIONS)
        self._mark_lost()
        self._runtime: dict[str, _Runtime] = {}

    def _mark_lost(self) -> None:
        """Agents left active by a process that is gone (a crash) are marked lost.

        Several processes share the database (the daemon, `oxios run`), so only
        agents whose owning process no longer exists are touched."""
        rows = self.state.all("SELECT id, owner_pid FROM agents WHERE status IN ('created', 'queued', 'running')")
        gone = [r["id"] for r in rows if not r["owner_pid"] or not psutil.pid_exists(r["owner_pid"])]
        for agent_id in gone:
            self._update(agent_id, status="lost", finished=time.time(), error="its process ended while it ran")
        if gone:
            log.warning("%d agents from an ended process were marked lost", len(gone))

    # -- records ---------------------------------------------------------------

    def get(self, agent_id: str) -> dict[str, Any]:
        row = self.state.one("SELECT * FROM agents WHERE id = ?", (agent_id,))
        if row is None:
            raise NotFound(f"no agent {agent_id}")
        return dict(row)

    def list(
        self, *, status: str | None = None, session_id: str | None = None, group_id: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        where, params = [], []
        for column, value in (("status", status), ("session_id", session_id), ("group_id", group_id)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        sql = "SELECT * FROM agents" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY created DESC LIMIT ?"
        return [dict(r) for r in self.state.all(sql, (*params, limit))]

    def _update(self, agent_id: str, **fields: Any) -> None:
        sets = ", ".join(f"{k} = ?" for k in fields)
        self.state.execute(f"UPDATE agents SET {sets} WHERE id = ?", (*fields.values(), agent_id))

    # -- fork / exec / spawn / wait / kill ------------------------------------------

    def fork(
        self,
        goal: str,
        *,
        session_id: str | None = None,
        messages: list[Message] | None = None,
        system: str | None = None,
        model: str = "",
        role: str | None = None,
        persona: str | None = None,
        tools: list[str] | None = None,
        priority: int = 0,
        parent_id: str | None = None,
        group_id: str | None = None,
        max_turns: int | None = None,
        interactive: bool = False,
        on_token: TokenCallback | None = None,
    ) -> str:
        """Create an agent (status ``created``) without running it; returns its id."""
        if parent_id:
            self._check_tree_limit(parent_id, adding=1)
        agent_id = new_id()
        role = role or self.kernel.config.security.default_role
        self.state.execute(
            "INSERT INTO agents(id, parent_id, group_id, session_id, goal, status, role, persona, model, priority,"
            " owner_pid, created) VALUES (?, ?, ?, ?, ?, 'created', ?, ?, ?, ?, ?, ?)",
            (agent_id, parent_id, group_id, session_id, goal, role, persona, model, priority, os.getpid(), time.time()),
        )
        spec = {
            "goal": goal,
            "session_id": session_id or "",
            "messages": messages,
            "system": system,
            "model": model,
            "role": role,
            "tools": tools,
            "priority": priority,
            "max_turns": max_turns,
            "interactive": interactive,
        }
        self._runtime[agent_id] = _Runtime(spec, on_token)
        self.kernel.publish("agent.created", agent_id=agent_id, session_id=session_id, goal=goal[:200], parent_id=parent_id)
        return agent_id

    def live_tree_size(self, agent_id: str) -> tuple[str, int]:
        """The root of ``agent_id``'s fork tree and how many agents in that tree are still alive."""
        root = self.state.one(
            "WITH RECURSIVE up(id, parent_id) AS (SELECT id, parent_id FROM agents WHERE id = ?"
            " UNION SELECT a.id, a.parent_id FROM agents a JOIN up ON a.id = up.parent_id)"
            " SELECT id FROM up WHERE parent_id IS NULL",
            (agent_id,),
        )
        root_id = root["id"] if root else agent_id
        marks = ", ".join("?" for _ in ACTIVE)
        live = self.state.one(
            "WITH RECURSIVE down(id) AS (SELECT ? UNION SELECT a.id FROM agents a JOIN down ON a.parent_id = down.id)"
            f" SELECT COUNT(*) AS n FROM agents WHERE id IN (SELECT id FROM down) AND status IN ({marks})",
            (root_id, *ACTIVE),
        )
        return root_id, int(live["n"]) if live else 0

    def _check_tree_limit(self, parent_id: str, adding: int) -> None:
        # Agents that fork agents that fork agents are a fork bomb with a token bill:
        # kernel.max_agents caps how many of one tree may be alive at once.
        limit = self.kernel.config.kernel.max_agents
        root_id, live = self.live_tree_size(parent_id)
        if live + adding > limit:
            raise Conflict(
                f"agent {parent_id} may not fork {adding} more: its tree (root {root_id}) already has {live} live"
                f" agents and kernel.max_agents is {limit}; wait for some to finish"
            )

    async def exec(self, agent_id: str) -> dict[str, Any]:
        """Start a forked agent through the scheduler (admission: priority, concurrency, rate)."""
        runtime = self._runtime.get(agent_id)
        record = self.get(agent_id)
        if runtime is None or record["status"] != "created":
            raise ValueError(f"agent {agent_id} is {record['status']}; only a created agent can be exec'd")
        scheduler = self.kernel.service("scheduler")
        self._update(agent_id, status="queued")
        runtime.job = await scheduler.submit(lambda: self._run(agent_id), runtime.spec["priority"], name=agent_id)
        runtime.job.future.add_done_callback(lambda _f: self._job_done(agent_id))
        return self.get(agent_id)

    def _job_done(self, agent_id: str) -> None:
        """The scheduler finished the job; end the agent if its run never got to (cancelled while queued)."""
        runtime = self._runtime.get(agent_id)
        if runtime is None:
            return
        job = runtime.job
        status = "zombie" if job is not None and job.status == "zombie" else "killed"
        if job is not None and job.status == "failed":
            status = "failed"
        self._end(agent_id, status, error=runtime.kill_reason or (job.error if job is not None else None) or "cancelled")

    async def spawn(self, goal: str, **kwargs: Any) -> str:
        agent_id = self.fork(goal, **kwargs)
        await self.exec(agent_id)
        return agent_id

    async def wait(self, agent_id: str, timeout: float | None = None) -> dict[str, Any]:
        """Block until the agent ends; returns its final record (raises TimeoutError after ``timeout``)."""
        runtime = self._runtime.get(agent_id)
        if runtime is not None:
            async with asyncio.timeout(timeout):
                await asyncio.shield(runtime.done)
        return self.get(agent_id)

    async def kill(self, agent_id: str, reason: str = "killed") -> bool:
        """Stop an agent and its host processes; False when it had already ended."""
        record = self.get(agent_id)
        runtime = self._runtime.get(agent_id)
        if record["status"] not in ACTIVE or runtime is None:
            return False
        runtime.kill_reason = reason
        kill_agent_processes(agent_id)
        scheduler = self.kernel.services.get("scheduler")
        if runtime.job is not None and scheduler is not None:
            await scheduler.cancel(runtime.job.id)
        elif record["status"] == "created":
            self._end(agent_id, "killed", error=reason)
        return True

    # -- running ----------------------------------------------------------------------

    async def _run(self, agent_id: str) -> LoopResult | None:
        runtime = self._runtime[agent_id]
        spec = runtime.spec
        self._update(agent_id, status="running", started=time.time())
        self.kernel.publish("agent.started", agent_id=agent_id, session_id=spec["session_id"])
        context = self.kernel.context(
            agent_id=agent_id, role=spec["role"], session_id=spec["session_id"], interactive=spec["interactive"]
        )
        messages = spec["messages"] if spec["messages"] is not None else [Message.user(spec["goal"])]
        system = spec["system"] if spec["system"] is not None else self.system_prompt(agent_id=agent_id)
        scheduler = self.kernel.services.get("scheduler")
        totals = {"input": 0, "output": 0, "cost": 0.0}

        def on_usage(usage: Usage, cost: float) -> None:
            totals["input"] += usage.input_tokens
            totals["output"] += usage.output_tokens
            totals["cost"] += cost
            self._update(agent_id, input_tokens=totals["input"], output_tokens=totals["output"], cost_usd=totals["cost"])

        loop = TurnLoop(
            self.kernel,
            messages=messages,
            context=context,
            system=system,
            model=spec["model"],
            tools=spec["tools"],
            max_turns=spec["max_turns"],
            on_token=runtime.on_token,
            on_progress=getattr(scheduler, "progress", None),
            on_usage=on_usage,
        )
        try:
            result = await loop.run()
        except asyncio.CancelledError:
            job = runtime.job
            status = "zombie" if job is not None and job.status == "zombie" else "killed"
            reason = job.error if status == "zombie" else (runtime.kill_reason or "cancelled")
            self._end(agent_id, status, error=reason, loop=loop.result)
            raise
        except Exception as err:  # recorded on the agent; the scheduler need not see it again
            if not isinstance(err, ProviderError):
                log.exception("agent %s failed", agent_id)
            self._end(
                agent_id,
                "failed",
                error=str(err) if isinstance(err, ProviderError) else f"{type(err).__name__}: {err}",
                loop=loop.result,
            )
            return None
        status = "completed" if result.status == "completed" else "stopped"
        self._end(agent_id, status, error=result.reason or None, loop=result)
        return result

    def _end(self, agent_id: str, status: str, *, error: str | None = None, loop: LoopResult | None = None) -> None:
        fields: dict[str, Any] = {"status": status, "finished": time.time(), "error": error}
        if loop is not None:
            fields |= {
                "turns": loop.turns,
                "tool_calls": loop.tool_calls,
                "result": loop.text,
                "input_tokens": loop.usage.input_tokens,
                "output_tokens": loop.usage.output_tokens,
                "cost_usd": loop.cost_usd,
            }
        self._update(agent_id, **fields)
        kill_agent_processes(agent_id)
        budget = self.kernel.services.get("budget")
        if budget is not None:
            budget.forget(agent_id)
        event = "agent.failed" if status in ("failed", "zombie") else "agent.stopped"
        self.kernel.publish(event, agent_id=agent_id, status=status, error=error)
        runtime = self._runtime.pop(agent_id, None)
        if runtime is not None and not runtime.done.done():
            runtime.done.set_result(status)

    def system_prompt(self, persona: dict[str, Any] | None = None, extra: str = "", *, agent_id: str = "") -> str:
        """The base prompt, the persona's, the skill index (with ``agent_id``'s own skills) and ``extra``."""
        parts = [BASE_SYSTEM.format(workspace=self.kernel.paths.workspace)]
        if persona and persona.get("system_prompt"):
            parts.append(persona["system_prompt"])
        skills = self.kernel.services.get("skills")
        index = getattr(skills, "prompt_index", None)
        if index is not None:
            try:
                text = index(agent_id=agent_id)
                if text:
                    parts.append(text)
            except Exception:
                log.exception("skills prompt index failed")
        if extra:
            parts.append(extra)
        return "\n\n".join(parts)

    # -- what the gateway uses -----------------------------------------------------------

    async def run_message(
        self,
        message: IncomingMessage,
        *,
        session: dict[str, Any],
        space: dict[str, Any] | None = None,
        on_token: TokenCallback | None = None,
    ) -> AgentOutcome:
        """Answer one chat message with a fresh agent over the session's (space's) history."""
        sessions = self.kernel.service("sessions")
        history = sessions.history(session["id"], space_id=space["id"] if space else None)
        if not history or history[-1].role != "user":
            history.append(Message.user(message.content))
        skills = self.kernel.services.get("skills")
        if skills is not None and "$" in message.content:
            # `$skill-name` in the user's message loads that skill for this turn (not persisted).
            from oxios_hookspecs import TextBlock

            try:
                mentioned = skills.mention_context(message.content)
            except Exception:  # a broken skill must not fail the user's turn
                log.exception("expanding $skill mentions failed")
                mentioned = ""
            if mentioned:
                history[-1] = Message(role="user", content=[*history[-1].content, TextBlock(text=mentioned)])
        persona = None
        personas = self.kernel.services.get("personas")
        if personas is not None:
            persona = personas.resolve(message.persona or session.get("persona"))
        meta = message.metadata or {}
        model = str(meta.get("model") or (persona or {}).get("model") or "")
        extra = str(meta.get("system_extra") or "")
        recall = getattr(self.kernel.services.get("memory"), "recall", None)
        if recall is not None:  # proactive recall: hot memories + those relevant to this message
            try:
                extra = "\n\n".join(p for p in (extra, await recall(message.content)) if p)
            except Exception:  # memory must never fail the user's turn
                log.exception("memory recall failed")
        agent_id = await self.spawn(
            message.content,
            session_id=session["id"],
            messages=history,
            system=self.system_prompt(persona, extra=extra),
            model=model,
            persona=(persona or {}).get("name"),
            role=meta.get("role"),
            priority=int(meta.get("priority", 0)),
            interactive=message.interactive,
            on_token=on_token,
        )
        record = await self.wait(agent_id)
        status = record["status"]
        response = record["result"] or ""
        error = record["error"]
        if status == "stopped" and error:
            response = (response + "\n\n" if response else "") + f"[stopped: {error}]"
        return AgentOutcome(agent_id=agent_id, status=status, response=response, error=None if status == "completed" else error)

    # -- groups -----------------------------------------------------------------------------

    async def can_fork(self, agent: dict[str, Any]) -> tuple[bool, str]:
        """Whether this agent's role may fork sub-agents (the policy engine decides: RBAC fork_agents)."""
        context = self.kernel.context(agent_id=agent["id"], role=agent["role"], session_id=agent["session_id"] or "")
        verdict = await self.kernel.check_action(Action(kind="api", name="agents.fork", resource=agent["id"]), context)
        return verdict.verdict == "allow", verdict.reason

    async def spawn_group(
        self, goals: list[str], *, parent_id: str | None = None, role: str | None = None, name: str = "", **kwargs: Any
    ) -> str:
        """Fork one sub-agent per goal as a group (a parent needs a role allowed to fork); returns the group id."""
        if parent_id:
            parent = self.get(parent_id)
            allowed, reason = await self.can_fork(parent)
            if not allowed:
                raise PermissionError(f"agent {parent_id} (role {parent['role']}) may not fork agents: {reason}")
            role = role or parent["role"]
            kwargs.setdefault("session_id", parent["session_id"])
            # Sub-agents wear the parent's persona and keep its caller's tool list,
            # so neither restriction can be shed by delegating.
            kwargs.setdefault("persona", parent["persona"])
            runtime = self._runtime.get(parent_id)
            if runtime is not None and runtime.spec["tools"] is not None:
                kwargs.setdefault("tools", runtime.spec["tools"])
        if not goals:
            raise ValueError("a group needs at least one goal")
        if parent_id:
            self._check_tree_limit(parent_id, adding=len(goals))  # all of the group or none of it
        group_id = new_id()
        self.state.execute(
            "INSERT INTO agent_groups(id, parent_id, name, created) VALUES (?, ?, ?, ?)", (group_id, parent_id, name, time.time())
        )
        for goal in goals:
            await self.spawn(goal, parent_id=parent_id, group_id=group_id, role=role, **kwargs)
        self.kernel.publish("agent.group_created", group_id=group_id, parent_id=parent_id, size=len(goals))
        return group_id

    async def wait_group(self, group_id: str, timeout: float | None = None) -> dict[str, Any]:
        members = self.list(group_id=group_id, limit=10_000)
        waiting = asyncio.gather(*(self.wait(m["id"]) for m in members))
        release = getattr(self.kernel.services.get("scheduler"), "released_slot", None)
        if release is None:
            async with asyncio.timeout(timeout):
                await waiting
        else:
            async with release(), asyncio.timeout(timeout):  # a waiting parent must not hold a slot its group needs
                await waiting
        return self.group(group_id)

    def group(self, group_id: str) -> dict[str, Any]:
        row = self.state.one("SELECT * FROM agent_groups WHERE id = ?", (group_id,))
        if row is None:
            raise NotFound(f"no agent group {group_id}")
        members = self.list(group_id=group_id, limit=10_000)
        counts: dict[str, int] = {}
        for m in members:
            counts[m["status"]] = counts.get(m["status"], 0) + 1
        return {
            **dict(row),
            "members": [{k: m[k] for k in ("id", "goal", "status", "error", "result")} for m in members],
            "status_counts": counts,
            "done": all(m["status"] in ENDED for m in members),
        }

    def groups(self, limit: int = 50) -> list[dict[str, Any]]:
        rows = self.state.all("SELECT id FROM agent_groups ORDER BY created DESC LIMIT ?", (limit,))
        return [self.group(r["id"]) for r in rows]

    # -- service plumbing ---------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        running = self.state.one("SELECT COUNT(*) AS n FROM agents WHERE status IN ('queued', 'running')")
        return {"healthy": True, "detail": None, "active": int(running["n"]) if running else 0}

    async def stop(self) -> None:
        for agent_id in list(self._runtime):
            try:
                await self.kill(agent_id, reason="the daemon is stopping")
            except NotFound:
                pass


def start(kernel: Any) -> Supervisor:
    supervisor = Supervisor(kernel)
    kernel.expose(
        "agents.list",
        lambda status=None, session_id=None, limit=100: supervisor.list(status=status, session_id=session_id, limit=limit),
    )
    kernel.expose("agents.get", supervisor.get)
    kernel.expose("agents.kill", supervisor.kill)
    kernel.expose("agents.groups", supervisor.groups)
    kernel.expose("agents.group", supervisor.group)
    return supervisor
