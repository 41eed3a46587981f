"""``[plugins.a2a]`` settings."""

from __future__ import annotations

from typing import Any

import msgspec


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
    # Client side (a2a_delegate, oxios a2a send).
    timeout_secs: float = 120.0

    @classmethod
    def from_kernel(cls, kernel: Any) -> A2ASettings:
        try:
            return msgspec.convert(dict(kernel.config.plugins.get("a2a", {})), cls)
        except msgspec.ValidationError as err:
            raise ValueError(f"invalid [plugins.a2a] config: {err}") from None

    def base_url(self, kernel: Any) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        if self.port:
            return f"http://{self.host}:{self.port}"
        gateway = kernel.config.gateway
        return f"http://{gateway.host}:{gateway.port}"
