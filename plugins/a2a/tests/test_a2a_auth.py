"""A2A and credentials: Oxios's client authenticates to remotes; Oxios's server runs each token under its role."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from a2a_fakes import SECRET, free_port, sdk_app, sdk_client, serve, serve_in_thread, user_message
from oxios_plugin_a2a import plugin as a2a_plugin


def remote_config(base: str, **remote: Any) -> dict[str, Any]:
    return {
        "security": {"ssrf_allowlist": ["127.0.0.1", "localhost"]},
        "plugins": {"a2a": {"remotes": {"echo": {"url": base, **remote}}}},
    }


async def test_delegate_authenticates_to_a_configured_remote(
    oxios_kernel_factory: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with serve(lambda base: sdk_app(base, token=SECRET)) as (base, guard):
        other_name = base.replace("127.0.0.1", "localhost")  # the same server, not the configured origin
        async with oxios_kernel_factory(plugins=[a2a_plugin], config=remote_config(base, token_env="ECHO_TOKEN")) as kernel:
            ctx = kernel.context(agent_id="agent-a2a", interactive=False)
            delegate = kernel.tools.get("a2a_delegate")

            missing = await delegate.call({"url": "echo", "message": "hi"}, ctx)
            assert missing.is_error and "ECHO_TOKEN" in missing.content and "not set" in missing.content

            monkeypatch.setenv("ECHO_TOKEN", SECRET)
            by_name = await delegate.call({"url": "echo", "message": "hello"}, ctx)
            assert not by_name.is_error, by_name.content
            assert by_name.content == "echo: hello"
            by_url = await delegate.call({"url": base + "/", "message": "again"}, ctx)  # the URL of a configured remote
            assert by_url.content == "echo: again"

            anonymous = await delegate.call({"url": other_name, "message": "hi"}, ctx)
            assert anonymous.is_error and "requires authentication (HTTP 401)" in anonymous.content
            assert "token_env" in anonymous.content  # says what to configure

            monkeypatch.setenv("ECHO_TOKEN", "not-the-token")
            wrong = await delegate.call({"url": "echo", "message": "hi"}, ctx)
            assert wrong.is_error and "refused the credentials (HTTP 401)" in wrong.content

            unknown = await delegate.call({"url": "nobody", "message": "hi"}, ctx)
            assert unknown.is_error and "neither a URL nor a remote" in unknown.content and "echo" in unknown.content
            audit = json.dumps(kernel.services["audit"].export())
        seen = [authorization for host, path, authorization in guard.seen if path == "/rpc"]
        assert f"Bearer {SECRET}" in seen and "" in seen  # sent to the remote, not to a URL it was not configured for
    # What Oxios's side logged (the fake remote runs in this process too, and logs what it receives).
    client_logs = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith(("a2a.server", "uvicorn")))
    for text in (audit, client_logs, missing.content, anonymous.content, wrong.content):
        assert SECRET not in text and "not-the-token" not in text


async def test_credentials_stay_with_the_remote_origin(oxios_kernel_factory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A card that points its JSON-RPC interface at another origin does not get the token sent there."""
    monkeypatch.setenv("ECHO_TOKEN", SECRET)

    def elsewhere(base: str) -> Any:
        return sdk_app(base, token=SECRET, interface_base=base.replace("127.0.0.1", "localhost"))

    async with serve(elsewhere) as (base, guard):
        async with oxios_kernel_factory(plugins=[a2a_plugin], config=remote_config(base, token_env="ECHO_TOKEN")) as kernel:
            ctx = kernel.context(agent_id="agent-a2a", interactive=False)
            result = await kernel.tools.get("a2a_delegate").call({"url": "echo", "message": "hi"}, ctx)
        assert result.is_error and "HTTP 401" in result.content
        card_requests = [(h, a) for h, p, a in guard.seen if p.startswith("/.well-known/")]
        rpc_requests = [(h, a) for h, p, a in guard.seen if p == "/rpc"]
        assert card_requests and all(a == f"Bearer {SECRET}" for h, a in card_requests if h.startswith("127.0.0.1"))
        assert rpc_requests and all(h.startswith("localhost") and a == "" for h, a in rpc_requests)


async def test_headers_env_sends_custom_headers(oxios_kernel_factory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECHO_AUTH", f"Bearer {SECRET}")
    async with serve(lambda base: sdk_app(base, token=SECRET)) as (base, _guard):
        config = remote_config(base, headers_env={"Authorization": "ECHO_AUTH"})
        async with oxios_kernel_factory(plugins=[a2a_plugin], config=config) as kernel:
            ctx = kernel.context(agent_id="agent-a2a", interactive=False)
            result = await kernel.tools.get("a2a_delegate").call({"url": "echo", "message": "via header"}, ctx)
    assert result.content == "echo: via header", result.content


def test_bad_remote_config_is_a_clear_error(oxios_cli: Any, oxios_home: Path) -> None:
    (oxios_home / "config.toml").write_text('[plugins.a2a.remotes.echo]\nurl = "echo.example.com"\n')
    bad_url = oxios_cli("a2a", "remotes")
    assert bad_url.exit_code == 1 and "remotes.echo.url must be an http(s) URL" in bad_url.output
    (oxios_home / "config.toml").write_text('[plugins.a2a.remotes.echo]\nurl = "https://echo.example.com"\ntoken = "inline"\n')
    inline = oxios_cli("a2a", "send", "echo", "hi")
    assert inline.exit_code == 1 and "token" in inline.output and "invalid [plugins.a2a] config" in inline.output


def test_cli_with_a_remote_and_token_env(oxios_cli: Any, oxios_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with serve_in_thread(lambda base: sdk_app(base, token=SECRET)) as base:
        (oxios_home / "config.toml").write_text(
            '[security]\nssrf_allowlist = ["127.0.0.1", "localhost"]\n'
            f'[plugins.a2a.remotes.echo]\nurl = "{base}"\ntoken_env = "ECHO_TOKEN"\n'
        )
        listed = oxios_cli("a2a", "remotes")
        assert json.loads(listed.output) == [
            {"name": "echo", "url": base, "token_env": "ECHO_TOKEN", "headers_env": {}, "set": {"ECHO_TOKEN": False}}
        ]
        unset = oxios_cli("a2a", "send", "echo", "ping")
        assert unset.exit_code == 1 and "ECHO_TOKEN" in unset.output
        monkeypatch.setenv("MY_A2A_TOKEN", SECRET)
        explicit = oxios_cli("a2a", "send", base, "ping", "--token-env", "MY_A2A_TOKEN")  # replaces the remote's token_env
        assert explicit.exit_code == 0 and explicit.output.strip() == "echo: ping"
        no_var = oxios_cli("a2a", "card", base, "--token-env", "NO_SUCH_VAR")
        assert no_var.exit_code == 1 and "NO_SUCH_VAR (--token-env) is not set" in no_var.output

        monkeypatch.setenv("ECHO_TOKEN", SECRET)
        assert json.loads(oxios_cli("a2a", "remotes").output)[0]["set"] == {"ECHO_TOKEN": True}
        sent = oxios_cli("a2a", "send", "echo", "ping")
        assert sent.exit_code == 0 and sent.output.strip() == "echo: ping"
        card = oxios_cli("a2a", "card", "echo")
        assert card.exit_code == 0 and json.loads(card.output)["securitySchemes"]["bearer"]

        other = base.replace("127.0.0.1", "localhost")  # not the configured remote: no credentials
        refused = oxios_cli("a2a", "send", other, "ping")
        assert refused.exit_code == 1 and "requires authentication (HTTP 401)" in refused.output
        for result in (listed, unset, explicit, no_var, sent, card, refused):
            assert SECRET not in result.output


async def test_a2a_runs_under_the_callers_token_role(oxios_kernel_factory: Any, scripted_provider: Any) -> None:
    """A token whose role may only read gets an agent that is not offered `write`, and cannot use it."""
    from a2a.types import GetTaskRequest, TaskState

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    security = {"auth_enabled": True, "roles": {"reader": {"tools": ["tier:read"]}}}
    config = scripted_provider.config({"plugins": {"a2a": {"port": port}}, "security": security})
    async with oxios_kernel_factory(plugins=[scripted_provider.plugin(), a2a_plugin], config=config) as kernel:
        tokens = kernel.services["tokens"]
        reader = tokens.create("nightly-reader", "reader")["token"]
        ops = tokens.create("ops", "user")["token"]

        scripted_provider.enqueue_tool_call("write", {"path": "owned.txt", "content": "pwned"}).enqueue_text("done")
        client = await sdk_client(base, streaming=False, token=reader)
        task = [e async for e in client.send_message(user_message("write a file"))][-1].task
        assert task.status.state == TaskState.TASK_STATE_COMPLETED
        offered = {t.name for t in scripted_provider.requests[0].tools}
        assert "read" in offered and "write" not in offered
        assert not (kernel.paths.workspace / "owned.txt").exists()

        audit = kernel.services["audit"].export()
        run = next(e for e in audit if e["action"] == "a2a.run")
        assert run["actor"] == "a2a:nightly-reader" and run["metadata"]["role"] == "reader" and run["resource"] == task.id
        agent = kernel.services["agents"].get(run["metadata"]["agent_id"])
        assert agent["role"] == "reader"
        denied = [e for e in audit if e["actor"] == agent["id"] and e["metadata"].get("tool") == "write"]
        assert denied and not denied[0]["allowed"] and "reader" in denied[0]["reason"]
        assert any(e["actor"] == "a2a:nightly-reader" and e["action"] == "policy.api" for e in audit)

        # Another token neither reads this task nor continues its conversation; its own role (user) may write.
        other = await sdk_client(base, streaming=False, token=ops)
        with pytest.raises(Exception, match=r"(?i)not found"):
            await other.get_task(GetTaskRequest(id=task.id))
        scripted_provider.enqueue_text("fresh start")
        await other.send_message(user_message("what did I ask?", context_id=task.context_id)).__anext__()
        assert "write a file" not in [m.text for m in scripted_provider.requests[-1].messages]
        assert "write" in {t.name for t in scripted_provider.requests[-1].tools}
        assert (await client.get_task(GetTaskRequest(id=task.id))).id == task.id  # the owner still does
        await client.close()
        await other.close()


async def test_card_declares_the_bearer_scheme_when_auth_is_on(oxios_kernel_factory: Any) -> None:
    import httpx

    port = free_port()
    config = {"security": {"auth_enabled": True}, "plugins": {"a2a": {"port": port}}}
    async with oxios_kernel_factory(plugins=[a2a_plugin], config=config):
        async with httpx.AsyncClient() as http:
            card = (await http.get(f"http://127.0.0.1:{port}/.well-known/agent-card.json")).json()
    assert card["securitySchemes"]["oxios_token"]["httpAuthSecurityScheme"]["scheme"] == "bearer"
    assert card["securityRequirements"] == [{"schemes": {"oxios_token": {}}}]
