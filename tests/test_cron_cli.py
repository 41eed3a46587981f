"""`oxios cron ...` in-process (no daemon): add, list, show, edit, pause, resume, trigger, runs, rm."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest


def test_cron_cli_round_trip(oxios_cli) -> None:
    result = oxios_cli(
        "cron",
        "add",
        "news",
        "--schedule",
        "0 9 * * *",
        "--goal",
        "Summarize top tech news",
        "--tz",
        "Europe/Berlin",
        "--deliver-to",
        "channel:telegram:42",
        "--constraint",
        "short",
    )
    assert result.exit_code == 0, result.output
    assert "added news: next run" in result.output and "Europe/Berlin" in result.output
    listed = json.loads(oxios_cli("cron", "list", "--json").output)
    assert [j["name"] for j in listed] == ["news"] and listed[0]["constraints"] == ["short"]
    next_run = listed[0]["next_run_at"]
    table = oxios_cli("cron", "list").output
    assert "news" in table and "scheduled" in table
    shown = json.loads(oxios_cli("cron", "show", "news", "--json").output)
    assert shown["next_run_at"] == next_run  # showing did not move it
    assert oxios_cli("cron", "edit", "news", "--schedule", "every 2h").exit_code == 0
    assert json.loads(oxios_cli("cron", "show", "news", "--json").output)["schedule"] == "every 2h"
    assert "paused news" in oxios_cli("cron", "pause", "news").output
    assert json.loads(oxios_cli("cron", "show", "news", "--json").output)["state"] == "paused"
    assert "resumed news" in oxios_cli("cron", "resume", "news").output
    # No provider is configured, so the run fails, but it is recorded and the CLI says why.
    triggered = oxios_cli("cron", "trigger", "news")
    assert triggered.exit_code == 1 and "failed" in triggered.output
    runs = json.loads(oxios_cli("cron", "runs", "news", "--json").output)
    assert runs[0]["trigger"] == "manual" and runs[0]["status"] == "failed" and runs[0]["error"]
    assert "manual" in oxios_cli("cron", "runs", "news").output
    assert "deleted news" in oxios_cli("cron", "rm", "news").output
    assert json.loads(oxios_cli("cron", "list", "--json").output) == []


def test_cron_cli_errors(oxios_cli) -> None:
    bad = oxios_cli("cron", "add", "x", "--schedule", "0 9 * *", "--goal", "g")
    assert bad.exit_code == 2 and "5 fields" in bad.output
    tz = oxios_cli("cron", "add", "x", "--schedule", "0 9 * * *", "--goal", "g", "--tz", "Nowhere/City")
    assert tz.exit_code == 2 and "unknown timezone 'Nowhere/City'" in tz.output
    past = oxios_cli("cron", "add", "x", "--schedule", "at 2001-01-01T00:00:00Z", "--goal", "g")
    assert past.exit_code == 2 and "in the past" in past.output
    missing = oxios_cli("cron", "show", "ghost")
    assert missing.exit_code == 1 and "no cron job named 'ghost'" in missing.output
    assert oxios_cli("cron", "edit", "ghost").exit_code == 2  # nothing to change
    assert oxios_cli("cron", "trigger", "ghost", "--no-wait").exit_code == 2  # no daemon: must wait


def test_config_jobs_are_read_only_from_the_cli(oxios_cli, oxios_home) -> None:
    (oxios_home / "config.toml").write_text(
        '[cron.jobs.morning_news]\nschedule = "0 9 * * *"\ngoal = "Summarize top tech news"\n'
    )
    listed = json.loads(oxios_cli("cron", "list", "--json").output)
    assert listed[0]["name"] == "morning_news" and listed[0]["source"] == "config"
    result = oxios_cli("cron", "rm", "morning_news")
    assert result.exit_code == 2 and "config.toml" in result.output
    assert oxios_cli("cron", "pause", "morning_news").exit_code == 0


def test_list_says_why_a_job_is_paused(oxios_cli, oxios_home) -> None:
    """docs/cron.md: an invalid config job is kept, paused, and `oxios cron list` shows the reason."""
    (oxios_home / "config.toml").write_text('[cron.jobs.moon]\nschedule = "0 9 * * *"\ngoal = "g"\ntimezone = "Mars/Base"\n')
    listed = oxios_cli("cron", "list")
    assert listed.exit_code == 0
    assert "moon is paused: invalid: timezone: unknown timezone 'Mars/Base'" in listed.output


@pytest.mark.slow
def test_through_a_running_daemon(tmp_path) -> None:
    """The CLI talks to the daemon, whose tick loop fires a one-off job at its time."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OXIOS")}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env.update(OXIOS_HOME=str(tmp_path / "home"), OXIOS_LOAD_PLUGINS="", OXIOS__GATEWAY__PORT=str(port))

    def oxios(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "oxios", *args], capture_output=True, text=True, env=env, timeout=60, stdin=subprocess.DEVNULL
        )

    assert oxios("start").returncode == 0
    try:
        when = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
        added = oxios("cron", "add", "soon", "--schedule", f"at {when}", "--goal", "say hi")
        assert added.returncode == 0, added.stderr
        # Refused input exits 2 through the daemon as it does without one.
        bad = oxios("cron", "add", "moon", "--schedule", "0 9 * * *", "--tz", "Mars/Base", "--goal", "g")
        assert bad.returncode == 2 and "Mars/Base" in bad.stderr, bad.stderr
        assert oxios("cron", "show", "nope").returncode == 1
        deadline = time.monotonic() + 30
        runs: list = []
        while time.monotonic() < deadline and not runs:
            runs = [r for r in json.loads(oxios("cron", "runs", "soon", "--json").stdout) if r["status"] != "running"]
            time.sleep(0.3)
        assert runs, "the daemon's tick loop never fired the job"
        assert runs[0]["trigger"] == "schedule" and runs[0]["status"] == "failed"  # no provider configured
        job = json.loads(oxios("cron", "show", "soon", "--json").stdout)
        assert job["state"] == "completed" and job["run_count"] == 1
        status = json.loads(oxios("status", "--json").stdout)
        assert status["components"]["cron"]["owner"] is True and status["components"]["cron"]["ticking"] is True
    finally:
        oxios("stop")


def test_doctor_names_a_broken_config_job(oxios_cli, oxios_home) -> None:
    (oxios_home / "config.toml").write_text(
        '[cron.jobs.ok]\nschedule = "every 1h"\ngoal = "g"\n\n[cron.jobs.broken]\nschedule = "0 9 * * *"\ngoal = "g"\ntimezone = "Mars/Base"\n'
    )
    findings = json.loads(oxios_cli("doctor", "--json").output)
    cron = [f for f in findings if f["check"] == "cron"]
    assert len(cron) == 1 and cron[0]["status"] == "error" and "Mars/Base" in cron[0]["detail"] and "broken" in cron[0]["detail"]
