"""oxios-plugin-a2a: Oxios speaks the Agent2Agent protocol (a2a-sdk 1.x), as server and client."""

from __future__ import annotations

from .settings import A2ASettings

__all__ = ["A2ASettings"]
