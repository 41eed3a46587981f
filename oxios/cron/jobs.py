"""The job table: definitions from config and the API, with their schedule state.

Config jobs are synced in at start (source ``config``, read-only through the
API except pause/resume/trigger); API jobs are created, edited and deleted
here (source ``api``). Reading a job never moves its schedule: only firing
(in the service) and an explicit change of schedule, timezone, enabled or
pause state set ``next_run_at``.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import msgspec

from ..kernel import NotFound
from ..state import StateStore
from .model import EDITABLE_FIELDS, DuplicateJob, InvalidJob, JobSpec, spec_from_input, validate
from .schedule import Schedule, ScheduleError, iso, parse

log = logging.getLogger(__name__)

# Changing one of these restarts the schedule from now.
_SCHEDULE_FIELDS = ("schedule", "timezone", "enabled")


class JobTable:
    def __init__(self, state: StateStore, *, default_misfire: str) -> None:
        self.state = state
        self.default_misfire = default_misfire
        self._schedules: dict[tuple[str, str, float], Schedule] = {}

    # -- reading ------------------------------------------------------------------

    def row(self, name: str) -> Any:
        row = self.state.one("SELECT * FROM cron_jobs WHERE name = ?", (name,))
        if row is None:
            raise NotFound(f"no cron job named {name!r} (`oxios cron list` shows them)")
        return row

    def spec(self, row: Any) -> JobSpec:
        return msgspec.json.decode(row["spec"], type=JobSpec)

    def schedule(self, spec: JobSpec, anchor: float) -> Schedule:
        """The parsed schedule, cached by (schedule, timezone, anchor)."""
        key = (spec.schedule, spec.timezone, anchor)
        cached = self._schedules.get(key)
        if cached is None:
            if len(self._schedules) > 4096:
                self._schedules.clear()
            cached = self._schedules[key] = parse(spec.schedule, spec.timezone, anchor=anchor)
        return cached

    def misfire_policy(self, spec: JobSpec) -> str:
        return spec.misfire_policy or self.default_misfire

    def describe(self, row: Any, running: dict[str, str]) -> dict[str, Any]:
        """A job as the API and CLI show it (times in UTC and in the job's zone)."""
        spec = self.spec(row)
        out: dict[str, Any] = {"name": spec.name, "source": row["source"], **msgspec.to_builtins(spec)}
        out["misfire_policy"] = self.misfire_policy(spec)
        nxt = row["next_run_at"]
        if row["name"] in running:
            state = "running"
        elif row["paused"]:
            state = "paused"
        elif not spec.enabled:
            state = "disabled"
        elif nxt is None:
            state = "completed"
        else:
            state = "scheduled"
        out.update(
            state=state,
            paused=bool(row["paused"]),
            pause_reason=row["pause_reason"],
            next_run_at=iso(nxt),
            next_run_local=_local(nxt, spec.timezone),
            last_run_at=iso(row["last_run_at"]),
            last_status=row["last_status"],
            run_count=row["run_count"],
            consecutive_failures=row["consecutive_failures"],
            running_run_id=running.get(row["name"]),
            created_at=iso(row["created_at"]),
            updated_at=iso(row["updated_at"]),
        )
        return out

    # -- writing ------------------------------------------------------------------

    def next_from(self, spec: JobSpec, anchor: float, now: float) -> float | None:
        if not spec.enabled:
            return None
        return self.schedule(spec, anchor).next_after(now)

    def create(self, data: dict[str, Any], now: float) -> Any:
        spec = validate(spec_from_input(data), now=now)
        if self.state.one("SELECT 1 FROM cron_jobs WHERE name = ?", (spec.name,)):
            existing = self.state.one("SELECT source FROM cron_jobs WHERE name = ?", (spec.name,))
            where = " in config.toml" if existing and existing["source"] == "config" else ""
            raise DuplicateJob(f"name: a cron job named {spec.name!r} already exists{where}; pick another name or edit it")
        self._insert(spec, "api", now)
        return self.row(spec.name)

    def edit(self, name: str, changes: dict[str, Any], now: float) -> Any:
        row = self.row(name)
        self._writable(row)
        unknown = set(changes) - EDITABLE_FIELDS
        if unknown:
            raise InvalidJob(f"{sorted(unknown)[0]}: not an editable field (editable: {', '.join(sorted(EDITABLE_FIELDS))})")
        old = self.spec(row)
        merged = {**msgspec.to_builtins(old), **changes, "name": name}
        moved = any(merged.get(f) != getattr(old, f) for f in _SCHEDULE_FIELDS)
        spec = validate(spec_from_input(merged), now=now, check_past=moved)
        anchor = now if moved else row["anchor"]
        next_run = self.next_from(spec, anchor, now) if moved else row["next_run_at"]
        finished = bool(spec.max_runs) and row["run_count"] >= spec.max_runs
        if not moved and row["next_run_at"] is None and not finished:
            next_run = self.next_from(spec, anchor, now)  # e.g. max_runs raised on a completed job
        if finished:
            next_run = None
        self.state.execute(
            "UPDATE cron_jobs SET spec = ?, anchor = ?, next_run_at = ?, updated_at = ? WHERE name = ?",
            (msgspec.json.encode(spec).decode(), anchor, next_run, now, name),
        )
        return self.row(name)

    def delete(self, name: str) -> None:
        self._writable(self.row(name))
        with self.state.transaction() as conn:
            conn.execute("DELETE FROM cron_jobs WHERE name = ?", (name,))
            conn.execute("DELETE FROM cron_runs WHERE job = ?", (name,))
            conn.execute("DELETE FROM cron_outbox WHERE job = ?", (name,))

    def pause(self, name: str, reason: str, now: float) -> Any:
        self.row(name)
        self.state.execute(
            "UPDATE cron_jobs SET paused = 1, pause_reason = ?, updated_at = ? WHERE name = ?", (reason, now, name)
        )
        return self.row(name)

    def resume(self, name: str, now: float) -> Any:
        """Unpause: the schedule restarts from now, so slots passed while paused are not run."""
        row = self.row(name)
        spec = self.spec(row)
        if row["pause_reason"].startswith("invalid"):
            raise InvalidJob(f"{name}: {row['pause_reason']}; fix [cron.jobs.{name}] in config.toml")
        done = spec.max_runs and row["run_count"] >= spec.max_runs
        next_run = None if done else self._safe_next(spec, row["anchor"], now)
        self.state.execute(
            "UPDATE cron_jobs SET paused = 0, pause_reason = '', consecutive_failures = 0, next_run_at = ?, updated_at = ? WHERE name = ?",
            (next_run, now, name),
        )
        return self.row(name)

    def sync_config(self, jobs: dict[str, Any], now: float) -> None:
        """Bring ``[cron.jobs.*]`` into the table; keep the schedule state of unchanged jobs."""
        for name, cfg in jobs.items():
            data = {"name": name, **msgspec.to_builtins(cfg)}
            row = self.state.one("SELECT * FROM cron_jobs WHERE name = ?", (name,))
            try:
                spec = validate(spec_from_input(data), now=now, check_past=False)
            except InvalidJob as err:
                self._store_invalid(name, data, row, str(err), now)
                continue
            if row is None:
                self._insert(spec, "config", now)
                continue
            if row["source"] != "config":
                log.warning("cron job %s from config replaces the API job of the same name", name)
            old = self.spec(row) if row["source"] == "config" and not row["pause_reason"].startswith("invalid") else None
            encoded = msgspec.json.encode(spec).decode()
            if old is not None and old == spec:
                continue
            moved = old is None or any(getattr(spec, f) != getattr(old, f) for f in _SCHEDULE_FIELDS)
            anchor = now if moved else row["anchor"]
            next_run = self.next_from(spec, anchor, now) if moved else row["next_run_at"]
            invalid = row["pause_reason"].startswith("invalid")
            self.state.execute(
                "UPDATE cron_jobs SET source = 'config', spec = ?, anchor = ?, next_run_at = ?, updated_at = ?,"
                " paused = CASE WHEN ? THEN 0 ELSE paused END, pause_reason = CASE WHEN ? THEN '' ELSE pause_reason END"
                " WHERE name = ?",
                (
                    encoded,
                    anchor,
                    next_run,
                    now,
                    invalid or row["source"] != "config",
                    invalid or row["source"] != "config",
                    name,
                ),
            )
        placeholders = ", ".join("?" for _ in jobs) or "''"
        gone = self.state.all(f"SELECT name FROM cron_jobs WHERE source = 'config' AND name NOT IN ({placeholders})", tuple(jobs))
        for row in gone:
            with self.state.transaction() as conn:
                conn.execute("DELETE FROM cron_jobs WHERE name = ?", (row["name"],))
                conn.execute("DELETE FROM cron_outbox WHERE job = ? AND status = 'pending'", (row["name"],))

    # -- helpers ----------------------------------------------------------------------

    def _insert(self, spec: JobSpec, source: str, now: float) -> None:
        self.state.execute(
            "INSERT INTO cron_jobs(name, source, spec, next_run_at, anchor, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (spec.name, source, msgspec.json.encode(spec).decode(), self.next_from(spec, now, now), now, now, now),
        )

    def _store_invalid(self, name: str, data: dict[str, Any], row: Any, error: str, now: float) -> None:
        """A config job that cannot run is kept, paused, with the reason (never silently dropped)."""
        log.error("cron job %s in config is invalid: %s", name, error)
        fallback = JobSpec(name=name, schedule=str(data.get("schedule", "")), goal=str(data.get("goal", "")) or "(invalid)")
        reason = f"invalid: {error}"
        if row is None:
            self.state.execute(
                "INSERT INTO cron_jobs(name, source, spec, paused, pause_reason, next_run_at, anchor, created_at, updated_at)"
                " VALUES (?, 'config', ?, 1, ?, NULL, ?, ?, ?)",
                (name, msgspec.json.encode(fallback).decode(), reason, now, now, now),
            )
        else:
            self.state.execute(
                "UPDATE cron_jobs SET source = 'config', paused = 1, pause_reason = ?, next_run_at = NULL, updated_at = ? WHERE name = ?",
                (reason, now, name),
            )

    def _safe_next(self, spec: JobSpec, anchor: float, now: float) -> float | None:
        try:
            return self.next_from(spec, anchor, now)
        except ScheduleError as err:
            raise InvalidJob(f"schedule: {err}") from None

    @staticmethod
    def _writable(row: Any) -> None:
        if row["source"] == "config":
            name = row["name"]
            raise InvalidJob(
                f"{name}: this job comes from config.toml ([cron.jobs.{name}]); edit or remove it there "
                "(through the API it can only be paused, resumed or triggered)"
            )


def _local(ts: float | None, zone: str) -> str | None:
    if ts is None:
        return None
    try:
        from zoneinfo import ZoneInfo

        return datetime.fromtimestamp(ts, ZoneInfo(zone or "UTC")).isoformat()
    except Exception:  # an invalid zone is reported on the job itself
        return None
