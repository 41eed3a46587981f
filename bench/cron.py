"""Benchmark: the cost of one cron tick with 1,000 jobs scheduled (not a test).

Compares the service's tick (one indexed query for due jobs, a lease renewal,
an outbox query) against a naive tick measured in the same run: decode every
job and recompute its next run from its schedule, the way a scheduler without
a stored ``next_run_at`` has to. Prints its figures.

    .venv/bin/python bench/cron.py [--jobs 1000] [--ticks 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import msgspec
from croniter import croniter

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo", "Australia/Sydney"]
EXPRS = ["0 9 * * *", "*/15 * * * *", "30 2 * * *", "0 * * * 1-5", "5 4 1 * *"]


async def main(jobs: int, ticks: int) -> None:
    os.environ["OXIOS_LOAD_PLUGINS"] = ""
    from oxios.config import load
    from oxios.cron import CronService, RunOutcome
    from oxios.cron.model import JobSpec
    from oxios.cron.schedule import parse
    from oxios.kernel import Kernel

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        # No scheduler rate limit: the tick, not admission, is what is measured.
        overrides = {"scheduler": {"rate_limit_per_minute": 0, "max_concurrent": 50}, "cron": {"max_concurrent_jobs": 50}}
        kernel = Kernel(load(home / "config.toml", overrides=overrides), home)
        await kernel.start(channels=False)
        now = [time.mktime((2026, 5, 4, 8, 0, 0, 0, 0, -1))]
        fired = 0

        async def runner(request):  # the agent is not what is measured here
            nonlocal fired
            fired += 1
            return RunOutcome(status="succeeded", output="ok")

        cron = CronService(kernel, clock=lambda: now[0], runner=runner, owner_id="bench")
        t0 = time.perf_counter()
        for i in range(jobs):
            if i % 10 == 9:
                schedule = f"every {10 + i % 50}m"
            else:
                schedule = EXPRS[i % len(EXPRS)]
            cron.create({"name": f"job{i:04d}", "schedule": schedule, "timezone": ZONES[i % len(ZONES)], "goal": f"goal {i}"})
        create_ms = (time.perf_counter() - t0) * 1000

        # Idle ticks: nothing due (the common case between runs).
        await cron.tick()
        idle = []
        for _ in range(ticks):
            t = time.perf_counter()
            await cron.tick()
            idle.append((time.perf_counter() - t) * 1000)

        # Busy ticks: advance one minute each time, so every due job fires and is recorded.
        busy, fired_per_tick = [], []
        for _ in range(min(ticks, 120)):
            now[0] += 60
            t = time.perf_counter()
            result = await cron.tick()
            busy.append((time.perf_counter() - t) * 1000)
            fired_per_tick.append(len(result["fired"]))
            await cron.wait_idle()

        # Listing all jobs (API / CLI), which never advances anything.
        t = time.perf_counter()
        for _ in range(10):
            cron.list()
        list_ms = (time.perf_counter() - t) * 100

        # Baseline: a naive tick that recomputes every job's next run from its definition.
        rows = kernel.state.all("SELECT name, spec, anchor, last_run_at FROM cron_jobs")

        def naive_tick() -> int:
            """What a scheduler without a stored next run does: croniter for every job, every tick."""
            due = 0
            for row in kernel.state.all("SELECT name, spec, anchor, last_run_at FROM cron_jobs"):
                spec = msgspec.json.decode(row["spec"], type=JobSpec)
                last = row["last_run_at"] or row["anchor"]
                if spec.schedule.startswith("every"):
                    nxt = last + parse(spec.schedule, spec.timezone, anchor=row["anchor"]).interval
                else:
                    base = datetime.fromtimestamp(last, ZoneInfo(spec.timezone))
                    nxt = croniter(spec.schedule, base).get_next(datetime).timestamp()
                if nxt <= now[0]:
                    due += 1
            return due

        naive = []
        for _ in range(max(3, ticks // 20)):
            t = time.perf_counter()
            naive_tick()
            naive.append((time.perf_counter() - t) * 1000)

        await cron.stop()
        await kernel.stop()

    med_idle, med_busy, med_naive = statistics.median(idle), statistics.median(busy), statistics.median(naive)
    print(f"cron tick benchmark: {len(rows)} jobs ({len(EXPRS)} cron shapes x {len(ZONES)} zones + every-N), SQLite WAL")
    print(f"  create {jobs} jobs (validate + first next run):  {create_ms:8.1f} ms total, {create_ms / jobs:.3f} ms/job")
    print(
        f"  tick, nothing due       median {med_idle:7.3f} ms   p95 {sorted(idle)[int(len(idle) * 0.95) - 1]:7.3f} ms  ({len(idle)} ticks)"
    )
    firing = [(ms, n) for ms, n in zip(busy, fired_per_tick, strict=True) if n]
    per_run = sum(ms for ms, _ in firing) / max(1, sum(n for _, n in firing))
    print(
        f"  tick, 1 fake minute     median {med_busy:7.3f} ms   over {len(busy)} minutes: {sum(fired_per_tick)} runs fired "
        f"in {len(firing)} ticks, up to {max(fired_per_tick)} per tick (max {max(busy):.1f} ms), {per_run:.3f} ms per run fired"
    )
    print(f"  list all jobs           {list_ms:7.3f} ms")
    print(f"  baseline naive tick     median {med_naive:7.3f} ms  (decode + croniter next run for every job, every tick)")
    print(f"  idle tick is {med_naive / med_idle:,.0f}x cheaper than the naive baseline; busy tick {med_naive / med_busy:,.1f}x")
    print(f"  runs executed by the fake runner: {fired}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--ticks", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(main(args.jobs, args.ticks))
