"""`oxios run` end to end: a real subprocess, the real SDKs, wire-compatible fake servers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import tomlkit


def _setup_home(tmp_path: Path, server: Any) -> tuple[Path, dict[str, str]]:
    home = tmp_path / "home"
    home.mkdir()
    doc = tomlkit.document()
    for section, values in server.config().items():
        doc[section] = values
    (home / "config.toml").write_text(tomlkit.dumps(doc))
    workspace = home / "workspace"
    workspace.mkdir()
    (workspace / "notes.md").write_text("# notes\n")
    (workspace / "src").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OXIOS") and not k.endswith("_API_KEY")}
    env["OXIOS_HOME"] = str(home)
    env["OXIOS_LOAD_PLUGINS"] = ""  # built-ins only: no third-party plugin changes the answer
    return home, env


def _oxios(env: dict[str, str], *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "oxios", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        input=input,
        cwd=env["OXIOS_HOME"],
    )


def _tool_results(body: dict[str, Any], kind: str) -> list[str]:
    """The tool results a request sent back to the model, as text."""
    out = []
    for message in body["messages"]:
        if kind == "openai" and message.get("role") == "tool":
            out.append(message["content"] if isinstance(message["content"], str) else json.dumps(message["content"]))
        if kind == "anthropic" and isinstance(message.get("content"), list):
            for block in message["content"]:
                if block.get("type") == "tool_result":
                    content = block["content"]
                    out.append(content if isinstance(content, str) else json.dumps(content))
    return out


@pytest.mark.parametrize("fake", ["fake_openai", "fake_anthropic"])
def test_run_json_calls_ls_and_continues_session(fake: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    server = request.getfixturevalue(fake)
    _home, env = _setup_home(tmp_path, server)
    server.enqueue_tool_call("ls", {"path": "."})
    server.enqueue_text("The workspace holds notes.md and a src folder.")

    first = _oxios(env, "run", "--json", "list the files here")
    assert first.returncode == 0, first.stderr
    out = json.loads(first.stdout)
    assert list(out)[:10] == [
        "response",
        "session_id",
        "space_id",
        "space_tag",
        "seed_id",
        "agent_id",
        "phase_reached",
        "evaluation_passed",
        "exit_code",
        "duration_ms",
    ]
    assert out["response"] == "The workspace holds notes.md and a src folder."
    assert out["session_id"] and out["agent_id"] and out["space_id"]
    assert out["phase_reached"] == "Execute" and out["exit_code"] == 0
    assert isinstance(out["duration_ms"], int)
    # The model got the real listing back: the ls call ran (through policy) in the workspace.
    results = _tool_results(server.requests[1], server.kind)
    assert results and "notes.md" in results[0] and "src/" in results[0]
    # The tools were offered to the model.
    assert "ls" in json.dumps(server.requests[0]["tools"])

    server.enqueue_text("You asked me to list the files.")
    second = _oxios(env, "run", "--json", "--session", out["session_id"], "what did I ask before?")
    assert second.returncode == 0, second.stderr
    out2 = json.loads(second.stdout)
    assert out2["session_id"] == out["session_id"]
    assert out2["response"] == "You asked me to list the files."
    # The continued session carried the first exchange to the model.
    sent = json.dumps(server.requests[2]["messages"])
    assert "list the files here" in sent and "notes.md and a src folder" in sent

    # Both exchanges are persisted in the session.
    show = _oxios(env, "agent", "list", "--json")
    assert show.returncode == 0, show.stderr
    agents = json.loads(show.stdout)
    assert {a["session_id"] for a in agents} == {out["session_id"]}
    assert all(a["status"] == "completed" for a in agents) and len(agents) == 2


def test_run_streams_text_and_reads_context_from_stdin(fake_openai: Any, tmp_path: Path) -> None:
    _home, env = _setup_home(tmp_path, fake_openai)
    fake_openai.enqueue_text("It defines add().")
    result = _oxios(env, "run", "--context-file", "-", "describe this", input="def add(a, b):\n    return a + b\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "It defines add()."
    sent = json.dumps(fake_openai.requests[0]["messages"])
    assert "def add(a, b)" in sent and "describe this" in sent


def test_run_without_provider_prints_how_to(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OXIOS") and not k.endswith("_API_KEY")}
    env |= {"OXIOS_HOME": str(home), "OXIOS_LOAD_PLUGINS": ""}
    result = _oxios(env, "run", "hello")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "No LLM provider is usable" in result.stderr and "OPENAI_API_KEY" in result.stderr
    as_json = _oxios(env, "run", "--json", "hello")
    assert as_json.returncode != 0 and "Traceback" not in as_json.stderr
    assert "No LLM provider" in json.loads(as_json.stdout)["error"]


def test_run_context_file_missing_is_a_clear_error(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OXIOS")} | {"OXIOS_HOME": str(home)}
    result = _oxios(env, "run", "--context-file", str(tmp_path / "nope.txt"), "hello")
    assert result.returncode == 2
    assert "nope.txt" in result.stderr and "Traceback" not in result.stderr
