"""How a cron run becomes an agent run: a headless message through the gateway.

The runner is a plain async function ``(RunRequest) -> RunOutcome`` so tests
(and other hosts) can swap it; the default sends the job's goal through
``kernel.services["gateway"]`` in session ``cron:<job>`` with
``interactive=False``, so any approval the agent needs is denied and audited
by the security layer rather than waiting for a person who is not there.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from oxios_hookspecs import IncomingMessage

from ..builtin.scheduler import PRIORITIES
from ..plugins import resolve
from .model import JobSpec, RunOutcome, RunRequest

log = logging.getLogger(__name__)

RunFunction = Callable[[RunRequest], Awaitable[RunOutcome]]

# A job's priority on the scheduler's scale (higher runs first; low waits while the machine is overloaded).
PRIORITY = PRIORITIES


def build_prompt(job: JobSpec) -> str:
    """The message an agent gets: the goal, plus constraints and criteria when given."""
    parts = [job.goal]
    if job.constraints:
        parts.append("Constraints:\n" + "\n".join(f"- {c}" for c in job.constraints))
    if job.acceptance_criteria:
        parts.append("Acceptance criteria:\n" + "\n".join(f"- {c}" for c in job.acceptance_criteria))
    return "\n\n".join(parts)


class GatewayRunner:
    """The default runner: ``Gateway.submit`` with a headless ``IncomingMessage``.

    The supervisor behind the gateway admits each agent through the scheduler
    service with the priority passed in the message metadata, so the cron
    service does not submit these runs to the scheduler a second time.
    """

    schedules_itself = True

    def __init__(self, kernel: Any) -> None:
        self.kernel = kernel

    async def __call__(self, request: RunRequest) -> RunOutcome:
        gateway = self.kernel.services.get("gateway")
        if gateway is None:
            return RunOutcome(status="failed", error="the gateway service is not available, so no agent can run")
        message = self.build_message(request)
        try:
            result = await gateway.submit(message)
        except asyncio.CancelledError:
            await self._cancel(gateway, request.session_id)
            raise
        return self._outcome(result)

    def build_message(self, request: RunRequest) -> IncomingMessage:
        """The headless message for one run.

        A job with constraints or acceptance criteria goes through Ouroboros;
        one without goes straight to the turn loop, so a plain job never pays
        for a routing call. The route travels in metadata, not in the prompt.
        The constraints and criteria travel in metadata too: that is what makes
        them binding (the protocol binds them into every generation's seed); the
        prompt repeats them so the interview and the seed writer read them.
        """
        job = request.job
        wants_protocol = bool(job.constraints or job.acceptance_criteria)
        return IncomingMessage(
            content=build_prompt(job),
            channel="cron",
            user_id="cron",
            chat_id=job.name,
            session_id=request.session_id,
            persona=job.persona or None,
            interactive=False,
            metadata={
                "cron_job": job.name,
                "cron_run_id": request.run_id,
                "trigger": request.trigger,
                "priority": PRIORITY.get(job.priority, 0),
                "no_interview": True,
                "route": "protocol" if wants_protocol else "chat",
                "constraints": list(job.constraints),
                "acceptance_criteria": list(job.acceptance_criteria),
            },
        )

    async def _cancel(self, gateway: Any, session_id: str) -> None:
        cancel = getattr(gateway, "cancel", None)
        if cancel is None:
            return
        try:
            await asyncio.shield(resolve(cancel(session_id)))
        except Exception:  # best effort: the task itself is already being cancelled
            log.debug("gateway.cancel(%s) failed", session_id, exc_info=True)

    def _outcome(self, result: Any) -> RunOutcome:
        error = getattr(result, "error", None)
        exit_code = getattr(result, "exit_code", 0) or 0
        passed = getattr(result, "evaluation_passed", None)
        status = "succeeded"
        if error or exit_code != 0:
            status = "failed"
            error = error or f"the agent exited with code {exit_code}"
        elif passed is False:
            status = "failed"
            error = "the acceptance criteria were not met"
        agent_id = getattr(result, "agent_id", None)
        tokens_in, tokens_out, cost = self._usage(result, agent_id)
        return RunOutcome(
            status=status,
            output=getattr(result, "response", "") or "",
            error=error,
            agent_id=agent_id,
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            cost_usd=cost,
        )

    def _usage(self, result: Any, agent_id: str | None) -> tuple[int, int, float]:
        """Tokens and cost: from the result when it carries them, else the agent's record."""
        sources: list[Any] = [result, getattr(result, "usage", None)]
        agents = self.kernel.services.get("agents")
        if agent_id and agents is not None and hasattr(agents, "get"):
            try:
                sources.append(agents.get(agent_id))
            except Exception:  # an unknown or pruned agent simply has no usage to report
                pass
        for source in sources:
            if source is None:
                continue
            tokens_in = _field(source, "input_tokens", "tokens_in")
            tokens_out = _field(source, "output_tokens", "tokens_out")
            cost = _field(source, "cost_usd", "cost")
            if tokens_in or tokens_out or cost:
                return int(tokens_in or 0), int(tokens_out or 0), float(cost or 0.0)
        return 0, 0, 0.0


def _field(source: Any, *names: str) -> Any:
    for name in names:
        value = source.get(name) if isinstance(source, dict) else getattr(source, name, None)
        if isinstance(value, int | float):
            return value
    return None


async def run_admitted(kernel: Any, runner: RunFunction, request: RunRequest, timeout: float) -> RunOutcome:
    """Run through the scheduler service (admission, priority) unless the runner is admitted already.

    The timeout starts when the run starts, not while it waits in the queue.
    """

    async def attempt() -> RunOutcome:
        try:
            async with asyncio.timeout(timeout):
                return await runner(request)
        except TimeoutError:
            return RunOutcome(status="timed_out", error=f"no result within {timeout:.0f}s (timeout)")

    scheduler = kernel.services.get("scheduler")
    if scheduler is None or not hasattr(scheduler, "submit") or getattr(runner, "schedules_itself", False):
        # The gateway's agents are admitted by the scheduler already (with the
        # job's priority); submitting twice would hold two slots per run.
        return await attempt()
    done: asyncio.Future[RunOutcome] = asyncio.get_running_loop().create_future()

    async def job() -> RunOutcome:
        try:
            result = await attempt()
        except asyncio.CancelledError:
            if not done.done():
                done.set_result(RunOutcome(status="cancelled", error="cancelled by the scheduler"))
            raise
        except BaseException as err:
            if not done.done():
                done.set_exception(err)
            raise
        if not done.done():
            done.set_result(result)
        return result

    try:
        handle = await resolve(scheduler.submit(job, PRIORITY.get(request.job.priority, 0), name=f"cron:{request.job.name}"))
    except Exception as err:  # admission refused: the run failed, visibly
        return RunOutcome(status="failed", error=f"the scheduler refused the run: {err}")
    try:
        return await done
    except asyncio.CancelledError:
        handle_id = getattr(handle, "id", handle)
        try:
            await resolve(scheduler.cancel(str(handle_id)))
        except Exception:
            log.debug("scheduler.cancel(%s) failed", handle_id, exc_info=True)
        raise
