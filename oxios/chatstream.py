"""Replies in a chat: split at a platform's length limit, streamed as edits of one message.

- :func:`split_message`: split without breaking a code block.
- :class:`ReplyStreamer`: one message edited as tokens arrive, throttled to the
  platform's edit rate, patient with rate limits, never failing the agent.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)


_FENCE = re.compile(r"^```(\S*)\s*$")


def split_message(text: str, limit: int) -> list[str]:
    """Split ``text`` into chunks of at most ``limit`` characters.

    Prefers paragraph, then line, then word boundaries. A chunk that ends
    inside a fenced code block is closed with a fence and the next chunk
    reopens it (with its language), so every chunk renders on its own.
    """
    if limit < 20:
        raise ValueError("limit too small to split sensibly")
    if len(text) <= limit:
        return [text] if text else []
    chunks: list[str] = []
    reopen = ""
    rest = text
    while rest:
        budget = limit - len(reopen) - 4  # room for a closing fence
        if len(reopen) + len(rest) <= limit:
            chunks.append(reopen + rest)
            break
        cut = _cut_point(rest, budget)
        piece, rest = rest[:cut], rest[cut:].lstrip("\n")
        body = reopen + piece
        lang = _open_fence(body)
        if lang is not None:
            body = body.rstrip("\n") + "\n```"
            reopen = f"```{lang}\n"
        else:
            reopen = ""
        chunks.append(body)
    return chunks


def _cut_point(text: str, budget: int) -> int:
    window = text[:budget]
    for sep in ("\n\n", "\n", " "):
        idx = window.rfind(sep)
        if idx > budget // 3:
            return idx + len(sep)
    return budget


def _open_fence(text: str) -> str | None:
    """The language of a code block left open at the end of ``text``, or None."""
    lang: str | None = None
    for line in text.splitlines():
        m = _FENCE.match(line.strip())
        if m:
            lang = None if lang is not None else m.group(1)
    return lang


SendFn = Callable[[str], Awaitable[Any]]
EditFn = Callable[[Any, str], Awaitable[Any]]


def retry_after_secs(err: BaseException) -> float | None:
    """The wait a platform asked for with a rate-limit error (``retry_after``), if any."""
    value = getattr(err, "retry_after", None)
    if value is None:
        return None
    try:
        return float(value.total_seconds()) if hasattr(value, "total_seconds") else float(value)
    except (TypeError, ValueError):
        return None


class ReplyStreamer:
    """Stream a reply into one message, edited at most every ``interval`` seconds.

    ``send(text) -> handle`` posts a new message; ``edit(handle, text)``
    replaces its text. Past ``limit`` characters the reply continues in new
    messages. Identical edits are skipped (platforms reject them).

    Edits while tokens arrive are a courtesy: they go through ``live_edit``
    (default ``edit``), which should fail fast rather than wait; a failure
    never reaches the agent, and a rate limit (``retry_after``) pauses the
    live edits for as long as the platform asked. The final text is always
    written, in a new message when the old one can no longer be edited.
    """

    def __init__(
        self,
        send: SendFn,
        edit: EditFn,
        *,
        limit: int,
        interval: float = 1.0,
        placeholder: str = "…",
        live_edit: EditFn | None = None,
    ) -> None:
        self.send, self.edit = send, edit
        self.live_edit = live_edit or edit
        self.limit, self.interval, self.placeholder = limit, interval, placeholder
        self.text = ""
        self._handles: list[Any] = []
        self._shown: list[str] = []
        self._last_edit = 0.0
        self._hold_until = 0.0
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        self._handles.append(await self.send(self.placeholder))
        self._shown.append(self.placeholder)
        self._last_edit = time.monotonic()  # the placeholder counts: the first edit waits one interval

    async def on_token(self, token: str) -> None:
        self.text += token
        now = time.monotonic()
        if now - self._last_edit < self.interval or now < self._hold_until or self._lock.locked():
            return
        try:
            await self._render(final=False)
        except asyncio.CancelledError:
            raise
        except Exception as err:
            wait = retry_after_secs(err)
            self._hold_until = time.monotonic() + (wait if wait is not None else max(self.interval, 1.0))
            log.warning("live edit failed (%s); the next one in %.1fs at the earliest", err, self._hold_until - time.monotonic())

    async def finish(self, final_text: str | None = None) -> None:
        if final_text is not None:
            self.text = final_text
        await self._render(final=True)

    async def _render(self, *, final: bool) -> None:
        async with self._lock:
            self._last_edit = time.monotonic()
            text = self.text if self.text.strip() else ("(no answer)" if final else self.placeholder)
            chunks = split_message(text, self.limit) if final else self._live_chunks(text)
            for i, chunk in enumerate(chunks):
                if i >= len(self._handles):
                    self._handles.append(await self.send(chunk))
                    self._shown.append(chunk)
                elif self._shown[i] != chunk:
                    if not final:
                        await self.live_edit(self._handles[i], chunk)
                    else:
                        try:
                            await self.edit(self._handles[i], chunk)
                        except Exception as err:  # deleted, too old to edit ...: the text still has to arrive
                            log.warning("could not edit a reply (%s); sending it as a new message", err)
                            self._handles[i] = await self.send(chunk)
                    self._shown[i] = chunk

    def _live_chunks(self, text: str) -> list[str]:
        # While streaming, show the tail in the current message with a cursor.
        chunks = split_message(text, self.limit - 2)
        if chunks:
            chunks[-1] += " ▌"
        return chunks

    @property
    def messages(self) -> list[Any]:
        return list(self._handles)
