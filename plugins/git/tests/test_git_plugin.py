"""The git plugin inside a kernel: auto-commits on run end, seed tags, tools under policy, CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from oxios_plugin_git import plugin as git_plugin

from oxios_hookspecs import Action, ActionContext, Decision, hookimpl


def git(repo: Path, *args: str) -> str:
    binary = shutil.which("git")
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("git is required in CI but is not installed")
        pytest.skip("git is not installed")
    done = subprocess.run([binary, "-C", str(repo), *args], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


class AuditRecorder:
    """Stands in for the audit chain's append() so the test can read what was recorded."""

    def __init__(self) -> None:
        self.entries: list[tuple[Any, ...]] = []

    def append(self, actor: str, action: str, resource: str, allowed: bool, reason: str, metadata: dict[str, Any]) -> None:
        self.entries.append((actor, action, resource, allowed, reason, metadata))


class DenyWorkspaceWrites:
    @hookimpl
    def check_action(self, action: Action, context: ActionContext) -> Decision | None:
        if action.kind == "path" and action.access == "write":
            return Decision(verdict="deny", reason="read-only test policy", policy="test")
        return None


async def next_event(sub: Any) -> Any:
    event = await sub.get(timeout=10)
    assert event is not None, "expected event did not arrive"
    return event


async def test_agent_run_commits_and_seed_tags(oxios_kernel_factory: Any) -> None:
    async with oxios_kernel_factory(plugins=[git_plugin]) as kernel:
        ws = kernel.paths.workspace
        audit = AuditRecorder()
        kernel.services["audit"] = audit
        sub = kernel.subscribe(types={"git.committed", "git.tagged"})
        (ws / "report.md").write_text("# findings\n")
        kernel.publish("agent.completed", agent_id="agent-1234", session_id="sess-9", seed_id="seed-77", goal="write a report")
        committed = await next_event(sub)
        assert committed.type == "git.committed" and committed.data["agent_id"] == "agent-1234"
        message = git(ws, "log", "-1", "--format=%B")
        assert "Oxios-Agent: agent-1234" in message and "Oxios-Session: sess-9" in message and "Oxios-Seed: seed-77" in message
        assert any(e[1] == "git.commit" and e[0] == "agent-1234" for e in audit.entries)

        # A run that changed nothing makes no commit; the next change is committed again.
        kernel.publish("agent.stopped", agent_id="agent-idle", session_id="s")
        (ws / "report.md").write_text("# findings v2\n")
        kernel.publish("seed.created", seed_id="0123456789abcdef", generation=2, goal="improve it")
        tagged = [await next_event(sub), await next_event(sub)]
        assert [e.type for e in tagged] == ["git.committed", "git.tagged"]
        assert tagged[1].data["tag"] == "seed-0123456789ab-gen2"
        assert len(git(ws, "log", "--format=%H").split()) == 2  # the idle run added nothing
        assert git(ws, "tag", "--list").split() == ["seed-0123456789ab-gen2"]
        git(ws, "fsck", "--full", "--strict")
        assert kernel.status()["components"]["git"]["commits_made"] == 2

        # The first seed of a session is generation 0; later runs of that session name it.
        kernel.publish("seed.created", seed_id="fedcba9876543210", generation=0, session_id="sess-42")
        assert (await next_event(sub)).data["tag"] == "seed-fedcba987654-gen0"
        (ws / "report.md").write_text("# findings v3\n")
        kernel.publish("agent.stopped", agent_id="agent-5678", session_id="sess-42")
        await next_event(sub)
        assert "Oxios-Seed: fedcba9876543210" in git(ws, "log", "-1", "--format=%B")


async def test_tools_and_restore_under_policy(oxios_kernel_factory: Any) -> None:
    async with oxios_kernel_factory(plugins=[git_plugin]) as kernel:
        ws = kernel.paths.workspace
        ctx = kernel.context(agent_id="agent-a", session_id="s1", interactive=False)
        tools = kernel.tools
        assert tools.get("git_restore").spec.tier == "write" and tools.get("git_log").spec.tier == "read"
        (ws / "a.txt").write_text("v1\n")
        first = await tools.get("git_commit").call({"message": "v1"}, ctx)
        assert not first.is_error, first.content
        (ws / "a.txt").write_text("v2\n")
        status = await tools.get("git_status").call({}, ctx)
        assert json.loads(status.content)["unstaged"] == ["a.txt"]
        diff = await tools.get("git_diff").call({}, ctx)
        assert "-v1" in diff.content and "+v2" in diff.content
        await tools.get("git_commit").call({"message": "v2"}, ctx)
        log = json.loads((await tools.get("git_log").call({"limit": 5}, ctx)).content)
        assert [e["summary"] for e in log] == ["v2", "v1"]

        bad = await tools.get("git_restore").call({"ref": "no-such-ref"}, ctx)
        assert bad.is_error and "unknown revision" in bad.content
        wrong_args = await tools.get("git_restore").call({"reff": "HEAD"}, ctx)
        assert wrong_args.is_error

        restored = await tools.get("git_restore").call({"ref": "HEAD~1"}, ctx)
        assert not restored.is_error, restored.content
        assert (ws / "a.txt").read_text() == "v1\n"
        git(ws, "fsck", "--full", "--strict")
        assert git(ws, "status", "--porcelain") == ""
        verify = await kernel.services["git"].verify()
        assert verify["ok"] and verify["integrity_ok"]


async def test_restore_denied_by_policy_changes_nothing(oxios_kernel_factory: Any) -> None:
    async with oxios_kernel_factory(plugins=[git_plugin, DenyWorkspaceWrites()]) as kernel:
        ws = kernel.paths.workspace
        audit = AuditRecorder()
        kernel.services["audit"] = audit
        ctx = kernel.context(agent_id="agent-b", interactive=False)
        (ws / "a.txt").write_text("v1\n")
        kernel.publish("agent.completed", agent_id="x", session_id="s")  # auto-commit is not an agent write
        sub = kernel.subscribe(types={"git.committed"})
        (ws / "a.txt").write_text("v2\n")
        kernel.publish("agent.completed", agent_id="y", session_id="s")
        await next_event(sub)
        head = git(ws, "rev-parse", "HEAD").strip()
        denied = await kernel.tools.get("git_restore").call({"ref": "HEAD~1"}, ctx)
        assert denied.is_error and "denied" in denied.content and "read-only test policy" in denied.content
        commit = await kernel.tools.get("git_commit").call({"message": "sneaky"}, ctx)
        assert commit.is_error
        assert (ws / "a.txt").read_text() == "v2\n" and git(ws, "rev-parse", "HEAD").strip() == head
        assert any(e[0] == "agent-b" and e[3] is False for e in audit.entries)


def test_cli_log_show_verify_restore_in_process(oxios_cli: Any, oxios_home: Path) -> None:
    ws = oxios_home / "workspace"
    ws.mkdir(parents=True, exist_ok=True)
    from oxios_plugin_git.repo import WorkspaceRepo

    repo = WorkspaceRepo(ws)
    (ws / "f.txt").write_text("one\n")
    first = repo.commit_all("first")
    (ws / "f.txt").write_text("two\n")
    repo.commit_all("second")
    repo.tag("seed-cli-gen1", "gen 1", first)
    repo.close()

    out = oxios_cli("git", "log")
    assert out.exit_code == 0 and "second" in out.output and "seed-cli-gen1" in out.output
    assert json.loads(oxios_cli("git", "tags").output)[0]["sha"] == first
    shown = oxios_cli("git", "show", "HEAD")
    assert "+two" in shown.output
    assert oxios_cli("git", "verify").exit_code == 0
    restored = oxios_cli("git", "restore", "seed-cli-gen1")
    assert restored.exit_code == 0, restored.output
    assert (ws / "f.txt").read_text() == "one\n"
    git(ws, "fsck", "--full", "--strict")
    missing = oxios_cli("git", "restore", "nope")
    assert missing.exit_code != 0 and "unknown revision" in missing.output
    (ws / "f.txt").write_text("dirty\n")
    dirty = oxios_cli("git", "verify")
    assert dirty.exit_code == 1 and '"tree_matches": false' in dirty.output


async def test_real_agent_run_is_committed(oxios_kernel_factory: Any, scripted_provider: Any) -> None:
    from oxios_hookspecs import IncomingMessage

    scripted_provider.enqueue_tool_call("write", {"path": "notes/plan.md", "content": "# Plan\n1. ship it\n"})
    scripted_provider.enqueue_text("I wrote the plan.")
    plugins = [scripted_provider.plugin(), git_plugin]
    async with oxios_kernel_factory(plugins=plugins, config=scripted_provider.config()) as kernel:
        ws = kernel.paths.workspace
        sub = kernel.subscribe(types={"git.committed"})
        result = await kernel.services["gateway"].submit(
            IncomingMessage(content="write a plan", channel="test", interactive=False)
        )
        assert result.error is None, result.error
        assert (ws / "notes" / "plan.md").exists()
        committed = await next_event(sub)
        message = git(ws, "log", "-1", "--format=%B")
        assert f"Oxios-Agent: {committed.data['agent_id']}" in message
        assert f"Oxios-Session: {result.session_id}" in message
        assert git(ws, "show", "HEAD:notes/plan.md") == "# Plan\n1. ship it\n"
        git(ws, "fsck", "--full", "--strict")
