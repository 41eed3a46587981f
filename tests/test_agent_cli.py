"""`oxios agent` and `oxios budget` without a daemon (records and limits in the state database)."""

from __future__ import annotations

import json
from typing import Any


def test_agent_list_show_kill_without_daemon(oxios_cli: Any) -> None:
    result = oxios_cli("agent", "list", "--json")
    assert result.exit_code == 0 and json.loads(result.output) == []
    result = oxios_cli("agent", "list")
    assert result.exit_code == 0 and "(none)" in result.output
    result = oxios_cli("agent", "show", "no-such-agent")
    assert result.exit_code == 1 and "no agent no-such-agent" in result.output
    result = oxios_cli("agent", "kill", "no-such-agent")
    assert result.exit_code == 1 and "no agent" in result.output


def test_budget_set_show_reserve_reset(oxios_cli: Any) -> None:
    result = oxios_cli("budget", "set", "--max-tokens", "5000", "--max-cost", "1.5")
    assert result.exit_code == 0, result.output
    shown = json.loads(oxios_cli("budget", "show").output)
    assert shown["max_tokens"] == 5000 and shown["max_cost_usd"] == 1.5
    # a new agent starts from the default limits (persisted across kernels)
    agent = json.loads(oxios_cli("budget", "show", "agent-7").output)
    assert agent["max_tokens"] == 5000 and agent["used_tokens"] == 0
    result = oxios_cli("budget", "reserve", "agent-7", "--tokens", "9000")
    assert result.exit_code == 2 and "exceeds the remaining 5000" in result.output
    reserved = json.loads(oxios_cli("budget", "reserve", "agent-7", "--tokens", "100").output)
    assert reserved["reserved_tokens"] == 100 and reserved["remaining_tokens"] == 4900
    result = oxios_cli("budget", "set", "--max-tokens", "-1")
    assert result.exit_code == 2 and ">= 0" in result.output
    result = oxios_cli("budget", "set")
    assert result.exit_code == 2 and "--max-tokens" in result.output
    assert json.loads(oxios_cli("budget", "reset", "agent-7").output)["reserved_tokens"] == 0


def test_personas_add_edit_use_rm_are_audited(oxios_cli: Any, tmp_path: Any) -> None:
    prompt = tmp_path / "prompt.md"
    prompt.write_text("Answer in one line.")
    added = oxios_cli("personas", "add", "Terse", "--prompt-file", str(prompt), "--tool", "tier:read", "--tool", "!grep")
    assert added.exit_code == 0, added.output
    shown = json.loads(oxios_cli("personas", "show", "terse").output)  # names match without case
    assert shown["system_prompt"] == "Answer in one line." and shown["tools"] == ["tier:read", "!grep"]
    assert oxios_cli("personas", "add", "terse", "--prompt", "x").exit_code == 2  # taken
    assert oxios_cli("personas", "add", "Bad", "--prompt", "x", "--tool", "tier:nope").exit_code == 2
    assert oxios_cli("personas", "edit", "Terse").exit_code == 2  # nothing to change
    assert oxios_cli("personas", "edit", "Terse", "--all-tools", "--model", "m1").exit_code == 0
    assert oxios_cli("personas", "use", "Terse").exit_code == 0
    listed = json.loads(oxios_cli("personas", "list", "--json").output)
    terse = next(p for p in listed if p["name"] == "Terse")
    assert terse["active"] and terse["tools"] == [] and terse["model"] == "m1"
    refused = oxios_cli("personas", "rm", "Review")
    assert refused.exit_code == 2 and "built-in" in refused.output
    assert oxios_cli("personas", "rm", "Terse").exit_code == 0
    assert oxios_cli("personas", "show", "Terse").exit_code == 1
    trail = json.loads(oxios_cli("audit", "export", "--format", "json").output)
    assert [(e["action"], e["actor"]) for e in trail if e["action"].startswith("persona.")] == [
        ("persona.create", "cli"),
        ("persona.update", "cli"),
        ("persona.delete", "cli"),
    ]
