"""Schedules in isolation: cron / every / at, and daylight saving done right."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from oxios.cron.schedule import ScheduleError, iso, parse

BERLIN = ZoneInfo("Europe/Berlin")


def ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def runs_between(expr: str, start: str, end: str, zone: str = "Europe/Berlin") -> list[str]:
    schedule = parse(expr, zone, anchor=ts(start))
    out, t = [], ts(start)
    while (t := schedule.next_after(t)) is not None and t < ts(end):
        out.append(iso(t))
    return out


def local_days(runs: list[str]) -> list[str]:
    return [datetime.fromisoformat(r.replace("Z", "+00:00")).astimezone(BERLIN).date().isoformat() for r in runs]


def test_croniter_alone_gets_both_changes_wrong() -> None:
    """Why schedule.py exists: croniter with a DST zone fires twice in autumn and moves the spring run."""
    autumn = croniter("30 2 * * *", datetime(2026, 10, 24, 12, 0, tzinfo=BERLIN))
    autumn_runs = [iso(autumn.get_next(datetime).timestamp()) for _ in range(2)]
    assert autumn_runs == ["2026-10-25T00:30:00Z", "2026-10-25T01:30:00Z"]  # the same local day, twice
    ours = runs_between("30 2 * * *", "2026-10-24T10:00:00+00:00", "2026-10-26T10:00:00+00:00")
    assert ours == ["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]
    spring = croniter("30 2 * * *", datetime(2026, 3, 28, 12, 0, tzinfo=BERLIN))
    assert iso(spring.get_next(datetime).timestamp()) == "2026-03-29T01:00:00Z"  # 03:00, not 03:30
    assert runs_between("30 2 * * *", "2026-03-28T12:00:00+00:00", "2026-03-29T12:00:00+00:00") == ["2026-03-29T01:30:00Z"]


def test_daily_job_runs_once_on_the_spring_forward_day() -> None:
    runs = runs_between("30 2 * * *", "2026-03-27T12:00:00+00:00", "2026-03-31T12:00:00+00:00")
    assert local_days(runs) == ["2026-03-28", "2026-03-29", "2026-03-30", "2026-03-31"]
    # 02:30 does not exist on 2026-03-29: it runs at 03:30 CEST, the same instant 02:30 CET would have been.
    assert runs[1] == "2026-03-29T01:30:00Z"
    assert runs[2] == "2026-03-30T00:30:00Z"


def test_daily_job_runs_once_on_the_fall_back_day() -> None:
    runs = runs_between("30 2 * * *", "2026-10-23T12:00:00+00:00", "2026-10-27T12:00:00+00:00")
    assert local_days(runs) == ["2026-10-24", "2026-10-25", "2026-10-26", "2026-10-27"]
    # 02:30 happens twice on 2026-10-25; only the first (summer time) runs.
    assert runs[1] == "2026-10-25T00:30:00Z"
    assert runs[2] == "2026-10-26T01:30:00Z"


def test_hourly_job_runs_once_per_real_hour_on_the_spring_day() -> None:
    runs = runs_between("0 * * * *", "2026-03-28T22:59:00+00:00", "2026-03-29T22:00:00+00:00")
    # The local day 2026-03-29 has 23 hours: 23 runs, one per real hour, none doubled.
    assert len(runs) == 23 and len(set(runs)) == 23
    instants = [ts(r.replace("Z", "+00:00")) for r in runs]
    assert all(b - a == 3600 for a, b in itertools.pairwise(instants))


def test_hourly_job_runs_once_per_real_hour_on_the_fall_back_day() -> None:
    runs = runs_between("0 * * * *", "2026-10-24T21:59:00+00:00", "2026-10-25T23:00:00+00:00")
    assert len(runs) == 25  # the local day has 25 hours; 02:00 runs in both of them
    instants = [ts(r.replace("Z", "+00:00")) for r in runs]
    assert all(b - a == 3600 for a, b in itertools.pairwise(instants))


def test_fixed_hours_job_does_not_repeat_in_the_fold_but_half_hourly_follows_real_time() -> None:
    two_hourly = runs_between("0 */2 * * *", "2026-10-24T21:59:00+00:00", "2026-10-25T23:00:00+00:00")
    walls = [datetime.fromisoformat(r.replace("Z", "+00:00")).astimezone(BERLIN).strftime("%H:%M") for r in two_hourly]
    assert walls.count("02:00") == 1 and len(two_hourly) == 12
    half_hourly = runs_between("*/30 * * * *", "2026-10-24T21:59:00+00:00", "2026-10-25T23:00:00+00:00")
    assert len(half_hourly) == 50


def test_every_is_anchored_real_time_and_ignores_dst() -> None:
    anchor = ts("2026-10-25T00:05:00+00:00")
    schedule = parse("every 2h", "Europe/Berlin", anchor=anchor)
    assert schedule.next_after(anchor) == anchor + 7200
    assert schedule.next_after(anchor - 50) == anchor
    assert schedule.next_after(anchor + 7200 * 5 + 1) == anchor + 7200 * 6
    assert parse("every 30s", "UTC", anchor=0).interval == 30
    assert parse("every 1d", "UTC", anchor=0).interval == 86400


def test_at_runs_once() -> None:
    now = ts("2026-05-01T00:00:00+00:00")
    schedule = parse("at 2026-05-02T09:00:00+02:00", "UTC", anchor=now, now=now)
    assert schedule.next_after(now) == ts("2026-05-02T07:00:00+00:00")
    assert schedule.next_after(ts("2026-05-02T07:00:00+00:00")) is None
    # Without an offset the time is read in the job's timezone.
    naive = parse("at 2026-05-02T09:00:00", "Europe/Berlin", anchor=now, now=now)
    assert naive.at == ts("2026-05-02T07:00:00+00:00")


def test_utc_and_far_zones() -> None:
    runs = runs_between("0 9 * * 1", "2026-06-01T00:00:00+00:00", "2026-06-20T00:00:00+00:00", zone="Asia/Tokyo")
    assert runs == ["2026-06-08T00:00:00Z", "2026-06-15T00:00:00Z"]  # 2026-06-01 09:00 JST is 00:00Z, so it is not "after"
    assert runs_between("@daily", "2026-06-01T00:00:00+00:00", "2026-06-03T00:00:00+00:00", zone="UTC") == [
        "2026-06-02T00:00:00Z"
    ]


@pytest.mark.parametrize(
    ("text", "zone", "message"),
    [
        ("61 * * * *", "UTC", "bad cron expression"),
        ("* * * *", "UTC", "5 fields"),
        ("0 0 * * * *", "UTC", "5 fields"),
        ("", "UTC", "empty"),
        ("0 9 * * *", "Mars/Olympus", "unknown timezone"),
        ("every 10 fortnights", "UTC", "bad interval"),
        ("every 2s", "UTC", "too short"),
        ("at 2020-01-01T00:00:00Z", "UTC", "in the past"),
        ("at next tuesday", "UTC", "RFC 3339"),
        ("0 0 30 2 *", "UTC", "never matches"),
    ],
)
def test_bad_schedules_are_rejected_with_a_clear_message(text: str, zone: str, message: str) -> None:
    now = ts("2026-05-01T00:00:00+00:00")
    with pytest.raises(ScheduleError, match=message):
        parse(text, zone, anchor=now, now=now)


def test_next_after_is_pure() -> None:
    """Asking for the next run never changes the answer (listing never advances a schedule)."""
    schedule = parse("0 9 * * *", "Europe/Berlin", anchor=0)
    t = ts("2026-07-01T12:00:00+00:00")
    assert len({schedule.next_after(t) for _ in range(5)}) == 1
    assert schedule.next_after(t) - t < timedelta(days=1).total_seconds()


def test_counting_a_very_long_outage_stays_exact_and_bounded() -> None:
    schedule = parse("* * * * *", "Europe/Berlin", anchor=0)
    start = ts("2026-01-01T00:00:00+00:00")
    end = ts("2026-03-01T00:00:30+00:00")  # two months of a per-minute job
    count, first, last, nxt = schedule.slots_between(start, end, cap=500)
    assert count == 500 and first == start
    assert last == ts("2026-03-01T00:00:00+00:00") and nxt == ts("2026-03-01T00:01:00+00:00")
    every = parse("every 10m", "UTC", anchor=start)
    assert every.slots_between(start, end, cap=10)[2:] == (ts("2026-03-01T00:00:00+00:00"), ts("2026-03-01T00:10:00+00:00"))
