"""REST endpoints, one module per area; :data:`ENDPOINTS` is their union in routing order."""

from __future__ import annotations

from ..api import Endpoint
from . import agents, chat, cron, git, memory, security, sessions, skills, system, workspace

ENDPOINTS: list[Endpoint] = [
    *system.ENDPOINTS,
    *chat.ENDPOINTS,
    *agents.ENDPOINTS,
    *workspace.ENDPOINTS,
    *skills.ENDPOINTS,
    *memory.ENDPOINTS,
    *sessions.ENDPOINTS,
    *security.ENDPOINTS,
    *cron.ENDPOINTS,
    *git.ENDPOINTS,
]
