"""Live config reload: what applies to a running kernel at once, what waits for a restart, what is refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from daemon_helpers import free_port

from oxios import config as cfg
from oxios.config import ConfigError
from oxios.reload import RESTART, RULES, changed_keys, rule_for
from oxios_hookspecs import Action

MAKE = Action(kind="exec", argv=["make", "--version"], mode="structured", tool="exec")


def write(home: Path, text: str) -> None:
    (home / "config.toml").write_text(text, encoding="utf-8")


def reload_entries(kernel: Any) -> list[dict[str, Any]]:
    return kernel.services["audit"].entries(action="config.reload", newest_first=False)


async def test_an_exec_allowlist_change_decides_the_next_check(oxios_kernel_factory, oxios_home: Path) -> None:
    async with oxios_kernel_factory() as kernel:
        ctx = kernel.context(agent_id="a1")
        before = await kernel.check_action(MAKE, ctx)
        assert before.verdict == "deny" and "make" in before.reason
        events = kernel.subscribe(types={"config.reloaded"})
        write(oxios_home, '[exec]\nallowed_commands = ["ls", "make"]\n')
        result = await kernel.reload_config(actor="test")
        assert result.changed == ["exec.allowed_commands"]
        assert result.applied == ["exec.allowed_commands"] and result.restart_required == []
        assert kernel.config.exec.allowed_commands == ["ls", "make"]
        assert (await kernel.check_action(MAKE, ctx)).verdict == "allow"
        event = await events.get(timeout=5)
        assert event is not None and event.type == "config.reloaded"
        assert event.data["actor"] == "test" and event.data["applied"] == ["exec.allowed_commands"]
        entry = reload_entries(kernel)[-1]
        assert entry["actor"] == "test" and entry["allowed"] and "applied exec.allowed_commands" in entry["reason"]
        assert entry["metadata"]["applied"] == ["exec.allowed_commands"]
        # Taking it out again closes the door again: the reload is not a one-way ratchet.
        write(oxios_home, '[exec]\nallowed_commands = ["ls"]\n')
        await kernel.reload_config()
        assert (await kernel.check_action(MAKE, ctx)).verdict == "deny"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[exec]\nallowed_commands = 'make'\n", "exec.allowed_commands: Expected `array`, got `str`"),
        ("[exec]\nallowed_comands = ['make']\n", "exec.allowed_comands: unknown key"),
        ("[exec\nallowed_commands = ['make']\n", "not valid TOML"),
        ("[cron.jobs.nightly]\ngoal = 'tidy up'\n", "cron.jobs.nightly.schedule: missing (required)"),
    ],
)
async def test_an_invalid_file_is_refused_and_the_running_config_stays(
    oxios_kernel_factory, oxios_home: Path, text: str, expected: str
) -> None:
    async with oxios_kernel_factory() as kernel:
        write(oxios_home, '[exec]\nallowed_commands = ["ls", "make"]\n')
        await kernel.reload_config()
        running = kernel.config
        failures = kernel.subscribe(types={"config.reload_failed"})
        write(oxios_home, text)
        with pytest.raises(ConfigError) as err:
            await kernel.reload_config(actor="test")
        assert expected in str(err.value) and str(oxios_home / "config.toml") in str(err.value)
        # The same message `oxios config validate` and a refused start give.
        with pytest.raises(ConfigError) as direct:
            cfg.load(oxios_home / "config.toml")
        assert str(direct.value) == str(err.value)
        assert kernel.config is running
        assert (await kernel.check_action(MAKE, kernel.context(agent_id="a1"))).verdict == "allow"
        entry = reload_entries(kernel)[-1]
        assert not entry["allowed"] and expected in entry["reason"]
        event = await failures.get(timeout=5)
        assert event is not None and expected in event.data["error"]


async def test_a_gateway_port_change_waits_for_a_restart(oxios_kernel_factory, oxios_home: Path) -> None:
    async with oxios_kernel_factory() as kernel:
        port = kernel.config.gateway.port
        write(oxios_home, f"[gateway]\nport = {port + 1}\n[scheduler]\nmax_concurrent = 2\n")
        result = await kernel.reload_config()
        assert result.restart_required == ["gateway.port"]
        assert result.applied == ["scheduler.max_concurrent"]
        # The running config says what runs: the old port until a restart, the new limit at once.
        assert kernel.config.gateway.port == port
        assert kernel.config.scheduler.max_concurrent == 2
        assert kernel.services["scheduler"].stats()["max_concurrent"] == 2
        # Still pending on the next reload: nothing hides a change that has not taken effect.
        again = await kernel.reload_config()
        assert again.changed == ["gateway.port"] and again.restart_required == ["gateway.port"]


async def test_a_removed_restart_key_is_reported_and_kept(oxios_kernel_factory, oxios_home: Path) -> None:
    write(oxios_home, '[memory]\nembedder = "hashing"\n[providers.local]\nkind = "openai"\nbase_url = "http://127.0.0.1:9/v1"\n')
    async with oxios_kernel_factory() as kernel:
        write(oxios_home, "")
        result = await kernel.reload_config()
        assert result.restart_required == ["providers.local"] and result.applied == []
        assert "local" in kernel.config.providers  # the provider registry still has it until a restart


async def test_start_up_overrides_stay_on_top(oxios_kernel_factory, oxios_home: Path) -> None:
    async with oxios_kernel_factory(config={"scheduler": {"rate_limit_per_minute": 7}}) as kernel:
        write(oxios_home, "[scheduler]\nrate_limit_per_minute = 30\nmax_concurrent = 3\n")
        result = await kernel.reload_config()
        assert result.changed == ["scheduler.max_concurrent"]
        stats = kernel.services["scheduler"].stats()
        assert stats["rate_limit_per_minute"] == 7 and stats["max_concurrent"] == 3


async def test_the_environment_layer_is_read_again(oxios_kernel_factory, oxios_home: Path, monkeypatch) -> None:
    async with oxios_kernel_factory() as kernel:
        monkeypatch.setenv("OXIOS__SECURITY__APPROVAL_TIMEOUT_SECS", "5")
        write(oxios_home, "[security]\napproval_timeout_secs = 60\n")
        result = await kernel.reload_config()
        assert result.applied == ["security.approval_timeout_secs"]
        assert kernel.services["approvals"].timeout_secs == 5.0


async def test_a_higher_scheduler_limit_admits_queued_work_at_once(oxios_kernel_factory, oxios_home: Path) -> None:
    import asyncio

    write(oxios_home, "[scheduler]\nmax_concurrent = 1\n")
    async with oxios_kernel_factory() as kernel:
        scheduler = kernel.services["scheduler"]
        release = asyncio.Event()
        running: list[str] = []

        async def work(name: str) -> str:
            running.append(name)
            await release.wait()
            return name

        first = await scheduler.submit(lambda: work("first"), name="first")
        second = await scheduler.submit(lambda: work("second"), name="second")
        async with asyncio.timeout(5):
            while running != ["first"]:
                await asyncio.sleep(0.01)
        assert scheduler.stats()["queued"] == 1
        write(oxios_home, "[scheduler]\nmax_concurrent = 2\n")
        assert (await kernel.reload_config()).applied == ["scheduler.max_concurrent"]
        async with asyncio.timeout(5):
            while running != ["first", "second"]:
                await asyncio.sleep(0.01)
        release.set()
        assert await first == "first" and await second == "second"


async def test_cron_jobs_from_the_file_are_synced_again(oxios_kernel_factory, oxios_home: Path) -> None:
    async with oxios_kernel_factory() as kernel:
        cron = kernel.services["cron"]
        assert cron.list() == []
        write(
            oxios_home,
            '[cron]\nmisfire_grace_secs = 120\n[cron.jobs.nightly]\nschedule = "0 3 * * *"\ngoal = "tidy up"\n'
            'approve = ["git pull --ff-only"]\n',
        )
        result = await kernel.reload_config()
        assert result.applied == ["cron.misfire_grace_secs", "cron.jobs.nightly"] and result.restart_required == []
        [job] = cron.list()
        assert job["name"] == "nightly" and job["goal"] == "tidy up"
        assert cron.config.misfire_grace_secs == 120
        grants = kernel.services["approvals"].grants()
        assert any(g.get("created_by") == "cron:nightly" for g in grants), grants
        write(oxios_home, '[cron.jobs.nightly]\nschedule = "0 4 * * *"\ngoal = "tidy up"\n')
        result = await kernel.reload_config()
        assert result.applied == ["cron.misfire_grace_secs", "cron.jobs.nightly.schedule", "cron.jobs.nightly.approve"]
        assert cron.get("nightly")["schedule"] == "0 4 * * *"
        assert not any(g.get("created_by") == "cron:nightly" for g in kernel.services["approvals"].grants())
        write(oxios_home, "")
        assert (await kernel.reload_config()).applied == ["cron.jobs.nightly"]
        assert cron.list() == []


async def test_orchestrator_and_log_level_apply_live(oxios_kernel_factory, oxios_home: Path) -> None:
    async with oxios_kernel_factory() as kernel:
        write(oxios_home, '[orchestrator]\ndefault_mode = "chat"\n[kernel]\nlog_level = "debug"\nworkspace = "/tmp/elsewhere"\n')
        result = await kernel.reload_config()
        assert result.applied == ["kernel.log_level", "orchestrator.default_mode"]
        assert result.restart_required == ["kernel.workspace"]
        assert kernel.services["ouroboros"].config.default_mode == "chat"


async def test_budget_and_session_limits_apply_live(oxios_kernel_factory, oxios_home: Path) -> None:
    async with oxios_kernel_factory() as kernel:
        budget = kernel.services["budget"]
        assert budget.get("before")["max_tokens"] != 1234
        write(
            oxios_home,
            "[budget]\ndefault_max_tokens = 1234\npricing = { m1 = [1.0, 2.0] }\n[session]\nmax_history_messages = 7\n",
        )
        result = await kernel.reload_config()
        assert result.restart_required == [] and "budget.default_max_tokens" in result.applied
        assert budget.get("after")["max_tokens"] == 1234  # accounts opened after the reload
        assert budget.prices("m1") == (1.0, 2.0)
        assert kernel.services["sessions"].config.max_history_messages == 7


async def test_a_scheduler_without_the_hook_waits_for_a_restart(oxios_kernel_factory, oxios_home: Path) -> None:
    async with oxios_kernel_factory() as kernel:

        class Plain:  # a plugin scheduler that copies its limits and cannot change them
            def stats(self) -> dict[str, Any]:
                return {}

        kernel.services["scheduler"] = Plain()
        write(oxios_home, "[scheduler]\nmax_concurrent = 2\n")
        result = await kernel.reload_config()
        assert result.restart_required == ["scheduler.max_concurrent"]
        assert kernel.config.scheduler.max_concurrent == 5


def test_changed_keys_name_leaves_and_whole_entries() -> None:
    old = {"exec": {"allowed_commands": ["ls"], "shell_mode": False}, "cron": {"jobs": {"a": {"goal": "x"}, "b": {"goal": "y"}}}}
    new = {
        "exec": {"allowed_commands": ["ls", "make"], "shell_mode": False},
        "cron": {"jobs": {"a": {"goal": "z"}, "c": {"goal": "y"}}},
    }
    assert changed_keys(old, new) == ["exec.allowed_commands", "cron.jobs.a.goal", "cron.jobs.b", "cron.jobs.c"]
    assert changed_keys(old, old) == []


def test_every_config_section_has_a_rule_and_unknown_keys_wait_for_a_restart() -> None:
    sections = [f.name for f in msgspec.structs.fields(cfg.Config)]
    assert [s for s in sections if s not in RULES] == []
    assert rule_for("gateway.port") == RESTART and rule_for("no.such.key") == RESTART
    assert rule_for("exec.allowed_commands") == "live" and rule_for("security.ssrf_allowlist") == RESTART
    assert rule_for("cron.jobs.nightly.goal") == "service:cron"


def test_config_reload_result_is_json() -> None:
    from oxios.reload import ConfigReload

    out = json.loads(msgspec.json.encode(ConfigReload(changed=["a"], applied=["a"])))
    assert out == {"changed": ["a"], "applied": ["a"], "restart_required": []}


# -- the CLI and a real daemon ------------------------------------------------------------------


def test_config_set_without_a_daemon_is_audited_here(oxios_cli, oxios_home: Path) -> None:
    from oxios.security.audit import AuditLog
    from oxios.state import StateStore

    out = oxios_cli("config", "set", "scheduler.max_concurrent", "3")
    assert out.exit_code == 0, out.output
    assert "scheduler.max_concurrent = 3" in out.output and "Oxios is not running" in out.output
    state = StateStore(oxios_home / "state.db")
    try:
        [entry] = AuditLog(state).entries(action="config.set")
    finally:
        state.close()
    assert entry["actor"] == "cli" and entry["resource"] == str(oxios_home / "config.toml")
    assert entry["metadata"] == {"key": "scheduler.max_concurrent"}
    refused = oxios_cli("config", "reload")
    assert refused.exit_code == 1 and "Oxios is not running" in refused.output


def wait_for(check: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.slow
def test_sighup_and_the_cli_reload_a_running_daemon(tmp_path: Path) -> None:
    from oxios.control import call

    home = tmp_path / "home"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OXIOS")}
    env.update(OXIOS_HOME=str(home), OXIOS_LOAD_PLUGINS="")
    home.mkdir()
    (home / "config.toml").write_text(f"[gateway]\nport = {port}\n")  # in the file, so `config set` can change it

    def oxios(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "oxios", *args], capture_output=True, text=True, env=env, timeout=60, stdin=subprocess.DEVNULL
        )

    started = oxios("--set", "scheduler.rate_limit_per_minute=7", "start")
    assert started.returncode == 0, started.stderr
    try:
        sock = home / "run" / "oxios.sock"
        pid = json.loads((home / "run" / "oxios.pid").read_text())["pid"]
        stats: Callable[[], dict[str, Any]] = lambda: call(sock, "scheduler.stats")  # noqa: E731
        assert stats()["max_concurrent"] == 5

        def reload_entries() -> list[dict[str, Any]]:
            return [e for e in call(sock, "audit.tail", n=50) if e["action"] == "config.reload"]

        # An edit by hand, then SIGHUP: applied in place, the --set flag still on top.
        cfg.set_key(home / "config.toml", "scheduler.max_concurrent", "3")
        cfg.set_key(home / "config.toml", "scheduler.rate_limit_per_minute", "30")
        os.kill(pid, signal.SIGHUP)
        wait_for(lambda: stats()["max_concurrent"] == 3, "the SIGHUP reload")
        assert stats()["rate_limit_per_minute"] == 7
        [entry] = reload_entries()
        assert entry["actor"] == "signal:SIGHUP" and entry["metadata"]["applied"] == ["scheduler.max_concurrent"]

        # `oxios config set` tells the daemon and says what applied.
        out = oxios("config", "set", "scheduler.max_concurrent", "2")
        assert out.returncode == 0, out.stderr
        assert "applied live: scheduler.max_concurrent" in out.stdout
        assert stats()["max_concurrent"] == 2
        out = oxios("config", "set", "gateway.port", str(port + 1))
        assert out.returncode == 0 and "needs `oxios restart`: gateway.port" in out.stdout
        out = oxios("config", "reload", "--json")
        assert out.returncode == 0 and json.loads(out.stdout)["restart_required"] == ["gateway.port"]
        assert call(sock, "status")["pid"] == pid  # the same process all along

        # An invalid file is refused, by the CLI and on SIGHUP; the daemon keeps its config and runs on.
        (home / "config.toml").write_text("[scheduler]\nmax_concurrent = 'five'\n")
        out = oxios("config", "reload")
        assert out.returncode == 2
        assert "scheduler.max_concurrent" in out.stderr and str(home / "config.toml") in out.stderr
        os.kill(pid, signal.SIGHUP)
        wait_for(lambda: sum(1 for e in reload_entries() if not e["allowed"]) == 2, "the refused SIGHUP reload")
        assert stats()["max_concurrent"] == 2
        assert call(sock, "ping") == "pong"
    finally:
        # Not `oxios stop`: the CLI refuses to run with the broken file this test leaves.
        from oxios.daemon import stop
        from oxios.kernel import Paths

        stop(Paths.from_config(home, cfg.Config()))
