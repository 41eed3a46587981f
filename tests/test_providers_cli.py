"""`oxios models` and the providers check of `oxios doctor`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest


def test_models_without_any_provider_explains_how_to_configure_one(oxios_cli: Any) -> None:
    out = oxios_cli("models")
    assert out.exit_code == 0
    assert "anthropic  claude-sonnet-4-5" in out.output and "no API key (set $ANTHROPIC_API_KEY" in out.output
    assert "No LLM provider is usable" in out.output and "oxios config set providers.local.kind openai" in out.output
    rows = json.loads(oxios_cli("models", "--json").output)
    assert {r["provider"] for r in rows} == {"anthropic", "openai"}
    assert all(r["usable"] is False and r["breaker"] == "closed" and r["implicit"] for r in rows)


def test_documented_local_server_setup_makes_a_usable_default(oxios_cli: Any) -> None:
    for key, value in [
        ("providers.local.kind", "openai"),
        ("providers.local.base_url", "http://127.0.0.1:11434/v1"),
        ("providers.local.default_model", "llama3.2"),
    ]:
        assert oxios_cli("config", "set", key, value).exit_code == 0
    out = oxios_cli("models")
    assert out.exit_code == 0 and "llama3.2 *" in out.output and "yes" in out.output
    assert "No LLM provider is usable" not in out.output and "anthropic" not in out.output  # no implicit providers now
    rows = json.loads(oxios_cli("models", "--json").output)
    assert rows == [
        {
            "provider": "local",
            "kind": "openai",
            "model": "llama3.2",
            "ref": "local/llama3.2",
            "context_window": 128000,
            "usable": True,
            "reason": "",
            "breaker": "closed",
            "default": True,
            "implicit": False,
        }
    ]


def test_models_lists_configured_models_and_why_not(oxios_cli: Any, oxios_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (oxios_home / "config.toml").write_text(
        '[providers.claude]\nkind = "anthropic"\napi_key_env = "TEAM_CLAUDE_KEY"\nmodels = ["claude-haiku-4-5", "claude-opus-4-1"]\n'
        '[providers.gpt]\nkind = "openai"\napi_key = "sk-config-key-000000001"\n'
    )
    rows = json.loads(oxios_cli("models", "--json").output)
    claude = [r for r in rows if r["provider"] == "claude"]
    assert [r["model"] for r in claude] == ["claude-haiku-4-5", "claude-opus-4-1"]
    assert all(not r["usable"] and "$TEAM_CLAUDE_KEY" in r["reason"] for r in claude)
    assert [r["model"] for r in rows if r["provider"] == "gpt" and r["default"]] == ["gpt-4.1"]
    out = oxios_cli("models")
    assert "sk-config-key" not in out.output and "sk-config-key" not in json.dumps(rows)
    monkeypatch.setenv("TEAM_CLAUDE_KEY", "sk-ant-team-000000000")
    rows = json.loads(oxios_cli("models", "--json").output)
    assert all(r["usable"] for r in rows)


def test_doctor_names_usable_providers_or_says_how_to_add_one(oxios_cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    findings = [f for f in json.loads(oxios_cli("doctor", "--json").output) if f["check"] == "api keys"]
    assert findings[0]["status"] == "warn" and "no LLM provider is usable" in findings[0]["detail"]
    assert "OPENAI_API_KEY" in findings[0]["fix"] and "providers.local.kind openai" in findings[0]["fix"]
    # The several-line fix keeps its lines, indented under "fix:", instead of one run-on line.
    lines = oxios_cli("doctor").output.splitlines()
    start = lines.index("        fix: No LLM provider is usable. Configure one of:")
    assert lines[start + 1].startswith("               - an API key: export ANTHROPIC_API_KEY=")
    assert "             `oxios config set providers.local.kind openai`".strip() in lines[start + 4]
    monkeypatch.setenv("OPENAI_API_KEY", "sk-doctor-test-0000000")
    findings = [f for f in json.loads(oxios_cli("doctor", "--json").output) if f["check"] == "api keys"]
    assert [(f["status"], f["detail"]) for f in findings] == [("ok", "usable LLM providers: openai")]
