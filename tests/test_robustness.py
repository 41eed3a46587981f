"""Bad conditions a user meets: a daemon killed mid-write, a home it cannot write, broken config files.

Each test drives the real ``oxios`` command (a subprocess on a temporary OXIOS_HOME) the way a user
would, and checks two things: the error is a sentence that says what to fix (no traceback), and
nothing acknowledged before the failure is lost.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_helpers import daemon_env, oxios
from fakes.openai_server import FakeOpenAI

from oxios.control import ControlError, call
from oxios_hookspecs import Action, Decision, IncomingMessage, ToolResultBlock, hookimpl


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return daemon_env(tmp_path)


def poll(check: Callable[[], Any], timeout: float = 30, what: str = "condition") -> Any:
    """``check()``'s first truthy value; fails the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def no_traceback(out: subprocess.CompletedProcess[str]) -> None:
    text = out.stdout + out.stderr
    assert "Traceback" not in text and 'File "' not in text, text


# -- a daemon killed with SIGKILL while it writes ------------------------------------------------------


@pytest.fixture
def hanging_llm() -> Iterator[FakeOpenAI]:
    """A fake OpenAI server whose first answer never comes in time: the agent asking stays ``running``."""
    server = FakeOpenAI().start()
    server.enqueue_slow(600, "too late")
    try:
        yield server
    finally:
        server.stop()


class MemoryWriter(threading.Thread):
    """Adds memories through the daemon's control socket until it stops answering; remembers what it acknowledged."""

    def __init__(self, sock: Path) -> None:
        super().__init__(name="memory-writer", daemon=True)
        self.sock = sock
        self.acknowledged: dict[str, str] = {}  # id -> content
        self.failed: str | None = None

    def run(self) -> None:
        n = 0
        while self.failed is None:
            content = f"deployment note {n}: service-{n} listens on port {20000 + n} in rack r{n % 7}"
            try:
                record = call(self.sock, "memory.add", timeout=10, content=content)
            except ControlError as err:
                self.failed = str(err)
                return
            self.acknowledged[record["id"]] = content
            n += 1


@pytest.mark.slow
def test_sigkill_while_agents_cron_memory_and_audit_write(env: dict[str, str], hanging_llm: FakeOpenAI) -> None:
    env = {**env, **hanging_llm.env()}
    home = Path(env["OXIOS_HOME"])
    sock, pidfile = home / "run" / "oxios.sock", home / "run" / "oxios.pid"
    started = oxios(env, "start")
    assert started.returncode == 0, started.stderr
    pid = json.loads(pidfile.read_text())["pid"]
    writer: MemoryWriter | None = None
    try:
        # A cron run whose agent is inside a provider call: both rows say "running".
        added = oxios(env, "cron", "add", "nightly", "--schedule", "0 3 * * *", "--goal", "summarize the logs")
        assert added.returncode == 0, added.stderr
        trigger = oxios(env, "cron", "trigger", "nightly")
        assert trigger.returncode == 0, trigger.stderr
        poll(lambda: len(hanging_llm.requests) >= 1, what="the agent's provider call")
        agents = call(sock, "agents.list")
        assert [a["status"] for a in agents] == ["running"]
        running_agent = agents[0]["id"]
        runs = call(sock, "cron.runs", name="nightly")
        assert [r["status"] for r in runs] == ["running"]
        # Memory writes (each one audited) go on while the daemon dies.
        writer = MemoryWriter(sock)
        writer.start()
        poll(lambda: len(writer.acknowledged) >= 20, what="memory writes")
        os.kill(pid, signal.SIGKILL)
        assert poll(lambda: pid_gone(pid), what="the daemon to die")
        writer.join(timeout=30)
        assert not writer.is_alive() and writer.failed
    finally:
        if not pid_gone(pid):
            os.kill(pid, signal.SIGKILL)
    acknowledged = dict(writer.acknowledged)
    assert pidfile.exists() and sock.exists()  # what a SIGKILL leaves behind
    status = oxios(env, "status")
    assert status.returncode == 3 and "stale pidfile" in status.stderr
    assert not pidfile.exists() and not sock.exists()

    # The database is whole, with every migration recorded.
    db = sqlite3.connect(home / "state.db")
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        namespaces = {row[0] for row in db.execute("SELECT namespace FROM schema_version")}
    finally:
        db.close()
    assert {"core", "agents", "cron"} <= namespaces
    # The audit chain verifies without a daemon (the CLI opens state.db itself).
    verified = oxios(env, "audit", "verify")
    assert verified.returncode == 0 and verified.stdout.startswith("ok:"), verified.stdout + verified.stderr

    restarted = oxios(env, "start")
    assert restarted.returncode == 0, restarted.stderr
    new_pid = json.loads(pidfile.read_text())["pid"]
    assert new_pid != pid
    try:
        # Agents that ran are marked, not left running.
        agent = call(sock, "agents.get", agent_id=running_agent)
        assert agent["status"] == "lost" and "process ended" in agent["error"]
        listed = oxios(env, "agent", "list", "--json")
        assert all(a["status"] != "running" for a in json.loads(listed.stdout))

        # The cron run in progress is marked interrupted at once, not after the dead daemon's lease expires.
        def settled() -> list[dict[str, Any]] | None:
            runs = call(sock, "cron.runs", name="nightly")
            return runs if runs[0]["status"] != "running" else None

        runs = poll(settled, timeout=20, what="the interrupted cron run to be settled")  # lease_secs is 90
        assert [r["status"] for r in runs] == ["cancelled"] and "interrupted" in runs[0]["error"]
        assert call(sock, "cron.get", name="nightly")["state"] != "running"

        # Every acknowledged memory is there, and the index catches up with the database.
        def index_ready() -> dict[str, Any] | None:
            memory = call(sock, "status")["components"]["memory"]
            return memory if memory["index_state"] == "ready" else None

        memory = poll(index_ready, what="the memory index")
        assert memory["total_entries"] >= len(acknowledged)
        assert memory["index_size"] == memory["total_entries"]
        last_id = max(acknowledged, key=lambda i: int(acknowledged[i].split()[2].rstrip(":")))
        for record_id in acknowledged:
            assert call(sock, "memory.get", id=record_id)["content"] == acknowledged[record_id]
        hits = call(sock, "memory.search", query=acknowledged[last_id], mode="semantic", k=3)
        assert last_id in [h["record"]["id"] for h in hits]
        # New writes land on the same chain, which still verifies.
        assert call(sock, "memory.add", content="written after the crash")["id"]
        verified = oxios(env, "audit", "verify")
        assert verified.returncode == 0, verified.stdout + verified.stderr
    finally:
        stopped = oxios(env, "stop")
    assert stopped.returncode == 0
    assert not pidfile.exists() and not sock.exists()


# -- a full disk, a read-only home ---------------------------------------------------------------------

# Runs inside a private mount namespace (``unshare``), so the tmpfs it mounts vanishes with it.
# argv: mount point, scenario; prints one JSON object: step name -> {rc, out, err}.
DISK_DRIVER = r"""
import errno, json, os, subprocess, sys

mnt, scenario = sys.argv[1], sys.argv[2]
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", mnt], check=True)
results = {}

def run(step, *args):
    p = subprocess.run([sys.executable, "-m", "oxios", *args], capture_output=True, text=True, timeout=90,
                       stdin=subprocess.DEVNULL)
    results[step] = {"rc": p.returncode, "out": p.stdout, "err": p.stderr}

def remount(options):
    subprocess.run(["mount", "-o", "remount," + options, mnt], check=True)

def fill():
    with open(os.path.join(mnt, "filler"), "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError as err:
            assert err.errno == errno.ENOSPC, err

if scenario == "empty-read-only":
    remount("ro")
    run("foreground", "--foreground")
    run("start", "start")
elif scenario == "read-only":
    run("first", "start")
    run("add", "memory", "add", "The backup host is vault-2")
    run("stop", "stop")
    remount("ro")
    run("foreground", "--foreground")
    run("start", "start")
    remount("rw")
    run("again", "start")
    run("list", "memory", "list", "--json")
    run("stop-again", "stop")
elif scenario == "full":
    run("first", "start")
    run("add", "memory", "add", "The backup host is vault-2")
    run("stop", "stop")
    fill()
    run("foreground", "--foreground")
    run("start", "start")
    os.remove(os.path.join(mnt, "filler"))
    run("again", "start")
    run("list", "memory", "list", "--json")
    run("stop-again", "stop")
print(json.dumps(results))
"""


def run_on_small_disk(env: dict[str, str], tmp_path: Path, scenario: str) -> dict[str, dict[str, Any]]:
    """Run ``DISK_DRIVER``'s scenario with OXIOS_HOME on a private tmpfs; skip where namespaces are not allowed."""
    import shutil

    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("unshare (util-linux) is not installed")
    mnt = tmp_path / "disk"
    mnt.mkdir()
    probe = subprocess.run(
        [unshare, "--mount", "--map-root-user", "mount", "-t", "tmpfs", "tmpfs", str(mnt)], capture_output=True
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a private tmpfs here: {probe.stderr.decode(errors='replace').strip()}")
    env = {**env, "OXIOS_HOME": str(mnt / "home")}
    proc = subprocess.run(
        [unshare, "--mount", "--map-root-user", sys.executable, "-c", DISK_DRIVER, str(mnt), scenario],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def refused(step: dict[str, Any], *words: str) -> str:
    """A refused start: exit 1, an ``error:`` sentence with ``words``, no traceback."""
    text = step["out"] + step["err"]
    assert step["rc"] == 1, text
    assert "Traceback" not in text and 'File "' not in text and "Logging error" not in text, text
    line = next((ln for ln in step["err"].splitlines() if ln.startswith("error: ")), "")
    assert all(w in line for w in words), text
    return line


@pytest.mark.slow
def test_an_empty_read_only_home_is_refused_in_a_sentence(env: dict[str, str], tmp_path: Path) -> None:
    steps = run_on_small_disk(env, tmp_path, "empty-read-only")
    for name in ("foreground", "start"):
        refused(steps[name], "config.toml", "Read-only file system", "writable")


@pytest.mark.slow
def test_a_read_only_home_is_refused_and_nothing_is_lost(env: dict[str, str], tmp_path: Path) -> None:
    steps = run_on_small_disk(env, tmp_path, "read-only")
    assert steps["first"]["rc"] == 0 and steps["add"]["rc"] == 0, steps
    home = str(tmp_path / "disk" / "home")
    for name in ("foreground", "start"):
        refused(steps[name], "Oxios could not start", "Read-only file system", home, "writable")
    assert steps["again"]["rc"] == 0, steps["again"]
    assert [r["content"] for r in json.loads(steps["list"]["out"])] == ["The backup host is vault-2"]


@pytest.mark.slow
def test_a_full_disk_is_refused_and_nothing_is_lost(env: dict[str, str], tmp_path: Path) -> None:
    steps = run_on_small_disk(env, tmp_path, "full")
    assert steps["first"]["rc"] == 0 and steps["add"]["rc"] == 0, steps
    home = str(tmp_path / "disk" / "home")
    refused(steps["foreground"], "Oxios could not start", "state database", "free space")
    refused(steps["start"], "full", home)
    # Once there is room again the daemon starts, and what it held before is all there.
    assert steps["again"]["rc"] == 0, steps["again"]
    assert [r["content"] for r in json.loads(steps["list"]["out"])] == ["The backup host is vault-2"]
    assert steps["stop-again"]["rc"] == 0


# -- plugins that break: at import, in each hook family, or by hanging ----------------------------------


class OneChannel:
    """A channel whose ``start`` raises, hangs, or works."""

    supports_streaming = False

    def __init__(self, name: str, mode: str = "ok") -> None:
        self.name = name
        self.mode = mode
        self.started = False
        self.start_cancelled = False
        self.stopped = False

    async def start(self, gateway: Any) -> None:
        if self.mode == "raise":
            raise ConnectionRefusedError("the chat service refused the connection")
        if self.mode == "hang":
            try:
                await asyncio.Event().wait()  # never set: a start() that never returns
            except asyncio.CancelledError:
                self.start_cancelled = True
                raise
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def send(self, outgoing: Any) -> None:
        pass


class BrokenHooks:
    """One plugin whose every registration hook fails, next to hooks that work."""

    __name__ = "broken-hooks"

    @hookimpl
    def register_tools(self, register: Any) -> None:
        raise RuntimeError("tools exploded")

    @hookimpl
    def register_channels(self, register: Any) -> None:
        raise RuntimeError("channels exploded")

    @hookimpl
    def register_providers(self, register: Any) -> None:
        def factory(name: str, settings: dict[str, Any]) -> Any:
            raise ValueError("cannot build the client: base_url is required")

        register("explodes", factory)


class GoodHooks:
    __name__ = "good-hooks"

    def __init__(self, *channels: OneChannel) -> None:
        self.channels = channels

    @hookimpl
    def register_tools(self, register: Any) -> None:
        def echo(text: str) -> str:
            """Echo the text."""
            return text

        def explode(text: str) -> str:
            """Always fails."""
            raise RuntimeError("the tool broke")

        register(echo, tier="read")
        register(explode, tier="read")

    @hookimpl
    def register_channels(self, register: Any) -> None:
        for channel in self.channels:
            register(channel)


async def test_hooks_that_raise_are_reported_and_the_rest_still_runs(oxios_kernel_factory: Any, scripted_provider: Any) -> None:
    good = OneChannel("good")
    failing = OneChannel("failing", "raise")
    config = scripted_provider.config()
    config["providers"]["boom"] = {"kind": "explodes"}
    plugins = [BrokenHooks(), GoodHooks(good, failing), scripted_provider.plugin()]
    async with oxios_kernel_factory(plugins=plugins, config=config, channels=True) as kernel:
        failures = {f.error for f in kernel.plugins.failures if f.name == "broken-hooks"}
        assert "register_tools: RuntimeError: tools exploded" in failures
        assert "register_channels: RuntimeError: channels exploded" in failures
        status = kernel.status()
        assert {f["error"] for f in status["plugin_failures"]} >= failures
        # The other plugin's tools and channels are there; the failing channel is reported, not hidden.
        assert {"echo", "explode"} <= set(kernel.tools.tools)
        assert good.started and status["channels"]["good"]["state"] == "running"
        assert status["channels"]["failing"] == {
            "state": "failed",
            "detail": "ConnectionRefusedError: the chat service refused the connection",
        }
        # The provider whose factory raised is named with its reason; asking for it is a clear error.
        registry = kernel.service("providers")
        with pytest.raises(LookupError, match=r"providers\.boom: cannot build the client: base_url is required"):
            registry.get("boom")
        # A tool that raises at call time is an error result the model sees, not a crashed agent.
        scripted_provider.enqueue_tool_call("explode", {"text": "x"})
        scripted_provider.enqueue_text("The tool failed.")
        message = IncomingMessage(content="try it", channel="test", interactive=False)
        result = await kernel.service("gateway").submit(message)
        assert result.exit_code == 0 and result.response == "The tool failed."
        [tool_result] = [b for m in scripted_provider.requests[1].messages for b in m.content if isinstance(b, ToolResultBlock)]
        assert tool_result.is_error and "the tool broke" in tool_result.content
    assert good.stopped and failing.stopped


async def test_a_channel_whose_start_hangs_does_not_hold_up_the_kernel(
    oxios_kernel_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from oxios.kernel import Kernel

    monkeypatch.setattr(Kernel, "channel_start_timeout", 0.2)
    hanging, good = OneChannel("hanging", "hang"), OneChannel("good")
    failed: list[Any] = []
    async with oxios_kernel_factory(plugins=[GoodHooks(hanging, good)], channels=True) as kernel:
        failed = [e for e in kernel.events.since(0)[0] if e.type == "channel.failed"]
        assert good.started and hanging.start_cancelled and not hanging.started
        status = kernel.status()
        assert status["status"] == "running" and status["channels"]["good"]["state"] == "running"
        assert status["channels"]["hanging"]["state"] == "failed"
        assert "did not start within 0.2s" in status["channels"]["hanging"]["detail"]
    assert [e.data["channel"] for e in failed] == ["hanging"]


class BadVotes:
    """A policy that answers nonsense instead of a Decision (or raises), for one tool each."""

    __name__ = "bad-votes"

    @hookimpl
    async def check_action(self, action: Any, context: Any) -> Any:
        if action.tool == "answers-a-string":
            return "allow"
        if action.tool == "answers-a-dict":
            return {"verdict": "allow"}
        if action.tool == "unknown-verdict":
            return Decision(verdict="sure", reason="why not")
        if action.tool == "raises":
            raise KeyError("policy bug")
        return None


@pytest.mark.parametrize("tool", ["answers-a-string", "answers-a-dict", "unknown-verdict", "raises"])
async def test_a_policy_that_misbehaves_fails_closed(oxios_kernel_factory: Any, tool: str) -> None:
    async with oxios_kernel_factory(plugins=[BadVotes()]) as kernel:
        verdict = await kernel.check_action(Action(kind="tool", tool=tool, tier="read"), kernel.context())
        assert verdict.verdict == "deny" and "bad-votes" in verdict.policy + verdict.reason
        # The deny is audited like any decision.
        row = kernel.state.one("SELECT allowed, reason FROM audit_log WHERE action = 'policy.tool' ORDER BY seq DESC LIMIT 1")
        assert row is not None and row["allowed"] == 0


class HangingHooks:
    """A plugin whose hooks never return (a network call without a timeout); it notes when it is cancelled."""

    __name__ = "hanging-hooks"

    def __init__(self, *hooks: str) -> None:
        self.hooks = set(hooks)
        self.cancelled: list[str] = []

    async def _hang(self, hook: str) -> None:
        try:
            await asyncio.Event().wait()  # never set
        except asyncio.CancelledError:
            self.cancelled.append(hook)
            raise

    @hookimpl
    async def check_action(self, action: Any, context: Any) -> Any:
        if "check_action" in self.hooks:
            await self._hang("check_action")
        return Decision(verdict="allow", reason="fine")

    @hookimpl
    async def startup(self, kernel: Any) -> None:
        if "startup" in self.hooks:
            await self._hang("startup")

    @hookimpl
    async def shutdown(self, kernel: Any) -> None:
        if "shutdown" in self.hooks:
            await self._hang("shutdown")


async def test_a_policy_that_hangs_votes_deny_and_is_audited(oxios_kernel_factory: Any) -> None:
    hanging = HangingHooks("check_action")
    config = {"security": {"policy_timeout_secs": 0.2}}
    async with oxios_kernel_factory(plugins=[hanging], config=config) as kernel:
        # A read inside the workspace is allowed when nobody objects: only the hang can turn it into a deny.
        action = Action(kind="tool", tool="read_file", tier="read")
        for _ in range(2):  # every action gets an answer, not just the first
            verdict = await kernel.check_action(action, kernel.context())
            assert verdict.verdict == "deny"
            assert verdict.policy == "hanging-hooks"
            assert verdict.reason == "policy hanging-hooks did not answer within 0.2s"
        row = kernel.state.one("SELECT allowed, reason FROM audit_log WHERE action = 'policy.tool' ORDER BY seq DESC LIMIT 1")
        assert row is not None and row["allowed"] == 0 and "did not answer within 0.2s" in row["reason"]
        denied = [e for e in kernel.events.since(0)[0] if e.type == "policy.denied"]
        assert denied and denied[-1].data["policy"] == "hanging-hooks"
        await asyncio.sleep(0)  # let the cancelled hook unwind
        assert hanging.cancelled == ["check_action", "check_action"]


async def test_a_policy_that_answers_in_time_is_not_cut_off(oxios_kernel_factory: Any) -> None:
    async with oxios_kernel_factory(plugins=[HangingHooks()], config={"security": {"policy_timeout_secs": 5}}) as kernel:
        verdict = await kernel.check_action(Action(kind="tool", tool="read_file", tier="read"), kernel.context())
        assert verdict.verdict == "allow"


def test_policy_timeout_must_be_positive(tmp_path: Path) -> None:
    from oxios.config import ConfigError, load

    path = tmp_path / "config.toml"
    for bad in ("0", "-1"):
        path.write_text(f"[security]\npolicy_timeout_secs = {bad}\n")
        with pytest.raises(ConfigError, match=r"security\.policy_timeout_secs"):
            load(path)


@pytest.mark.parametrize("hook", ["startup", "shutdown"])
async def test_a_lifecycle_hook_that_hangs_is_skipped_and_reported(
    oxios_kernel_factory: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, hook: str
) -> None:
    from oxios.kernel import Kernel

    monkeypatch.setattr(Kernel, "lifecycle_hook_timeout", 0.2)
    hanging = HangingHooks(hook)
    async with oxios_kernel_factory(plugins=[hanging]) as kernel:
        assert kernel.status()["status"] == "running"
    # Start and stop both returned; the failure is on the plugin list `oxios status` prints.
    failures = [f for f in kernel.status()["plugin_failures"] if f["name"] == "hanging-hooks"]
    assert failures == [
        {
            "name": "hanging-hooks",
            "distribution": None,
            "version": None,
            "error": f"{hook} did not finish within 0.2s (skipped)",
            "stage": hook,
        }
    ]
    assert f"plugin hanging-hooks {hook} did not finish within 0.2s" in caplog.text
    assert hanging.cancelled == [hook]


def test_status_names_the_lifecycle_hook_a_plugin_failed_in(oxios_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from oxios import control, daemon
    from oxios.cli import build_app

    status = {
        "status": "running",
        "pid": 1,
        "version": "0",
        "uptime_secs": 1,
        "plugin_failures": [
            {
                "name": "slow",
                "distribution": None,
                "version": None,
                "error": "startup did not finish within 30s (skipped)",
                "stage": "startup",
            },
            {"name": "kaput", "distribution": None, "version": None, "error": "ImportError: x", "stage": "load"},
        ],
    }
    # The status a running daemon answers on its control socket (the kernel test above shows it is filled in).
    monkeypatch.setattr(daemon, "running", lambda paths: {"pid": 1})
    monkeypatch.setattr(control, "call", lambda *a, **k: status)
    result = CliRunner().invoke(build_app(), ["status"])
    assert "plugin slow failed in startup: startup did not finish within 30s (skipped)" in result.output
    assert "plugin kaput failed to load: ImportError: x" in result.output


@pytest.mark.slow
def test_a_plugin_that_fails_to_import_does_not_stop_the_daemon(env: dict[str, str], tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "oxios_plugin_kaput.py").write_text("raise ImportError('needs libkaput.so, which is not installed')\n")
    info = site / "oxios_plugin_kaput-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: oxios-plugin-kaput\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[oxios]\nkaput = oxios_plugin_kaput\n")
    (info / "RECORD").write_text("")
    env = {**env, "PYTHONPATH": str(site), "OXIOS_LOAD_PLUGINS": "kaput"}
    started = oxios(env, "start")
    try:
        assert started.returncode == 0, started.stderr
        status = oxios(env, "status")
        assert "plugin kaput failed to load: ImportError: needs libkaput.so" in status.stdout
        no_traceback(status)
    finally:
        oxios(env, "stop")


# -- broken config files -----------------------------------------------------------------------------

BROKEN_CONFIGS = {
    "unknown section": ("[gatway]\nport = 4300\n", ["gatway: unknown key"]),
    "wrong type": ("[scheduler]\nmax_concurrent = 'five'\n", ["scheduler.max_concurrent", "int"]),
    "bad TOML syntax": ("[gateway\nport = 4300\n", ["not valid TOML", "line 1"]),
    "unknown key in a named table": (
        '[providers.local]\nkind = "openai"\nbse_url = "http://127.0.0.1:11434/v1"\n',
        ["providers.local.bse_url: unknown key"],
    ),
    "unknown key in a cron job": (
        '[cron.jobs.news]\nschedule = "0 9 * * *"\ngoal = "news"\npriorty = "low"\n',
        ["cron.jobs.news.priorty: unknown key"],
    ),
    "not UTF-8": (b"[kernel]\nlog_level = '\xff\xfe'\n", ["not UTF-8"]),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(BROKEN_CONFIGS))
def test_a_broken_config_file_is_named_with_its_key(env: dict[str, str], case: str) -> None:
    text, words = BROKEN_CONFIGS[case]
    home = Path(env["OXIOS_HOME"])
    home.mkdir(parents=True)
    path = home / "config.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    out = oxios(env, "start")
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stderr.startswith("error: invalid config:") and str(path) in out.stderr
    assert all(w in out.stderr for w in words), out.stderr
    no_traceback(out)
    assert not (home / "run" / "oxios.pid").exists()
    assert path.read_bytes() == (text if isinstance(text, bytes) else text.encode())  # the user's file is left alone


@pytest.mark.slow
def test_a_config_path_that_is_a_directory_is_a_clear_error(env: dict[str, str]) -> None:
    home = Path(env["OXIOS_HOME"])
    (home / "config.toml").mkdir(parents=True)
    out = oxios(env, "--foreground")
    assert out.returncode == 2 and "cannot read it" in out.stderr and str(home / "config.toml") in out.stderr
    no_traceback(out)


# -- providers that answer garbage -----------------------------------------------------------------

# (status 200, content type, body): what a proxy, a wrong base_url or a broken server sends back.
GARBAGE = {
    "an HTML page": ("text/html", "<html><body>502 Bad Gateway</body></html>"),
    "truncated JSON": ("application/json", '{"id": "x", "choices": [ {'),
    "JSON of another shape": ("application/json", '{"error": {"message": "quota"}}'),
    "an SSE stream of garbage": ("text/event-stream", "data: {not json\n\n"),
    "nothing at all": ("application/json", ""),
}


@pytest.fixture
def garbage_server() -> Iterator[tuple[str, dict[str, str]]]:
    """A server on both APIs' paths that answers whatever ``reply["case"]`` names from ``GARBAGE``."""
    from fakes.server import ThreadedServer
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    reply = {"case": ""}

    async def answer(request: Any) -> Response:
        media_type, body = GARBAGE[reply["case"]]
        return Response(body, media_type=media_type)

    app = Starlette(routes=[Route(path, answer, methods=["POST"]) for path in ("/v1/chat/completions", "/v1/messages")])
    server = ThreadedServer(app)
    server.start()
    try:
        yield f"http://127.0.0.1:{server.port}", reply
    finally:
        server.stop()


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
@pytest.mark.parametrize("case", list(GARBAGE))
async def test_a_provider_answering_garbage_is_a_clear_error(
    garbage_server: tuple[str, dict[str, str]], oxios_home: Path, kind: str, case: str
) -> None:
    from oxios.builtin.providers import _anthropic, _openai
    from oxios.config import load
    from oxios.providers import ProviderError
    from oxios.providers.registry import ProviderRegistry
    from oxios_hookspecs import Message, ModelRequest

    base, reply = garbage_server
    reply["case"] = case
    entry = {"kind": kind, "base_url": base + ("/v1" if kind == "openai" else ""), "api_key": "sk-garbage-0123456789"}
    overrides = {"providers": {"odd": {**entry, "default_model": "m"}}, "llm": {"max_retries": 0}}
    registry = ProviderRegistry(
        load(oxios_home / "config.toml", overrides=overrides), {"openai": _openai, "anthropic": _anthropic}
    )
    request = ModelRequest(model="m", messages=[Message.user("hello")])
    try:
        with pytest.raises(ProviderError) as complete_err:
            await registry.complete(request)
        with pytest.raises(ProviderError) as stream_err:
            async for _event in registry.stream(request):
                pass
    finally:
        await registry.stop()
    for err in (complete_err.value, stream_err.value):
        message = str(err)
        assert message.startswith("provider 'odd'") and "sk-garbage" not in message, message
    # A non-streaming answer names what came back and what to check.
    assert "sent a response that is not" in str(complete_err.value) and "providers.odd.base_url" in str(complete_err.value)
