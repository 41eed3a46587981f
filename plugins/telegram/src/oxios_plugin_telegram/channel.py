"""The Telegram channel: python-telegram-bot polling, streamed edits, approvals, files."""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Literal

import msgspec

from oxios.chatkit import ChatSessions, ReplyStreamer, authorize, handle_command, parse_command
from oxios_hookspecs import Action, Attachment, IncomingMessage, OutgoingMessage

from .render import to_telegram_html

log = logging.getLogger(__name__)

MESSAGE_LIMIT = 4096
# Rendered HTML is shorter than its Markdown source, so splitting the source
# a little below the limit keeps every chunk under it.
SPLIT_AT = 4000


class TelegramSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``[channels.telegram]``."""

    enabled: bool = True
    token: str = ""
    token_env: str = "TELEGRAM_BOT_TOKEN"
    allowed_users: list[int | str] = []
    refusal_message: str = ""
    pairing: bool = False
    base_url: str = ""
    base_file_url: str = ""
    max_file_mb: float = 20.0
    edit_interval_secs: float = 1.0
    poll_timeout_secs: int = 10
    max_retries: int = 5
    mode: Literal["polling"] = "polling"


class TelegramChannel:
    name = "telegram"
    supports_streaming = True

    def __init__(self, kernel: Any, settings: TelegramSettings, token: str) -> None:
        self.kernel = kernel
        self.settings = settings
        self._token = token
        self.sessions = ChatSessions(kernel, self.name)
        self.app: Any = None
        self.gateway: Any = None
        self.state = "stopped"
        self.detail = ""
        self._tasks: list[asyncio.Task[Any]] = []
        self._chat_locks: dict[str, asyncio.Lock] = {}
        self._inflight: dict[str, asyncio.Task[Any]] = {}  # chat key -> the answer being written
        self._bot_username = ""

    # -- lifecycle ------------------------------------------------------------

    async def start(self, gateway: Any) -> None:
        from telegram.ext import Application, CallbackQueryHandler, MessageHandler, filters

        self.gateway = gateway
        builder = Application.builder().token(self._token).concurrent_updates(True)
        if self.settings.base_url:
            builder = builder.base_url(self.settings.base_url)
            builder = builder.base_file_url(self.settings.base_file_url or self.settings.base_url.replace("/bot", "/file/bot"))
        builder = builder.get_updates_read_timeout(self.settings.poll_timeout_secs + 10)
        self.app = builder.build()
        self.app.add_handler(CallbackQueryHandler(self._on_callback))
        self.app.add_handler(MessageHandler(filters.ALL, self._on_message))
        self.app.add_error_handler(self._on_handler_error)
        self.state = "connecting"
        # Connecting happens in the background: an unreachable Telegram never holds up the daemon.
        self._tasks.append(asyncio.create_task(self._connect(), name="telegram-connect"))
        self._tasks.append(asyncio.create_task(self._watch_approvals(), name="telegram-approvals"))

    async def _connect(self) -> None:
        from telegram.error import InvalidToken

        delay = 0.5
        while True:
            try:
                await self.app.initialize()  # getMe
                break
            except InvalidToken as err:
                self.state, self.detail = "error", f"invalid bot token: {err}"
                log.error("telegram: %s", self.detail)
                return
            except Exception as err:
                self.state, self.detail = "connecting", f"{type(err).__name__}: {err}"
                log.warning("telegram: cannot reach the Bot API (%s); retrying in %.1fs", err, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
        self._bot_username = self.app.bot.username or ""
        await self.app.start()
        await self.app.updater.start_polling(
            timeout=self.settings.poll_timeout_secs, error_callback=self._on_poll_error, drop_pending_updates=False
        )
        self.state, self.detail = "running", f"@{self._bot_username}"
        self.kernel.publish("channel.connected", channel=self.name, bot=self._bot_username)

    def _on_poll_error(self, err: Exception) -> None:
        # python-telegram-bot keeps polling with backoff; we record why it is unhappy.
        from telegram.error import Conflict

        if isinstance(err, Conflict):
            self.detail = "another poller or a webhook is using this bot token"
        else:
            self.detail = f"{type(err).__name__}: {err}"
        log.warning("telegram polling: %s", self.detail)

    async def _on_handler_error(self, update: object, context: Any) -> None:
        log.error("telegram: handler failed: %s", context.error, exc_info=context.error)

    async def stop(self) -> None:
        # Answers in flight first: python-telegram-bot waits for running handlers.
        for task in list(self._inflight.values()):
            task.cancel()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self.app is not None:
            try:
                if self.app.updater is not None and self.app.updater.running:
                    await self.app.updater.stop()
                if self.app.running:
                    await self.app.stop()
                await self.app.shutdown()
            except Exception:
                log.exception("telegram: error while stopping")
        self.state = "stopped"

    def status(self) -> dict[str, Any]:
        return {"state": self.state, "detail": self.detail}

    # -- incoming -------------------------------------------------------------

    async def _on_message(self, update: Any, context: Any) -> None:
        msg, user, chat = update.effective_message, update.effective_user, update.effective_chat
        if msg is None or user is None or chat is None or user.is_bot:
            return
        thread = msg.message_thread_id if getattr(msg, "is_topic_message", False) else None
        chat_key = f"{chat.id}/{thread}" if thread else str(chat.id)
        ok, code = authorize(self.kernel, self.name, str(user.id), [str(u) for u in self.settings.allowed_users],
                             use_pairing=self.settings.pairing, name=user.full_name or "", where=chat_key)
        if not ok:
            if code:
                await self._send_text(chat.id, thread, f"To talk to Oxios, ask its owner to run:\noxios pairing approve {code}", markdown=False)
            elif self.settings.refusal_message:
                await self._send_text(chat.id, thread, self.settings.refusal_message, markdown=False)
            return
        text = msg.text or msg.caption or ""
        command = parse_command(text, self._bot_username) if msg.text else None
        if command is not None and command[0] == "cancel" and chat_key in self._inflight:
            self._inflight[chat_key].cancel()
            await self._send_text(chat.id, thread, "Cancelled.", markdown=False)
            return
        if command is not None:
            reply = await handle_command(self.kernel, self.sessions, chat_key, *command)
            if reply is not None:
                await self._send_text(chat.id, thread, reply, markdown=False)
                return
        attachments: list[Attachment] = []
        if msg.document is not None or msg.photo:
            saved = await self._save_file(msg, chat_key, chat.id, thread)
            if saved is None:
                return
            attachments.append(saved)
            text = (text + "\n\n" if text else "") + f"[The user sent a file; it is saved in the workspace at {saved.path}]"
        if not text.strip():
            return
        lock = self._chat_locks.setdefault(chat_key, asyncio.Lock())
        async with lock:  # one answer at a time per chat or topic; topics run side by side
            task = asyncio.create_task(self._answer(chat.id, thread, chat_key, str(user.id), text, attachments))
            self._inflight[chat_key] = task
            try:
                # wait() rather than await: a cancelled answer must not cancel python-telegram-bot's handler.
                await asyncio.wait({task})
            finally:
                self._inflight.pop(chat_key, None)
            if not task.cancelled() and task.exception() is not None:
                log.error("telegram: answering failed", exc_info=task.exception())

    async def _answer(self, chat_id: int, thread: int | None, chat_key: str, user_id: str, text: str,
                      attachments: list[Attachment]) -> None:
        streamer = ReplyStreamer(
            send=lambda t: self._send_text(chat_id, thread, t),
            edit=self._edit_text,
            limit=SPLIT_AT,
            interval=self.settings.edit_interval_secs,
        )
        await streamer.start()
        incoming = IncomingMessage(
            content=text, channel=self.name, user_id=user_id, chat_id=str(chat_id), thread_id=str(thread or ""),
            session_id=self.sessions.ensure(chat_key, text), persona=self.sessions.persona(chat_key), attachments=attachments,
        )
        try:
            result = await self.gateway.submit(incoming, on_token=streamer.on_token)
        except asyncio.CancelledError:
            # The gateway has persisted the cancelled turn; show what was written so far.
            await asyncio.shield(streamer.finish((streamer.text + "\n\n(cancelled)").strip()))
            raise
        final = result.response or (f"Sorry, that failed: {result.error}" if result.error else "")
        await streamer.finish(final)

    async def _save_file(self, msg: Any, chat_key: str, chat_id: int, thread: int | None) -> Attachment | None:
        if msg.document is not None:
            item, name, mime = msg.document, msg.document.file_name or f"file_{msg.document.file_unique_id}", msg.document.mime_type
        else:
            item = msg.photo[-1]  # the largest size
            name, mime = f"photo_{item.file_unique_id}.jpg", "image/jpeg"
        limit = int(self.settings.max_file_mb * 1024 * 1024)
        if item.file_size and item.file_size > limit:
            await self._send_text(chat_id, thread, f"Sorry, that file is too large ({item.file_size / 1e6:.1f} MB); "
                                                   f"the limit is {self.settings.max_file_mb:g} MB.", markdown=False)
            return None
        folder = self.kernel.paths.workspace / "uploads" / "telegram" / re.sub(r"[^\w.-]", "_", chat_key)
        safe = re.sub(r"[^\w.-]", "_", Path(name).name).lstrip(".") or "file"
        target = folder / safe
        ctx = self.kernel.context(session_id=self.sessions.current(chat_key) or "")
        verdict = await self.kernel.check_action(Action(kind="path", path=str(target), access="write"), ctx)
        if verdict.verdict != "allow":
            await self._send_text(chat_id, thread, f"Sorry, I cannot store that file: {verdict.reason}", markdown=False)
            return None
        folder.mkdir(parents=True, exist_ok=True)
        try:
            tg_file = await self._call(item.get_file)
            await self._call(lambda: tg_file.download_to_drive(custom_path=target))
        except Exception as err:
            log.warning("telegram: download failed: %s", err)
            await self._send_text(chat_id, thread, "Sorry, I could not download that file.", markdown=False)
            return None
        size = target.stat().st_size
        if size > limit:  # the declared size lied
            target.unlink(missing_ok=True)
            await self._send_text(chat_id, thread, "Sorry, that file is too large.", markdown=False)
            return None
        rel = target.relative_to(self.kernel.paths.workspace)
        return Attachment(name=safe, path=str(rel), mime=mime or "application/octet-stream", size=size)

    # -- approvals --------------------------------------------------------------

    async def _watch_approvals(self) -> None:
        with self.kernel.subscribe(types={"approval.requested"}, maxsize=256) as sub:
            async for event in sub:
                try:
                    await self._offer_approval(event.data)
                except Exception:
                    log.exception("telegram: could not post an approval request")

    async def _offer_approval(self, data: dict[str, Any]) -> None:
        from telegram import InlineKeyboardButton, InlineKeyboardMarkup

        session_id = data.get("session_id") or ""
        chat_key = self.sessions.chat_of_session(session_id) if session_id else None
        if chat_key is None or self.app is None:
            return
        chat_id, _, thread = chat_key.partition("/")
        approval_id = data.get("id") or data.get("approval_id")
        text = f"Approval needed: {data.get('tool') or data.get('action', '')} {data.get('resource', '')}".strip()
        if data.get("reason"):
            text += f"\nWhy: {data['reason']}"
        markup = InlineKeyboardMarkup([[InlineKeyboardButton("Approve", callback_data=f"approve:{approval_id}"),
                                        InlineKeyboardButton("Reject", callback_data=f"reject:{approval_id}")]])
        await self._call(lambda: self.app.bot.send_message(int(chat_id), text, reply_markup=markup,
                                                            message_thread_id=int(thread) if thread else None))

    async def _on_callback(self, update: Any, context: Any) -> None:
        query = update.callback_query
        if query is None or query.from_user is None:
            return
        ok, _ = authorize(self.kernel, self.name, str(query.from_user.id), [str(u) for u in self.settings.allowed_users],
                          use_pairing=self.settings.pairing, name=query.from_user.full_name or "", where="approval")
        if not ok:
            await self._call(lambda: query.answer("You are not allowed to answer this.", show_alert=True))
            return
        verb, _, approval_id = (query.data or "").partition(":")
        approvals = self.kernel.services.get("approvals")
        if verb not in ("approve", "reject") or not approval_id or approvals is None:
            await self._call(lambda: query.answer("Unknown or expired request."))
            return
        try:
            result = getattr(approvals, verb)(approval_id, by=f"telegram:{query.from_user.id}")
            if asyncio.iscoroutine(result):
                await result
        except Exception as err:
            problem = f"Could not {verb}: {err}"
            await self._call(lambda: query.answer(problem))
            return
        await self._call(lambda: query.answer("Approved." if verb == "approve" else "Rejected."))
        if query.message is not None:
            done = f"{query.message.text}\n\n{'Approved' if verb == 'approve' else 'Rejected'} by {query.from_user.full_name}"
            await self._call(lambda: query.edit_message_text(done))

    # -- outgoing -------------------------------------------------------------

    async def send(self, outgoing: OutgoingMessage) -> list[int]:
        """Proactive message (cron, other agents). Raises when delivery failed after retries."""
        if self.app is None or self.state != "running":
            raise RuntimeError(f"telegram channel is not connected ({self.state}: {self.detail})")
        if not outgoing.chat_id:
            raise ValueError("telegram delivery needs a chat_id")
        chat_id = int(outgoing.chat_id)
        thread = int(outgoing.thread_id) if outgoing.thread_id else None
        sent = []
        from oxios.chatkit import split_message

        for chunk in split_message(outgoing.content, SPLIT_AT):
            sent.append((await self._send_text(chat_id, thread, chunk)).message_id)
        for attachment in outgoing.attachments:
            sent.append((await self.send_file(chat_id, thread, attachment.path)).message_id)
        return sent

    async def send_file(self, chat_id: int, thread: int | None, path: str, caption: str = "") -> Any:
        target = Path(path)
        if not target.is_absolute():
            target = self.kernel.paths.workspace / target
        verdict = await self.kernel.check_action(Action(kind="path", path=str(target), access="read"), self.kernel.context())
        if verdict.verdict != "allow":
            raise PermissionError(verdict.reason)
        data = target.read_bytes()
        return await self._call(lambda: self.app.bot.send_document(chat_id, document=data, filename=target.name,
                                                                   caption=caption or None, message_thread_id=thread))

    async def _send_text(self, chat_id: int, thread: int | None, text: str, *, markdown: bool = True) -> Any:
        from telegram.constants import ParseMode
        from telegram.error import BadRequest

        bot = self.app.bot
        if markdown:
            try:
                return await self._call(lambda: bot.send_message(chat_id, to_telegram_html(text), parse_mode=ParseMode.HTML,
                                                                 message_thread_id=thread))
            except BadRequest as err:
                if "parse" not in str(err).lower() and "entit" not in str(err).lower():
                    raise
                log.info("telegram rejected the formatting (%s); sending plain text", err)
        return await self._call(lambda: bot.send_message(chat_id, text, message_thread_id=thread))

    async def _edit_text(self, message: Any, text: str) -> Any:
        from telegram.constants import ParseMode
        from telegram.error import BadRequest

        bot = self.app.bot
        try:
            return await self._call(lambda: bot.edit_message_text(to_telegram_html(text), chat_id=message.chat_id,
                                                                  message_id=message.message_id, parse_mode=ParseMode.HTML))
        except BadRequest as err:
            low = str(err).lower()
            if "not modified" in low:
                return message
            if "parse" not in low and "entit" not in low:
                raise
        return await self._call(lambda: bot.edit_message_text(text, chat_id=message.chat_id, message_id=message.message_id))

    async def _call(self, fn: Callable[[], Awaitable[Any]]) -> Any:
        """Call the Bot API; retry 429 (after retry_after), network errors and 5xx with backoff."""
        from telegram.error import NetworkError, RetryAfter, TimedOut

        delay = 0.25
        for attempt in range(self.settings.max_retries + 1):
            try:
                return await fn()
            except RetryAfter as err:
                wait = err.retry_after.total_seconds() if hasattr(err.retry_after, "total_seconds") else float(err.retry_after)
                log.info("telegram: rate limited; retrying after %.1fs", wait)
                if attempt == self.settings.max_retries:
                    raise
                await asyncio.sleep(wait)
            except (TimedOut, NetworkError) as err:
                if _is_client_error(err) or attempt == self.settings.max_retries:
                    raise
                log.info("telegram: %s; retrying in %.2fs", err, delay)
                await asyncio.sleep(delay + random.uniform(0, delay / 2))
                delay = min(delay * 2, 10.0)
        raise AssertionError("unreachable")


def _is_client_error(err: Exception) -> bool:
    from telegram.error import BadRequest, Forbidden

    return isinstance(err, (BadRequest, Forbidden))
