"""What every chat channel (Telegram, Discord ...) needs, written once.

- :class:`ChatSessions`: a chat (or a forum topic / thread) maps to a session;
  ``/new``, ``/sessions``, ``/switch`` move between sessions of that chat.
- :func:`handle_command`: the shared slash commands.
- :func:`split_message`: split at a platform's length limit without breaking
  a code block.
- :class:`ReplyStreamer`: one message edited as tokens arrive, throttled to
  the platform's edit rate.
- :func:`authorize`: allowlist first, then DM pairing; unknown senders audited.
- :class:`ChatChannel`: the flow above in one base class (receive, answer,
  files, approvals); a platform plugin adds only its wire.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec

from oxios_hookspecs import Action, Attachment, IncomingMessage, new_id

from . import pairing
from .plugins import resolve

log = logging.getLogger(__name__)

HELP_TEXT = (
    "/new [name] start a new session\n"
    "/sessions list this chat's sessions\n"
    "/switch ID switch to a session (a prefix of its id is enough)\n"
    "/cancel stop the running answer\n"
    "/status show Oxios's status\n"
    "/persona NAME answer as another persona\n"
    "/help this text"
)


# ---------------------------------------------------------------------------
# sessions per chat
# ---------------------------------------------------------------------------


class ChatSessions:
    """Session of each chat key (``chat`` or ``chat/thread``), persisted in the state store."""

    def __init__(self, kernel: Any, channel: str) -> None:
        self.kernel = kernel
        self.channel = channel
        self.namespace = f"chat.{channel}"

    def _entry(self, chat_key: str) -> dict[str, Any]:
        return self.kernel.state.kv_get(self.namespace, chat_key, {"current": None, "sessions": [], "persona": None})

    def _save(self, chat_key: str, entry: dict[str, Any]) -> None:
        self.kernel.state.kv_set(self.namespace, chat_key, entry)

    def current(self, chat_key: str) -> str | None:
        return self._entry(chat_key)["current"]

    def persona(self, chat_key: str) -> str | None:
        return self._entry(chat_key).get("persona")

    def remember(self, chat_key: str, session_id: str, title: str = "") -> None:
        """Record the session the gateway used (or created) for this chat."""
        entry = self._entry(chat_key)
        if not any(s["id"] == session_id for s in entry["sessions"]):
            entry["sessions"].append({"id": session_id, "title": title, "created": time.time()})
        entry["current"] = session_id
        self._save(chat_key, entry)

    def ensure(self, chat_key: str, first_message: str = "") -> str:
        """The chat's current session id, choosing a new one (titled from /new or the message) if none."""
        current = self.current(chat_key)
        if current is None:
            current = new_id()
            self.remember(chat_key, current, title=self.pending_title(chat_key) or first_message[:40])
        return current

    def new(self, chat_key: str, title: str = "") -> None:
        """Start afresh: the next message creates a new session."""
        entry = self._entry(chat_key)
        entry["current"] = None
        entry["pending_title"] = title
        self._save(chat_key, entry)

    def pending_title(self, chat_key: str) -> str:
        return self._entry(chat_key).get("pending_title", "")

    def sessions(self, chat_key: str) -> list[dict[str, Any]]:
        return list(self._entry(chat_key)["sessions"])

    def switch(self, chat_key: str, prefix: str) -> dict[str, Any]:
        """Switch to the one session of this chat whose id starts with ``prefix``."""
        entry = self._entry(chat_key)
        hits = [s for s in entry["sessions"] if s["id"].startswith(prefix.strip())]
        if not prefix.strip() or not hits:
            raise LookupError(f"no session of this chat starts with {prefix!r}; /sessions lists them")
        if len(hits) > 1:
            raise LookupError(f"{prefix!r} matches {len(hits)} sessions; type more of the id")
        entry["current"] = hits[0]["id"]
        self._save(chat_key, entry)
        return hits[0]

    def set_persona(self, chat_key: str, name: str | None) -> None:
        entry = self._entry(chat_key)
        entry["persona"] = name
        self._save(chat_key, entry)

    def chat_of_session(self, session_id: str) -> str | None:
        """The chat key that owns ``session_id`` (for approvals and proactive messages)."""
        for key, entry in self.kernel.state.kv_items(self.namespace).items():
            if any(s["id"] == session_id for s in entry.get("sessions", [])):
                return key
        return None


def parse_command(text: str, bot_name: str = "") -> tuple[str, str] | None:
    """``/switch@oxios_bot abc`` -> ("switch", "abc"); not a command -> None."""
    match = re.match(r"^/([A-Za-z_]+)(?:@(\w+))?(?:\s+(.*))?$", text.strip(), re.S)
    if not match:
        return None
    if match.group(2) and bot_name and match.group(2).lower() != bot_name.lower():
        return None  # addressed to another bot in a group
    return match.group(1).lower(), (match.group(3) or "").strip()


async def handle_command(kernel: Any, sessions: ChatSessions, chat_key: str, command: str, arg: str) -> str | None:
    """Answer a shared slash command; ``None`` when it is not one of ours."""
    if command in ("help", "start"):
        return HELP_TEXT
    if command == "new":
        sessions.new(chat_key, arg)
        return "New session started" + (f": {arg}" if arg else "") + ". Your next message begins it."
    if command == "sessions":
        items = sessions.sessions(chat_key)
        if not items:
            return "No sessions yet in this chat."
        current = sessions.current(chat_key)
        return "\n".join(f"{'* ' if s['id'] == current else '  '}{s['id'][:8]} {s.get('title') or ''}".rstrip() for s in items)
    if command == "switch":
        try:
            hit = sessions.switch(chat_key, arg)
        except LookupError as err:
            return str(err)
        return f"Switched to session {hit['id'][:8]}."
    if command == "cancel":
        current = sessions.current(chat_key)
        gateway = kernel.services.get("gateway")
        if current and gateway is not None and await resolve(gateway.cancel(current)):
            return "Cancelled."
        return "Nothing is running."
    if command == "status":
        st = kernel.status()
        return f"Oxios {st['version']}: {st['status']}, up {st['uptime']}, plugins: {', '.join(st['plugins']) or 'none'}"
    if command == "persona":
        if not arg:
            return f"Persona: {sessions.persona(chat_key) or 'default'}. Use /persona NAME to change it."
        personas = kernel.services.get("personas")
        if personas is not None:
            names = {p["name"].lower() for p in await resolve(personas.list())}
            if arg.lower() not in names:
                return f"No persona named {arg!r}. Known: {', '.join(sorted(names))}"
        sessions.set_persona(chat_key, arg)
        return f"Persona set to {arg}."
    return None


# ---------------------------------------------------------------------------
# authorization
# ---------------------------------------------------------------------------


def authorize(
    kernel: Any, channel: str, user_id: str, allowed: list[str], *, use_pairing: bool = False, name: str = "", where: str = ""
) -> tuple[bool, str | None]:
    """(allowed?, pairing code to send or None). Unknown senders are audited."""
    user_id = str(user_id)
    if user_id in {str(a) for a in allowed} or (use_pairing and pairing.is_paired(kernel.state, channel, user_id)):
        return True, None
    audit = kernel.services.get("audit")
    if audit is not None:
        try:
            audit.append(
                actor=f"{channel}:{user_id}",
                action="channel.unauthorized",
                resource=where or channel,
                allowed=False,
                reason="sender is not on the channel's allowlist",
                metadata={"name": name},
            )
        except Exception:  # auditing must not take the channel down
            log.exception("audit append failed")
    kernel.publish("channel.unauthorized", channel=channel, user_id=user_id)
    code = pairing.request_code(kernel.state, channel, user_id, name=name) if use_pairing else None
    return False, code


# ---------------------------------------------------------------------------
# splitting and streaming
# ---------------------------------------------------------------------------

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


class ReplyStreamer:
    """Stream a reply into one message, edited at most every ``interval`` seconds.

    ``send(text) -> handle`` posts a new message; ``edit(handle, text)``
    replaces its text. Past ``limit`` characters the reply continues in new
    messages. Identical edits are skipped (platforms reject them).
    """

    def __init__(self, send: SendFn, edit: EditFn, *, limit: int, interval: float = 1.0, placeholder: str = "…") -> None:
        self.send, self.edit = send, edit
        self.limit, self.interval, self.placeholder = limit, interval, placeholder
        self.text = ""
        self._handles: list[Any] = []
        self._shown: list[str] = []
        self._last_edit = 0.0
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        self._handles.append(await self.send(self.placeholder))
        self._shown.append(self.placeholder)

    async def on_token(self, token: str) -> None:
        self.text += token
        if time.monotonic() - self._last_edit >= self.interval:
            await self._render(final=False)

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
                if i < len(self._handles):
                    if self._shown[i] != chunk:
                        await self.edit(self._handles[i], chunk)
                        self._shown[i] = chunk
                else:
                    self._handles.append(await self.send(chunk))
                    self._shown.append(chunk)

    def _live_chunks(self, text: str) -> list[str]:
        # While streaming, show the tail in the current message with a cursor.
        chunks = split_message(text, self.limit - 2)
        if chunks:
            chunks[-1] += " ▌"
        return chunks

    @property
    def messages(self) -> list[Any]:
        return list(self._handles)


# ---------------------------------------------------------------------------
# the shared channel flow
# ---------------------------------------------------------------------------


class ChatSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Settings every chat channel has; a channel's own settings extend this."""

    enabled: bool = True
    token: str = ""
    token_env: str = ""
    allowed_users: list[int | str] = []
    refusal_message: str = ""
    pairing: bool = False
    max_file_mb: float = 20.0
    edit_interval_secs: float = 1.0


class Inbound(msgspec.Struct, kw_only=True):
    """One message as a channel hands it to :meth:`ChatChannel.receive`."""

    chat_key: str  # the session key: a chat, a topic or a thread
    user_id: str
    user_name: str = ""
    text: str = ""
    commands: bool = True  # whether a leading "/" may be a command (not for captions)
    chat_id: str = ""
    thread_id: str = ""


Reply = Callable[[str], Awaitable[Any]]


class ChatChannel:
    """What Telegram, Discord and the next chat channel share.

    A subclass connects to its platform and calls :meth:`receive` for each
    message; it implements ``streamer(inbound)`` (a :class:`ReplyStreamer`
    bound to the chat) and ``offer_approval(chat_key, approval_id, text)``.
    """

    name = "chat"
    supports_streaming = True

    def __init__(self, kernel: Any, settings: ChatSettings, token: str) -> None:
        self.kernel = kernel
        self.settings = settings
        self._token = token
        self.sessions = ChatSessions(kernel, self.name)
        self.gateway: Any = None
        self.state = "stopped"
        self.detail = ""
        self._tasks: list[asyncio.Task[Any]] = []
        self._chat_locks: dict[str, asyncio.Lock] = {}
        self._inflight: dict[str, asyncio.Task[Any]] = {}  # chat key -> the answer being written

    def status(self) -> dict[str, Any]:
        return {"state": self.state, "detail": self.detail}

    def allowed(self, user_id: str, name: str = "", where: str = "") -> tuple[bool, str | None]:
        return authorize(
            self.kernel,
            self.name,
            user_id,
            [str(u) for u in self.settings.allowed_users],
            use_pairing=self.settings.pairing,
            name=name,
            where=where,
        )

    def streamer(self, inbound: Inbound) -> ReplyStreamer:
        raise NotImplementedError

    async def offer_approval(self, chat_key: str, approval_id: str, text: str) -> None:
        raise NotImplementedError

    async def receive(
        self, inbound: Inbound, reply: Reply, save_files: Callable[[], Awaitable[list[Attachment] | None]] | None = None
    ) -> None:
        """Authorize, answer commands, take files, then answer through the gateway (one at a time per chat)."""
        ok, code = self.allowed(inbound.user_id, inbound.user_name, inbound.chat_key)
        if not ok:
            if code:
                await reply(f"To talk to Oxios, ask its owner to run:\noxios pairing approve {code}")
            elif self.settings.refusal_message:
                await reply(self.settings.refusal_message)
            return
        text = inbound.text
        command = parse_command(text, getattr(self, "bot_name", "")) if inbound.commands else None
        if command is not None and command[0] == "cancel" and inbound.chat_key in self._inflight:
            self._inflight[inbound.chat_key].cancel()
            await reply("Cancelled.")
            return
        if command is not None:
            answer = await handle_command(self.kernel, self.sessions, inbound.chat_key, *command)
            if answer is not None:
                await reply(answer)
                return
        attachments: list[Attachment] = []
        if save_files is not None:
            saved = await save_files()
            if saved is None:
                return  # refused (too large, not allowed); the user was told
            attachments = saved
            for item in saved:
                text = (text + "\n\n" if text else "") + f"[The user sent a file; it is saved in the workspace at {item.path}]"
        if not text.strip():
            return
        lock = self._chat_locks.setdefault(inbound.chat_key, asyncio.Lock())
        async with lock:  # one answer at a time per chat; topics and threads run side by side
            task = asyncio.create_task(self._answer(inbound, text, attachments))
            self._inflight[inbound.chat_key] = task
            try:
                # wait() rather than await: a cancelled answer must not cancel the platform's handler.
                await asyncio.wait({task})
            finally:
                self._inflight.pop(inbound.chat_key, None)
            if not task.cancelled() and task.exception() is not None:
                log.error("%s: answering failed", self.name, exc_info=task.exception())

    async def _answer(self, inbound: Inbound, text: str, attachments: list[Attachment]) -> None:
        streamer = self.streamer(inbound)
        await streamer.start()
        incoming = IncomingMessage(
            content=text,
            channel=self.name,
            user_id=inbound.user_id,
            chat_id=inbound.chat_id,
            thread_id=inbound.thread_id,
            session_id=self.sessions.ensure(inbound.chat_key, text),
            persona=self.sessions.persona(inbound.chat_key),
            attachments=attachments,
        )
        try:
            result = await self.gateway.submit(incoming, on_token=streamer.on_token)
        except asyncio.CancelledError:
            # The gateway has persisted the cancelled turn; show what was written so far.
            await asyncio.shield(streamer.finish((streamer.text + "\n\n(cancelled)").strip()))
            raise
        await streamer.finish(result.response or (f"Sorry, that failed: {result.error}" if result.error else ""))

    async def upload_target(self, chat_key: str, filename: str) -> tuple[Path | None, str]:
        """Where an incoming file goes (workspace/uploads/<channel>/<chat>/), or why it may not."""
        folder = self.kernel.paths.workspace / "uploads" / self.name / re.sub(r"[^\w.-]", "_", chat_key)
        safe = re.sub(r"[^\w.-]", "_", Path(filename).name).lstrip(".") or "file"
        target = folder / safe
        ctx = self.kernel.context(session_id=self.sessions.current(chat_key) or "")
        verdict = await self.kernel.check_action(Action(kind="path", path=str(target), access="write"), ctx)
        if verdict.verdict != "allow":
            return None, verdict.reason
        folder.mkdir(parents=True, exist_ok=True)
        return target, ""

    def attachment(self, target: Path, mime: str | None) -> Attachment:
        return Attachment(
            name=target.name,
            path=str(target.relative_to(self.kernel.paths.workspace)),
            mime=mime or "application/octet-stream",
            size=target.stat().st_size,
        )

    async def readable(self, path: str) -> Path:
        """A workspace file an agent wants to send out; PermissionError when policy says no."""
        target = Path(path)
        if not target.is_absolute():
            target = self.kernel.paths.workspace / target
        verdict = await self.kernel.check_action(Action(kind="path", path=str(target), access="read"), self.kernel.context())
        if verdict.verdict != "allow":
            raise PermissionError(verdict.reason)
        return target

    @property
    def file_limit(self) -> int:
        return int(self.settings.max_file_mb * 1024 * 1024)

    # -- approvals ----------------------------------------------------------------

    async def watch_approvals(self) -> None:
        """Post approval requests of sessions that came from this channel into their chat."""
        with self.kernel.subscribe(types={"approval.requested"}, maxsize=256) as sub:
            async for event in sub:
                data = event.data
                session_id = data.get("session_id") or ""
                chat_key = self.sessions.chat_of_session(session_id) if session_id else None
                approval_id = data.get("id") or data.get("approval_id")
                if chat_key is None or not approval_id:
                    continue
                text = f"Approval needed: {data.get('tool') or data.get('action', '')} {data.get('resource', '')}".strip()
                if data.get("reason"):
                    text += f"\nWhy: {data['reason']}"
                try:
                    await self.offer_approval(chat_key, str(approval_id), text)
                except Exception:
                    log.exception("%s: could not post an approval request", self.name)

    async def answer_approval(self, user_id: str, name: str, verb: str, approval_id: str) -> tuple[bool, str]:
        """Resolve an approval from a button press; only authorized senders may."""
        ok, _ = self.allowed(user_id, name, "approval")
        if not ok:
            return False, "You are not allowed to answer this."
        approvals = self.kernel.services.get("approvals")
        if verb not in ("approve", "reject") or approvals is None:
            return False, "Unknown or expired request."
        try:
            await resolve(getattr(approvals, verb)(approval_id, by=f"{self.name}:{user_id}"))
        except Exception as err:
            return False, f"Could not {verb}: {err}"
        return True, "Approved." if verb == "approve" else "Rejected."

    def cancel_inflight(self) -> None:
        for task in list(self._inflight.values()):
            task.cancel()
