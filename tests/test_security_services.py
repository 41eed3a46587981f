"""API tokens, RBAC roles and per-agent permissions, tool policies, `oxios policy explain`, auditing of decisions."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from oxios_hookspecs import Action

# -- tokens ----------------------------------------------------------------------------------------------


def test_token_lifecycle(tmp_path: Path) -> None:
    from oxios.security.tokens import TokenStore

    store = TokenStore(tmp_path / "secrets")
    created = store.create("ci", "admin")
    token = created["token"]
    assert token.startswith("oxt_") and len(token) > 40
    assert store.verify(token) == "admin"
    assert store.identify(token) == {k: v for k, v in created.items() if k != "token"}
    assert store.identify("oxt_wrong") is None and "hash" not in store.identify(token)
    assert store.verify(None) is None and store.verify("") is None
    assert store.verify("oxt_wrong") is None and store.verify(token + "x") is None and store.verify(token[:-1]) is None
    raw = store.path.read_text()
    assert token not in raw and "hash" in raw
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert [t["name"] for t in store.list()] == ["ci"] and "hash" not in store.list()[0]
    with pytest.raises(ValueError):
        store.create("ci")
    store.revoke("ci")
    assert store.verify(token) is None
    with pytest.raises(LookupError):
        store.revoke("ci")


async def test_auth_failures_are_audited(oxios_kernel: Any) -> None:
    tokens = oxios_kernel.services["tokens"]
    good = tokens.create("web")["token"]
    assert tokens.verify(good) == "user"
    assert tokens.verify("oxt_forged") is None
    assert tokens.verify(None) is None
    failures = [e for e in oxios_kernel.services["audit"].export() if e["action"] == "auth.failure"]
    assert len(failures) == 2 and not any(good in json.dumps(e) for e in oxios_kernel.services["audit"].export())


def test_token_cli(oxios_cli: Any) -> None:
    created = oxios_cli("auth", "token", "create", "deploy", "--role", "superuser")
    assert created.exit_code == 0
    token = created.stdout.strip().splitlines()[0]
    assert token.startswith("oxt_")
    listed = oxios_cli("auth", "token", "list")
    assert "deploy" in listed.output and "superuser" in listed.output and token not in listed.output
    assert oxios_cli("auth", "token", "create", "x", "--role", "nosuchrole").exit_code == 2
    assert oxios_cli("auth", "token", "revoke", "deploy").exit_code == 0
    gone = oxios_cli("auth", "token", "revoke", "deploy")
    assert gone.exit_code == 1 and "error: no token 'deploy'\n" in gone.output  # the name keeps its closing quote


# -- RBAC and tool policies ---------------------------------------------------------------------------

ROLES = {
    "reader": {"tools": ["tier:read", "!secret_*"], "exec_modes": [], "network": False},
    "netless": {"tools": ["*"], "network": False},
}


async def test_roles_and_tool_tiers(oxios_kernel_factory: Any) -> None:
    async with oxios_kernel_factory(config={"security": {"roles": ROLES}}) as kernel:

        async def judge(action: Action, role: str) -> str:
            return (await kernel.check_action(action, kernel.context(agent_id="r1", role=role))).verdict

        read = Action(kind="tool", tool="read_file", tier="read")
        write = Action(kind="tool", tool="write_file", tier="write")
        assert await judge(read, "reader") == "allow"
        assert await judge(write, "reader") == "deny"
        assert await judge(Action(kind="tool", tool="secret_dump", tier="read"), "reader") == "deny"
        assert await judge(Action(kind="exec", argv=["ls"]), "reader") == "deny"
        assert await judge(Action(kind="url", url="https://1.1.1.1/"), "netless") == "deny"
        assert await judge(Action(kind="tool", tool="fetch", tier="network"), "netless") == "deny"
        assert await judge(Action(kind="tool", tool="fetch", tier="network"), "user") == "allow"
        assert await judge(Action(kind="api", name="config.set"), "user") == "deny"
        assert await judge(Action(kind="api", name="config.set"), "admin") == "allow"
        assert await judge(Action(kind="api", name="agents.fork"), "superuser") == "allow"
        assert await judge(write, "no-such-role") == "deny"


async def test_tool_policies(oxios_kernel_factory: Any) -> None:
    policies = {"write_file": "always", "read_file": "auto", "search": "on_demand"}
    async with oxios_kernel_factory(config={"security": {"tool_policies": policies}}) as kernel:
        ctx = kernel.context(agent_id="a")
        verdict = await kernel.check_action(Action(kind="tool", tool="write_file", tier="write"), ctx)
        assert verdict.verdict == "ask" and verdict.policy == "tool_policy"
        assert (await kernel.check_action(Action(kind="tool", tool="read_file", tier="read"), ctx)).verdict == "allow"
        assert (await kernel.check_action(Action(kind="tool", tool="search", tier="read"), ctx)).verdict == "allow"


async def test_permissions_persist_and_apply(oxios_kernel_factory: Any) -> None:
    async with oxios_kernel_factory(config={"security": {"roles": ROLES}}) as kernel:
        rbac = kernel.services["rbac"]
        assert rbac.get("a1")["role"] == "user"
        out = rbac.put("a1", role="reader")
        assert out["role"] == "reader" and out["effective"]["network"] is False
        from oxios.security.rbac import UnknownRole

        with pytest.raises(UnknownRole):
            rbac.put("a1", role="root")
        with pytest.raises(ValueError, match="unknown capabilities"):
            rbac.put("a1", overrides={"fly": True})
        with pytest.raises(ValueError):
            rbac.put("a1", overrides={"network": "maybe"})
        rbac.put("a1", overrides={"tools": ["*"]})
        ctx = kernel.context(agent_id="a1", role="user")
        assert (await kernel.check_action(Action(kind="tool", tool="write_file", tier="write"), ctx)).verdict == "allow"
        assert (await kernel.check_action(Action(kind="url", url="https://1.1.1.1/"), ctx)).verdict == "deny"
    async with oxios_kernel_factory(config={"security": {"roles": ROLES}}) as kernel:
        got = kernel.services["rbac"].get("a1")
        assert got["role"] == "reader" and got["overrides"] == {"tools": ["*"]}
        assert any(e["action"] == "permissions.update" for e in kernel.services["audit"].export())
        assert kernel.services["rbac"].reset("a1") and kernel.services["rbac"].get("a1")["role"] == "user"


def test_permissions_cli(oxios_cli: Any) -> None:
    result = oxios_cli("permissions", "set", "agent-7", "--role", "superuser", "--set", "network=false")
    assert result.exit_code == 0, result.output
    got = json.loads(oxios_cli("permissions", "get", "agent-7").output)
    assert got["role"] == "superuser" and got["effective"]["network"] is False and got["effective"]["manage_agents"]
    assert oxios_cli("permissions", "set", "agent-7", "--role", "nope").exit_code == 1
    assert oxios_cli("permissions", "set", "agent-7").exit_code == 2
    assert "admin" in json.loads(oxios_cli("permissions", "roles").output)
    assert oxios_cli("permissions", "reset", "agent-7").exit_code == 0


# -- decisions are audited; explain runs nothing ---------------------------------------------------------


async def test_check_action_decisions_audited(oxios_kernel: Any) -> None:
    denied = oxios_kernel.subscribe(types={"policy.denied"})
    ctx = oxios_kernel.context(agent_id="a1", session_id="s1")
    await oxios_kernel.check_action(Action(kind="exec", argv=["ls"]), ctx)
    await oxios_kernel.check_action(Action(kind="exec", argv=["ls", ";id"]), ctx)
    await oxios_kernel.check_action(Action(kind="path", path="/etc/passwd"), ctx)
    entries = [e for e in oxios_kernel.services["audit"].export() if e["action"].startswith("policy.")]
    assert [(e["action"], e["allowed"]) for e in entries] == [
        ("policy.exec", True),
        ("policy.exec", False),
        ("policy.path", False),
    ]
    assert "metacharacter" in entries[1]["reason"] and entries[1]["metadata"]["votes"][0]["policy"] == "exec"
    assert oxios_kernel.services["audit"].verify().ok
    first = await denied.get(timeout=10)
    assert first is not None and first.data["kind"] == "exec" and first.data["policy"] == "exec"


def test_policy_explain_cli(oxios_cli: Any, oxios_home: Path) -> None:
    out = json.loads(oxios_cli("policy", "explain", "--json", "exec", "--", "git", "push", "--force").output)
    assert out["verdict"] == "ask" and out["votes"] == [
        {"policy": "exec", "verdict": "ask", "reason": "git push --force rewrites remote history"}
    ]
    assert out["role"] == "user"
    out = json.loads(oxios_cli("policy", "explain", "--json", "exec", "--", "ls", "-la").output)
    assert out["verdict"] == "allow"
    out = json.loads(oxios_cli("policy", "explain", "--json", "path", str(oxios_home / "config.toml")).output)
    assert out["verdict"] == "deny" and "protected" in out["votes"][0]["reason"]
    out = json.loads(oxios_cli("policy", "explain", "--json", "url", "http://[::ffff:127.0.0.1]/").output)
    assert out["verdict"] == "deny" and out["votes"][0]["policy"] == "url"
    text = oxios_cli("policy", "explain", "exec", "--", "git", "-c", "core.sshCommand=x", "fetch")
    assert text.exit_code == 0 and "verdict: deny" in text.output
    assert oxios_cli("policy", "explain", "bogus", "x").exit_code == 2
    # explaining runs nothing and writes no audit entries
    from oxios.config import load
    from oxios.kernel import Paths
    from oxios.security.audit import AuditLog
    from oxios.state import StateStore

    db = Paths.from_config(oxios_home, load(oxios_home / "config.toml", environ={})).db
    assert AuditLog(StateStore(db)).export() == []


async def test_open_checked_uses_role_paths(oxios_kernel_factory: Any, tmp_path: Path) -> None:
    from oxios.security.sandbox import PathDenied, open_checked

    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "a.txt").write_text("shared")
    roles = {"team": {"paths": [str(shared)]}}
    async with oxios_kernel_factory(config={"security": {"roles": roles}}) as kernel:
        with open_checked(kernel.context(role="team"), shared / "a.txt") as fh:
            assert fh.read() == "shared"
        with pytest.raises(PathDenied):
            open_checked(kernel.context(role="user"), shared / "a.txt")
        (kernel.paths.home / "config.toml").touch()
        with pytest.raises(PathDenied, match="protected"):
            open_checked(kernel.context(role="team"), kernel.paths.home / "config.toml")
        with pytest.raises(PathDenied, match="git"):
            open_checked(kernel.context(), ".git/hooks/pre-commit", "w")
        with open_checked(kernel.context(), "notes/../notes.txt", "w") as fh:
            fh.write("ok")
        assert (kernel.paths.workspace / "notes.txt").read_text() == "ok"
