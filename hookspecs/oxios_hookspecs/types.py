"""The data that crosses the plugin boundary.

Every value here is a msgspec Struct so it can be validated at the edge,
written to disk and sent over the wire without a second model. Structs grow
by gaining fields with defaults, never by renaming or removing one.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

import msgspec


def new_id() -> str:
    """A fresh random id (UUID4 as text), the id format used across Oxios."""
    return str(uuid.uuid4())


# --------------------------------------------------------------------------
# Conversation: messages and content blocks
# --------------------------------------------------------------------------


class TextBlock(msgspec.Struct, tag="text", tag_field="type", kw_only=True):
    text: str


class ToolUseBlock(msgspec.Struct, tag="tool_use", tag_field="type", kw_only=True):
    """The model asked for a tool call."""

    id: str
    name: str
    input: dict[str, Any] = {}


class ToolResultBlock(msgspec.Struct, tag="tool_result", tag_field="type", kw_only=True):
    """The answer to one :class:`ToolUseBlock`, matched by ``tool_use_id``."""

    tool_use_id: str
    content: str
    is_error: bool = False


ContentBlock = TextBlock | ToolUseBlock | ToolResultBlock

Role = Literal["user", "assistant"]


class Message(msgspec.Struct, kw_only=True):
    role: Role
    content: list[ContentBlock] = []

    @classmethod
    def user(cls, text: str) -> Message:
        return cls(role="user", content=[TextBlock(text=text)])

    @classmethod
    def assistant(cls, text: str) -> Message:
        return cls(role="assistant", content=[TextBlock(text=text)])

    @property
    def text(self) -> str:
        """The concatenated text blocks of this message."""
        return "".join(b.text for b in self.content if isinstance(b, TextBlock))

    @property
    def tool_uses(self) -> list[ToolUseBlock]:
        return [b for b in self.content if isinstance(b, ToolUseBlock)]


# --------------------------------------------------------------------------
# Tools
# --------------------------------------------------------------------------

SafetyTier = Literal["read", "write", "exec", "network"]


class ToolSpec(msgspec.Struct, kw_only=True):
    """What a model sees of a tool, plus what drives policy: its tier and the capability it needs.

    ``capability`` names a role capability (``fork_agents``, ``manage_agents``,
    ``manage_config``, ``manage_audit``, ``network``) the caller's role must have;
    empty means the tier and the role's ``tools`` patterns decide alone.
    """

    name: str
    description: str = ""
    parameters: dict[str, Any] = msgspec.field(default_factory=lambda: {"type": "object", "properties": {}})
    tier: SafetyTier = "read"
    plugin: str = ""
    capability: str = ""


class ToolResult(msgspec.Struct, kw_only=True):
    """What a tool call produced. ``is_error`` results go back to the model."""

    content: str
    is_error: bool = False
    data: Any = None

    @classmethod
    def error(cls, message: str) -> ToolResult:
        return cls(content=message, is_error=True)


# --------------------------------------------------------------------------
# Providers: requests, streams, responses
# --------------------------------------------------------------------------


class Usage(msgspec.Struct, kw_only=True):
    input_tokens: int = 0
    output_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
        )


StopReason = Literal["end_turn", "tool_use", "max_tokens", "stop_sequence", "error"]


class ModelRequest(msgspec.Struct, kw_only=True):
    model: str
    messages: list[Message]
    system: str = ""
    tools: list[ToolSpec] = []
    max_tokens: int = 4096
    temperature: float | None = None
    metadata: dict[str, Any] = {}


class TextDelta(msgspec.Struct, tag="text", tag_field="kind", kw_only=True):
    text: str


class ToolCallEvent(msgspec.Struct, tag="tool_call", tag_field="kind", kw_only=True):
    """A complete tool call (providers assemble partial JSON before yielding)."""

    id: str
    name: str
    arguments: dict[str, Any] = {}


class UsageEvent(msgspec.Struct, tag="usage", tag_field="kind", kw_only=True):
    usage: Usage


class StopEvent(msgspec.Struct, tag="stop", tag_field="kind", kw_only=True):
    reason: StopReason = "end_turn"


StreamEvent = TextDelta | ToolCallEvent | UsageEvent | StopEvent


class ModelResponse(msgspec.Struct, kw_only=True):
    message: Message
    usage: Usage = msgspec.field(default_factory=Usage)
    stop_reason: StopReason = "end_turn"
    model: str = ""


class ModelInfo(msgspec.Struct, kw_only=True):
    id: str
    provider: str
    context_window: int = 128_000
    input_price_per_mtok: float = 0.0
    output_price_per_mtok: float = 0.0


# --------------------------------------------------------------------------
# Policy: actions and decisions
# --------------------------------------------------------------------------

ActionKind = Literal["tool", "exec", "path", "url", "api"]
Verdict = Literal["allow", "ask", "deny"]


class Action(msgspec.Struct, kw_only=True):
    """Something an agent or a client wants to do, as policies see it.

    ``kind`` says which fields matter: ``tool`` (tool, tier, args),
    ``exec`` (argv or command, cwd, mode), ``path`` (path, access),
    ``url`` (url), ``api`` (name, resource).
    """

    kind: ActionKind
    name: str = ""
    tool: str = ""
    tier: SafetyTier | None = None
    args: dict[str, Any] = {}
    argv: list[str] = []
    command: str = ""
    mode: Literal["structured", "shell"] = "structured"
    cwd: str = ""
    path: str = ""
    access: Literal["read", "write"] = "read"
    url: str = ""
    resource: str = ""

    def describe(self) -> str:
        """A one-line human description (used in audit entries and approvals)."""
        if self.kind == "exec":
            return self.command or " ".join(self.argv)
        if self.kind == "path":
            return f"{self.access} {self.path}"
        if self.kind == "url":
            return self.url
        if self.kind == "tool":
            return self.tool
        return self.resource or self.name


class Decision(msgspec.Struct, kw_only=True):
    """One policy's vote on an :class:`Action`."""

    verdict: Verdict
    reason: str
    policy: str = ""


class ActionContext(msgspec.Struct, kw_only=True):
    """Who is acting, and where. ``kernel`` is the facade, never internals."""

    agent_id: str = ""
    role: str = "user"
    session_id: str = ""
    workspace: str = ""
    interactive: bool = True
    kernel: Any = None


# --------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------


class Event(msgspec.Struct, kw_only=True):
    """Something that happened. ``type`` uses dotted names (``agent.started``)."""

    type: str
    data: dict[str, Any] = {}
    id: int = 0
    ts: float = msgspec.field(default_factory=time.time)


# --------------------------------------------------------------------------
# Channels
# --------------------------------------------------------------------------


class Attachment(msgspec.Struct, kw_only=True):
    name: str
    path: str
    mime: str = "application/octet-stream"
    size: int = 0


class IncomingMessage(msgspec.Struct, kw_only=True):
    """A message from a person, as a channel hands it to the gateway."""

    content: str
    channel: str
    user_id: str = "default"
    id: str = msgspec.field(default_factory=new_id)
    chat_id: str = ""
    thread_id: str = ""
    session_id: str | None = None
    space_id: str | None = None
    persona: str | None = None
    attachments: list[Attachment] = []
    interactive: bool = True
    metadata: dict[str, Any] = {}


class OutgoingMessage(msgspec.Struct, kw_only=True):
    """A reply or a proactive message, as the gateway hands it to a channel."""

    content: str
    channel: str
    chat_id: str = ""
    thread_id: str = ""
    reply_to: str = ""
    session_id: str | None = None
    attachments: list[Attachment] = []
    metadata: dict[str, Any] = {}


# --------------------------------------------------------------------------
# Memory
# --------------------------------------------------------------------------

MemoryTier = Literal["hot", "warm", "cold"]
SearchMode = Literal["keyword", "semantic", "hybrid"]


class MemoryRecord(msgspec.Struct, kw_only=True):
    content: str
    id: str = msgspec.field(default_factory=new_id)
    name: str = ""
    type: str = "fact"
    category: str = ""
    tier: MemoryTier = "warm"
    importance: float = 0.5
    protection: float = 0.0
    pinned: bool = False
    created: float = msgspec.field(default_factory=time.time)
    accessed: float = msgspec.field(default_factory=time.time)
    access_count: int = 0
    session_ids: list[str] = []
    source: str = ""


class MemoryHit(msgspec.Struct, kw_only=True):
    record: MemoryRecord
    score: float
    why: str = ""


__all__ = [
    "Action",
    "ActionContext",
    "ActionKind",
    "Attachment",
    "ContentBlock",
    "Decision",
    "Event",
    "IncomingMessage",
    "MemoryHit",
    "MemoryRecord",
    "MemoryTier",
    "Message",
    "ModelInfo",
    "ModelRequest",
    "ModelResponse",
    "OutgoingMessage",
    "Role",
    "SafetyTier",
    "SearchMode",
    "StopEvent",
    "StopReason",
    "StreamEvent",
    "TextBlock",
    "TextDelta",
    "ToolCallEvent",
    "ToolResult",
    "ToolResultBlock",
    "ToolSpec",
    "ToolUseBlock",
    "Usage",
    "UsageEvent",
    "Verdict",
    "new_id",
]
