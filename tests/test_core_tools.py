"""Core tools against a real kernel and the real policy engine: files, search, exec."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import psutil
import pytest

from oxios.agent.processes import running_groups
from oxios.config import Config
from oxios.security.exec_rules import clamp_timeout, scrub_env


async def call(kernel: Any, name: str, **args: Any) -> Any:
    return await kernel.tools.get(name).call(args, kernel.context(agent_id="agent-test", interactive=False))


def grant_exact(kernel: Any, *argv: str) -> None:
    """An operator's grant for exactly this command: interpreters running a script ask otherwise."""
    from oxios_hookspecs import Action

    kernel.services["approvals"].grant(Action(kind="exec", argv=list(argv)), scope="global", scope_id="*", by="test")


async def test_core_tools_registered_with_tiers(oxios_kernel: Any) -> None:
    tiers = {name: oxios_kernel.tools.get(name).spec.tier for name in ("read", "write", "edit", "grep", "find", "ls", "exec")}
    assert tiers == {
        "read": "read",
        "write": "write",
        "edit": "write",
        "grep": "read",
        "find": "read",
        "ls": "read",
        "exec": "exec",
    }
    assert oxios_kernel.tools.get("exec").spec.plugin == "core_tools"
    assert "binary" in oxios_kernel.tools.get("exec").spec.parameters["properties"]


async def test_write_read_edit_roundtrip(oxios_kernel: Any) -> None:
    ws = oxios_kernel.paths.workspace
    r = await call(oxios_kernel, "write", path="dir/a.txt", content="one\ntwo\ntwo\n")
    assert not r.is_error and (ws / "dir/a.txt").read_text() == "one\ntwo\ntwo\n"
    r = await call(oxios_kernel, "read", path="dir/a.txt")
    assert r.content == "one\ntwo\ntwo\n"
    r = await call(oxios_kernel, "read", path="dir/a.txt", offset=1, limit=1)
    assert r.content.startswith("two\n") and "offset=2" in r.content
    # ambiguous: "two" occurs twice
    r = await call(oxios_kernel, "edit", path="dir/a.txt", old="two", new="2")
    assert r.is_error and "occurs 2 times" in r.content
    # absent
    r = await call(oxios_kernel, "edit", path="dir/a.txt", old="three", new="3")
    assert r.is_error and "not found" in r.content
    r = await call(oxios_kernel, "edit", path="dir/a.txt", old="one\n", new="1\n")
    assert not r.is_error and (ws / "dir/a.txt").read_text() == "1\ntwo\ntwo\n"
    r = await call(oxios_kernel, "edit", path="dir/a.txt", old="two", new="2", replace_all=True)
    assert not r.is_error and (ws / "dir/a.txt").read_text() == "1\n2\n2\n"
    r = await call(oxios_kernel, "read", path="missing.txt")
    assert r.is_error and "not found" in r.content


async def test_grep_find_ls(oxios_kernel: Any) -> None:
    ws = oxios_kernel.paths.workspace
    (ws / "src").mkdir()
    (ws / "src/app.py").write_text("def main():\n    return 42\n")
    (ws / "src/util.py").write_text("def helper():\n    pass\n")
    (ws / "README.md").write_text("# Main project\n")
    (ws / "blob.bin").write_bytes(b"\0def main\0")
    (ws / ".git").mkdir()
    (ws / ".git/config").write_text("def main")
    r = await call(oxios_kernel, "grep", pattern=r"def \w+")
    assert r.content.splitlines() == ["src/app.py:1:def main():", "src/util.py:1:def helper():"]
    r = await call(oxios_kernel, "grep", pattern="main", ignore_case=True, glob="*.md")
    assert r.content == "README.md:1:# Main project"
    r = await call(oxios_kernel, "grep", pattern="(unclosed")
    assert r.is_error and "regular expression" in r.content
    r = await call(oxios_kernel, "find", pattern="*.py")
    assert r.content.splitlines() == ["src/app.py", "src/util.py"]
    r = await call(oxios_kernel, "ls")
    assert "src/" in r.content.splitlines() and any(line.startswith("README.md") for line in r.content.splitlines())


@pytest.mark.parametrize(
    "tool,args",
    [
        ("read", {"path": "/etc/passwd"}),
        ("read", {"path": "../../outside.txt"}),
        ("write", {"path": "/tmp/oxios-escape.txt", "content": "x"}),
        ("ls", {"path": "/"}),
        ("grep", {"pattern": "root", "path": "/etc"}),
    ],
)
async def test_paths_outside_workspace_are_denied(oxios_kernel: Any, tool: str, args: dict[str, Any]) -> None:
    r = await call(oxios_kernel, tool, **args)
    assert r.is_error and "denied" in r.content
    assert not await asyncio.to_thread(os.path.exists, "/tmp/oxios-escape.txt")


async def test_symlink_escape_is_denied(oxios_kernel: Any, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    os.symlink(secret, oxios_kernel.paths.workspace / "link.txt")
    r = await call(oxios_kernel, "read", path="link.txt")
    assert r.is_error and "top secret" not in r.content


async def test_exec_structured_runs_allowlisted_binary(oxios_kernel: Any) -> None:
    r = await call(oxios_kernel, "exec", binary="echo", args=["hello", "world"])
    assert not r.is_error, r.content
    assert r.content == "[exit code 0]\nhello world\n"
    assert r.data["exit_code"] == 0
    r = await call(oxios_kernel, "exec", binary="ls", args=["-1"], cwd=".")
    assert not r.is_error


async def test_exec_denials_are_tool_errors(oxios_kernel: Any) -> None:
    r = await call(oxios_kernel, "exec", binary="rm", args=["-rf", "/"])
    assert r.is_error and "denied" in r.content
    r = await call(oxios_kernel, "exec", command="echo hi && rm -rf /")  # shell mode is off by default
    assert r.is_error and "denied" in r.content
    r = await call(oxios_kernel, "exec", binary="echo", command="echo")
    assert r.is_error and "either" in r.content
    r = await call(oxios_kernel, "exec", binary="echo", cwd="/")
    assert r.is_error and "denied" in r.content


async def test_exec_output_truncated_with_marker(oxios_kernel_factory: Any) -> None:
    async with oxios_kernel_factory(config={"exec": {"max_output_bytes": 1000}}) as kernel:
        (kernel.paths.workspace / "loud.py").write_text("print('x' * 5000)\n")
        grant_exact(kernel, "python3", "loud.py")
        r = await call(kernel, "exec", binary="python3", args=["loud.py"])
        assert r.data["truncated"] is True
        body = r.content.split("\n", 1)[1]
        assert body.startswith("x" * 1000) and "x" * 1001 not in body
        assert "[... output truncated: 4001 of 5001 bytes omitted]" in r.content


async def test_exec_timeout_kills_process_group(oxios_kernel_factory: Any) -> None:
    script = "import subprocess, time; subprocess.Popen(['sleep', '300']); print('started', flush=True); time.sleep(300)"
    # 3 s, not 1: the script must get to print "started" on a loaded machine before the kill.
    async with oxios_kernel_factory(config={"exec": {"max_timeout_secs": 3}}) as kernel:
        (kernel.paths.workspace / "slow.py").write_text(script)
        grant_exact(kernel, "python3", "slow.py")
        before = {p.pid for p in psutil.process_iter() if p.name() == "sleep"}
        r = await call(kernel, "exec", binary="python3", args=["slow.py"], timeout_secs=999)  # clamped to 3 s
        assert r.is_error and r.data["timed_out"] and "killed after the 3 s timeout" in r.content
        assert "started" in r.content
        leftovers = [
            p for p in psutil.process_iter() if p.name() == "sleep" and p.pid not in before and p.status() != psutil.STATUS_ZOMBIE
        ]
        assert leftovers == []


def test_timeout_clamp_and_env_scrub(monkeypatch: pytest.MonkeyPatch) -> None:
    config = Config()  # exec: default 120 s, max 600 s; security.max_execution_time_secs 300 s
    assert clamp_timeout(0, config) == 120
    assert clamp_timeout(0.1, config) == 1
    assert clamp_timeout(10_000, config) == 300  # the security ceiling wins over exec.max_timeout_secs
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    monkeypatch.setenv("MY_TOOL_HOME", "/opt/tool")
    monkeypatch.setenv("LD_PRELOAD", "/tmp/evil.so")
    env = scrub_env(["MY_TOOL_HOME", "LD_PRELOAD"])  # a loader variable is dropped even when configured
    assert "LD_PRELOAD" not in env
    assert env["TERM"] == "dumb" and env["MY_TOOL_HOME"] == "/opt/tool"
    hooks_off = {"GIT_CONFIG_COUNT", "GIT_CONFIG_KEY_0", "GIT_CONFIG_VALUE_0"}  # git run by agents runs no hooks
    assert "OPENAI_API_KEY" not in env and set(env) <= {"HOME", "USER", "LANG", "PATH", "TERM", "MY_TOOL_HOME", *hooks_off}


async def test_exec_env_is_scrubbed(oxios_kernel: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-leak")
    (oxios_kernel.paths.workspace / "env.py").write_text("import os\nprint(sorted(os.environ))\n")
    grant_exact(oxios_kernel, "python3", "env.py")
    r = await call(oxios_kernel, "exec", binary="python3", args=["env.py"])
    assert "ANTHROPIC_API_KEY" not in r.content and "'TERM'" in r.content


async def test_killing_an_agent_kills_its_commands(scripted_provider: Any, oxios_kernel_factory: Any) -> None:
    script = "import subprocess, time; subprocess.Popen(['sleep', '300']); time.sleep(300)"
    scripted_provider.enqueue_tool_call("exec", {"binary": "python3", "args": ["slow.py"]})
    async with oxios_kernel_factory(plugins=[scripted_provider.plugin()], config=scripted_provider.config()) as kernel:
        (kernel.paths.workspace / "slow.py").write_text(script)
        grant_exact(kernel, "python3", "slow.py")
        agents = kernel.service("agents")
        agent_id = await agents.spawn("run a long command")
        for _ in range(500):  # until the command and its grandchild run
            groups = running_groups(agent_id)
            members = [p for p in psutil.process_iter() if groups and _pgid(p.pid) in groups]
            if len(members) >= 2:
                break
            await asyncio.sleep(0.01)
        else:
            pytest.fail("the command never started")
        assert await agents.kill(agent_id) is True
        record = await agents.wait(agent_id, timeout=10)
        assert record["status"] == "killed"
        alive = [p for p in members if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        assert alive == []
        assert running_groups(agent_id) == set()


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


async def test_exec_shell_mode_when_policy_allows(oxios_kernel_factory: Any) -> None:
    async with oxios_kernel_factory(config={"exec": {"shell_mode": True}}) as kernel:
        tool = kernel.tools.get("exec")
        admin = kernel.context(agent_id="agent-admin", role="admin", interactive=False)
        r = await tool.call({"command": "echo one | wc -l"}, admin)
        assert not r.is_error, r.content
        assert r.content.split("\n", 1)[1].strip() == "1"
        # the same command from a role without shell mode is denied
        r = await tool.call({"command": "echo one | wc -l"}, kernel.context(agent_id="agent-user", interactive=False))
        assert r.is_error and "denied" in r.content


async def test_symlink_swapped_after_the_check_is_refused_at_use_time(oxios_kernel: Any, tmp_path: Any) -> None:
    """The policy check passes for a real file; the file becomes a symlink out before it is opened."""
    from oxios.builtin import core_tools

    outside = tmp_path / "outside-secret.txt"
    outside.write_text("top secret")
    target = oxios_kernel.paths.workspace / "note.txt"
    target.write_text("harmless")
    original = core_tools._check_path

    async def check_then_swap(path: str, access: str, context: Any) -> Any:
        checked = await original(path, access, context)
        checked.unlink()
        checked.symlink_to(outside)  # the attacker wins the race
        return checked

    core_tools._check_path = check_then_swap
    try:
        read = await call(oxios_kernel, "read", path="note.txt")
        assert read.is_error and "top secret" not in read.content
        target.unlink()
        target.write_text("harmless")
        written = await call(oxios_kernel, "edit", path="note.txt", old="harmless", new="owned")
        assert written.is_error
    finally:
        core_tools._check_path = original
    assert outside.read_text() == "top secret"
