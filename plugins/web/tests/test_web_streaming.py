"""SSE and WebSocket chat against the real web channel (uvicorn on a free port)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
import websockets

from oxios.providers.scripted import ScriptedProvider

from .conftest import clean_env, live_server, web_kernel

pytestmark = pytest.mark.asyncio(loop_scope="module")

GUARD = 10  # seconds: a hung stream fails the test instead of hanging it (never a timing assertion)


@pytest.fixture(scope="module")
def provider() -> ScriptedProvider:
    return ScriptedProvider()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def kernel(tmp_path_factory: pytest.TempPathFactory, provider: ScriptedProvider) -> Any:
    home = tmp_path_factory.mktemp("web-stream")
    with clean_env(home):
        config = {
            "channels": {"web": {"sse_keepalive_secs": 0.3, "sse_queue_size": 16}},
            "security": {"rate_limit_per_minute": 0},
        }
        async with web_kernel(home, provider, config) as k:
            yield k


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def base(kernel: Any) -> AsyncIterator[str]:
    async with live_server(kernel) as url:
        yield url


class SSEReader:
    """Parses a text/event-stream into {"id", "event", "data"} dicts (comments counted apart)."""

    def __init__(self, lines: AsyncIterator[str]) -> None:
        self.lines = lines
        self.comments = 0

    async def next(self) -> dict[str, Any]:
        event: dict[str, Any] = {}
        async for line in self.lines:
            if line == "":
                if "event" in event or "data" in event:
                    if "data" in event:
                        event["data"] = json.loads(event["data"])
                    return event
                continue
            if line.startswith(":"):
                self.comments += 1
                continue
            field, _, value = line.partition(":")
            event[field] = value[1:] if value.startswith(" ") else value
        raise AssertionError("the stream ended")

    async def until(self, name: str) -> dict[str, Any]:
        while True:
            event = await asyncio.wait_for(self.next(), GUARD)
            if event.get("event") == name:
                return event


async def open_events(base: str, headers: dict[str, str] | None = None, query: str = "") -> Any:
    client = httpx.AsyncClient(timeout=GUARD)
    response = await client.send(client.build_request("GET", f"{base}/api/events{query}", headers=headers or {}), stream=True)
    return client, response, SSEReader(response.aiter_lines())


async def close_events(client: Any, response: Any) -> None:
    await response.aclose()
    await client.aclose()


# -- SSE ----------------------------------------------------------------------------------


async def test_sse_names_ids_and_sanitized_data(base: str, kernel: Any) -> None:
    client, response, reader = await open_events(base)
    try:
        assert response.headers["content-type"].startswith("text/event-stream")
        await asyncio.sleep(0)  # the server subscribes before the first byte; publish after connecting
        kernel.publish("agent.started", agent_id="a1", goal="Build a REST API", api_key="sk-ant-abcdefghijklmnop")
        kernel.publish("agent.stopped", agent_id="a1", status="completed", result="the raw model output")
        started = await reader.until("agent.started")
        assert started["data"]["agent_id"] == "a1" and started["data"]["goal"] == "Build a REST API"
        assert started["data"]["api_key"] == "[REDACTED]"
        assert int(started["id"]) > 0
        completed = await reader.until("agent.completed")
        assert completed["data"]["success"] is True and completed["data"]["kind"] == "agent.stopped"
        assert "result" not in completed["data"] and completed["data"]["result_chars"] == len("the raw model output")
        assert int(completed["id"]) > int(started["id"])
    finally:
        await close_events(client, response)


async def test_sse_keepalive_comments(base: str) -> None:
    client, response, reader = await open_events(base, query="?types=nothing.here")
    try:

        async def first_comment() -> str:
            async for line in reader.lines:
                if line.startswith(":"):
                    return line
            raise AssertionError("the stream ended")

        assert await asyncio.wait_for(first_comment(), GUARD) == ": keepalive"
    finally:
        await close_events(client, response)


async def test_sse_reconnect_with_last_event_id_replays_missed_events(base: str, kernel: Any) -> None:
    client, response, reader = await open_events(base)
    try:
        await asyncio.sleep(0)
        kernel.publish("tool.started", agent_id="a2", tool="ls", n=1)
        first = await reader.until("tool.started")
    finally:
        await close_events(client, response)
    # While disconnected, two more events happen.
    kernel.publish("tool.finished", agent_id="a2", tool="ls", is_error=False, n=2)
    kernel.publish("approval.requested", agent_id="a2", what="rm -rf build", n=3)
    client, response, reader = await open_events(base, headers={"Last-Event-ID": first["id"]})
    try:
        replayed = [await asyncio.wait_for(reader.next(), GUARD) for _ in range(2)]
        assert [e["event"] for e in replayed] == ["tool.finished", "approval.requested"]
        assert [e["data"]["n"] for e in replayed] == [2, 3]
        kernel.publish("agent.progress", agent_id="a2", step=3, message="Creating src/main.rs", n=4)
        live = await reader.until("agent.progress")
        assert live["data"]["n"] == 4 and int(live["id"]) > int(replayed[-1]["id"])
    finally:
        await close_events(client, response)


async def test_sse_resync_when_the_ring_lost_events(base: str, kernel: Any) -> None:
    old = kernel.events.last_id
    for i in range(1100):  # more than the bus ring holds (1000)
        kernel.publish("cron.tick", i=i)
    client, response, reader = await open_events(base, headers={"Last-Event-ID": str(max(old, 1))})
    try:
        first = await asyncio.wait_for(reader.next(), GUARD)
        assert first["event"] == "resync" and first["data"]["reason"] == "replay_gap"
        assert "id" not in first
    finally:
        await close_events(client, response)


async def test_sse_resync_when_a_client_lags(base: str, kernel: Any) -> None:
    client, response, reader = await open_events(base, query="?types=burst.*")
    try:
        await asyncio.sleep(0.05)
        for i in range(100):  # synchronously: the client's queue (16) overflows before it can read
            kernel.publish("burst.event", i=i)
        resync = await reader.until("resync")
        assert resync["data"]["reason"] == "lagged" and resync["data"]["missed"] > 0
        after = await reader.until("burst.event")
        assert after["data"]["i"] > 0
    finally:
        await close_events(client, response)


async def test_sse_rejects_a_bad_last_event_id(base: str) -> None:
    async with httpx.AsyncClient(timeout=GUARD) as client:
        r = await client.get(f"{base}/api/events", headers={"Last-Event-ID": "abc"})
    assert r.status_code == 400 and "Last-Event-ID" in r.json()["error"]


# -- WebSocket ---------------------------------------------------------------------------------


def ws_url(base: str) -> str:
    return base.replace("http://", "ws://") + "/api/chat/stream"


async def collect(ws: Any, ids: set[str]) -> dict[str, list[dict[str, Any]]]:
    """Frames by message id until every id got ``done`` or ``error``."""
    frames: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
    finished: set[str] = set()
    while finished != ids:
        frame = json.loads(await asyncio.wait_for(ws.recv(), GUARD))
        frames.setdefault(frame.get("id"), []).append(frame)
        if frame["type"] in ("done", "error") and frame.get("id") in ids:
            finished.add(frame["id"])
    return frames


def echo_reply(request: Any) -> str:
    return "reply to " + request.messages[-1].text


async def test_ws_message_token_done(base: str, kernel: Any, provider: ScriptedProvider) -> None:
    provider.enqueue_text("Streaming answer in a few deltas.")
    async with websockets.connect(ws_url(base)) as ws:
        await ws.send(json.dumps({"type": "message", "id": "m1", "content": "hello"}))
        frames = (await collect(ws, {"m1"}))["m1"]
    kinds = [f["type"] for f in frames]
    assert kinds[0] == "accepted" and kinds[-1] == "done" and "token" in kinds
    tokens = "".join(f["content"] for f in frames if f["type"] == "token")
    done = frames[-1]
    assert tokens == done["reply"] == "Streaming answer in a few deltas."
    assert all(f["session_id"] == done["session_id"] for f in frames)
    assert done["phase"] == "Execute" and "space_id" in done
    # The session holds the reply by the time done is sent.
    messages = kernel.services["sessions"].messages(done["session_id"])
    assert [m["role"] for m in messages] == ["user", "assistant"] and messages[1]["content"] == done["reply"]


async def test_ws_two_messages_in_flight_are_both_answered(base: str, provider: ScriptedProvider) -> None:
    provider.enqueue_callable(echo_reply)
    provider.enqueue_callable(echo_reply)
    async with websockets.connect(ws_url(base)) as ws:
        await ws.send(json.dumps({"type": "message", "id": "first", "content": "alpha"}))
        await ws.send(json.dumps({"type": "message", "id": "second", "content": "beta"}))
        frames = await collect(ws, {"first", "second"})
    for mid, word in (("first", "alpha"), ("second", "beta")):
        done = frames[mid][-1]
        assert done["type"] == "done", frames[mid]
        assert done["reply"] == f"reply to {word}"
        assert "".join(f["content"] for f in frames[mid] if f["type"] == "token") == f"reply to {word}"
    assert frames["first"][-1]["session_id"] != frames["second"][-1]["session_id"]


async def test_ws_two_connections_do_not_see_each_other(base: str, provider: ScriptedProvider) -> None:
    provider.enqueue_callable(echo_reply)
    provider.enqueue_callable(echo_reply)
    async with websockets.connect(ws_url(base)) as a, websockets.connect(ws_url(base)) as b:
        await a.send(json.dumps({"type": "message", "id": "x", "content": "from a"}))
        await b.send(json.dumps({"type": "message", "id": "x", "content": "from b"}))
        frames_a = (await collect(a, {"x"}))["x"]
        frames_b = (await collect(b, {"x"}))["x"]
    assert frames_a[-1]["reply"] == "reply to from a" and frames_b[-1]["reply"] == "reply to from b"


async def test_ws_slow_client_loses_nothing(base: str, kernel: Any, provider: ScriptedProvider) -> None:
    long_reply = " ".join(f"word{i}" for i in range(3000))
    provider.enqueue_text(long_reply)
    async with websockets.connect(ws_url(base), max_size=None) as ws:
        await ws.send(json.dumps({"type": "message", "id": "slow", "content": "write a lot", "session_id": "slow-session"}))
        # Read nothing until the agent has finished and the reply is stored: the server never waited for us.
        sessions = kernel.services["sessions"]
        for _ in range(500):
            stored = [m for m in sessions.messages("slow-session") if m["role"] == "assistant"] if _exists(sessions) else []
            if stored:
                break
            await asyncio.sleep(0.01)
        assert stored and stored[0]["content"] == long_reply
        frames = (await collect(ws, {"slow"}))["slow"]
    assert "".join(f["content"] for f in frames if f["type"] == "token") == long_reply
    assert frames[-1]["type"] == "done" and frames[-1]["session_id"] == "slow-session"


def _exists(sessions: Any) -> bool:
    try:
        sessions.get("slow-session")
        return True
    except LookupError:
        return False


async def test_ws_bad_frames_are_error_frames_and_the_connection_lives(base: str, provider: ScriptedProvider) -> None:
    async with websockets.connect(ws_url(base)) as ws:
        await ws.send("{not json")
        first = json.loads(await asyncio.wait_for(ws.recv(), GUARD))
        assert first["type"] == "error" and "malformed JSON" in first["error"]
        await ws.send(json.dumps({"type": "shout", "content": "x"}))
        assert "invalid frame" in json.loads(await asyncio.wait_for(ws.recv(), GUARD))["error"]
        await ws.send(json.dumps({"type": "message", "id": "e1", "content": "   "}))
        empty = json.loads(await asyncio.wait_for(ws.recv(), GUARD))
        assert empty == {"type": "error", "id": "e1", "error": empty["error"]} and empty["error"].startswith("content")
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), GUARD)) == {"type": "pong"}
        provider.enqueue_text("still alive")
        await ws.send(json.dumps({"type": "message", "id": "ok", "content": "hi"}))
        assert (await collect(ws, {"ok"}))["ok"][-1]["reply"] == "still alive"


async def test_ws_agent_failure_and_cancel_are_error_frames(base: str, provider: ScriptedProvider) -> None:
    from oxios.providers import ProviderUnavailableError

    for _ in range(5):
        provider.enqueue_error(ProviderUnavailableError("model down", status=500))
    async with websockets.connect(ws_url(base)) as ws:
        await ws.send(json.dumps({"type": "message", "id": "f1", "content": "fail please"}))
        failed = (await collect(ws, {"f1"}))["f1"][-1]
        assert failed["type"] == "error" and failed["error"]
        provider._queue.clear()
        provider.enqueue_hang("partial ")
        await ws.send(json.dumps({"type": "message", "id": "h1", "content": "hang"}))
        while True:  # wait until it streams, then cancel it
            frame = json.loads(await asyncio.wait_for(ws.recv(), GUARD))
            if frame["type"] == "token":
                break
        await ws.send(json.dumps({"type": "cancel", "id": "h1"}))
        cancelled = (await collect(ws, {"h1"}))["h1"][-1]
        assert cancelled["type"] == "error" and "cancel" in cancelled["error"]
