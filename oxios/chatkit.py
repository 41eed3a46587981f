"""What every chat channel (Telegram, Discord ...) needs, written once.

The parts live in their own modules and are re-exported here:
:mod:`oxios.chatsessions` (a session per chat, the slash commands),
:mod:`oxios.chatstream` (splitting, streamed edits) and
:mod:`oxios.chatforms` (interview questions as buttons).

- :func:`authorize`: allowlist first, then DM pairing; unknown senders audited.
- :class:`ChatChannel`: the flow above in one base class (receive, answer,
  files in and out, approvals, interview questions as buttons, proactive
  delivery); a platform plugin adds only its wire.
- :func:`send_tool`: the ``<channel>_send`` tool agents use to post text and
  workspace files to a chat.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec

from oxios_hookspecs import Action, ActionContext, Attachment, IncomingMessage, OutgoingMessage, ToolResult

from . import pairing
from .chatforms import INTRO, ChatForm, ChatForms, form_from_interview
from .chatsessions import HELP_TEXT, ChatSessions, handle_command, parse_command
from .chatstream import ReplyStreamer, retry_after_secs, split_message
from .plugins import resolve

log = logging.getLogger(__name__)

__all__ = [
    "HELP_TEXT",
    "ChatChannel",
    "ChatForm",
    "ChatSessions",
    "ChatSettings",
    "Inbound",
    "Press",
    "ReplyStreamer",
    "authorize",
    "handle_command",
    "parse_command",
    "retry_after_secs",
    "send_tool",
    "split_message",
]

# ---------------------------------------------------------------------------
# authorization
# ---------------------------------------------------------------------------


def authorize(
    kernel: Any,
    channel: str,
    user_id: str,
    allowed: list[str],
    *,
    use_pairing: bool = False,
    offer_code: bool = True,
    name: str = "",
    where: str = "",
    publish: bool = True,
) -> tuple[bool, str | None]:
    """(allowed?, pairing code to send or None). Unknown senders are audited.

    With ``use_pairing`` paired senders are let in, and a stranger gets a code
    when ``offer_code`` (a private chat: a code is never posted in a group).
    ``publish=False`` leaves the ``channel.unauthorized`` event to the caller,
    which publishes it once it has done everything it will do for that sender.
    """
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
    if publish:
        kernel.publish("channel.unauthorized", channel=channel, user_id=user_id, where=where)
    code = pairing.request_code(kernel.state, channel, user_id, name=name) if use_pairing and offer_code else None
    return False, code


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
    private: bool = False  # a one-to-one chat: the only place a pairing code is sent


class Press(msgspec.Struct, kw_only=True):
    """What became of a pressed question button."""

    ok: bool
    notice: str
    form: ChatForm | None = None
    complete: bool = False


Reply = Callable[[str], Awaitable[Any]]
OutgoingFile = tuple[str, bytes]  # (file name, content)


class ChatChannel:
    """What Telegram, Discord and the next chat channel share.

    A subclass connects to its platform and calls :meth:`receive` for each
    message. It implements ``streamer(inbound)`` (a :class:`ReplyStreamer`
    bound to the chat), ``offer_approval(chat_key, approval_id, text)``,
    ``offer_question(form, index)`` (a question with its buttons) and
    ``post(chat_key, text, files)`` (proactive text and files).
    """

    name = "chat"
    supports_streaming = True
    outgoing_file_limit = 50 * 1024 * 1024  # what the platform accepts from a bot

    def __init__(self, kernel: Any, settings: ChatSettings, token: str) -> None:
        self.kernel = kernel
        self.settings = settings
        self._token = token
        self.sessions = ChatSessions(kernel, self.name)
        self.forms = ChatForms(kernel, self.name)
        self.gateway: Any = None
        self.state = "stopped"
        self.detail = ""
        self._tasks: list[asyncio.Task[Any]] = []
        self._chat_locks: dict[str, asyncio.Lock] = {}
        self._inflight: dict[str, asyncio.Task[Any]] = {}  # chat key -> the answer being written

    def status(self) -> dict[str, Any]:
        return {"state": self.state, "detail": self.detail}

    def allowed(self, user_id: str, name: str = "", where: str = "", *, private: bool = False) -> tuple[bool, str | None]:
        """Is this sender let in? A stranger in a private chat gets a pairing code when pairing is on."""
        return authorize(
            self.kernel,
            self.name,
            user_id,
            [str(u) for u in self.settings.allowed_users],
            use_pairing=self.settings.pairing,
            offer_code=private,
            name=name,
            where=where,
            publish=False,
        )

    def refused(self, user_id: str, where: str = "") -> None:
        """Publish ``channel.unauthorized``: the channel has done all it will for this sender."""
        self.kernel.publish("channel.unauthorized", channel=self.name, user_id=str(user_id), where=where)

    def refuse_place(self, user_id: str, name: str, where: str) -> None:
        """A message from a place (guild, channel) the channel does not serve: audited, never answered."""
        authorize(self.kernel, self.name, user_id, [], name=name, where=where, publish=False)
        self.refused(user_id, where)

    def streamer(self, inbound: Inbound) -> ReplyStreamer:
        raise NotImplementedError

    async def offer_approval(self, chat_key: str, approval_id: str, text: str) -> None:
        raise NotImplementedError

    async def offer_question(self, form: ChatForm, index: int) -> None:
        raise NotImplementedError

    async def post(self, chat_key: str, text: str, files: list[OutgoingFile]) -> list[Any]:
        raise NotImplementedError

    # -- incoming -------------------------------------------------------------

    async def receive(
        self, inbound: Inbound, reply: Reply, save_files: Callable[[], Awaitable[list[Attachment] | None]] | None = None
    ) -> None:
        """Authorize, answer commands, take files, then answer through the gateway (one at a time per chat)."""
        ok, code = self.allowed(inbound.user_id, inbound.user_name, inbound.chat_key, private=inbound.private)
        if not ok:
            try:
                if code:
                    await reply(f"To talk to Oxios, ask its owner to run:\noxios pairing approve {code}")
                elif self.settings.refusal_message:
                    await reply(self.settings.refusal_message[:200])
            finally:
                self.refused(inbound.user_id, inbound.chat_key)
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
        form = self.forms.for_chat(inbound.chat_key)
        if form is not None:  # a typed message answers the open interview questions
            self.forms.drop(form.id)
            if form.session_id == self.sessions.current(inbound.chat_key):
                text = form.compose(text)
        await self.answer(inbound, text, attachments)

    async def answer(self, inbound: Inbound, text: str, attachments: list[Attachment] | None = None) -> None:
        """Answer ``text`` in the inbound's chat; one answer at a time per chat, topics and threads side by side."""
        lock = self._chat_locks.setdefault(inbound.chat_key, asyncio.Lock())
        async with lock:
            task = asyncio.create_task(self._answer(inbound, text, attachments or []))
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
        form = self._interview_form(inbound, result)
        if form is not None and await self._ask(form, streamer):
            return
        await streamer.finish(result.response or (f"Sorry, that failed: {result.error}" if result.error else ""))

    # -- interview questions ------------------------------------------------------

    def _interview_form(self, inbound: Inbound, result: Any) -> ChatForm | None:
        """The interview's structured questions, when the answer is the protocol asking some."""
        if getattr(result, "phase_reached", "") != "Interview" or getattr(result, "error", None):
            return None
        ouroboros = self.kernel.services.get("ouroboros")
        questions_of = getattr(ouroboros, "pending_questions", None)
        if questions_of is None:
            return None
        return form_from_interview(
            questions_of(result.session_id),
            chat_key=inbound.chat_key,
            session_id=result.session_id,
            chat_id=inbound.chat_id,
            thread_id=inbound.thread_id,
        )

    async def _ask(self, form: ChatForm, streamer: ReplyStreamer) -> bool:
        """Show each question as a message with buttons; False (and plain text instead) when the platform cannot."""
        self.forms.open(form)
        try:
            await streamer.finish(INTRO)
            for index in range(len(form.questions)):
                await self.offer_question(form, index)
        except Exception as err:
            if not isinstance(err, NotImplementedError):
                log.warning("%s: could not show the questions with buttons (%s); sending them as text", self.name, err)
            self.forms.drop(form.id)
            return False
        return True

    def press_question(self, user_id: str, name: str, chat_key: str, form_id: str, index: int, token: str) -> Press:
        """Record a question button press by ``user_id`` in ``chat_key``; only authorized senders may answer."""
        ok, _ = self.allowed(user_id, name, "question")
        if not ok:
            self.refused(user_id, "question")
            return Press(ok=False, notice="You are not allowed to answer this.")
        form = self.forms.get(form_id)
        if form is None or form.chat_key != chat_key:
            return Press(ok=False, notice="These questions are closed.")
        if self.sessions.current(chat_key) != form.session_id:
            self.forms.drop(form.id)
            return Press(ok=False, notice="These questions belong to an earlier session.")
        try:
            notice = form.press(index, token)
        except ValueError as err:
            return Press(ok=False, notice=str(err))
        complete = form.complete()
        if complete:
            self.forms.drop(form.id)  # before any await: a second press cannot send the answers twice
        else:
            self.forms.save(form)
        return Press(ok=True, notice=notice, form=form, complete=complete)

    async def send_answers(self, form: ChatForm, user_id: str, user_name: str = "") -> None:
        """Every question was answered by a button: the answers go to the agent as one message."""
        inbound = Inbound(
            chat_key=form.chat_key,
            user_id=user_id,
            user_name=user_name,
            chat_id=form.chat_id,
            thread_id=form.thread_id,
        )
        await self.answer(inbound, form.compose())

    # -- files ----------------------------------------------------------------------

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

    async def outgoing_file(self, path: str, context: ActionContext) -> OutgoingFile:
        """A file to send out, read as ``context`` may read it (policy, then the sandbox at use time)."""
        target = _resolve_path(path, context.workspace or str(self.kernel.paths.workspace))
        verdict = await self.kernel.authorize(Action(kind="path", path=str(target), access="read"), context)
        if not verdict.allowed:
            raise PermissionError(f"read access to {path} denied: {verdict.reason}")
        return target.name, await asyncio.to_thread(_read_limited, context, target, self.outgoing_file_limit)

    @property
    def file_limit(self) -> int:
        return int(self.settings.max_file_mb * 1024 * 1024)

    # -- outgoing ---------------------------------------------------------------------

    def chat_key_for(self, chat_id: str, thread_id: str = "") -> str:
        """The chat key of a delivery address (``CHAT`` or ``CHAT/THREAD``)."""
        chat_id, thread_id = str(chat_id).strip(), str(thread_id or "").strip()
        return f"{chat_id}/{thread_id}" if thread_id and "/" not in chat_id else chat_id

    def known_chat(self, chat_key: str) -> bool:
        """A chat Oxios has talked in, or an allowed or paired sender's own chat."""
        chat = chat_key.partition("/")[0]
        known = {k.partition("/")[0] for k in self.kernel.state.kv_items(self.sessions.namespace)}
        known |= {str(u) for u in self.settings.allowed_users}
        return chat in known or pairing.is_paired(self.kernel.state, self.name, chat)

    def _require_running(self) -> None:
        if self.state != "running":
            raise RuntimeError(f"{self.name} channel is not connected ({self.state}: {self.detail})")

    async def send(self, outgoing: OutgoingMessage) -> list[Any]:
        """Proactive message (cron, other agents): text and workspace files.

        Returns the platform's message ids; raises when delivery failed (after
        the platform client's retries), so the caller can record it.
        """
        self._require_running()
        if not outgoing.chat_id:
            raise ValueError(f"{self.name} delivery needs a chat_id")
        context = self.kernel.context(session_id=outgoing.session_id or "", interactive=False)
        files = [await self.outgoing_file(a.path, context) for a in outgoing.attachments]
        return await self.post(self.chat_key_for(outgoing.chat_id, outgoing.thread_id), outgoing.content, files)

    async def deliver(self, context: ActionContext, *, text: str = "", path: str = "", chat: str = "") -> str:
        """The ``<channel>_send`` tool: post text and/or a workspace file to a chat an agent may reach."""
        self._require_running()
        if chat.strip():
            chat_key = chat.strip()
            if not self.known_chat(chat_key):
                raise PermissionError(f"{chat_key} is not a chat Oxios talks in (only chats with a session or allowed users)")
        else:
            chat_key = self.sessions.chat_of_session(context.session_id) if context.session_id else None
            if chat_key is None:
                raise LookupError(f"this session did not start in {self.name}; name the chat to send to")
        files = [await self.outgoing_file(path, context)] if path.strip() else []
        if not text.strip() and not files:
            raise ValueError("nothing to send: give text, a path, or both")
        ids = await self.post(chat_key, text, files)
        return f"delivered to {self.name} chat {chat_key} ({len(ids)} message{'s' if len(ids) != 1 else ''})"

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

    async def answer_approval(
        self, user_id: str, name: str, verb: str, approval_id: str, chat_key: str | None = None
    ) -> tuple[bool, str]:
        """Resolve an approval from a button press; only authorized senders may, in the chat it was asked in."""
        ok, _ = self.allowed(user_id, name, "approval")
        if not ok:
            self.refused(user_id, "approval")
            return False, "You are not allowed to answer this."
        approvals = self.kernel.services.get("approvals")
        if verb not in ("approve", "reject") or approvals is None:
            return False, "Unknown or expired request."
        if chat_key is not None:
            try:
                session_id = (await resolve(approvals.get(approval_id))).get("session_id") or ""
            except Exception:
                return False, "Unknown or expired request."
            if self.sessions.chat_of_session(session_id) != chat_key:
                return False, "This request belongs to another chat."
        try:
            done = await resolve(getattr(approvals, verb)(approval_id, by=f"{self.name}:{user_id}"))
        except Exception as err:
            return False, f"Could not {verb}: {err}"
        if done is False:
            return False, "This request was already answered or has expired."
        return True, "Approved." if verb == "approve" else "Rejected."

    def cancel_inflight(self) -> None:
        for task in list(self._inflight.values()):
            task.cancel()


def _resolve_path(path: str, workspace: str) -> Path:
    target = Path(os.path.expanduser(path))
    return target if target.is_absolute() else Path(workspace) / target


def _read_limited(context: ActionContext, path: Path, limit: int) -> bytes:
    # Opened through the caller's sandbox: a symlink swapped in after the policy check is refused.
    from .security.sandbox import open_checked

    with open_checked(context, path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > limit:
            raise ValueError(f"{path.name} is too large to send ({size / 1e6:.1f} MB; the limit is {limit / 1e6:.0f} MB)")
        return fh.read()


# ---------------------------------------------------------------------------
# the agent's tool
# ---------------------------------------------------------------------------


def send_tool(kernel: Any, channel_name: str) -> Callable[..., Awaitable[ToolResult]]:
    """The ``<channel_name>_send`` tool: an agent posts text and/or a workspace file to a chat.

    Without ``chat`` it answers into the chat its session came from; with one,
    any chat the channel already talks in (cron and other agents deliver
    this way). The result says whether delivery worked, and why not.
    """

    async def send(context: ActionContext, text: str = "", path: str = "", chat: str = "") -> ToolResult:
        channel = kernel.channels.get(channel_name)
        if channel is None:
            return ToolResult.error(f"{channel_name} is not connected")
        try:
            return ToolResult(content=await channel.deliver(context, text=text, path=path, chat=chat))
        except asyncio.CancelledError:
            raise
        except Exception as err:
            return ToolResult.error(f"not delivered: {err}")

    send.__name__ = f"{channel_name}_send"
    send.__doc__ = (
        f"Send a message and/or a file from the workspace to a {channel_name.capitalize()} chat. "
        "text: the message (Markdown); path: a workspace file to attach; "
        "chat: leave empty for the chat this conversation came from, or give a chat id Oxios already talks in. "
        "Says whether it was delivered."
    )
    return send
