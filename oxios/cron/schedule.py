"""Schedules: when a job's next run is, as an instant in UTC.

Three shapes are accepted:

* a 5-field cron expression (``30 2 * * *``, or ``@daily`` style aliases),
  read as wall-clock time in the job's timezone;
* ``every 10m`` / ``every 2h`` / ``every 30s`` / ``every 1d``: a fixed
  interval of real time, anchored at the moment the job was created;
* ``at <RFC 3339 time>``: one run, then none.

croniter alone gets daylight saving wrong (it fires ``30 2 * * *`` twice at
the autumn change and shifts it at the spring change), so croniter is only
asked for *wall-clock* matches on naive datetimes and this module maps each
match to UTC itself:

* a wall time that does not exist (spring gap) runs at the instant it would
  have had with the offset before the change (02:30 -> 03:30 summer time),
  and two matches landing on the same instant run once;
* a wall time that exists twice (autumn fold) runs at its first occurrence
  only, unless the expression runs every hour (hour field ``*``): such a job
  tracks real time, so the repeated hour runs again.

A daily job therefore runs exactly once per local day, and an hourly job
once per real hour (23 runs on the spring day, 25 on the autumn day).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from croniter.croniter import CroniterBadCronError, CroniterBadDateError, CroniterError

# Wall clocks never jump by more than this (the largest DST shift ever used is 2 h).
_MAX_SHIFT = timedelta(hours=3)
# A cron expression that matches nothing for this long is rejected as never firing.
_MAX_SEARCH_YEARS = 5
_EVERY = re.compile(r"^every\s+(\d+)\s*(s|sec|secs|seconds?|m|min|mins|minutes?|h|hr|hrs|hours?|d|days?)$", re.I)
_UNIT_SECS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_ALIASES = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
MIN_INTERVAL_SECS = 10


class ScheduleError(ValueError):
    """A schedule or timezone that cannot be used; the message says why and what works."""


def machine_timezone() -> str:
    """The IANA name of this machine's timezone (``TZ``, /etc/localtime, /etc/timezone), else UTC."""
    candidates: list[str] = []
    tz_env = os.environ.get("TZ", "").lstrip(":")
    if tz_env:
        candidates.append(tz_env)
    try:
        target = os.path.realpath("/etc/localtime")
        if "zoneinfo/" in target:
            candidates.append(target.split("zoneinfo/", 1)[1])
    except OSError:
        pass
    try:
        candidates.append(Path("/etc/timezone").read_text(encoding="utf-8").strip())
    except OSError:
        pass
    for name in candidates:
        try:
            ZoneInfo(name)
            return name
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return "UTC"


def load_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"unknown timezone {name!r}: use an IANA name such as 'Europe/Berlin' or 'UTC'") from None


def to_utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def iso(ts: float | None) -> str | None:
    """An epoch time as RFC 3339 in UTC (``2026-03-29T01:30:00Z``)."""
    if ts is None:
        return None
    return to_utc(ts).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule. ``next_after(t)`` is the first run strictly after ``t`` (epoch secs)."""

    text: str
    kind: str  # "cron" | "every" | "at"
    zone: ZoneInfo
    expr: str = ""
    interval: float = 0.0
    at: float = 0.0
    anchor: float = 0.0
    hourly: bool = False  # cron expression runs every hour: the autumn's repeated hour runs again

    def next_after(self, t: float) -> float | None:
        if self.kind == "at":
            return self.at if self.at > t else None
        if self.kind == "every":
            if t < self.anchor:
                return self.anchor
            steps = int((t - self.anchor) // self.interval) + 1
            return self.anchor + steps * self.interval
        return self._cron_next(t)

    def _cron_next(self, t: float) -> float | None:
        after = to_utc(t)
        wall = after.astimezone(self.zone).replace(tzinfo=None)
        if not self._steady(after):
            # Near a change, a wall time earlier than t's own can still be a
            # later instant (autumn fold): start the search a little earlier.
            wall -= _MAX_SHIFT
        it = croniter(self.expr, wall, max_years_between_matches=_MAX_SEARCH_YEARS)
        best: datetime | None = None
        best_wall: datetime | None = None
        while True:
            try:
                candidate: datetime = it.get_next(datetime)
            except CroniterBadDateError:
                break
            if best_wall is not None and candidate - _MAX_SHIFT > best_wall:
                break
            for instant in self._instants(candidate):
                if instant > after and (best is None or instant < best):
                    best, best_wall = instant, candidate
            if best is not None and best_wall == candidate and self._steady(best):
                break  # no clock change near the answer: nothing later can come first
        return best.timestamp() if best else None

    def _steady(self, instant: datetime) -> bool:
        """True when the zone's offset is the same from 3 h before to 3 h after ``instant``."""
        before = (instant - _MAX_SHIFT).astimezone(self.zone).utcoffset()
        later = (instant + _MAX_SHIFT).astimezone(self.zone).utcoffset()
        return before == later

    def _instants(self, wall: datetime) -> list[datetime]:
        """The UTC instants a naive wall time stands for in this zone (see module doc)."""
        first = wall.replace(tzinfo=self.zone, fold=0)
        second = wall.replace(tzinfo=self.zone, fold=1)
        u0, u1 = first.astimezone(UTC), second.astimezone(UTC)
        if u0 == u1:
            return [u0]
        # The offsets differ: the wall time is either in a gap or in a fold.
        round_trip = u0.astimezone(self.zone).replace(tzinfo=None)
        if round_trip != wall:
            # Gap (does not exist): fold=0 uses the offset before the change,
            # which lands just after the gap, shifted by its length.
            return [u0]
        return [u0, u1] if self.hourly else [u0]

    def slots_between(self, start: float, end: float, cap: int = 10_000) -> tuple[int, float | None, float | None, float | None]:
        """Runs in ``[start, end]`` where ``start`` is a run time: (count, first, last, next after ``end``).

        Counting stops at ``cap`` (a long outage of a frequent job); the last
        run and the next one are still exact.
        """
        count, first, last = 0, None, None
        t: float | None = start
        while t is not None and t <= end and count < cap:
            count += 1
            first = t if first is None else first
            last = t
            t = self.next_after(t)
        if t is not None and t <= end:
            # Too many to walk: the last run before ``end`` is all that matters for firing.
            last = self.previous_or_equal(end, after=t)
            t = self.next_after(end)
        return count, first, last, t

    def previous_or_equal(self, end: float, *, after: float) -> float:
        """The last run in ``[after, end]`` (``after`` being a run), found without walking every slot."""
        if self.kind == "every":
            steps = int((end - self.anchor) // self.interval)
            return max(after, self.anchor + steps * self.interval)
        for window in (3600.0, 86400.0, 31 * 86400.0, 366 * 86400.0):
            start = max(after, end - window)
            t = self.next_after(start - 1e-3)
            if t is None or t > end:
                continue
            last = t
            while (t := self.next_after(t)) is not None and t <= end:
                last = t
            return last
        return after


def parse(text: str, timezone: str, *, anchor: float, now: float | None = None) -> Schedule:
    """Parse a schedule; raises :class:`ScheduleError` with a message a user can act on.

    ``anchor`` starts ``every`` schedules; ``now`` (when given) rejects ``at``
    times that are already past.
    """
    raw = " ".join(text.split())
    if not raw:
        raise ScheduleError(
            "schedule is empty: use a cron expression ('0 9 * * *'), 'every 10m' or 'at 2026-12-01T09:00:00+01:00'"
        )
    zone = load_zone(timezone or "UTC")
    lowered = raw.lower()
    if lowered.startswith("every"):
        match = _EVERY.match(raw)
        if not match:
            raise ScheduleError(f"bad interval {raw!r}: use 'every <number><s|m|h|d>', e.g. 'every 10m', 'every 2h', 'every 30s'")
        interval = int(match.group(1)) * _UNIT_SECS[match.group(2)[0].lower()]
        if interval < MIN_INTERVAL_SECS:
            raise ScheduleError(f"interval {raw!r} is too short: the minimum is {MIN_INTERVAL_SECS}s")
        return Schedule(text=raw, kind="every", zone=zone, interval=float(interval), anchor=anchor)
    if lowered.startswith("at ") or lowered == "at":
        when = raw[3:].strip()
        at = parse_time(when, zone)
        if now is not None and at <= now:
            raise ScheduleError(f"'at' time {when} is in the past (now is {iso(now)}); a one-off job needs a future time")
        return Schedule(text=raw, kind="at", zone=zone, at=at)
    fields = raw.split(" ")
    if not (lowered in _ALIASES or len(fields) == 5):
        raise ScheduleError(
            f"bad schedule {raw!r}: a cron expression has 5 fields (minute hour day-of-month month day-of-week), "
            "e.g. '0 9 * * *'; or use 'every 10m' or 'at <RFC 3339 time>'"
        )
    try:
        it = croniter(lowered if lowered in _ALIASES else raw, datetime(2000, 1, 1), max_years_between_matches=_MAX_SEARCH_YEARS)
        hourly = it.expanded[1] == ["*"] or len(it.expanded[1]) == 24
    except (CroniterBadCronError, CroniterError, ValueError, KeyError) as err:
        raise ScheduleError(f"bad cron expression {raw!r}: {err}") from None
    schedule = Schedule(text=raw, kind="cron", zone=zone, expr=lowered if lowered in _ALIASES else raw, hourly=hourly)
    if schedule.next_after(now if now is not None else anchor) is None:
        raise ScheduleError(f"cron expression {raw!r} never matches a real date (within {_MAX_SEARCH_YEARS} years)")
    return schedule


def parse_time(text: str, zone: ZoneInfo) -> float:
    """An RFC 3339 time; without an offset it is read in ``zone``."""
    try:
        value = datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise ScheduleError(f"bad time {text!r}: use RFC 3339, e.g. 2026-12-01T09:00:00+01:00 or 2026-12-01T08:00:00Z") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.timestamp()
