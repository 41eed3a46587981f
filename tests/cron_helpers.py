"""Shared pieces of the cron tests: a fake clock, a scripted runner, a recording channel."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import msgspec

from oxios.cron import CronService, RunOutcome, RunRequest
from oxios_hookspecs import OutgoingMessage


def ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class FakeClock:
    def __init__(self, start: str) -> None:
        self.now = ts(start)

    def __call__(self) -> float:
        return self.now

    def advance(self, secs: float) -> None:
        self.now += secs

    def set(self, when: str) -> None:
        self.now = ts(when)


class FakeRunner:
    """Stands in for the agent: records each request; answers from a script, else succeeds."""

    def __init__(self) -> None:
        self.requests: list[RunRequest] = []
        self.script: list[RunOutcome] = []
        self.default = RunOutcome(
            status="succeeded", output="all done\nsecond line", input_tokens=12, output_tokens=34, cost_usd=0.01
        )
        self.gate: asyncio.Event | None = None

    async def __call__(self, request: RunRequest) -> RunOutcome:
        self.requests.append(request)
        if self.gate is not None:
            await self.gate.wait()
        return self.script.pop(0) if self.script else self.default

    def jobs(self) -> list[str]:
        return [r.job.name for r in self.requests]


class RecordingChannel:
    """A channel whose first ``fail_times`` sends raise (a chat service that is down)."""

    supports_streaming = False

    def __init__(self, name: str = "fake", fail_times: int = 0) -> None:
        self.name = name
        self.fail_times = fail_times
        self.sent: list[OutgoingMessage] = []
        self.attempts = 0

    async def start(self, gateway: Any) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send(self, outgoing: OutgoingMessage) -> None:
        self.attempts += 1
        if self.attempts <= self.fail_times:
            raise ConnectionError("chat service unreachable")
        self.sent.append(outgoing)


async def fresh_service(
    kernel: Any, clock: FakeClock, runner: Any, *, owner: str = "A", state: Any = None, **cron: Any
) -> CronService:
    """Replace the kernel's cron service with one on the fake clock (config jobs synced at fake time)."""
    old = kernel.services.get("cron")
    if old is not None and state is None:
        await old.stop()
        kernel.state.execute("DELETE FROM cron_jobs")
    config = msgspec.structs.replace(kernel.config.cron, **cron) if cron else kernel.config.cron
    service = CronService(kernel, state=state, clock=clock, runner=runner, owner_id=owner, config=config)
    if state is None:
        kernel.services["cron"] = service
    return service


def drain_events(sub: Any) -> list[Any]:
    events = []
    while (event := sub.get_nowait()) is not None:
        events.append(event)
    return events


async def tick_until(service: CronService, clock: FakeClock, end: str, step: float) -> list[str]:
    """Tick every ``step`` seconds of fake time up to ``end``; return the jobs fired."""
    fired: list[str] = []
    while clock.now < ts(end):
        clock.advance(step)
        result = await service.tick()
        fired += result["fired"]
        await service.wait_idle()
    return fired
