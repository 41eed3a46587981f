"""The local scheduler: admission of agent work inside the daemon's event loop.

A priority queue (higher first, FIFO within a priority) feeds at most
``max_concurrent`` running jobs, starting no more than
``rate_limit_per_minute`` in any sliding minute. A job that reports no
progress for ``zombie_timeout_secs`` is cancelled and marked ``zombie``.
While the machine is overloaded (``overload_check``), jobs below normal
priority wait. Provided through the ``scheduler(name, config)`` hook as
"local"; another plugin can supply a distributed engine instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import heapq
import itertools
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from oxios_hookspecs import hookimpl, new_id

log = logging.getLogger(__name__)

PRIORITIES = {"low": -10, "normal": 0, "high": 10}
FINISHED_KEPT = 1000  # finished jobs remembered for tasks()/stats()

_current_job: contextvars.ContextVar[Job | None] = contextvars.ContextVar("oxios_current_job", default=None)


class Job:
    """A handle to submitted work: ``await job`` gives its result."""

    def __init__(self, fn: Callable[[], Awaitable[Any]], priority: int, name: str, seq: int) -> None:
        self.id = new_id()
        self.fn = fn
        self.priority = priority
        self.name = name
        self.seq = seq
        self.status = "queued"
        self.submitted = time.time()
        self.started: float | None = None
        self.finished: float | None = None
        self.last_progress = time.monotonic()
        self.error: str | None = None
        self.task: asyncio.Task[Any] | None = None
        self.future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    def __await__(self) -> Any:
        return asyncio.shield(self.future).__await__()

    def __lt__(self, other: Job) -> bool:
        return (-self.priority, self.seq) < (-other.priority, other.seq)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "priority": self.priority,
            "status": self.status,
            "submitted": self.submitted,
            "started": self.started,
            "finished": self.finished,
            "error": self.error,
        }


class LocalScheduler:
    name = "local"

    def __init__(self, config: Any) -> None:
        self.max_concurrent = max(1, int(config.max_concurrent))
        self.rate_limit_per_minute = int(config.rate_limit_per_minute)
        self.zombie_timeout_secs = float(config.zombie_timeout_secs)
        self.overload_check: Callable[[], bool] | None = None
        self.on_zombie: Callable[[Job], Any] | None = None
        self._queue: list[Job] = []
        self._resuming: deque[tuple[Job, asyncio.Future[None]]] = deque()
        self._jobs: dict[str, Job] = {}
        self._running: dict[str, Job] = {}
        self._finished: deque[str] = deque()
        self._starts: deque[float] = deque()
        self._seq = itertools.count()
        self._wake: asyncio.Event | None = None
        self._stopping = False
        self._dispatcher: asyncio.Task[None] | None = None
        self.counters = {"submitted": 0, "completed": 0, "failed": 0, "cancelled": 0, "zombies": 0, "held_for_overload": 0}
        self.peak_running = 0

    # -- the Scheduler protocol ----------------------------------------------------

    async def submit(self, job: Callable[[], Awaitable[Any]], priority: int = 0, *, name: str = "") -> Job:
        if self._dispatcher is None or self._dispatcher.done():
            self._wake = asyncio.Event()
            self._dispatcher = asyncio.create_task(self._dispatch(), name="oxios-scheduler")
        handle = Job(job, int(priority), name, next(self._seq))
        self._jobs[handle.id] = handle
        heapq.heappush(self._queue, handle)
        self.counters["submitted"] += 1
        self._kick()
        return handle

    async def cancel(self, id: str) -> bool:
        job = self._jobs.get(id)
        if job is None or job.status not in ("queued", "running"):
            return False
        if job.status == "queued":
            job.status = "cancelled"  # dropped lazily when it reaches the top of the heap
            self._finish(job, cancelled=True)
        elif job.task is not None:
            job.task.cancel()
        return True

    def stats(self) -> dict[str, Any]:
        queued = sum(1 for j in self._queue if j.status == "queued")
        return {
            "backend": self.name,
            "running": len(self._running),
            "queued": queued,
            "max_concurrent": self.max_concurrent,
            "rate_limit_per_minute": self.rate_limit_per_minute,
            "zombie_timeout_secs": self.zombie_timeout_secs,
            "peak_running": self.peak_running,
            "overloaded": bool(self.overload_check and self.overload_check()),
            **self.counters,
        }

    # -- extras the host uses ------------------------------------------------------

    def apply_config(self, config: Any) -> None:
        """A reloaded config's ``[scheduler]`` limits: running jobs keep running; admission follows the new numbers."""
        cfg = config.scheduler
        self.max_concurrent = max(1, int(cfg.max_concurrent))
        self.rate_limit_per_minute = int(cfg.rate_limit_per_minute)
        self.zombie_timeout_secs = float(cfg.zombie_timeout_secs)
        self._kick()  # a higher limit admits queued work now

    def tasks(self, *, status: str | None = None) -> list[dict[str, Any]]:
        return [j.as_dict() for j in self._jobs.values() if status is None or j.status == status]

    def get(self, id: str) -> Job | None:
        return self._jobs.get(id)

    def progress(self, id: str | None = None) -> None:
        """Note that a job is alive (defaults to the job running in this task)."""
        job = self._jobs.get(id) if id else _current_job.get()
        if job is not None:
            job.last_progress = time.monotonic()

    @contextlib.asynccontextmanager
    async def released_slot(self) -> AsyncIterator[None]:
        """Give the current job's slot back while it waits (a parent waiting for its sub-agents),
        then wait for a slot again; without this a full house of waiting parents would deadlock."""
        job = _current_job.get()
        if job is None or self._running.get(job.id) is not job:
            yield
            return
        self._running.pop(job.id)
        self._kick()
        try:
            yield
        finally:
            resumed = asyncio.get_running_loop().create_future()
            self._resuming.append((job, resumed))
            self._kick()
            await resumed

    async def stop(self) -> None:
        self._stopping = True
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._dispatcher
        running = [j.task for j in self._running.values() if j.task is not None]
        for task in running:
            task.cancel()
        if running:
            await asyncio.wait(running, timeout=10)
        for job in list(self._queue):
            if job.status == "queued":
                job.status = "cancelled"
                self._finish(job, cancelled=True)

    # -- internals -------------------------------------------------------------------

    def _kick(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def _rate_ok(self, now: float) -> bool:
        if self.rate_limit_per_minute <= 0:
            return True
        while self._starts and now - self._starts[0] >= 60:
            self._starts.popleft()
        return len(self._starts) < self.rate_limit_per_minute

    def _next_wait(self, now: float) -> float:
        waits = [1.0]
        if self.zombie_timeout_secs > 0:
            waits.append(max(0.05, self.zombie_timeout_secs / 4))
        if self.rate_limit_per_minute > 0 and self._starts and len(self._starts) >= self.rate_limit_per_minute:
            waits.append(max(0.01, 60 - (now - self._starts[0])))
        return min(waits)

    async def _dispatch(self) -> None:
        assert self._wake is not None
        while not self._stopping:
            self._wake.clear()
            now = time.monotonic()
            self._reap_zombies(now)
            overloaded = bool(self.overload_check and self._queue and self.overload_check())
            while self._resuming and len(self._running) < self.max_concurrent:
                job, resumed = self._resuming.popleft()
                if not resumed.done():  # a cancelled waiter gave up its claim
                    self._running[job.id] = job
                    job.last_progress = now
                    resumed.set_result(None)
            held: list[Job] = []
            while self._queue and len(self._running) < self.max_concurrent and self._rate_ok(now):
                job = heapq.heappop(self._queue)
                if job.status != "queued":
                    continue
                if overloaded and job.priority < 0 and self._running:
                    held.append(job)  # low-priority work waits while the machine is overloaded
                    continue
                self._start(job, now)
            if held:
                self.counters["held_for_overload"] += len(held)
                for job in held:
                    heapq.heappush(self._queue, job)
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancel that lands as the event fires.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._next_wait(now)):
                    await self._wake.wait()

    def _start(self, job: Job, now: float) -> None:
        job.status = "running"
        job.started = time.time()
        job.last_progress = now
        self._starts.append(now)
        self._running[job.id] = job
        self.peak_running = max(self.peak_running, len(self._running))
        job.task = asyncio.create_task(self._run(job), name=f"oxios-job-{job.name or job.id}")

    async def _run(self, job: Job) -> None:
        _current_job.set(job)
        try:
            result = await job.fn()
        except asyncio.CancelledError:
            if job.status != "zombie":
                job.status = "cancelled"
            self._finish(job, cancelled=True)
        except Exception as err:
            job.status = "failed"
            job.error = f"{type(err).__name__}: {err}"
            self._finish(job, error=err)
        else:
            job.status = "completed"
            self._finish(job, result=result)

    def _finish(self, job: Job, *, result: Any = None, error: BaseException | None = None, cancelled: bool = False) -> None:
        job.finished = time.time()
        self._running.pop(job.id, None)
        key = {"completed": "completed", "failed": "failed", "zombie": "zombies"}.get(job.status, "cancelled")
        self.counters[key] += 1
        if not job.future.done():
            if cancelled:
                job.future.cancel()
            elif error is not None:
                job.future.set_exception(error)
                job.future.exception()  # the error is in job.error too; awaiting is optional
            else:
                job.future.set_result(result)
        job.fn = _done  # drop the closure (it may hold a whole conversation)
        self._finished.append(job.id)
        while len(self._finished) > FINISHED_KEPT:
            self._jobs.pop(self._finished.popleft(), None)
        self._kick()

    def _reap_zombies(self, now: float) -> None:
        if self.zombie_timeout_secs <= 0:
            return
        for job in list(self._running.values()):
            if now - job.last_progress > self.zombie_timeout_secs and job.status == "running":
                log.warning("job %s (%s) made no progress for %ss; killing it", job.id, job.name, self.zombie_timeout_secs)
                job.status = "zombie"
                job.error = f"no progress for {self.zombie_timeout_secs:g} s (zombie)"
                if self.on_zombie is not None:
                    try:
                        self.on_zombie(job)
                    except Exception:
                        log.exception("on_zombie callback failed")
                if job.task is not None:
                    job.task.cancel()


async def _done() -> None:
    return None


@hookimpl
def scheduler(name: str, config: Any) -> LocalScheduler | None:
    return LocalScheduler(config) if name == "local" else None
