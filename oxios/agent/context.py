"""Keeping a conversation inside the model's window.

Tokens are estimated at about four characters each (no tokenizer download;
close enough to decide *when* to compact). Near the window the history is
compacted: everything before the latest user turn is summarised (by the model
when it can, extractively when it cannot), and inside the current turn only
the most recent tool results stay whole; older ones are replaced by a note.
The system prompt is never touched, and tool_use/tool_result pairs stay
matched so every provider accepts the result.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from oxios_hookspecs import Message, TextBlock, ToolResultBlock, ToolSpec, ToolUseBlock

log = logging.getLogger(__name__)

# Compact when the estimate passes this share of the usable window.
COMPACT_AT = 0.8
# Tool results (of the current turn) kept whole when compacting; older ones are elided.
KEEP_RECENT_TOOL_RESULTS = 4
SUMMARY_SYSTEM = (
    "Summarise the conversation below for the assistant who will continue it. Keep facts, decisions, "
    "file names, open questions and what the user asked for; drop chit-chat. At most 250 words."
)
SUMMARY_PREFIX = "[Summary of the earlier conversation]\n"

Summarizer = Callable[[str], Awaitable[str]]


def estimate_tokens(text: str) -> int:
    return (len(text) + 3) // 4


def block_text(block: Any) -> str:
    if isinstance(block, TextBlock):
        return block.text
    if isinstance(block, ToolResultBlock):
        return block.content
    if isinstance(block, ToolUseBlock):
        return block.name + msgspec.json.encode(block.input).decode()
    return ""


def estimate_messages(messages: list[Message]) -> int:
    # A few tokens of framing per message and block, as every provider adds some.
    return sum(4 + sum(3 + estimate_tokens(block_text(b)) for b in m.content) for m in messages)


def estimate_request(system: str, messages: list[Message], tools: list[ToolSpec]) -> int:
    tool_tokens = sum(estimate_tokens(t.name + t.description + msgspec.json.encode(t.parameters).decode()) for t in tools)
    return estimate_tokens(system) + estimate_messages(messages) + tool_tokens


def latest_user_turn(messages: list[Message]) -> int:
    """Index of the latest message a person wrote (a user message with text, not only tool results)."""
    for i in range(len(messages) - 1, -1, -1):
        m = messages[i]
        if m.role == "user" and any(isinstance(b, TextBlock) for b in m.content):
            return i
    return 0


def transcript(messages: list[Message], limit_chars: int = 60_000) -> str:
    lines = []
    for m in messages:
        for b in m.content:
            if isinstance(b, TextBlock):
                lines.append(f"{m.role}: {b.text}")
            elif isinstance(b, ToolUseBlock):
                lines.append(f"{m.role} called {b.name}({msgspec.json.encode(b.input).decode()[:300]})")
            elif isinstance(b, ToolResultBlock):
                lines.append(f"tool result: {b.content[:500]}")
    text = "\n".join(lines)
    return text if len(text) <= limit_chars else text[-limit_chars:]


def extractive_summary(messages: list[Message], limit_chars: int = 2000) -> str:
    """A summary without a model: the first part of every text message, newest kept when too long."""
    lines = [f"{m.role}: {m.text[:200]}" for m in messages if m.text]
    text = "\n".join(lines)
    return text if len(text) <= limit_chars else "...\n" + text[-limit_chars:]


def elide_old_tool_results(messages: list[Message], start: int, keep: int) -> tuple[list[Message], int]:
    """Replace all but the newest ``keep`` tool results after ``start`` with a short note."""
    positions = [
        (i, j)
        for i in range(start, len(messages))
        for j, b in enumerate(messages[i].content)
        if isinstance(b, ToolResultBlock) and not b.content.startswith("[output elided")
    ]
    old = positions[: max(0, len(positions) - keep)]
    if not old:
        return messages, 0
    out = list(messages)
    for i, j in old:
        content = list(out[i].content)
        b = content[j]
        assert isinstance(b, ToolResultBlock)
        note = f"[output elided to save context: {len(b.content)} characters; call the tool again if needed]"
        content[j] = ToolResultBlock(tool_use_id=b.tool_use_id, content=note, is_error=b.is_error)
        out[i] = Message(role=out[i].role, content=content)
    return out, len(old)


async def compact(
    system: str,
    messages: list[Message],
    tools: list[ToolSpec],
    *,
    window: int,
    reserve_output: int,
    summarize: Summarizer | None = None,
) -> tuple[list[Message], dict[str, Any] | None]:
    """Return (messages, report); report is None when nothing had to change."""
    limit = int((window - reserve_output) * COMPACT_AT)
    before = estimate_request(system, messages, tools)
    if before <= limit:
        return messages, None
    report: dict[str, Any] = {"tokens_before": before, "limit": limit, "summarised_messages": 0, "elided_results": 0}
    turn = latest_user_turn(messages)
    if turn > 0:
        older, recent = messages[:turn], messages[turn:]
        summary = ""
        if summarize is not None:
            try:
                summary = (await summarize(transcript(older))).strip()
            except Exception as err:  # a failed summary must not fail the run; fall back to extraction
                log.warning("context summary by the model failed (%s); using an extractive summary", err)
        summary = summary or extractive_summary(older)
        first = recent[0]
        recent[0] = Message(role="user", content=[TextBlock(text=SUMMARY_PREFIX + summary), *first.content])
        messages = recent
        report["summarised_messages"] = turn
    if estimate_request(system, messages, tools) > limit:
        messages, elided = elide_old_tool_results(messages, 0, KEEP_RECENT_TOOL_RESULTS)
        if estimate_request(system, messages, tools) > limit:
            more, elided_more = elide_old_tool_results(messages, 0, 1)
            messages, elided = more, elided + elided_more
        report["elided_results"] = elided
    report["tokens_after"] = estimate_request(system, messages, tools)
    return messages, report
