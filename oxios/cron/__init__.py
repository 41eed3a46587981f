"""Cron: scheduled agent jobs that never silently skip or double-fire.

``service`` (the ``cron`` kernel service and its tick), ``jobs`` (the job
table), ``schedule`` (cron / every / at, DST-correct next runs in UTC),
``delivery`` (the outbox), ``runner`` (a run as a headless gateway message),
``store`` (tables and the owner lease), ``model`` (shapes and validation).
"""

from __future__ import annotations

from .model import DuplicateJob, InvalidJob, JobSpec, RunOutcome, RunRequest
from .schedule import Schedule, ScheduleError, parse
from .service import CronService, JobBusy, start

__all__ = [
    "CronService",
    "DuplicateJob",
    "InvalidJob",
    "JobBusy",
    "JobSpec",
    "RunOutcome",
    "RunRequest",
    "Schedule",
    "ScheduleError",
    "parse",
    "start",
]
