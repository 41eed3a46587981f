"""The cron service: one owner fires due runs, records every slot, delivers results.

Each tick (every ``cron.tick_interval_secs``, or sooner when a run is due):

1. renew the lease, or take it over when it expired (then reconcile: runs a
   dead owner left "running" are marked cancelled, half-sent deliveries are
   queued again);
2. fire every job whose ``next_run_at`` has passed. Each due job's slots
   since ``next_run_at`` are counted: the latest runs if it is on time (or,
   under ``catch_up``, within the grace window: once, however many slots were
   missed); slots that do not run are recorded as one ``missed`` run with
   their count and range. Moving ``next_run_at`` and inserting the run row is
   one compare-and-set transaction, so a slot fires at most once;
3. send due outbox rows.

Runs go through the scheduler service when there is one (admission,
priority), at most ``cron.max_concurrent_jobs`` at a time, each bounded by
its timeout.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

from oxios_hookspecs import Action, new_id

from ..kernel import Conflict
from ..state import StateStore
from . import store
from .delivery import Outbox
from .jobs import JobTable
from .model import FAILURE_STATUSES, InvalidJob, JobSpec, RunOutcome, RunRequest, approved_argv, summarize
from .runner import GatewayRunner, RunFunction, run_admitted
from .schedule import iso

log = logging.getLogger(__name__)


# Slots counted one by one after an outage; beyond this only the last one is looked up.
SLOT_COUNT_CAP = 10_000


class JobBusy(InvalidJob, Conflict):
    """The job already has a run in progress."""


# Up-front grants live as long as the job (they are replaced whenever it changes).
GRANT_LIFETIME_SECS = 10 * 365 * 86400.0


class CronService:
    """Service ``cron``. ``clock`` and ``runner`` are injectable (tests use fakes)."""

    def __init__(
        self,
        kernel: Any,
        *,
        state: StateStore | None = None,
        clock: Callable[[], float] = time.time,
        runner: RunFunction | None = None,
        owner_id: str | None = None,
        config: Any = None,
    ) -> None:
        self.kernel = kernel
        self.config = config or kernel.config.cron
        self.state = state or kernel.state
        self.clock = clock
        self.runner: RunFunction = runner or GatewayRunner(kernel)
        self.owner_id = owner_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        store.migrate(self.state)
        tick = max(1, self.config.tick_interval_secs)
        self.on_time_secs = max(2.0 * tick, 60.0)
        self.lease = store.Lease(self.state, self.owner_id, max(float(self.config.lease_secs), 1.5 * tick))
        self.jobs = JobTable(self.state, default_misfire=self.config.misfire_policy)
        self.outbox = Outbox(
            kernel,
            self.state,
            publish=self._publish,
            max_attempts=self.config.delivery_max_attempts,
            backoff_secs=self.config.delivery_backoff_secs,
        )
        self.is_owner = False
        self._tasks: dict[str, asyncio.Task[None]] = {}  # run id -> task
        self._running: dict[str, str] = {}  # job name -> run id
        self._slots = asyncio.Semaphore(max(1, self.config.max_concurrent_jobs))
        self._loop: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.jobs.sync_config(self.config.jobs, self.clock())
        for row in self.state.all("SELECT * FROM cron_jobs"):
            self._sync_grants(row["name"])

    # -- API (also reachable as cron.* over the control socket) ---------------------

    def list(self) -> list[dict[str, Any]]:
        rows = self.state.all("SELECT * FROM cron_jobs ORDER BY name")
        running = self._running_jobs()
        return [self.jobs.describe(r, running) for r in rows]

    def get(self, name: str) -> dict[str, Any]:
        return self.jobs.describe(self.jobs.row(name), self._running_jobs())

    def create(self, job: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
        row = self.jobs.create({**(job or {}), **fields}, self.clock())
        self._sync_grants(row["name"])
        self._wake.set()
        return self.jobs.describe(row, {})

    def edit(self, name: str, changes: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
        row = self.jobs.edit(name, {**(changes or {}), **fields}, self.clock())
        self._sync_grants(name)
        self._wake.set()
        return self.jobs.describe(row, self._running_jobs())

    async def delete(self, name: str) -> dict[str, Any]:
        self.jobs.delete(name)
        self._sync_grants(name)
        run_id = self._running.get(name)
        if run_id and run_id in self._tasks:
            self._tasks[run_id].cancel()
        return {"deleted": name}

    def apply_config(self, config: Any) -> None:
        """A reloaded config's ``[cron]``: settings take effect at once and the ``[cron.jobs.*]`` are synced
        again (new ones scheduled, changed ones updated, removed ones deleted and their runs cancelled)."""
        cron = config.cron
        self.config = cron
        tick = max(1, cron.tick_interval_secs)
        self.on_time_secs = max(2.0 * tick, 60.0)
        self.lease.duration = max(float(cron.lease_secs), 1.5 * tick)
        self.jobs.default_misfire = cron.misfire_policy
        self.outbox.max_attempts = max(1, cron.delivery_max_attempts)
        self.outbox.backoff_secs = max(0.0, cron.delivery_backoff_secs)
        before = {row["name"] for row in self.state.all("SELECT name FROM cron_jobs")}
        self.jobs.sync_config(cron.jobs, self.clock())
        after = {row["name"] for row in self.state.all("SELECT name FROM cron_jobs")}
        for name in sorted(before | after):
            self._sync_grants(name)
        for name in before - after:
            run_id = self._running.get(name)
            if run_id and run_id in self._tasks:
                self._tasks[run_id].cancel()
        if cron.enabled and getattr(self.kernel, "daemon", False):
            self.start_loop()
        elif not cron.enabled and self._loop is not None:
            self._loop.cancel()  # runs in flight finish; nothing new fires
            self._loop = None
            if self.is_owner:  # another daemon on this state database may take the jobs over
                self.lease.release()
                self.is_owner = False
        self._wake.set()  # the next tick sees the new schedule and interval

    def _sync_grants(self, name: str) -> None:
        """The job's ``approve`` list as grants for its session ``cron:<name>`` (replaced on every change)."""
        approvals = self.kernel.services.get("approvals") if self.kernel is not None else None
        if approvals is None or not hasattr(approvals, "grant"):
            return
        owner = f"cron:{name}"
        approvals.revoke_grants_by(owner)
        row = self.state.one("SELECT * FROM cron_jobs WHERE name = ?", (name,))
        if row is None:
            return
        for line in self.jobs.spec(row).approve:
            action = Action(kind="exec", argv=approved_argv(line), mode="structured")
            try:
                approvals.grant(action, scope="session", scope_id=owner, by=owner, expires_secs=GRANT_LIFETIME_SECS)
            except Exception as err:  # an ungrantable command is the user's to fix; the job still runs
                log.warning("cron job %s: cannot approve %r up front: %s", name, line, err)

    def pause(self, name: str) -> dict[str, Any]:
        return self.jobs.describe(self.jobs.pause(name, "paused by user", self.clock()), self._running_jobs())

    def resume(self, name: str) -> dict[str, Any]:
        row = self.jobs.resume(name, self.clock())
        self._wake.set()
        return self.jobs.describe(row, self._running_jobs())

    def runs(self, name: str, limit: int = 20) -> list[dict[str, Any]]:
        self.jobs.row(name)
        rows = self.state.all(
            f"SELECT {store.RUN_COLUMNS} FROM cron_runs WHERE job = ? ORDER BY started_at DESC, rowid DESC LIMIT ?",
            (name, max(1, int(limit))),
        )
        return [_run_dict(r) for r in rows]

    def run(self, run_id: str) -> dict[str, Any]:
        row = self.state.one(f"SELECT {store.RUN_COLUMNS} FROM cron_runs WHERE id = ?", (run_id,))
        if row is None:
            from ..kernel import NotFound

            raise NotFound(f"no cron run {run_id!r}")
        return _run_dict(row)

    async def trigger(self, name: str, wait: bool = False) -> dict[str, Any]:
        """Run the job now; its schedule (``next_run_at``, run count) does not move, its last run time does."""
        row = self.jobs.row(name)
        if row["pause_reason"].startswith("invalid"):
            raise InvalidJob(f"{name}: {row['pause_reason']}")
        busy = self._busy(name)
        if busy:
            raise JobBusy(f"{name}: a run is already in progress ({busy}); wait for it or check `oxios cron runs {name}`")
        spec = self.jobs.spec(row)
        run_id = new_id()
        now = self.clock()
        with self.state.transaction() as conn:
            store.insert_run(conn, **self._new_run(run_id, name, "manual", None, now))
            conn.execute("UPDATE cron_jobs SET last_run_at = ? WHERE name = ?", (now, name))
        self._publish("cron.triggered", job=name, run_id=run_id, trigger="manual", scheduled_for=None)
        task = self._launch(run_id, spec, "manual", None)
        if wait:
            await asyncio.shield(task)
        return self.run(run_id)

    async def wait_idle(self) -> None:
        """Wait until every run this service started has finished (and its delivery was tried)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    def status(self) -> dict[str, Any]:
        count = self.state.one("SELECT COUNT(*) AS n FROM cron_jobs")
        return {
            "healthy": True,
            "detail": None,
            "owner": self.is_owner,
            "owner_id": self.owner_id,
            "jobs": count["n"] if count else 0,
            "running": len(self._tasks),
            "lease": self.lease.holder(),
            "ticking": self._loop is not None and not self._loop.done(),
        }

    # -- the tick ---------------------------------------------------------------

    async def tick(self) -> dict[str, Any]:
        """One pass: lease, due jobs, outbox. Safe to call by hand (tests, `oxios cron tick`)."""
        now = self.clock()
        got = self.lease.acquire(now)
        if got is None:
            self.is_owner = False
            return {"owner": False, "fired": [], "missed": [], "delivered": 0}
        if got == "acquired" or not self.is_owner:
            self._reconcile(now)
        self.is_owner = True
        fired: list[str] = []
        missed: list[str] = []
        due = self.state.all(
            "SELECT * FROM cron_jobs WHERE paused = 0 AND next_run_at IS NOT NULL AND next_run_at <= ? ORDER BY next_run_at",
            (now,),
        )
        for row in due:
            try:
                self._fire_due(row, now, fired, missed)
            except _LostLease:
                self.is_owner = False
                break
            except Exception:  # one broken job must not stop the others
                log.exception("cron job %s could not be fired", row["name"])
        delivered = await self.outbox.process(now) if self.is_owner else 0
        return {"owner": self.is_owner, "fired": fired, "missed": missed, "delivered": delivered}

    def _reconcile(self, now: float) -> None:
        """We just became the owner: settle what a previous owner left behind."""
        mine = set(self._tasks)
        rows = [r for r in self.state.all("SELECT id, job FROM cron_runs WHERE status = 'running'") if r["id"] not in mine]
        for row in rows:
            self.state.execute(
                "UPDATE cron_runs SET status = 'cancelled', finished_at = ?, error = ?, summary = ? WHERE id = ? AND status = 'running'",
                (now, "interrupted: the service running it stopped", "interrupted: the service running it stopped", row["id"]),
            )
            self._publish("cron.completed", job=row["job"], run_id=row["id"], status="cancelled", summary="interrupted")
        requeued = self.outbox.requeue_interrupted()
        log.info("cron: %s took the lease (%d interrupted runs, %d deliveries requeued)", self.owner_id, len(rows), requeued)

    def _fire_due(self, row: Any, now: float, fired: list[str], missed: list[str]) -> None:
        name = row["name"]
        spec = self.jobs.spec(row)
        schedule = self.jobs.schedule(spec, row["anchor"])
        slot = row["next_run_at"]
        count, first, latest, next_at = schedule.slots_between(slot, now, cap=SLOT_COUNT_CAP)
        policy = self.jobs.misfire_policy(spec)
        grace = float(self.config.misfire_grace_secs)
        if count == 0 or latest is None:
            self._commit(name, slot, next_at, now, fire=None, missed=None)
            return
        lateness = now - latest
        if self._busy(name):
            if policy == "catch_up" and lateness <= grace:
                return  # fires (once) when the current run ends, if still within the grace window
            self._commit(
                name, slot, next_at, now, fire=None, missed=(count, first, latest, "the previous run was still in progress")
            )
            missed.append(name)
            return
        if lateness <= self.on_time_secs or (policy == "catch_up" and lateness <= grace):
            trigger = "schedule" if lateness <= self.on_time_secs else "catch_up"
            earlier = count - 1
            skipped = None
            if earlier and policy == "skip":
                why = f"not run at their time (the service was not running or not the owner); the run due {iso(latest)} ran"
                skipped = (earlier, first, latest, why)
            coalesced = earlier if policy == "catch_up" else 0
            if spec.max_runs and row["run_count"] + 1 >= spec.max_runs:
                next_at = None
            run_id = self._commit(name, slot, next_at, now, fire=(trigger, latest, coalesced), missed=skipped)
            if run_id is None:
                return
            if skipped:
                missed.append(name)
            fired.append(name)
            self._publish(
                "cron.triggered", job=name, run_id=run_id, trigger=trigger, scheduled_for=iso(latest), coalesced=coalesced
            )
            self._launch(run_id, spec, trigger, latest)
            return
        why = f"more than {int(grace if policy == 'catch_up' else self.on_time_secs)}s late under misfire policy {policy}"
        self._commit(name, slot, next_at, now, fire=None, missed=(count, first, latest, why))
        missed.append(name)

    def _commit(
        self,
        name: str,
        slot: float,
        next_at: float | None,
        now: float,
        *,
        fire: tuple[str, float, int] | None,
        missed: tuple[int, float | None, float | None, str] | None,
    ) -> str | None:
        """Move the schedule and record the outcome atomically; None if another service got there first."""
        run_id = new_id() if fire else None
        with self.state.transaction() as conn:
            if not self.lease.held(conn, now):
                raise _LostLease
            moved = conn.execute(
                "UPDATE cron_jobs SET next_run_at = ?, run_count = run_count + ?, last_run_at = COALESCE(?, last_run_at),"
                " updated_at = ? WHERE name = ? AND next_run_at = ? AND paused = 0",
                (next_at, 1 if fire else 0, now if fire else None, now, name, slot),
            ).rowcount
            if moved != 1:
                return None
            if missed:
                count, first, last, reason = missed
                at_least = "at least " if count >= SLOT_COUNT_CAP else ""
                summary = f"missed {at_least}{count} run(s) scheduled {iso(first)} .. {iso(last)}: {reason}"
                store.insert_run(
                    conn,
                    id=new_id(),
                    job=name,
                    trigger="schedule",
                    scheduled_for=first,
                    missed_slots=count,
                    started_at=now,
                    finished_at=now,
                    status="missed",
                    summary=summary,
                    error=reason,
                    owner=self.owner_id,
                )
            if fire:
                trigger, scheduled_for, coalesced = fire
                store.insert_run(conn, **self._new_run(run_id or "", name, trigger, scheduled_for, now, coalesced))
        if missed:
            count, first, last, reason = missed
            self._publish("cron.missed", job=name, slots=count, first=iso(first), last=iso(last), reason=reason)
            self._after_record(name)
        return run_id

    def _new_run(
        self, run_id: str, job: str, trigger: str, scheduled_for: float | None, now: float, coalesced: int = 0
    ) -> dict[str, Any]:
        return {
            "id": run_id,
            "job": job,
            "trigger": trigger,
            "scheduled_for": scheduled_for,
            "missed_slots": coalesced,
            "started_at": now,
            "status": "running",
            "session_id": f"cron:{job}",
            "owner": self.owner_id,
        }

    # -- running ------------------------------------------------------------------

    def _launch(self, run_id: str, spec: JobSpec, trigger: str, scheduled_for: float | None) -> asyncio.Task[None]:
        task = asyncio.create_task(self._execute(run_id, spec, trigger, scheduled_for), name=f"cron:{spec.name}")
        self._tasks[run_id] = task
        self._running[spec.name] = run_id
        return task

    async def _execute(self, run_id: str, spec: JobSpec, trigger: str, scheduled_for: float | None) -> None:
        request = RunRequest(
            job=spec, run_id=run_id, session_id=f"cron:{spec.name}", trigger=trigger, scheduled_for=scheduled_for
        )
        outcome: RunOutcome
        try:
            async with self._slots:
                self.state.execute("UPDATE cron_runs SET started_at = ? WHERE id = ?", (self.clock(), run_id))
                outcome = await self._through_scheduler(request)
        except asyncio.CancelledError:
            self._finish(
                run_id, spec, RunOutcome(status="cancelled", error="cancelled (the job was deleted or the service stopped)")
            )
            raise
        except Exception as err:  # a runner bug is this run's failure, not the service's
            log.exception("cron job %s: run %s crashed", spec.name, run_id)
            outcome = RunOutcome(status="failed", error=f"{type(err).__name__}: {err}")
        finally:
            self._tasks.pop(run_id, None)
            if self._running.get(spec.name) == run_id:
                self._running.pop(spec.name, None)
        await self._finish_and_deliver(run_id, spec, outcome)
        self._wake.set()  # a slot held back while this run went on may fire now

    async def _through_scheduler(self, request: RunRequest) -> RunOutcome:
        timeout = float(request.job.timeout_secs or self.kernel.config.security.max_execution_time_secs)
        return await run_admitted(self.kernel, self.runner, request, timeout)

    def _finish(self, run_id: str, spec: JobSpec, outcome: RunOutcome) -> tuple[int, float]:
        now = self.clock()
        ok = outcome.status == "succeeded"
        summary = summarize(outcome.output if ok else (outcome.error or outcome.output))
        self.state.execute(
            "UPDATE cron_runs SET finished_at = ?, status = ?, summary = ?, output = ?, error = ?, input_tokens = ?,"
            " output_tokens = ?, cost_usd = ?, agent_id = ? WHERE id = ?",
            (
                now,
                outcome.status,
                summary,
                outcome.output,
                outcome.error,
                outcome.input_tokens,
                outcome.output_tokens,
                outcome.cost_usd,
                outcome.agent_id,
                run_id,
            ),
        )
        failures = 0
        row = self.state.one("SELECT consecutive_failures FROM cron_jobs WHERE name = ?", (spec.name,))
        if row is not None:
            failures = row["consecutive_failures"]
            if outcome.status in FAILURE_STATUSES:
                failures += 1
            elif ok:
                failures = 0
            self.state.execute(
                "UPDATE cron_jobs SET last_status = ?, consecutive_failures = ? WHERE name = ?",
                (outcome.status, failures, spec.name),
            )
        started = self.state.one("SELECT started_at FROM cron_runs WHERE id = ?", (run_id,))
        duration_ms = int((now - started["started_at"]) * 1000) if started else 0
        self._publish(
            "cron.completed", job=spec.name, run_id=run_id, status=outcome.status, summary=summary, duration_ms=duration_ms
        )
        return failures, now

    async def _finish_and_deliver(self, run_id: str, spec: JobSpec, outcome: RunOutcome) -> None:
        failures, now = self._finish(run_id, spec, outcome)
        box_ids: list[int] = []
        if outcome.status == "succeeded" and spec.deliver_to:
            payload = self._payload(run_id, spec, "result", outcome.output, outcome)
            box_ids.append(
                self.outbox.enqueue(job=spec.name, run_id=run_id, kind="result", target=spec.deliver_to, payload=payload, now=now)
            )
        if outcome.status in FAILURE_STATUSES:
            box_ids += self._on_failure(run_id, spec, outcome, failures, now)
        self._after_record(spec.name)
        for box_id in box_ids:
            await self.outbox.process(now, only_id=box_id)

    def _on_failure(self, run_id: str, spec: JobSpec, outcome: RunOutcome, failures: int, now: float) -> list[int]:
        notices: list[str] = []
        last_error = summarize(outcome.error or "", 300)
        notify_at, pause_at = self.config.notify_after_failures, self.config.pause_after_failures
        if notify_at > 0 and failures == notify_at:
            self._publish("cron.failing", job=spec.name, consecutive_failures=failures, last_error=last_error)
            notices.append(f"Cron job {spec.name} has failed {failures} times in a row. Last error: {last_error}")
        if pause_at > 0 and failures >= pause_at:
            reason = f"paused after {failures} consecutive failures; last error: {last_error}"
            paused = self.state.execute(
                "UPDATE cron_jobs SET paused = 1, pause_reason = ? WHERE name = ? AND paused = 0", (reason, spec.name)
            ).rowcount
            if paused:
                self._publish("cron.paused", job=spec.name, reason=reason, consecutive_failures=failures)
                notices.append(
                    f"Cron job {spec.name} was paused after {failures} consecutive failures; `oxios cron resume {spec.name}` restarts it."
                )
        if not spec.deliver_to:
            return []
        return [
            self.outbox.enqueue(
                job=spec.name,
                run_id=run_id,
                kind="notice",
                target=spec.deliver_to,
                payload=self._payload(run_id, spec, "notice", text, outcome),
                now=now,
            )
            for text in notices
        ]

    def _payload(self, run_id: str, spec: JobSpec, kind: str, text: str, outcome: RunOutcome) -> dict[str, Any]:
        row = self.state.one("SELECT started_at, finished_at FROM cron_runs WHERE id = ?", (run_id,))
        return {
            "kind": kind,
            "job": spec.name,
            "run_id": run_id,
            "status": outcome.status,
            "summary": summarize(text),
            "text": text,
            "output": outcome.output,
            "error": outcome.error,
            "started_at": iso(row["started_at"]) if row else None,
            "finished_at": iso(row["finished_at"]) if row else None,
        }

    def _after_record(self, name: str) -> None:
        store.prune_runs(self.state, name, self.config.history_limit)

    def _busy(self, name: str) -> str | None:
        """The id of ``name``'s run in progress (ours, or one another owner recorded), if any."""
        if name in self._running:
            return self._running[name]
        row = self.state.one("SELECT id FROM cron_runs WHERE job = ? AND status = 'running' LIMIT 1", (name,))
        return row["id"] if row else None

    def _running_jobs(self) -> dict[str, str]:
        """Jobs with a run in progress: ours in memory, plus any another owner recorded."""
        rows = self.state.all("SELECT job, id FROM cron_runs WHERE status = 'running'")
        return {**{r["job"]: r["id"] for r in rows}, **self._running}

    def _publish(self, type: str, **data: Any) -> None:
        self.kernel.publish(type, **data)

    # -- lifecycle ----------------------------------------------------------------

    def start_loop(self) -> None:
        if self._loop is None or self._loop.done():
            self._loop = asyncio.create_task(self._run_loop(), name="oxios-cron-tick")

    async def _run_loop(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("cron tick failed")
            self._wake.clear()
            interval = float(max(1, self.config.tick_interval_secs))  # read each time: a reload may change it
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self._sleep_for(interval))
            except TimeoutError:
                pass

    def _sleep_for(self, interval: float) -> float:
        """Until the next tick, or sooner when a run is due before it."""
        if not self.is_owner:
            return interval
        now = self.clock()
        # Only future runs: a due job held behind its own running run wakes the
        # loop when that run ends (see _execute), not by polling.
        row = self.state.one("SELECT MIN(next_run_at) AS t FROM cron_jobs WHERE paused = 0 AND next_run_at > ?", (now,))
        if row is None or row["t"] is None:
            return interval
        return min(interval, max(0.2, row["t"] - now + 0.05))

    async def stop(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            try:
                await self._loop
            except (asyncio.CancelledError, Exception):
                pass
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=10)
        if self.is_owner:
            self.lease.release()
            self.is_owner = False

    def expose(self) -> None:
        for method in ("list", "get", "create", "edit", "delete", "trigger", "pause", "resume", "runs", "run", "tick"):
            self.kernel.expose(f"cron.{method}", getattr(self, method))


class _LostLease(Exception):
    """Another service owns the lease now: stop firing this tick."""


def _run_dict(row: Any) -> dict[str, Any]:
    out = dict(row)
    for key in ("scheduled_for", "started_at", "finished_at"):
        out[key] = iso(out[key])
    if out["started_at"] and out["finished_at"] and row["finished_at"] is not None:
        out["duration_ms"] = int((row["finished_at"] - row["started_at"]) * 1000)
    return out


async def start(kernel: Any) -> CronService:
    """Service factory (``kernel.SERVICES``). The tick loop runs only in the daemon."""
    service = CronService(kernel)
    service.expose()
    if kernel.config.cron.enabled and getattr(kernel, "daemon", False):
        service.start_loop()
    return service
