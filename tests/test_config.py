"""Config layering (defaults < file < env < CLI) and validation errors."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from oxios import config as cfg


def test_defaults_have_every_seed_section() -> None:
    data = cfg.defaults()
    for section in (
        "kernel",
        "gateway",
        "exec",
        "scheduler",
        "security",
        "cron",
        "memory",
        "session",
        "budget",
        "audit",
        "git",
        "mcp",
        "channels",
    ):
        assert section in data, section
    assert data["gateway"] == {"host": "127.0.0.1", "port": 4200, "max_concurrent_messages": 16}


def test_first_run_file_has_every_default_and_a_comment_per_section(tmp_path: Path) -> None:
    path = cfg.ensure_file(tmp_path / "config.toml")
    text = path.read_text()
    parsed = tomllib.loads(text)
    assert parsed["gateway"]["port"] == 4200
    assert parsed["exec"]["allowed_commands"] == cfg.defaults()["exec"]["allowed_commands"]
    for name, comment in cfg.SECTION_COMMENTS.items():
        assert comment in text, name
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    # The file round-trips to exactly the defaults.
    assert cfg.load(path, environ={}) == cfg.Config()


def test_precedence_file_env_cli(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[gateway]\nport = 5000\nhost = '0.0.0.0'\n[scheduler]\nmax_concurrent = 2\n")
    env = {"OXIOS__GATEWAY__PORT": "6000", "OXIOS__EXEC__ALLOWED_COMMANDS": '["git"]'}
    loaded = cfg.load(path, environ=env, overrides={"scheduler": {"max_concurrent": 9}})
    assert loaded.gateway.port == 6000  # env beats file
    assert loaded.gateway.host == "0.0.0.0"  # file beats default
    assert loaded.scheduler.max_concurrent == 9  # CLI beats file
    assert loaded.exec.allowed_commands == ["git"]
    assert loaded.kernel.max_agents == 10  # default


def test_bad_value_names_key_file_and_expectation(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[gateway]\nport = 'forty'\n")
    with pytest.raises(cfg.ConfigError) as err:
        cfg.load(path, environ={})
    message = str(err.value)
    assert "gateway.port" in message and str(path) in message and "int" in message


def test_bad_env_value_names_the_environment(tmp_path: Path) -> None:
    with pytest.raises(cfg.ConfigError) as err:
        cfg.load(tmp_path / "none.toml", environ={"OXIOS__SCHEDULER__MAX_CONCURRENT": "lots"})
    assert "scheduler.max_concurrent" in str(err.value) and "environment" in str(err.value)


def test_unknown_key_is_an_error_not_ignored(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[gateway]\nprot = 4300\n")
    with pytest.raises(cfg.ConfigError) as err:
        cfg.load(path, environ={})
    assert "gateway.prot" in str(err.value) and "unknown key" in str(err.value)


def test_broken_toml_is_reported_with_the_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[gateway\nport = 1\n")
    with pytest.raises(cfg.ConfigError) as err:
        cfg.load(path, environ={})
    assert str(path) in str(err.value) and "TOML" in str(err.value)


def test_set_key_keeps_comments_and_validates(tmp_path: Path) -> None:
    path = cfg.ensure_file(tmp_path / "config.toml")
    cfg.set_key(path, "gateway.port", "4300")
    text = path.read_text()
    assert "Where the web UI and REST API listen" in text
    assert cfg.load(path, environ={}).gateway.port == 4300
    before = path.read_text()
    with pytest.raises(cfg.ConfigError) as err:
        cfg.set_key(path, "gateway.port", "'high'")
    assert "gateway.port" in str(err.value)
    assert path.read_text() == before  # nothing lost on a rejected edit


def test_cron_jobs_and_providers_tables(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[cron.jobs.morning_news]\nschedule = "0 9 * * *"\ngoal = "Summarize top tech news"\npriority = "low"\n'
        '[providers.local]\nkind = "openai"\nbase_url = "http://127.0.0.1:11434/v1"\n'
    )
    loaded = cfg.load(path, environ={})
    assert loaded.cron.jobs["morning_news"].priority == "low"
    assert loaded.providers["local"].base_url.endswith("/v1")


def test_cli_config_commands(oxios_cli, oxios_home: Path) -> None:
    result = oxios_cli("config", "path")
    assert result.exit_code == 0 and result.output.strip() == str(oxios_home / "config.toml")
    assert oxios_cli("config", "get", "gateway.port").output.strip() == "4200"
    assert oxios_cli("config", "set", "gateway.port", "4400").exit_code == 0
    assert oxios_cli("config", "get", "gateway.port").output.strip() == "4400"
    assert oxios_cli("config", "validate").exit_code == 0
    bad = oxios_cli("config", "set", "scheduler.max_concurrent", "'many'")
    assert bad.exit_code == 2 and "scheduler.max_concurrent" in bad.output
    missing = oxios_cli("config", "get", "gateway.nope")
    assert missing.exit_code == 2 and "no such key" in missing.output
    (oxios_home / "config.toml").write_text("[kernel]\nmax_agents = 'x'\n")
    invalid = oxios_cli("config", "validate")
    assert invalid.exit_code == 2 and "kernel.max_agents" in invalid.output
    shown = oxios_cli("config", "show", "--json")
    assert shown.exit_code == 2  # show refuses an invalid config too


def test_cli_config_hides_credentials_unless_revealed(oxios_cli, oxios_home: Path) -> None:
    secret = "sk-do-not-paste-me"
    entry = f'{{kind = "openai", api_key = "{secret}", api_key_env = "LOCAL_KEY", base_url = "http://127.0.0.1:1/v1"}}'
    written = oxios_cli("config", "set", "providers.local", entry)
    assert written.exit_code == 0 and secret not in written.output
    for args in (["show"], ["show", "--json"], ["get", "providers.local"], ["get", "providers.local.api_key"]):
        out = oxios_cli("config", *args).output
        assert secret not in out and "***" in out, args
    assert "LOCAL_KEY" in oxios_cli("config", "show").output  # the name of a variable is no secret
    assert oxios_cli("config", "get", "providers.local.api_key", "--reveal").output.strip() == secret
    assert secret in oxios_cli("config", "show", "--json", "--reveal").output


def test_bad_named_entries_are_named(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[providers.local]\nbase_url = "http://127.0.0.1:11434/v1"\n')
    with pytest.raises(cfg.ConfigError) as err:
        cfg.load(path, environ={})
    assert str(err.value).startswith("providers.local.kind: missing (required)") and str(path) in str(err.value)
    with pytest.raises(cfg.ConfigError) as err:
        cfg.load(tmp_path / "none.toml", environ={"OXIOS__MCP__SERVERS__TIME__COMAND": "uvx"})
    assert "mcp.servers.time.comand: unknown key" in str(err.value) and "environment" in str(err.value)


@pytest.mark.parametrize(
    ("toml", "key", "expected"),
    [
        ("[gateway]\nport = 99999999\n", "gateway.port", "Expected `int` <= 65535"),
        ("[gateway]\nport = -1\n", "gateway.port", "Expected `int` >= 0"),
        ("[scheduler]\nmax_concurrent = 0\n", "scheduler.max_concurrent", "Expected `int` >= 1"),
        ("[exec]\ndefault_timeout_secs = -5\n", "exec.default_timeout_secs", "Expected `int` >= 1"),
        ("[gateway]\nmax_concurrent_messages = 0\n", "gateway.max_concurrent_messages", "Expected `int` >= 1"),
        ("[cron]\ntick_interval_secs = 0\n", "cron.tick_interval_secs", "Expected `int` >= 1"),
        ("[audit]\ncheckpoint_every = 0\n", "audit.checkpoint_every", "Expected `int` >= 1"),
        ("[scheduler]\noverload_cpu_percent = 150.0\n", "scheduler.overload_cpu_percent", "<= 100"),
        ("[orchestrator]\nmin_score = 8.0\n", "orchestrator.min_score", "<= 1"),
        ("[llm]\nretry_base_delay_secs = -0.5\n", "llm.retry_base_delay_secs", ">= 0"),
        ("[security]\npolicy_timeout_secs = 0\n", "security.policy_timeout_secs", "> 0"),
        ('[providers.local]\nkind = "openai"\ntimeout_secs = -1.0\n', "providers.local.timeout_secs", "> 0"),
        ('[mcp.servers.time]\ncommand = "uvx"\ntimeout_secs = 0\n', "mcp.servers.time.timeout_secs", ">= 1"),
    ],
)
def test_out_of_range_numbers_name_the_key_and_the_range(tmp_path: Path, toml: str, key: str, expected: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(toml)
    with pytest.raises(cfg.ConfigError) as err:
        cfg.load(path, environ={})
    message = str(err.value)
    assert message.startswith(f"{key}: ") and expected in message and str(path) in message, message


def test_range_edges_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[gateway]\nport = 65535\n[scheduler]\nrate_limit_per_minute = 0\n")
    assert cfg.load(path, environ={}).gateway.port == 65535
    # 0 is "any free port" (the web channel binds it and reports the port it got).
    assert cfg.load(tmp_path / "none.toml", environ={"OXIOS__GATEWAY__PORT": "0"}).gateway.port == 0
