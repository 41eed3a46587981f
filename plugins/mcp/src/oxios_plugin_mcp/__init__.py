"""oxios-plugin-mcp: MCP servers' tools for agents, and Oxios as an MCP server."""

from __future__ import annotations

TOOL_PREFIX = "mcp__"


def tool_name(server: str, tool: str) -> str:
    """The name agents see for ``tool`` of ``server``: ``mcp__SERVER__TOOL``."""
    return f"{TOOL_PREFIX}{server}__{tool}"


__all__ = ["TOOL_PREFIX", "tool_name"]
