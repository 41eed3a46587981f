"""A2A on loopback: the SDK's client against Oxios's server, Oxios's client against an SDK server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from a2a_fakes import free_port, sdk_app, sdk_client, serve, serve_in_thread, user_message, wait_for
from oxios_plugin_a2a import plugin as a2a_plugin


async def test_sdk_client_against_oxios_server(oxios_kernel_factory: Any, scripted_provider: Any) -> None:
    from a2a.types import CancelTaskRequest, GetTaskRequest, TaskState

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = scripted_provider.config({"plugins": {"a2a": {"port": port}}})
    async with oxios_kernel_factory(plugins=[scripted_provider.plugin(), a2a_plugin], config=config) as kernel:
        assert kernel.status()["components"]["a2a"]["serving"]
        async with httpx.AsyncClient() as http:
            card = (await http.get(base + "/.well-known/agent-card.json")).json()
            assert card["name"] == "Oxios" and card["supportedInterfaces"][0]["url"] == base + "/a2a"
            assert any(s["id"].startswith("persona:") for s in card["skills"])
            garbage = await http.post(base + "/a2a", content=b"{not json", headers={"content-type": "application/json"})
            assert garbage.json()["error"]["code"] == -32700
            unknown = await http.post(base + "/a2a", json={"jsonrpc": "2.0", "id": 1, "method": "NoSuchMethod", "params": {}})
            assert unknown.json()["error"]["code"] == -32601

        # send-message (blocking): the task is an agent run; the answer is the artifact.
        scripted_provider.enqueue_text("Four.")
        client = await sdk_client(base, streaming=False)
        events = [e async for e in client.send_message(user_message("What is 2 + 2?"))]
        task = events[-1].task
        assert task.status.state == TaskState.TASK_STATE_COMPLETED
        assert task.artifacts[0].parts[0].text == "Four."
        assert scripted_provider.requests[-1].messages[-1].text == "What is 2 + 2?"

        # get-task; a follow-up in the same context continues the Oxios session.
        fetched = await client.get_task(GetTaskRequest(id=task.id))
        assert fetched.status.state == TaskState.TASK_STATE_COMPLETED
        scripted_provider.enqueue_text("Eight.")
        events = [e async for e in client.send_message(user_message("And doubled?", context_id=task.context_id))]
        assert events[-1].task.artifacts[0].parts[0].text == "Eight."
        history = [m.text for m in scripted_provider.requests[-1].messages]
        assert "What is 2 + 2?" in history and "And doubled?" in history
        # A persona is picked with the card's skill id in the message metadata.
        scripted_provider.enqueue_text("Reviewed.")
        request = user_message("review this")
        request.message.metadata.update({"skill": "persona:Review"})
        events = [e async for e in client.send_message(request)]
        assert events[-1].task.artifacts[0].parts[0].text == "Reviewed."
        assert "You are Review" in scripted_provider.requests[-1].system
        with pytest.raises(Exception, match=r"(?i)not found"):
            await client.get_task(GetTaskRequest(id="no-such-task"))
        await client.close()

        # streaming: token deltas arrive as working status updates before the final state.
        scripted_provider.enqueue_text("A long streamed answer in several pieces.")
        streamer = await sdk_client(base, streaming=True)
        kinds, deltas, final = [], [], None
        async for event in streamer.send_message(user_message("stream please")):
            kind = event.WhichOneof("payload")
            kinds.append(kind)
            if kind == "status_update":
                final = event.status_update.status.state
                if final == TaskState.TASK_STATE_WORKING and event.status_update.status.HasField("message"):
                    deltas.append(event.status_update.status.message.parts[0].text)
        assert "".join(deltas) == "A long streamed answer in several pieces." and len(deltas) > 1
        assert final == TaskState.TASK_STATE_COMPLETED and "artifact_update" in kinds

        # cancel: a run that hangs is cancelled through the gateway.
        scripted_provider.enqueue_hang("thinking ...")
        poller = await sdk_client(base, streaming=False, polling=True)
        first = [e async for e in poller.send_message(user_message("take forever"))][-1].task
        await wait_for(lambda: bool(kernel.services["gateway"]._inflight), "the agent run started")
        cancelled = await poller.cancel_task(CancelTaskRequest(id=first.id))
        assert cancelled.status.state == TaskState.TASK_STATE_CANCELED
        await streamer.close()
        await poller.close()


@pytest.fixture
async def sdk_server() -> AsyncIterator[str]:
    """An A2A agent built with the SDK alone, served on loopback in this event loop."""
    async with serve(sdk_app) as (base, _app):
        yield base


@pytest.fixture
def threaded_sdk_server() -> Iterator[str]:
    """The same agent in a thread, for CLI tests (the CLI runs its own event loop)."""
    with serve_in_thread(sdk_app) as base:
        yield base


async def test_oxios_client_against_sdk_server(oxios_kernel_factory: Any, sdk_server: str) -> None:
    allow = {"security": {"ssrf_allowlist": ["127.0.0.1"]}}
    async with oxios_kernel_factory(plugins=[a2a_plugin], config=allow) as kernel:
        ctx = kernel.context(agent_id="agent-a2a", interactive=False)
        tool = kernel.tools.get("a2a_delegate")
        assert tool.spec.tier == "network"
        result = await tool.call({"url": sdk_server, "message": "hello there"}, ctx)
        assert not result.is_error, result.content
        assert result.content == "echo: hello there" and result.data["state"] == "completed"
        failed = await tool.call({"url": sdk_server, "message": "fail"}, ctx)
        assert failed.is_error and "failed" in failed.content and "refusing to work" in failed.content
        nowhere = await tool.call({"url": "http://127.0.0.1:9/", "message": "hi"}, ctx)
        assert nowhere.is_error
    async with oxios_kernel_factory(plugins=[a2a_plugin]) as kernel:  # no allowlist: loopback is private
        ctx = kernel.context(agent_id="agent-a2a", interactive=False)
        for url in (sdk_server, "http://169.254.169.254/", "file:///etc/passwd"):
            denied = await kernel.tools.get("a2a_delegate").call({"url": url, "message": "hi"}, ctx)
            assert denied.is_error and "denied" in denied.content, url


def test_cli_card_and_send(oxios_cli: Any, oxios_home: Path, threaded_sdk_server: str) -> None:
    sdk_server = threaded_sdk_server
    (oxios_home / "config.toml").write_text('[security]\nssrf_allowlist = ["127.0.0.1"]\n')
    card = oxios_cli("a2a", "card", sdk_server)
    assert card.exit_code == 0, card.output
    assert json.loads(card.output)["skills"][0]["id"] == "echo"
    sent = oxios_cli("a2a", "send", sdk_server, "ping")
    assert sent.exit_code == 0 and sent.output.strip() == "echo: ping"
    failed = oxios_cli("a2a", "send", sdk_server, "fail")
    assert failed.exit_code == 1
    (oxios_home / "config.toml").write_text("")
    blocked = oxios_cli("a2a", "card", sdk_server)
    assert blocked.exit_code == 1 and "SSRF" in blocked.output


async def test_auth_token_required_when_auth_enabled(oxios_kernel_factory: Any) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = {"security": {"auth_enabled": True}, "plugins": {"a2a": {"port": port}}}
    async with oxios_kernel_factory(plugins=[a2a_plugin], config=config) as kernel:
        token = kernel.services["tokens"].create("a2a-peer")["token"]
        call = {"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": "nope"}}
        async with httpx.AsyncClient() as http:
            assert (await http.get(base + "/.well-known/agent-card.json")).status_code == 200  # cards are public
            anonymous = await http.post(base + "/a2a", json=call)
            assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == -32001
            forged = await http.post(base + "/a2a", json=call, headers={"Authorization": "Bearer oxs_forged"})
            assert forged.status_code == 401
            allowed = await http.post(
                base + "/a2a", json=call, headers={"Authorization": f"Bearer {token}", "A2A-Version": "1.0"}
            )
            assert allowed.status_code == 200 and "not found" in allowed.json()["error"]["message"].lower()


async def test_mounted_in_the_web_plugin(oxios_kernel_factory: Any) -> None:
    web = pytest.importorskip("oxios_plugin_web.app")
    async with oxios_kernel_factory(plugins=[a2a_plugin]) as kernel:
        app = web.create_app(kernel)
        transport = httpx.ASGITransport(app=app)
        gateway = kernel.config.gateway
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{gateway.host}:{gateway.port}") as http:
            response = await http.get("/.well-known/agent-card.json")
            card = response.json()
            assert "supportedInterfaces" in card, (response.status_code, card)
            assert card["supportedInterfaces"][0]["url"] == f"http://{gateway.host}:{gateway.port}/a2a"
            rpc = await http.post("/a2a", json={"jsonrpc": "2.0", "id": 7, "method": "GetTask", "params": {"id": "x"}})
            assert rpc.json()["id"] == 7 and "error" in rpc.json()
