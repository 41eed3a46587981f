"""Cron deliveries to a real HTTP endpoint (uvicorn on 127.0.0.1), through the SSRF policy."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
import uvicorn
from cron_helpers import FakeClock, FakeRunner, drain_events, fresh_service
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


class Receiver:
    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.headers: list[dict] = []
        self.statuses: list[int] = []  # answers to give, in order; then 200

    async def hook(self, request: Request) -> JSONResponse:
        self.bodies.append(await request.json())
        self.headers.append(dict(request.headers))
        status = self.statuses.pop(0) if self.statuses else 200
        return JSONResponse({"ok": status == 200}, status_code=status)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    rec = Receiver()
    app = Starlette(routes=[Route("/hook", rec.hook, methods=["POST"])])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="error", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    yield rec, f"http://127.0.0.1:{port}/hook?token=s3cr3t-value"
    server.should_exit = True
    await task
    sock.close()


async def test_webhook_delivery_through_the_ssrf_allowlist(oxios_kernel_factory, receiver) -> None:
    rec, url = receiver
    rec.statuses = [500]  # the first attempt fails; the retry succeeds
    async with oxios_kernel_factory(config={"security": {"ssrf_allowlist": ["127.0.0.1"]}}) as kernel:
        clock, runner = FakeClock("2026-05-04T08:59:30Z"), FakeRunner()
        cron = await fresh_service(kernel, clock, runner, delivery_backoff_secs=10)
        cron.create({"name": "hooked", "schedule": "0 9 * * *", "timezone": "UTC", "goal": "g", "deliver_to": f"webhook:{url}"})
        clock.set("2026-05-04T09:00:01Z")
        await cron.tick()
        await cron.wait_idle()
        run = cron.runs("hooked")[0]
        assert run["delivery_status"] == "pending" and "HTTP 500" in run["delivery_error"]
        clock.advance(10)
        await cron.tick()
        run = cron.runs("hooked")[0]
        assert run["status"] == "succeeded" and run["delivery_status"] == "delivered"
        body = rec.bodies[-1]
        assert body["job"] == "hooked" and body["kind"] == "result" and body["output"] == "all done\nsecond line"
        assert body["run_id"] == run["id"] and body["status"] == "succeeded"
        assert rec.headers[-1]["user-agent"] == "oxios-cron"


async def test_webhook_to_a_private_address_is_blocked_and_reported(oxios_kernel_factory, receiver) -> None:
    rec, url = receiver
    async with oxios_kernel_factory() as kernel:  # no allowlist: 127.0.0.1 is off limits
        clock, runner = FakeClock("2026-05-04T08:59:30Z"), FakeRunner()
        cron = await fresh_service(kernel, clock, runner)
        events = kernel.subscribe(types={"cron.*"})
        cron.create({"name": "hooked", "schedule": "0 9 * * *", "timezone": "UTC", "goal": "g", "deliver_to": f"webhook:{url}"})
        clock.set("2026-05-04T09:00:01Z")
        await cron.tick()
        await cron.wait_idle()
        run = cron.runs("hooked")[0]
        assert run["status"] == "succeeded"  # the task did its job; only delivery failed
        assert run["delivery_status"] == "failed" and "blocked by policy" in run["delivery_error"]
        assert rec.bodies == []
        [failed] = [e for e in drain_events(events) if e.type == "cron.delivery_failed"]
        assert failed.data["attempts"] == 1  # a policy denial is not retried
        assert failed.data["target"] == "webhook:http://127.0.0.1"
        assert "s3cr3t" not in str(failed.data)  # the URL's query (a secret) never reaches events


@pytest.mark.parametrize(
    "url", ["http://169.254.169.254/latest/meta-data", "http://0x7f.1/hook", "http://[::1]:80/x", "http://localhost/x"]
)
async def test_webhook_ssrf_attacks_are_denied(oxios_kernel_factory, url) -> None:
    async with oxios_kernel_factory() as kernel:
        clock, runner = FakeClock("2026-05-04T08:59:30Z"), FakeRunner()
        cron = await fresh_service(kernel, clock, runner)
        cron.create({"name": "evil", "schedule": "every 1h", "goal": "g", "deliver_to": f"webhook:{url}"})
        run = await cron.trigger("evil", wait=True)
        run = cron.run(run["id"])
        assert run["status"] == "succeeded" and run["delivery_status"] == "failed"
        assert "blocked" in run["delivery_error"]
