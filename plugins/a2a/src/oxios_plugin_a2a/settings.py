"""``[plugins.a2a]`` settings."""

from __future__ import annotations

from typing import Any

import msgspec


class RemoteAgent(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``[plugins.a2a.remotes.NAME]``: a remote agent and how to authenticate to it.

    Secrets only come from environment variables, named here; their values are
    sent to this URL's origin (scheme, host, port) and nowhere else.
    """

    url: str
    # Environment variable holding a bearer token (sent as ``Authorization: Bearer ...``).
    token_env: str = ""
    # Header name -> environment variable holding its value (API keys in custom headers).
    headers_env: dict[str, str] = {}


class A2ASettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    # Serve on its own port (0 = only inside the web plugin, when it is installed).
    port: int = 0
    host: str = "127.0.0.1"
    # The URL other agents reach Oxios at (the card's interface URL); "" = derived from host/port.
    public_url: str = ""
    rpc_path: str = "/a2a"
    name: str = "Oxios"
    description: str = "An operating system for LLM agents: each task is an Oxios agent run."
    # Personas listed as skills; the skill id picks the persona for a task.
    list_personas: bool = True
    list_skills: bool = True
    # Client side (a2a_delegate, oxios a2a card|send).
    timeout_secs: float = 120.0
    remotes: dict[str, RemoteAgent] = {}

    @classmethod
    def from_kernel(cls, kernel: Any) -> A2ASettings:
        return cls.from_config(kernel.config)

    @classmethod
    def from_config(cls, config: Any) -> A2ASettings:
        try:
            settings = msgspec.convert(dict(config.plugins.get("a2a", {})), cls)
        except msgspec.ValidationError as err:
            raise ValueError(f"invalid [plugins.a2a] config: {err}") from None
        for name, remote in settings.remotes.items():
            if "://" not in remote.url:
                raise ValueError(f"invalid [plugins.a2a] config: remotes.{name}.url must be an http(s) URL, not {remote.url!r}")
        return settings

    def base_url(self, kernel: Any) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        if self.port:
            return f"http://{self.host}:{self.port}"
        gateway = kernel.config.gateway
        return f"http://{gateway.host}:{gateway.port}"
