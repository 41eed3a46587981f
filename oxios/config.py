"""Typed configuration: defaults < config.toml < ``OXIOS__SECTION__KEY`` env < CLI flags.

The whole config is one msgspec Struct tree, so a bad value is rejected with
the dotted key, the file it came from and what was expected, and the daemon
refuses to start rather than guess.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

ENV_PREFIX = "OXIOS__"


# Numbers with a range: a value that would break the daemon (a port past 65535, a negative timeout, no
# concurrency at all) is a config error naming the key, not a crash or a hang later.
Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]  # 0: any free port
AtLeastOne = Annotated[int, msgspec.Meta(ge=1)]
NonNegative = Annotated[int, msgspec.Meta(ge=0)]
PositiveSecs = Annotated[float, msgspec.Meta(gt=0)]
NonNegativeSecs = Annotated[float, msgspec.Meta(ge=0)]
Percent = Annotated[float, msgspec.Meta(gt=0, le=100)]
Fraction = Annotated[float, msgspec.Meta(ge=0, le=1)]


class Section(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Base of every config section: unknown keys are errors, not typos ignored."""


class KernelConfig(Section):
    workspace: str = "~/.oxios/workspace"
    max_agents: AtLeastOne = 10
    default_provider: str = ""
    default_model: str = ""
    max_turns: AtLeastOne = 25
    log_level: str = "info"


class GatewayConfig(Section):
    host: str = "127.0.0.1"
    port: Port = 4200
    max_concurrent_messages: AtLeastOne = 16


class ExecConfig(Section):
    allowed_commands: list[str] = msgspec.field(
        default_factory=lambda: ["git", "ls", "cat", "echo", "pwd", "grep", "find", "python3", "wc", "head", "tail"]
    )
    allowlist_mode: Literal["strict", "permissive"] = "strict"
    shell_mode: bool = False
    default_timeout_secs: AtLeastOne = 120
    max_timeout_secs: AtLeastOne = 600
    max_output_bytes: AtLeastOne = 65536
    env_passthrough: list[str] = []
    required_host_tools: list[str] = msgspec.field(default_factory=lambda: ["git"])
    optional_host_tools: list[str] = msgspec.field(default_factory=lambda: ["gh"])


class SchedulerConfig(Section):
    backend: str = "local"
    max_concurrent: AtLeastOne = 5
    rate_limit_per_minute: NonNegative = 60
    zombie_timeout_secs: AtLeastOne = 300
    overload_cpu_percent: Percent = 90.0
    overload_memory_percent: Percent = 90.0


class RoleConfig(Section):
    tools: list[str] = msgspec.field(default_factory=lambda: ["*"])
    exec_modes: list[str] = msgspec.field(default_factory=lambda: ["structured"])
    paths: list[str] = []
    network: bool = False
    manage_agents: bool = False
    manage_config: bool = False
    manage_audit: bool = False
    fork_agents: bool = False


class SecurityConfig(Section):
    auth_enabled: bool = False
    max_execution_time_secs: AtLeastOne = 300
    default_role: str = "user"
    allowed_paths: list[str] = []
    denied_paths: list[str] = []
    # Hard links cannot be resolved: their other names may be outside the workspace.
    read_hardlinked_files: bool = False
    ssrf_allowlist: list[str] = []
    robots_txt: bool = True
    approval_timeout_secs: NonNegative = 120
    # How long one policy's check_action may take; a policy that does not answer in time votes deny.
    policy_timeout_secs: PositiveSecs = 5.0
    tool_policies: dict[str, Literal["auto", "on_demand", "always"]] = {}
    roles: dict[str, RoleConfig] = {}
    rate_limit_per_minute: NonNegative = 120


class CronJobConfig(Section):
    schedule: str
    goal: str
    timezone: str = ""
    persona: str = ""
    priority: Literal["low", "normal", "high"] = "normal"
    enabled: bool = True
    constraints: list[str] = []
    acceptance_criteria: list[str] = []
    deliver_to: str = ""
    misfire_policy: Literal["skip", "catch_up", ""] = ""
    timeout_secs: NonNegative = 0
    max_runs: NonNegative = 0
    # Commands this job may run without a human (it runs headless): exact command lines such as
    # "git pull --ff-only". Everything else that needs an approval is denied and audited.
    approve: list[str] = []


class CronConfig(Section):
    enabled: bool = True
    tick_interval_secs: AtLeastOne = 60
    misfire_policy: Literal["skip", "catch_up"] = "catch_up"
    misfire_grace_secs: NonNegative = 3600
    max_concurrent_jobs: AtLeastOne = 2
    history_limit: NonNegative = 50
    notify_after_failures: NonNegative = 3
    pause_after_failures: NonNegative = 5
    lease_secs: AtLeastOne = 90
    delivery_max_attempts: AtLeastOne = 5
    delivery_backoff_secs: NonNegativeSecs = 30.0
    jobs: dict[str, CronJobConfig] = {}


class MemoryConfig(Section):
    enabled: bool = True
    backend: str = "sqlite"
    embedder: str = "hashing"
    hot_token_budget: int = 3000
    recall_token_budget: int = 1500
    # "auto": the embedder's own recommendation (cosines mean different things to different embedders).
    recall_min_similarity: Fraction | Literal["auto"] = "auto"
    decay_threshold: float = 0.05
    dream_interval_hours: int = 24
    dream_after_sessions: int = 20
    embedding_dim: int = 384
    # How the vector index stores vectors: f16 keeps f32's recall in about half the memory (bench/memory_dtype.py).
    vector_dtype: Literal["f32", "f16", "i8"] = "f16"
    dream_summarizer: Literal["auto", "extractive"] = "auto"


class SessionConfig(Section):
    auto_prune: bool = True
    max_sessions: int = 1000
    ttl_hours: int = 720
    max_history_messages: int = 200


class BudgetConfig(Section):
    default_max_tokens: NonNegative = 0
    default_max_cost_usd: NonNegativeSecs = 0.0
    pricing: dict[str, list[float]] = {}


class AuditConfig(Section):
    enabled: bool = True
    checkpoint_every: AtLeastOne = 100
    retain_entries: NonNegative = 0


class GitConfig(Section):
    enabled: bool = True
    auto_commit: bool = True
    author: str = "Oxios <oxios@localhost>"


class McpServerConfig(Section):
    command: str = ""
    args: list[str] = []
    env: dict[str, str] = {}
    cwd: str = ""
    url: str = ""
    headers: dict[str, str] = {}
    timeout_secs: AtLeastOne = 30
    # Starting is slower than a call (an interpreter loading, `npx` fetching a package the first time).
    start_timeout_secs: AtLeastOne = 60
    enabled: bool = True
    # Safety tier of this server's tools; "" = "exec" for stdio servers, "network" for HTTP ones.
    tier: Literal["", "read", "write", "exec", "network"] = ""


class McpConfig(Section):
    enabled: bool = True
    servers: dict[str, McpServerConfig] = {}


class ProviderConfig(Section):
    kind: str
    api_key: str = ""
    api_key_env: str = ""
    base_url: str = ""
    models: list[str] = []
    default_model: str = ""
    timeout_secs: PositiveSecs = 120.0
    context_window: NonNegative = 0


class LlmConfig(Section):
    """Behaviour shared by every provider: retries, circuit breaker, fallbacks."""

    max_retries: NonNegative = 3
    retry_base_delay_secs: NonNegativeSecs = 0.5
    retry_max_delay_secs: NonNegativeSecs = 30.0
    breaker_failure_threshold: AtLeastOne = 5
    breaker_cooldown_secs: NonNegativeSecs = 30.0
    fallback_models: list[str] = []


class OrchestratorConfig(Section):
    default_mode: Literal["auto", "protocol", "chat"] = "auto"
    force_prefixes: list[str] = msgspec.field(default_factory=lambda: ["#spec", "#plan"])
    skip_prefixes: list[str] = msgspec.field(default_factory=lambda: ["#chat"])
    max_interview_rounds: NonNegative = 3
    ambiguity_threshold: Fraction = 0.2
    max_generations: AtLeastOne = 3
    min_score: Fraction = 0.8


class SkillsConfig(Section):
    prompt_token_budget: NonNegative = 2000
    extra_dirs: list[str] = []
    max_depth: AtLeastOne = 6


class Config(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    kernel: KernelConfig = msgspec.field(default_factory=KernelConfig)
    gateway: GatewayConfig = msgspec.field(default_factory=GatewayConfig)
    exec: ExecConfig = msgspec.field(default_factory=ExecConfig)
    scheduler: SchedulerConfig = msgspec.field(default_factory=SchedulerConfig)
    security: SecurityConfig = msgspec.field(default_factory=SecurityConfig)
    cron: CronConfig = msgspec.field(default_factory=CronConfig)
    memory: MemoryConfig = msgspec.field(default_factory=MemoryConfig)
    session: SessionConfig = msgspec.field(default_factory=SessionConfig)
    budget: BudgetConfig = msgspec.field(default_factory=BudgetConfig)
    audit: AuditConfig = msgspec.field(default_factory=AuditConfig)
    git: GitConfig = msgspec.field(default_factory=GitConfig)
    mcp: McpConfig = msgspec.field(default_factory=McpConfig)
    llm: LlmConfig = msgspec.field(default_factory=LlmConfig)
    # Named providers: [providers.NAME] with kind = "anthropic" | "openai" | ...
    providers: dict[str, ProviderConfig] = {}
    orchestrator: OrchestratorConfig = msgspec.field(default_factory=OrchestratorConfig)
    skills: SkillsConfig = msgspec.field(default_factory=SkillsConfig)
    # Channel plugins own their own settings; the host keeps them as tables.
    channels: dict[str, dict[str, Any]] = {}
    # Settings of other plugins, by plugin name.
    plugins: dict[str, dict[str, Any]] = {}


SECTION_COMMENTS: dict[str, str] = {
    "kernel": "Where agents work and how many may live at once.",
    "gateway": "Where the web UI and REST API listen (web plugin).",
    "exec": "Host commands agents may run: allowlist, timeouts, output limits.",
    "scheduler": "Admission of agent work: concurrency, rate limit, zombie detection.",
    "security": "API auth, roles, sandbox paths, SSRF allowlist, approvals.",
    "cron": "Scheduled agent jobs; add jobs as [cron.jobs.NAME].",
    "memory": "Persistent memory: backend, embedder, prompt budgets, consolidation.",
    "session": "Session retention.",
    "budget": "Token and cost limits; pricing as model = [input_per_mtok, output_per_mtok].",
    "audit": "The tamper-evident audit chain.",
    "git": "Automatic commits of the workspace (git plugin).",
    "mcp": "MCP servers as [mcp.servers.NAME] (mcp plugin).",
    "llm": "Provider retries, circuit breaker and fallback models.",
    "providers": "LLM providers as [providers.NAME] with kind = anthropic | openai (any OpenAI-compatible base_url).",
    "orchestrator": "The Ouroboros protocol: routing, interview, evaluation, evolution.",
    "skills": "SKILL.md packages: prompt budget and extra folders.",
    "channels": "Chat channels as [channels.NAME] (telegram, discord ...).",
    "plugins": "Settings of other plugins as [plugins.NAME].",
}


class ConfigError(Exception):
    """A config value is wrong. The message names the key, the source and what was expected."""


def home_dir() -> Path:
    """OXIOS_HOME, or ``~/.oxios``."""
    return Path(os.environ.get("OXIOS_HOME") or Path.home() / ".oxios").expanduser()


def config_path(home: Path | None = None) -> Path:
    return (home or home_dir()) / "config.toml"


def defaults() -> dict[str, Any]:
    return msgspec.to_builtins(Config())


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_value(text: str) -> Any:
    """Read a command-line or environment value as TOML, falling back to a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _set_dotted(tree: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = tree
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{key}: {part} is not a section")
    node[parts[-1]] = value


def env_overrides(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """``OXIOS__GATEWAY__PORT=4300`` becomes ``{"gateway": {"port": 4300}}``."""
    tree: dict[str, Any] = {}
    for name, value in (environ if environ is not None else os.environ).items():
        if name.startswith(ENV_PREFIX) and len(name) > len(ENV_PREFIX):
            key = ".".join(p.lower() for p in name[len(ENV_PREFIX) :].split("__"))
            _set_dotted(tree, key, parse_value(value))
    return tree


def _explain(err: msgspec.ValidationError, sources: dict[str, str]) -> str:
    message = str(err)
    key = ""
    if " - at `$." in message:
        message, _, where = message.partition(" - at `$.")
        key = where.rstrip("`")
    elif "`$`" in message or " - at `$`" in message:
        message = message.replace(" - at `$`", "")
    key = key.replace("[", ".").replace("]", "").replace('"', "")
    # Unknown keys are reported by msgspec as "Object contains unknown field `x`".
    if "unknown field" in message:
        unknown = message.split("`")[1] if "`" in message else ""
        key = f"{key}.{unknown}" if key else unknown
        message = "unknown key (check the spelling; `oxios config show` lists every key)"
    source = _source_of(key, sources)
    return f"{key or 'config'}: {message} (from {source})"


def _source_of(key: str, sources: dict[str, str]) -> str:
    parts = key.split(".")
    for i in range(len(parts), 0, -1):
        hit = sources.get(".".join(parts[:i]))
        if hit:
            return hit
    return sources.get("", "defaults")


def _record_sources(tree: dict[str, Any], origin: str, sources: dict[str, str], prefix: str = "") -> None:
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        sources[dotted] = origin
        if isinstance(value, dict):
            _record_sources(value, origin, sources, dotted + ".")


def load_file(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text (byte {err.start}); TOML files are UTF-8") from None
    except OSError as err:  # a directory, no permission, an I/O error
        raise ConfigError(f"{path}: cannot read it: {err.strerror or err}") from None


def load(
    path: Path | None = None,
    *,
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> Config:
    """Build the config from its layers. Raises :class:`ConfigError` on a bad value."""
    path = path or config_path()
    sources: dict[str, str] = {}
    tree = defaults()
    file_tree = load_file(path)
    _record_sources(file_tree, str(path), sources)
    tree = _merge(tree, file_tree)
    env_tree = env_overrides(environ)
    _record_sources(env_tree, "environment (OXIOS__...)", sources)
    tree = _merge(tree, env_tree)
    if overrides:
        _record_sources(overrides, "command line", sources)
        tree = _merge(tree, overrides)
    _check_named_tables(tree, sources)
    try:
        return msgspec.convert(tree, Config)
    except msgspec.ValidationError as err:
        raise ConfigError(_explain(err, sources)) from None


# Tables of named entries ([providers.NAME] ...): msgspec reports a bad entry without its
# name, so each entry is checked on its own first and the error names it.
_NAMED_TABLES: list[tuple[str, type]] = [
    ("providers", ProviderConfig),
    ("cron.jobs", CronJobConfig),
    ("mcp.servers", McpServerConfig),
    ("security.roles", RoleConfig),
]


def _check_named_tables(tree: dict[str, Any], sources: dict[str, str]) -> None:
    for dotted, entry_type in _NAMED_TABLES:
        node: Any = tree
        for part in dotted.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            continue
        for name, entry in node.items():
            try:
                msgspec.convert(entry, entry_type)
            except msgspec.ValidationError as err:
                message, _, where = str(err).partition(" - at `$")
                field = where.strip(".`")
                if "missing required field" in message:
                    field = message.split("`")[1] if "`" in message else field
                    message = "missing (required)"
                elif "unknown field" in message:
                    field = message.split("`")[1] if "`" in message else field
                    message = "unknown key (check the spelling)"
                key = f"{dotted}.{name}" + (f".{field}" if field else "")
                raise ConfigError(f"{key}: {message} (from {_source_of(f'{dotted}.{name}', sources)})") from None


# Config keys whose values are credentials: shown as REDACTED by `oxios config show` and the web API.
REDACTED = "***"
_SECRET_KEY = re.compile(r"(?i)(api_?key|token|secret|password|passphrase|authorization|credential)")
_SECRET_TABLES = {"env", "headers"}  # every value inside is treated as a secret


def redact_tree(node: Any, key: str = "") -> Any:
    """``node`` (plain data) with every credential replaced by :data:`REDACTED` (``*_env`` names stay)."""
    if isinstance(node, dict):
        if key in _SECRET_TABLES:
            return {k: REDACTED if v else v for k, v in node.items()}
        return {k: redact_tree(v, k) for k, v in node.items()}
    if isinstance(node, list):
        return [redact_tree(v, key) for v in node]
    if isinstance(node, str) and node and _SECRET_KEY.search(key) and not key.endswith("_env"):
        return REDACTED
    return node


def get_key(config: Config, key: str) -> Any:
    node: Any = msgspec.to_builtins(config)
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ConfigError(f"{key}: no such key")
        node = node[part]
    return node


def render_default_file() -> str:
    """The first-run config.toml: every default, a short comment per section."""
    import tomlkit

    doc = tomlkit.document()
    doc.add(tomlkit.comment("Oxios configuration. Precedence: defaults < this file < OXIOS__SECTION__KEY env < CLI flags."))
    doc.add(tomlkit.comment("`oxios config validate` checks it; `oxios config set KEY VALUE` edits it and keeps comments."))
    for name, value in defaults().items():
        table = tomlkit.table()
        table.add(tomlkit.comment(SECTION_COMMENTS.get(name, name)))
        for key, item in value.items():
            table.add(key, item)
        doc.add(tomlkit.nl())
        doc.add(name, table)
    return tomlkit.dumps(doc)


def write_atomic(path: Path, text: str, mode: int = 0o600) -> None:
    """Write a file so a crash leaves either the old or the new content, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def ensure_file(path: Path | None = None) -> Path:
    """Write the default config on first run; leave an existing one alone."""
    path = path or config_path()
    if not path.exists():
        write_atomic(path, render_default_file())
    return path


def set_key(path: Path, key: str, raw_value: str) -> Any:
    """Set ``key`` in the file, keeping comments; validate before writing."""
    import tomlkit

    ensure_file(path)
    doc = tomlkit.parse(path.read_text(encoding="utf-8"))
    value = parse_value(raw_value)
    parts = key.split(".")
    node: Any = doc
    for part in parts[:-1]:
        if part not in node:
            node[part] = tomlkit.table()
        node = node[part]
    node[parts[-1]] = value
    text = tomlkit.dumps(doc)
    # Validate the whole result against the schema before touching the file.
    try:
        msgspec.convert(_merge(defaults(), tomllib.loads(text)), Config)
    except msgspec.ValidationError as err:
        raise ConfigError(_explain(err, {"": str(path)})) from None
    write_atomic(path, text)
    return value
