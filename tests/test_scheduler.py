"""The local scheduler: admission (max_concurrent, rate limit, priority), overload, zombies; 200 agents."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec

from oxios.builtin.scheduler import LocalScheduler
from oxios.config import SchedulerConfig


def make(**kw: Any) -> LocalScheduler:
    return LocalScheduler(msgspec.structs.replace(SchedulerConfig(), **kw))


async def test_priority_order_with_one_slot() -> None:
    sched = make(max_concurrent=1, rate_limit_per_minute=0)
    gate = asyncio.Event()
    order: list[str] = []

    def job(name: str) -> Any:
        async def run() -> str:
            if name == "blocker":
                await gate.wait()
            order.append(name)
            return name

        return run

    blocker = await sched.submit(job("blocker"), 0, name="blocker")
    while sched.stats()["running"] == 0:
        await asyncio.sleep(0.001)
    low = await sched.submit(job("low"), -10, name="low")
    high = await sched.submit(job("high"), 10, name="high")
    normal1 = await sched.submit(job("normal1"), 0, name="normal1")
    normal2 = await sched.submit(job("normal2"), 0, name="normal2")
    await asyncio.sleep(0)
    assert sched.stats()["running"] == 1 and sched.stats()["queued"] == 4
    gate.set()
    results = await asyncio.gather(blocker, low, high, normal1, normal2)
    assert results == ["blocker", "low", "high", "normal1", "normal2"]
    assert order == ["blocker", "high", "normal1", "normal2", "low"]
    await sched.stop()


async def test_rate_limit_holds_starts_within_a_minute() -> None:
    sched = make(max_concurrent=10, rate_limit_per_minute=3)

    async def quick() -> int:
        return 1

    jobs = [await sched.submit(quick, name=f"j{i}") for i in range(5)]
    assert await asyncio.gather(*jobs[:3]) == [1, 1, 1]
    await asyncio.sleep(0.05)
    stats = sched.stats()
    assert stats["completed"] == 3 and stats["queued"] == 2 and stats["running"] == 0
    assert await sched.cancel(jobs[3].id) is True
    await sched.stop()
    assert jobs[4].future.cancelled() and sched.get(jobs[4].id).status == "cancelled"


async def test_overload_holds_low_priority_work() -> None:
    sched = make(max_concurrent=4, rate_limit_per_minute=0)
    overloaded = {"now": True}
    sched.overload_check = lambda: overloaded["now"]
    gate = asyncio.Event()

    async def wait_gate() -> str:
        await gate.wait()
        return "ok"

    running = await sched.submit(wait_gate, 0, name="normal")
    low = await sched.submit(wait_gate, -10, name="low")
    normal = await sched.submit(wait_gate, 0, name="normal2")
    await asyncio.sleep(0.05)
    assert {t["name"]: t["status"] for t in sched.tasks()} == {"normal": "running", "low": "queued", "normal2": "running"}
    assert sched.stats()["held_for_overload"] >= 1
    overloaded["now"] = False
    sched._kick()
    await asyncio.sleep(0.05)
    assert sched.get(low.id).status == "running"
    gate.set()
    assert await asyncio.gather(running, low, normal) == ["ok", "ok", "ok"]
    await sched.stop()


async def test_zombie_job_is_cancelled() -> None:
    sched = make(max_concurrent=2, rate_limit_per_minute=0, zombie_timeout_secs=1)
    zombies: list[str] = []
    sched.on_zombie = lambda job: zombies.append(job.name)

    async def stuck() -> None:
        await asyncio.Event().wait()

    async def alive() -> str:
        for _ in range(30):  # reports progress while it works
            sched.progress()
            await asyncio.sleep(0.05)
        return "done"

    z = await sched.submit(stuck, name="stuck")
    a = await sched.submit(alive, name="alive")
    assert await a == "done"
    while sched.get(z.id).status == "running":
        await asyncio.sleep(0.05)
    assert sched.get(z.id).status == "zombie" and zombies == ["stuck"] and z.future.cancelled()
    await sched.stop()


async def test_released_slot_lets_children_run() -> None:
    sched = make(max_concurrent=1, rate_limit_per_minute=0)

    async def child() -> str:
        return "child"

    async def parent() -> str:
        kid = await sched.submit(child, name="child")
        async with sched.released_slot():
            result = await asyncio.wait_for(kid, timeout=5)
        return f"parent got {result}"

    assert await asyncio.wait_for(await sched.submit(parent, name="parent"), timeout=10) == "parent got child"
    assert sched.stats()["peak_running"] == 1
    await sched.stop()


async def test_200_agents_admitted_at_most_max_concurrent(scripted_provider: Any, oxios_kernel_factory: Any) -> None:
    state = {"scheduler": None, "max_seen": 0}

    def reply(request: Any) -> str:
        running = state["scheduler"].stats()["running"]
        state["max_seen"] = max(state["max_seen"], running)
        return "done " + request.messages[-1].text

    for _ in range(200):
        scripted_provider.enqueue_callable(reply)
    config = scripted_provider.config({"scheduler": {"max_concurrent": 5, "rate_limit_per_minute": 0}})
    async with oxios_kernel_factory(plugins=[scripted_provider.plugin()], config=config) as kernel:
        agents = kernel.service("agents")
        state["scheduler"] = kernel.service("scheduler")
        ids = await asyncio.gather(*(agents.spawn(f"task {i}", tools=[]) for i in range(200)))
        records = await asyncio.gather(*(agents.wait(i, timeout=60) for i in ids))
        assert len(set(ids)) == 200
        assert all(r["status"] == "completed" for r in records)
        assert sorted(r["result"] for r in records) == sorted(f"done task {i}" for i in range(200))
        stats = kernel.service("scheduler").stats()
        assert stats["completed"] == 200 and stats["queued"] == 0 and stats["running"] == 0
        assert 1 <= stats["peak_running"] <= 5 and state["max_seen"] <= 5
        assert stats["peak_running"] == 5  # they did run side by side
    assert scripted_provider.remaining == 0
