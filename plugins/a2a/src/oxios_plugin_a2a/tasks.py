"""A2A tasks in Oxios's state store, so ``GetTask`` survives a daemon restart.

:class:`StateTaskStore` implements the SDK's ``TaskStore`` over the kernel's
SQLite database (migration namespace ``a2a``). Tasks are kept per owner: the
name of the API token that created them (``""`` without auth), so one caller
never reads another's tasks.

A task that is still ``submitted`` or ``working`` when the process serving it
goes away can never finish: on a clean stop this process marks its own such
tasks failed; at start-up, those left behind by a process that no longer
exists (a crash, a kill) are marked failed. Either way with the reason as the
status message.

Streaming sends every token as a ``working`` status update, and the SDK saves
the whole task after each one. Writing each to SQLite would rewrite a growing
task per token, so updates that do not change the state stay in memory; a
change of state and every terminal state are written through.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from typing import Any

from a2a.server.tasks import TaskStore
from a2a.types import ListTasksRequest, ListTasksResponse, Role, Task, TaskState

log = logging.getLogger(__name__)

NAMESPACE = "a2a"
SERVICE = "a2a_tasks"
MIGRATIONS = [
    # 1: one row per task and owner; the task itself as protobuf JSON.
    """
    CREATE TABLE a2a_tasks (
        owner TEXT NOT NULL,
        id TEXT NOT NULL,
        context_id TEXT NOT NULL,
        state INTEGER NOT NULL,
        has_ts INTEGER NOT NULL,
        ts_ns INTEGER NOT NULL,
        task TEXT NOT NULL,
        pid INTEGER NOT NULL,
        pid_started REAL NOT NULL,
        instance TEXT NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (owner, id)
    );
    CREATE INDEX a2a_tasks_order ON a2a_tasks(owner, has_ts, ts_ns, id);
    CREATE INDEX a2a_tasks_state ON a2a_tasks(state);
    """,
]
# States whose run lives in the serving process: they end when it does.
RUNNING = (TaskState.TASK_STATE_SUBMITTED, TaskState.TASK_STATE_WORKING)
TERMINAL = (
    TaskState.TASK_STATE_COMPLETED,
    TaskState.TASK_STATE_FAILED,
    TaskState.TASK_STATE_CANCELED,
    TaskState.TASK_STATE_REJECTED,
)
STOPPED_REASON = "interrupted: Oxios stopped while this task was running; send the message again"
CRASHED_REASON = "interrupted: the Oxios process running this task ended (crash or kill); send the message again"

# Store instances alive in this process: a row of this pid from any other instance is orphaned.
_LIVE: set[str] = set()


def owner_of(context: Any) -> str:
    """The task owner for a call: the caller's user name (the API token's name), "" when anonymous."""
    user = getattr(context, "user", None)
    return str(getattr(user, "user_name", "") or "") if user is not None else ""


def _process_started(pid: int) -> float | None:
    """When process ``pid`` started (the pair identifies a process): None when there is no such
    process, -1.0 when it exists but may not be inspected (then it counts as alive)."""
    import psutil

    try:
        return round(psutil.Process(pid).create_time(), 3)
    except psutil.AccessDenied:
        return -1.0
    except (psutil.NoSuchProcess, ValueError):
        return None


def _encode(task: Task) -> str:
    from google.protobuf.json_format import MessageToJson

    return MessageToJson(task, indent=None)


def _decode(text: str) -> Task:
    from google.protobuf.json_format import Parse

    return Parse(text, Task(), ignore_unknown_fields=True)


def _copy(task: Task) -> Task:
    out = Task()
    out.CopyFrom(task)
    return out


def _sort_key(task: Task) -> tuple[int, int, str]:
    has_ts = task.HasField("status") and task.status.HasField("timestamp")
    return (1 if has_ts else 0, task.status.timestamp.ToNanoseconds() if has_ts else 0, task.id)


class StateTaskStore(TaskStore):
    """The a2a-sdk ``TaskStore`` over the kernel's state store (service ``a2a_tasks``)."""

    def __init__(self, kernel: Any) -> None:
        self.kernel = kernel
        self.state = kernel.state
        self.state.migrate(NAMESPACE, MIGRATIONS)
        self.instance = uuid.uuid4().hex
        self.pid = os.getpid()
        self.pid_started = _process_started(self.pid) or 0.0
        # (owner, task id) -> the latest task, for running tasks whose last updates did not change the state
        self._live: dict[tuple[str, str], Task] = {}
        self._handlers: list[Any] = []
        self._closed = False
        _LIVE.add(self.instance)
        self.recovered = self.recover()

    # -- the TaskStore interface -----------------------------------------------------

    async def save(self, task: Task, context: Any) -> None:
        if self._closed:  # a run cancelled by the shutdown reports after the store closed
            log.debug("a2a: task %s saved after stop; dropped", task.id)
            return
        owner = owner_of(context)
        key = (owner, task.id)
        persisted = self.state.one("SELECT state FROM a2a_tasks WHERE owner = ? AND id = ?", key)
        if persisted is not None and persisted["state"] == task.status.state and task.status.state in RUNNING:
            self._live[key] = _copy(task)  # another streamed delta in the same state: memory only
            return
        self._live.pop(key, None)
        self._write(owner, task)

    async def get(self, task_id: str, context: Any) -> Task | None:
        key = (owner_of(context), task_id)
        live = self._live.get(key)
        if live is not None:
            return _copy(live)
        row = self.state.one("SELECT task FROM a2a_tasks WHERE owner = ? AND id = ?", key)
        return _decode(row["task"]) if row is not None else None

    async def list(self, params: ListTasksRequest, context: Any) -> ListTasksResponse:
        from a2a.utils.constants import DEFAULT_LIST_TASKS_PAGE_SIZE
        from a2a.utils.errors import InvalidParamsError
        from a2a.utils.task import decode_list_tasks_cursor, decode_page_token, encode_list_tasks_cursor

        owner = owner_of(context)
        where, args = ["owner = ?"], [owner]
        if params.context_id:
            where.append("context_id = ?")
            args.append(params.context_id)
        if params.status:
            where.append("state = ?")
            args.append(int(params.status))
        if params.HasField("status_timestamp_after"):
            where.append("has_ts = 1 AND ts_ns >= ?")
            args.append(params.status_timestamp_after.ToNanoseconds())
        filtered = " AND ".join(where)
        total = self.state.one(f"SELECT count(*) AS n FROM a2a_tasks WHERE {filtered}", args)["n"]
        page_where, page_args = filtered, list(args)
        if params.page_token:
            cursor = decode_list_tasks_cursor(params.page_token)
            if cursor is not None:
                after: tuple[int, int, str] = (
                    1 if cursor.timestamp_ns is not None else 0,
                    cursor.timestamp_ns or 0,
                    cursor.task_id,
                )
                page_where += " AND (has_ts, ts_ns, id) < (?, ?, ?)"
            else:  # a legacy token names the first task of the page
                row = self.state.one(
                    "SELECT has_ts, ts_ns, id FROM a2a_tasks WHERE owner = ? AND id = ?",
                    (owner, decode_page_token(params.page_token)),
                )
                if row is None:
                    raise InvalidParamsError(f"Invalid page token: {params.page_token}")
                after = (row["has_ts"], row["ts_ns"], row["id"])
                page_where += " AND (has_ts, ts_ns, id) <= (?, ?, ?)"
            page_args.extend(after)
        size = params.page_size or DEFAULT_LIST_TASKS_PAGE_SIZE
        rows = self.state.all(
            f"SELECT has_ts, ts_ns, id, task FROM a2a_tasks WHERE {page_where} ORDER BY has_ts DESC, ts_ns DESC, id DESC LIMIT ?",
            [*page_args, size + 1],
        )
        page = rows[:size]
        tasks = [_copy(self._live[(owner, r["id"])]) if (owner, r["id"]) in self._live else _decode(r["task"]) for r in page]
        next_token = ""
        if len(rows) > size:
            from a2a.utils.task import ListTasksCursor

            last = page[-1]
            next_token = encode_list_tasks_cursor(
                ListTasksCursor(timestamp_ns=last["ts_ns"] if last["has_ts"] else None, task_id=last["id"])
            )
        return ListTasksResponse(tasks=tasks, total_size=total, next_page_token=next_token, page_size=size)

    async def delete(self, task_id: str, context: Any) -> None:
        key = (owner_of(context), task_id)
        self._live.pop(key, None)
        self.state.execute("DELETE FROM a2a_tasks WHERE owner = ? AND id = ?", key)

    # -- persistence and recovery -----------------------------------------------------------

    def _write(self, owner: str, task: Task) -> None:
        has_ts, ts_ns, _ = _sort_key(task)
        self.state.execute(
            "INSERT INTO a2a_tasks(owner, id, context_id, state, has_ts, ts_ns, task, pid, pid_started, instance, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(owner, id) DO UPDATE SET context_id = excluded.context_id,"
            " state = excluded.state, has_ts = excluded.has_ts, ts_ns = excluded.ts_ns, task = excluded.task,"
            " pid = excluded.pid, pid_started = excluded.pid_started, instance = excluded.instance, updated_at = excluded.updated_at",
            (
                owner,
                task.id,
                task.context_id,
                int(task.status.state),
                has_ts,
                ts_ns,
                _encode(task),
                self.pid,
                self.pid_started,
                self.instance,
                time.time(),
            ),
        )

    def _interrupt(self, owner: str, task: Task, reason: str) -> None:
        from a2a.helpers import new_text_message

        task.status.state = TaskState.TASK_STATE_FAILED
        task.status.message.CopyFrom(new_text_message(reason, context_id=task.context_id, task_id=task.id, role=Role.ROLE_AGENT))
        task.status.timestamp.GetCurrentTime()
        self._write(owner, task)

    def _orphaned(self, row: Any) -> bool:
        if row["pid"] == self.pid and row["pid_started"] == self.pid_started:
            return row["instance"] not in _LIVE  # this process, a kernel that is gone (an in-process restart)
        started = _process_started(row["pid"])
        return started is None or (started >= 0 and started != row["pid_started"])  # gone, or its pid reused

    def recover(self) -> int:
        """Mark running tasks left behind by a process that no longer serves them as failed; return how many."""
        marks = ",".join("?" * len(RUNNING))
        rows = self.state.all(
            f"SELECT owner, id, task, pid, pid_started, instance FROM a2a_tasks WHERE state IN ({marks})",
            [int(s) for s in RUNNING],
        )
        orphans = [r for r in rows if self._orphaned(r)]
        for row in orphans:
            self._interrupt(row["owner"], _decode(row["task"]), CRASHED_REASON)
        if orphans:
            log.warning("a2a: %d tasks interrupted by the end of their process were marked failed", len(orphans))
        return len(orphans)

    def add_handler(self, handler: Any) -> None:
        """A request handler serving this store: its running tasks are closed on stop."""
        self._handlers.append(handler)

    async def stop(self) -> None:
        """Close the handlers (cancels their runs) and mark this process's running tasks failed."""
        if self._closed:
            return
        for handler in self._handlers:
            try:
                await handler.aclose()
            except Exception:
                log.exception("a2a: closing a request handler failed")
        marks = ",".join("?" * len(RUNNING))
        rows = self.state.all(
            f"SELECT owner, id, task FROM a2a_tasks WHERE instance = ? AND state IN ({marks})",
            [self.instance, *(int(s) for s in RUNNING)],
        )
        for row in rows:
            live = self._live.get((row["owner"], row["id"]))
            task = live if live is not None else _decode(row["task"])
            if task.status.state in RUNNING:  # a handler's last word may already have ended it
                self._interrupt(row["owner"], task, STOPPED_REASON)
        self._live.clear()
        self._closed = True
        _LIVE.discard(self.instance)

    def status(self) -> dict[str, Any]:
        marks = ",".join("?" * len(RUNNING))
        running = self.state.one(
            f"SELECT count(*) AS n FROM a2a_tasks WHERE instance = ? AND state IN ({marks})",
            [self.instance, *(int(s) for s in RUNNING)],
        )["n"]
        return {"healthy": not self._closed, "detail": None, "running": running, "recovered": self.recovered}


def task_store(kernel: Any) -> StateTaskStore:
    """The kernel's one A2A task store (service ``a2a_tasks``), created on first use; stopped with the kernel."""
    store = kernel.services.get(SERVICE)
    if store is None:
        store = StateTaskStore(kernel)
        kernel.services[SERVICE] = store
    return store
