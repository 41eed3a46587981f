"""The shapes of cron: a job's definition, a run record, and input validation.

A :class:`JobSpec` is what a user wrote (in ``[cron.jobs.NAME]`` or through
the API); the service keeps the schedule state (next run, failures, pause)
beside it in the state store.
"""

from __future__ import annotations

import re
from typing import Any, Literal
from urllib.parse import urlsplit

import msgspec

from ..config import CronJobConfig
from ..kernel import Conflict
from .schedule import ScheduleError, machine_timezone, parse

RunStatus = Literal["running", "succeeded", "failed", "timed_out", "missed", "cancelled"]
FAILURE_STATUSES = ("failed", "timed_out")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class InvalidJob(ValueError):
    """A job definition a user must fix; the message names the field."""


class DuplicateJob(InvalidJob, Conflict):
    """A new job whose name is taken (by config.toml or an earlier create)."""


class JobSpec(CronJobConfig, kw_only=True):
    """One job as defined by its owner: ``[cron.jobs.NAME]``'s fields plus the name.

    Empty strings mean "use the default"; unknown fields are errors.
    """

    name: str


EDITABLE_FIELDS = frozenset(JobSpec.__struct_fields__) - {"name"}


class DeliveryTarget(msgspec.Struct, kw_only=True, frozen=True):
    kind: Literal["channel", "webhook"]
    channel: str = ""
    chat_id: str = ""
    url: str = ""

    def describe(self) -> str:
        """A label safe for events and logs (a webhook's path and query may hold a secret)."""
        if self.kind == "channel":
            return f"channel:{self.channel}"
        parts = urlsplit(self.url)
        return f"webhook:{parts.scheme}://{parts.hostname or ''}"


def parse_target(text: str) -> DeliveryTarget | None:
    """``channel:NAME:CHAT_ID``, ``webhook:URL`` or empty / ``none``."""
    text = text.strip()
    if not text or text.lower() == "none":
        return None
    kind, sep, rest = text.partition(":")
    if kind == "channel" and sep:
        channel, sep2, chat_id = rest.partition(":")
        if not channel or not sep2 or not chat_id:
            raise InvalidJob(f"deliver_to: {text!r} must be 'channel:NAME:CHAT_ID', e.g. 'channel:telegram:12345'")
        return DeliveryTarget(kind="channel", channel=channel, chat_id=chat_id)
    if kind == "webhook" and sep:
        parts = urlsplit(rest)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidJob(f"deliver_to: webhook URL {rest!r} must be an http(s) URL with a host")
        return DeliveryTarget(kind="webhook", url=rest)
    raise InvalidJob(f"deliver_to: {text!r} is not a target: use 'channel:NAME:CHAT_ID', 'webhook:URL' or 'none'")


def validate(spec: JobSpec, *, now: float, check_past: bool = True) -> JobSpec:
    """Check every field a user can get wrong; fill in the machine's timezone.

    Raises :class:`InvalidJob` with the field name and what would work.
    """
    if not _NAME.match(spec.name):
        raise InvalidJob(f"name: {spec.name!r} must be 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit")
    if not spec.goal.strip():
        raise InvalidJob("goal: must not be empty (it is what the agent is asked to do)")
    for field in ("constraints", "acceptance_criteria"):
        for i, text in enumerate(getattr(spec, field)):
            if not text.strip():
                raise InvalidJob(f"{field}[{i}]: must not be blank (each entry is one requirement, in words)")
    if spec.timeout_secs < 0:
        raise InvalidJob("timeout_secs: must be 0 (the default) or positive")
    if spec.max_runs < 0:
        raise InvalidJob("max_runs: must be 0 (unlimited) or positive")
    timezone = spec.timezone or machine_timezone()
    try:
        parse(spec.schedule, timezone, anchor=now, now=now if check_past else None)
    except ScheduleError as err:
        field = "timezone" if "timezone" in str(err) else "schedule"
        raise InvalidJob(f"{field}: {err}") from None
    parse_target(spec.deliver_to)
    for line in spec.approve:
        approved_argv(line)
    return msgspec.structs.replace(spec, timezone=timezone)


def approved_argv(line: str) -> list[str]:
    """One ``approve`` entry as an argument list; refused when it could not be granted exactly."""
    import shlex

    from ..security.exec_rules import FORBIDDEN_CHARS

    try:
        argv = shlex.split(line)
    except ValueError as err:
        raise InvalidJob(f"approve: {line!r} is not a command line: {err}") from None
    if not argv or "/" in argv[0]:
        raise InvalidJob(f"approve: {line!r} must start with a bare command name, e.g. 'git pull --ff-only'")
    if any(ch in arg for arg in argv for ch in FORBIDDEN_CHARS):
        raise InvalidJob(f"approve: {line!r} contains shell syntax; approvals cover one exact command")
    return argv


def spec_from_input(data: dict[str, Any], *, name: str | None = None) -> JobSpec:
    """Decode API/CLI input (unknown fields and wrong types named)."""
    if name is not None:
        data = {**data, "name": name}
    try:
        return msgspec.convert(data, JobSpec)
    except msgspec.ValidationError as err:
        raise InvalidJob(_field_message(err)) from None


def _field_message(err: msgspec.ValidationError) -> str:
    message = str(err)
    if " - at `$." in message:
        message, _, where = message.partition(" - at `$.")
        return f"{where.rstrip('`')}: {message}"
    if "unknown field" in message:
        field = message.split("`")[1] if "`" in message else "?"
        return f"{field}: unknown field (fields: {', '.join(sorted(JobSpec.__struct_fields__))})"
    if "missing required field" in message:
        field = message.split("`")[1] if "`" in message else "?"
        return f"{field}: required"
    return message


class RunOutcome(msgspec.Struct, kw_only=True):
    """What a runner reports back for one run."""

    status: RunStatus = "succeeded"
    output: str = ""
    error: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    agent_id: str | None = None


class RunRequest(msgspec.Struct, kw_only=True):
    """What a runner gets: the job, the run's id and its session."""

    job: JobSpec
    run_id: str
    session_id: str
    trigger: str
    scheduled_for: float | None = None


def summarize(text: str, limit: int = 200) -> str:
    """The first non-empty line, cut to ``limit`` characters."""
    for line in text.splitlines():
        line = line.strip()
        if line:
            return line if len(line) <= limit else line[: limit - 1] + "…"
    return ""
