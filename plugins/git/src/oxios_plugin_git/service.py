"""The "git" service: the workspace repository behind tools, CLI and web routes.

dulwich is blocking, so every operation runs in a worker thread under one
lock (two agents finishing together must not race on the index). The
service also listens on the event bus: a finished agent run that changed
files becomes a commit, and every seed generation becomes a tag.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from oxios_hookspecs import Action, ActionContext

from .repo import GitError, WorkspaceRepo

log = logging.getLogger(__name__)

T = TypeVar("T")

# Events that end an agent run (the agent spine publishes one of them).
RUN_END_EVENTS = frozenset({"agent.completed", "agent.stopped", "agent.finished", "agent.failed", "agent.killed"})
SEED_EVENTS = frozenset({"seed.created"})


class GitService:
    def __init__(self, kernel: Any) -> None:
        self.kernel = kernel
        cfg = kernel.config.git
        self.auto_commit = cfg.enabled and cfg.auto_commit
        self.repo = WorkspaceRepo(kernel.paths.workspace, author=cfg.author)
        self._lock = asyncio.Lock()
        self._listener: asyncio.Task[None] | None = None
        self._subscription: Any = None
        self.commits_made = 0
        # session id -> latest seed id, so a run's commit can name its seed
        self._seed_of_session: dict[str, str] = {}
        self.last_error: str | None = None

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        async with self._lock:
            return await asyncio.to_thread(fn, *args)

    # -- lifecycle ----------------------------------------------------------------

    async def start(self) -> None:
        await self._run(lambda: self.repo.repo)  # init the repository if it does not exist
        if self.auto_commit:
            self._subscription = self.kernel.subscribe(maxsize=1024, types=set(RUN_END_EVENTS | SEED_EVENTS))
            self._listener = asyncio.create_task(self._listen(self._subscription), name="oxios-git-events")

    async def stop(self) -> None:
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None
        if self._listener is not None:
            try:
                await asyncio.wait_for(self._listener, timeout=10)
            except (TimeoutError, asyncio.CancelledError):
                self._listener.cancel()
            self._listener = None
        self.repo.close()

    def status(self) -> dict[str, Any]:
        """Component health for ``kernel.status()``."""
        return {
            "healthy": self.last_error is None,
            "detail": self.last_error,
            "workspace": str(self.repo.path),
            "auto_commit": self.auto_commit,
            "commits_made": self.commits_made,
        }

    async def _listen(self, subscription: Any) -> None:
        async for event in subscription:
            try:
                if event.type in SEED_EVENTS:
                    await self.tag_seed(event.data)
                else:
                    await self.commit_run(event.data)
                self.last_error = None
            except Exception as err:  # one bad event must not stop auto-commits
                self.last_error = f"{event.type}: {err}"
                log.exception("git: handling %s failed", event.type)

    # -- automatic history --------------------------------------------------------

    async def commit_run(self, data: dict[str, Any]) -> str | None:
        """Commit what an agent run changed; None when it changed nothing."""
        agent = str(data.get("agent_id") or data.get("id") or "unknown")
        record = self._agent_record(agent) if not data.get("session_id") or not data.get("goal") else {}
        session = str(data.get("session_id") or record.get("session_id") or "-")
        seed = str(data.get("seed_id") or self._seed_of_session.get(session) or "-")
        summary = str(data.get("goal") or record.get("goal") or "").strip().splitlines()
        title = f"Agent {agent[:8]}: {summary[0][:60]}" if summary else f"Agent run {agent[:8]}"
        message = f"{title}\n\nOxios-Agent: {agent}\nOxios-Session: {session}\nOxios-Seed: {seed}\n"
        sha = await self._run(self.repo.commit_all, message)
        if sha:
            self.commits_made += 1
            self.kernel.publish("git.committed", sha=sha, agent_id=agent, session_id=session, seed_id=seed)
            await self.kernel.audit(agent, "git.commit", sha, True, "agent run changed files", session_id=session)
        return sha

    def _agent_record(self, agent_id: str) -> dict[str, Any]:
        """The supervisor's record of a run (agent.stopped carries only the id)."""
        agents = self.kernel.services.get("agents")
        try:
            return dict(agents.get(agent_id)) if agents is not None else {}
        except LookupError:
            return {}

    async def tag_seed(self, data: dict[str, Any]) -> str | None:
        """Tag the workspace as it is when a seed generation is created."""
        seed = str(data.get("seed_id") or data.get("id") or "")
        if not seed:
            return None
        if data.get("session_id"):
            self._seed_of_session[str(data["session_id"])] = seed
        generation = int(data.get("generation") or 0)  # the first seed is generation 0
        name = f"seed-{seed[:12]}-gen{generation}"
        await self._run(self.repo.commit_all, f"Workspace at seed {seed[:12]} generation {generation}\n\nOxios-Seed: {seed}\n")

        def create() -> str | None:
            if self.repo.head() is None:
                return None  # nothing to tag in an empty workspace
            if any(t["name"] == name for t in self.repo.tags()):
                return None
            goal = str(data.get("goal") or "").strip()
            return self.repo.tag(name, f"Seed {seed} generation {generation}\n\n{goal}".strip() + "\n")

        sha = await self._run(create)
        if sha:
            self.kernel.publish("git.tagged", tag=name, sha=sha, seed_id=seed, generation=generation)
        return name if sha else None

    # -- reading ------------------------------------------------------------------

    async def worktree_status(self) -> dict[str, Any]:
        return await self._run(self.repo.status)

    async def log(self, limit: int = 50, ref: str = "HEAD") -> list[dict[str, Any]]:
        return await self._run(lambda: self.repo.log(limit=limit, ref=ref))

    async def tags(self) -> list[dict[str, Any]]:
        return await self._run(self.repo.tags)

    async def show(self, ref: str = "HEAD") -> dict[str, Any]:
        return await self._run(self.repo.show, ref)

    async def diff(self, ref: str | None = None, ref2: str | None = None) -> str:
        return await self._run(self.repo.diff, ref, ref2)

    async def verify(self) -> dict[str, Any]:
        return await self._run(self.repo.verify)

    # -- writing (under policy) ----------------------------------------------------

    async def commit(self, message: str, context: ActionContext | None = None) -> str | None:
        context = context or self.kernel.context()
        await self._require_write(context, "commit")
        sha = await self._run(self.repo.commit_all, message)
        if sha:
            self.commits_made += 1
            self.kernel.publish("git.committed", sha=sha, agent_id=context.agent_id, session_id=context.session_id)
        return sha

    async def restore(self, ref: str, context: ActionContext | None = None) -> dict[str, Any]:
        """Make the workspace equal to ``ref`` (a new commit; history is kept)."""
        context = context or self.kernel.context()
        await self._require_write(context, f"restore {ref}")
        result = await self._run(self.repo.restore, ref)
        self.kernel.publish("git.restored", ref=ref, **result)
        await self.kernel.audit(
            context.agent_id or "user", "git.restore", ref, True, f"restored {result['restored']}", session_id=context.session_id
        )
        return result

    async def _require_write(self, context: ActionContext, what: str) -> None:
        action = Action(kind="path", path=str(self.repo.path), access="write", name=f"git {what}")
        auth = await self.kernel.authorize(action, context)
        if not auth.allowed:
            raise PermissionError(f"git {what} denied: {auth.reason}")


async def start_service(kernel: Any) -> GitService:
    service = GitService(kernel)
    await service.start()
    return service


__all__ = ["GitError", "GitService", "start_service"]
