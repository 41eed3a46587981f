"""The cron service on a fake clock: firing, misfires, restarts, the lease, delivery, failures."""

from __future__ import annotations

import asyncio

import pytest
from cron_helpers import FakeClock, FakeRunner, RecordingChannel, drain_events, fresh_service, tick_until

from oxios.cron import InvalidJob, JobBusy, RunOutcome
from oxios.kernel import NotFound
from oxios.state import StateStore


@pytest.fixture
async def kernel(oxios_kernel_factory):
    async with oxios_kernel_factory() as kernel:
        yield kernel


async def test_a_due_run_fires_exactly_once(kernel) -> None:
    clock, runner = FakeClock("2026-05-04T08:00:00Z"), FakeRunner()
    cron = await fresh_service(kernel, clock, runner)
    events = kernel.subscribe(types={"cron.*"})
    job = cron.create({"name": "news", "schedule": "0 9 * * *", "timezone": "UTC", "goal": "Summarize top tech news"})
    assert job["next_run_at"] == "2026-05-04T09:00:00Z" and job["source"] == "api" and job["state"] == "scheduled"
    assert (await cron.tick())["fired"] == []
    clock.set("2026-05-04T09:00:20Z")
    assert (await cron.tick())["fired"] == ["news"]
    assert (await cron.tick())["fired"] == []  # same moment, again: nothing
    await cron.wait_idle()
    clock.advance(60)
    assert (await cron.tick())["fired"] == []
    assert runner.jobs() == ["news"]
    assert runner.requests[0].session_id == "cron:news"
    runs = cron.runs("news")
    assert [r["status"] for r in runs] == ["succeeded"]
    assert runs[0]["summary"] == "all done" and runs[0]["output"] == "all done\nsecond line"
    assert runs[0]["input_tokens"] == 12 and runs[0]["output_tokens"] == 34 and runs[0]["cost_usd"] == 0.01
    assert runs[0]["scheduled_for"] == "2026-05-04T09:00:00Z" and runs[0]["trigger"] == "schedule"
    assert cron.get("news")["next_run_at"] == "2026-05-05T09:00:00Z"
    types = [e.type for e in drain_events(events)]
    assert types == ["cron.triggered", "cron.completed"]
    assert kernel.services["scheduler"].stats()["submitted"] == 1  # admitted by the scheduler service


@pytest.mark.parametrize(
    ("expr", "start", "end", "expected"),
    [
        ("30 2 * * *", "2026-03-28T20:00:00Z", "2026-03-29T06:00:00Z", 1),  # spring forward, daily
        ("30 2 * * *", "2026-10-24T20:00:00Z", "2026-10-25T06:00:00Z", 1),  # fall back, daily
        ("0 * * * *", "2026-03-28T22:59:00Z", "2026-03-29T21:59:00Z", 23),  # spring day: 23 real hours
        ("0 * * * *", "2026-10-24T21:59:00Z", "2026-10-25T22:59:00Z", 25),  # autumn day: 25 real hours
    ],
)
async def test_dst_changes_through_the_service(kernel, expr: str, start: str, end: str, expected: int) -> None:
    clock, runner = FakeClock(start), FakeRunner()
    cron = await fresh_service(kernel, clock, runner)
    cron.create({"name": "dst", "schedule": expr, "timezone": "Europe/Berlin", "goal": "g"})
    fired = await tick_until(cron, clock, end, step=300)
    assert len(fired) == expected
    runs = cron.runs("dst", limit=100)
    assert all(r["status"] == "succeeded" for r in runs)
    assert len({r["scheduled_for"] for r in runs}) == expected


async def test_restart_with_missed_slots_catch_up_runs_once(kernel) -> None:
    clock, runner = FakeClock("2026-05-04T08:30:00Z"), FakeRunner()
    first = await fresh_service(kernel, clock, runner, owner="first", misfire_policy="catch_up", misfire_grace_secs=3600)
    first.create({"name": "hourly", "schedule": "0 * * * *", "timezone": "UTC", "goal": "g"})
    await first.tick()
    await first.stop()
    clock.set("2026-05-04T13:20:00Z")  # down for 09:00 .. 13:00: five slots
    before = first.get("hourly")["next_run_at"]
    for _ in range(3):  # listing never advances the schedule
        first.list()
        first.get("hourly")
    assert first.get("hourly")["next_run_at"] == before == "2026-05-04T09:00:00Z"
    events = kernel.subscribe(types={"cron.*"})
    second = await fresh_service(kernel, clock, runner, owner="second", state=kernel.state)
    result = await second.tick()
    await second.wait_idle()
    assert result["fired"] == ["hourly"] and len(runner.requests) == 1
    run = second.runs("hourly")[0]
    assert run["trigger"] == "catch_up" and run["scheduled_for"] == "2026-05-04T13:00:00Z"
    assert run["missed_slots"] == 4  # 09..12 coalesced into this one run
    assert second.get("hourly")["next_run_at"] == "2026-05-04T14:00:00Z"
    triggered = [e for e in drain_events(events) if e.type == "cron.triggered"]
    assert triggered[0].data["coalesced"] == 4


async def test_restart_with_missed_slots_skip_records_them(kernel) -> None:
    clock, runner = FakeClock("2026-05-04T08:30:00Z"), FakeRunner()
    first = await fresh_service(kernel, clock, runner, owner="first")
    first.create({"name": "hourly", "schedule": "0 * * * *", "timezone": "UTC", "goal": "g", "misfire_policy": "skip"})
    await first.stop()
    clock.set("2026-05-04T13:20:00Z")
    events = kernel.subscribe(types={"cron.*"})
    second = await fresh_service(kernel, clock, runner, owner="second", state=kernel.state)
    result = await second.tick()
    assert result["fired"] == [] and result["missed"] == ["hourly"] and runner.requests == []
    [run] = second.runs("hourly")
    assert run["status"] == "missed" and run["missed_slots"] == 5
    assert run["scheduled_for"] == "2026-05-04T09:00:00Z" and "13:00:00Z" in run["summary"]
    [missed] = [e for e in drain_events(events) if e.type == "cron.missed"]
    assert missed.data["slots"] == 5
    assert second.get("hourly")["next_run_at"] == "2026-05-04T14:00:00Z"


async def test_catch_up_beyond_the_grace_window_is_recorded_missed(kernel) -> None:
    clock, runner = FakeClock("2026-05-04T08:30:00Z"), FakeRunner()
    cron = await fresh_service(kernel, clock, runner, misfire_policy="catch_up", misfire_grace_secs=600)
    cron.create({"name": "daily", "schedule": "0 9 * * *", "timezone": "UTC", "goal": "g"})
    clock.set("2026-05-04T10:00:00Z")  # an hour late, grace is 10 minutes
    result = await cron.tick()
    assert result["fired"] == [] and result["missed"] == ["daily"]
    assert cron.runs("daily")[0]["status"] == "missed"


async def test_two_services_on_one_state_store_only_one_fires(kernel) -> None:
    clock = FakeClock("2026-05-04T08:59:00Z")
    runner_a, runner_b = FakeRunner(), FakeRunner()
    a = await fresh_service(kernel, clock, runner_a, owner="A", lease_secs=90)
    other_store = StateStore(kernel.paths.db)  # a second connection, as a second daemon would have
    try:
        b = await fresh_service(kernel, clock, runner_b, owner="B", state=other_store, lease_secs=90)
        a.create({"name": "job", "schedule": "every 1m", "goal": "g"})
        for _ in range(5):
            clock.advance(60)
            ra, rb = await a.tick(), await b.tick()
            assert ra["owner"] and not rb["owner"]
            await a.wait_idle()
        assert len(runner_a.requests) == 5 and runner_b.requests == []
        # A dies mid-run without releasing its lease: B takes over only once the lease expired.
        runner_a.gate = asyncio.Event()
        clock.advance(60)
        await a.tick()
        await asyncio.sleep(0)
        a._tasks.clear()  # simulate the process vanishing: A never finishes or renews
        clock.advance(60)
        assert not (await b.tick())["owner"]
        clock.advance(60)
        result = await b.tick()
        assert result["owner"] and result["fired"] == ["job"]
        await b.wait_idle()
        statuses = [r["status"] for r in b.runs("job", limit=50)]
        assert statuses.count("cancelled") == 1  # A's interrupted run, recorded, not left "running"
        assert len(runner_b.requests) == 1
        total_slots = {r["scheduled_for"] for r in b.runs("job", limit=50) if r["status"] != "missed"}
        assert len(total_slots) == len([r for r in b.runs("job", limit=50) if r["status"] != "missed"])  # no slot twice
    finally:
        other_store.close()


async def test_delivery_failure_is_retried_then_reported_and_the_run_stays_succeeded(kernel) -> None:
    clock, runner = FakeClock("2026-05-04T08:59:30Z"), FakeRunner()
    channel = RecordingChannel(fail_times=10)
    kernel.channels["fake"] = channel
    cron = await fresh_service(kernel, clock, runner, delivery_max_attempts=3, delivery_backoff_secs=30)
    events = kernel.subscribe(types={"cron.*"})
    cron.create({"name": "news", "schedule": "0 9 * * *", "timezone": "UTC", "goal": "g", "deliver_to": "channel:fake:42"})
    clock.set("2026-05-04T09:00:05Z")
    await cron.tick()
    await cron.wait_idle()
    run = cron.runs("news")[0]
    assert run["status"] == "succeeded" and run["delivery_status"] == "pending"
    assert channel.attempts == 1 and "unreachable" in run["delivery_error"]
    clock.advance(10)
    await cron.tick()
    assert channel.attempts == 1  # backoff: not yet
    clock.advance(30)
    await cron.tick()
    assert channel.attempts == 2
    clock.advance(60)
    await cron.tick()
    assert channel.attempts == 3
    run = cron.runs("news")[0]
    assert run["status"] == "succeeded" and run["delivery_status"] == "failed"
    failed = [e for e in drain_events(events) if e.type == "cron.delivery_failed"]
    assert len(failed) == 1 and failed[0].data["attempts"] == 3 and failed[0].data["target"] == "channel:fake"
    clock.advance(3600)
    await cron.tick()
    assert channel.attempts == 3  # given up: no more attempts


async def test_delivery_to_a_channel(kernel) -> None:
    clock, runner = FakeClock("2026-05-04T08:59:30Z"), FakeRunner()
    channel = RecordingChannel(fail_times=1)
    kernel.channels["fake"] = channel
    cron = await fresh_service(kernel, clock, runner, delivery_backoff_secs=5)
    cron.create({"name": "news", "schedule": "0 9 * * *", "timezone": "UTC", "goal": "g", "deliver_to": "channel:fake:-100:7"})
    clock.set("2026-05-04T09:00:05Z")
    await cron.tick()
    await cron.wait_idle()
    clock.advance(5)
    await cron.tick()
    [message] = channel.sent
    assert message.chat_id == "-100:7" and message.content == "all done\nsecond line" and message.session_id == "cron:news"
    assert cron.runs("news")[0]["delivery_status"] == "delivered"


async def test_failures_notify_then_pause_the_job(kernel) -> None:
    clock, runner = FakeClock("2026-05-04T09:00:00Z"), FakeRunner()
    runner.default = RunOutcome(status="failed", error="provider down")
    channel = RecordingChannel()
    kernel.channels["fake"] = channel
    cron = await fresh_service(kernel, clock, runner, notify_after_failures=2, pause_after_failures=3)
    events = kernel.subscribe(types={"cron.*"})
    cron.create({"name": "flaky", "schedule": "every 1m", "goal": "g", "deliver_to": "channel:fake:1"})
    await tick_until(cron, clock, "2026-05-04T09:10:00Z", step=60)
    assert len(runner.requests) == 3  # paused after the third failure; nothing ran after that
    job = cron.get("flaky")
    assert job["state"] == "paused" and "3 consecutive failures" in job["pause_reason"]
    kinds = [e.type for e in drain_events(events)]
    assert kinds.count("cron.failing") == 1 and kinds.count("cron.paused") == 1
    texts = [m.content for m in channel.sent]
    assert any("failed 2 times in a row" in t for t in texts) and any("was paused" in t for t in texts)
    runner.default = RunOutcome(status="succeeded", output="ok")
    resumed = cron.resume("flaky")
    assert resumed["state"] == "scheduled" and resumed["consecutive_failures"] == 0
    await tick_until(cron, clock, "2026-05-04T09:12:00Z", step=60)
    assert cron.runs("flaky")[0]["status"] == "succeeded"


async def test_trigger_now_does_not_move_the_schedule(kernel) -> None:
    clock, runner = FakeClock("2026-05-04T08:00:00Z"), FakeRunner()
    cron = await fresh_service(kernel, clock, runner)
    cron.create({"name": "news", "schedule": "0 9 * * *", "timezone": "UTC", "goal": "g", "max_runs": 1})
    before = cron.get("news")
    run = await cron.trigger("news", wait=True)
    assert run["status"] == "succeeded" and run["trigger"] == "manual"
    after = cron.get("news")
    assert after["next_run_at"] == before["next_run_at"] and after["run_count"] == 0
    assert before["last_run_at"] is None and after["last_run_at"] == "2026-05-04T08:00:00Z"  # when it last ran, by hand too
    runner.gate = asyncio.Event()
    await cron.trigger("news")
    with pytest.raises(JobBusy, match="already in progress"):
        await cron.trigger("news")
    runner.gate.set()
    await cron.wait_idle()
    with pytest.raises(NotFound):
        await cron.trigger("nope")


async def test_config_jobs_and_api_jobs(oxios_kernel_factory) -> None:
    config = {"cron": {"jobs": {"morning_news": {"schedule": "0 9 * * *", "goal": "Summarize top tech news", "priority": "low"}}}}
    async with oxios_kernel_factory(config=config) as kernel:
        clock, runner = FakeClock("2026-05-04T08:00:00Z"), FakeRunner()
        cron = await fresh_service(kernel, clock, runner)
        cron.create({"name": "mine", "schedule": "every 2h", "goal": "g"})
        jobs = {j["name"]: j for j in cron.list()}
        assert jobs["morning_news"]["source"] == "config" and jobs["mine"]["source"] == "api"
        assert jobs["morning_news"]["priority"] == "low" and jobs["morning_news"]["timezone"]  # machine zone filled in
        with pytest.raises(InvalidJob, match=r"config.toml \(\[cron.jobs.morning_news\]\)"):
            cron.edit("morning_news", {"goal": "other"})
        with pytest.raises(InvalidJob, match=r"config\.toml"):
            await cron.delete("morning_news")
        with pytest.raises(InvalidJob, match=r"exists in config\.toml"):
            cron.create({"name": "morning_news", "schedule": "every 1h", "goal": "g"})
        assert cron.pause("morning_news")["state"] == "paused"
        assert cron.resume("morning_news")["state"] == "scheduled"
        edited = cron.edit("mine", {"schedule": "every 3h"})
        assert edited["schedule"] == "every 3h"
        assert (await cron.delete("mine")) == {"deleted": "mine"}
        with pytest.raises(NotFound):
            cron.get("mine")
        # A restart with the config job changed and another removed keeps state in step with the file.
        kernel.config.cron.jobs["morning_news"].schedule = "0 10 * * *"
        again = await fresh_service(kernel, clock, runner, owner="B", state=kernel.state)
        assert again.get("morning_news")["next_run_local"].startswith("2026-05-04T10:00")
        kernel.config.cron.jobs.clear()
        third = await fresh_service(kernel, clock, runner, owner="C", state=kernel.state)
        assert third.list() == []


async def test_an_invalid_config_job_is_kept_paused_with_the_reason(oxios_kernel_factory) -> None:
    config = {"cron": {"jobs": {"broken": {"schedule": "0 25 * * *", "goal": "g"}}}}
    async with oxios_kernel_factory(config=config) as kernel:
        cron = await fresh_service(kernel, FakeClock("2026-05-04T08:00:00Z"), FakeRunner())
        job = cron.get("broken")
        assert job["state"] == "paused" and job["pause_reason"].startswith("invalid: schedule")
        with pytest.raises(InvalidJob, match="invalid"):
            cron.resume("broken")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"schedule": "0 9 * *"}, "schedule: bad schedule"),
        ({"schedule": "every 5 parsecs"}, "schedule: bad interval"),
        ({"timezone": "Europe/Atlantis"}, "timezone: unknown timezone"),
        ({"schedule": "at 2026-05-01T00:00:00Z"}, "in the past"),
        ({"deliver_to": "email:bob"}, "deliver_to"),
        ({"deliver_to": "webhook:ftp://x"}, "http"),
        ({"goal": "  "}, "goal: must not be empty"),
        ({"name": "no spaces please"}, "name:"),
        ({"priority": "urgent"}, "priority"),
        ({"colour": "red"}, "colour: unknown field"),
        ({"timeout_secs": -1}, "timeout_secs"),
    ],
)
async def test_validation_errors_are_clear(kernel, fields, message) -> None:
    cron = await fresh_service(kernel, FakeClock("2026-05-04T08:00:00Z"), FakeRunner())
    job = {"name": "x", "schedule": "0 9 * * *", "goal": "g", **fields}
    with pytest.raises(InvalidJob, match=message):
        cron.create(job)
    assert cron.list() == []


async def test_max_runs_and_one_off_jobs_complete(kernel) -> None:
    clock, runner = FakeClock("2026-05-04T08:00:00Z"), FakeRunner()
    cron = await fresh_service(kernel, clock, runner)
    cron.create({"name": "twice", "schedule": "every 10m", "goal": "g", "max_runs": 2})
    cron.create({"name": "once", "schedule": "at 2026-05-04T08:15:00Z", "goal": "g"})
    await tick_until(cron, clock, "2026-05-04T09:00:00Z", step=60)
    assert runner.jobs().count("twice") == 2 and runner.jobs().count("once") == 1
    assert cron.get("twice")["state"] == "completed" and cron.get("once")["state"] == "completed"


async def test_timeout_marks_the_run_timed_out(kernel) -> None:
    clock, runner = FakeClock("2026-05-04T08:00:00Z"), FakeRunner()
    runner.gate = asyncio.Event()  # never set: the agent hangs
    cron = await fresh_service(kernel, clock, runner)
    cron.create({"name": "slow", "schedule": "every 1h", "goal": "g", "timeout_secs": 1})
    run = await cron.trigger("slow", wait=True)
    assert run["status"] == "timed_out" and "timeout" in run["error"]
    assert cron.get("slow")["consecutive_failures"] == 1


async def test_a_slot_while_the_previous_run_is_running(kernel) -> None:
    clock, runner = FakeClock("2026-05-04T08:00:00Z"), FakeRunner()
    runner.gate = asyncio.Event()
    cron = await fresh_service(kernel, clock, runner, misfire_grace_secs=3600)
    cron.create({"name": "skipper", "schedule": "every 1m", "goal": "g", "misfire_policy": "skip"})
    cron.create({"name": "catcher", "schedule": "every 1m", "goal": "g", "misfire_policy": "catch_up"})
    clock.advance(60)
    await cron.tick()
    clock.advance(60)
    result = await cron.tick()  # both still running
    assert result["missed"] == ["skipper"] and result["fired"] == []
    runner.gate.set()
    await cron.wait_idle()
    clock.advance(5)
    result = await cron.tick()
    assert result["fired"] == ["catcher"]  # the held slot runs once the previous run ended
    await cron.wait_idle()
    assert [r["status"] for r in cron.runs("skipper")] == ["missed", "succeeded"]


async def test_history_is_bounded(kernel) -> None:
    clock, runner = FakeClock("2026-05-04T08:00:00Z"), FakeRunner()
    cron = await fresh_service(kernel, clock, runner, history_limit=3)
    cron.create({"name": "often", "schedule": "every 1m", "goal": "g"})
    await tick_until(cron, clock, "2026-05-04T08:06:00Z", step=60)
    assert len(runner.requests) == 6
    assert len(cron.runs("often", limit=100)) == 3


async def test_stop_cancels_runs_and_records_them(kernel) -> None:
    clock, runner = FakeClock("2026-05-04T08:00:00Z"), FakeRunner()
    runner.gate = asyncio.Event()
    cron = await fresh_service(kernel, clock, runner)
    cron.create({"name": "long", "schedule": "every 1h", "goal": "g"})
    await cron.trigger("long")
    await asyncio.sleep(0)
    await cron.stop()
    assert cron.runs("long")[0]["status"] == "cancelled"
    assert cron.lease.holder() is None


async def test_at_most_max_concurrent_jobs_run_at_once(kernel) -> None:
    clock, runner = FakeClock("2026-05-04T08:00:00Z"), FakeRunner()
    runner.gate = asyncio.Event()
    cron = await fresh_service(kernel, clock, runner, max_concurrent_jobs=2)
    for name in ("a", "b", "c"):
        cron.create({"name": name, "schedule": "every 1m", "goal": "g"})
    clock.advance(60)
    assert sorted((await cron.tick())["fired"]) == ["a", "b", "c"]
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(runner.requests) == 2  # the third waits for a free slot; it is not dropped
    runner.gate.set()
    await cron.wait_idle()
    assert len(runner.requests) == 3 and all(cron.runs(n)[0]["status"] == "succeeded" for n in "abc")


async def test_skip_runs_the_on_time_slot_and_records_the_earlier_ones(kernel) -> None:
    clock, runner = FakeClock("2026-05-04T08:30:00Z"), FakeRunner()
    first = await fresh_service(kernel, clock, runner, owner="first")
    first.create({"name": "hourly", "schedule": "0 * * * *", "timezone": "UTC", "goal": "g", "misfire_policy": "skip"})
    await first.stop()
    clock.set("2026-05-04T12:00:30Z")  # back just in time for 12:00; 09, 10 and 11 were missed
    second = await fresh_service(kernel, clock, runner, owner="second", state=kernel.state)
    result = await second.tick()
    await second.wait_idle()
    assert result["fired"] == ["hourly"] and result["missed"] == ["hourly"]
    runs = {r["status"]: r for r in second.runs("hourly")}
    assert runs["missed"]["missed_slots"] == 3 and runs["missed"]["scheduled_for"] == "2026-05-04T09:00:00Z"
    assert runs["succeeded"]["scheduled_for"] == "2026-05-04T12:00:00Z" and runs["succeeded"]["trigger"] == "schedule"
