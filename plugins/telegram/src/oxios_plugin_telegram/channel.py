"""The Telegram channel: python-telegram-bot polling or webhook, streamed edits, buttons, files."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from oxios import ChatChannel, ChatSettings, Inbound, ReplyStreamer, split_message
from oxios_hookspecs import Attachment

from .render import to_telegram_html

log = logging.getLogger(__name__)

MESSAGE_LIMIT = 4096
# Rendered HTML is shorter than its Markdown source, so splitting the source
# a little below the limit keeps every chunk under it.
SPLIT_AT = 4000


class TelegramSettings(ChatSettings, kw_only=True, forbid_unknown_fields=True):
    """``[channels.telegram]`` (the shared chat settings plus these)."""

    token_env: str = "TELEGRAM_BOT_TOKEN"
    base_url: str = ""
    base_file_url: str = ""
    poll_timeout_secs: int = 10
    max_retries: int = 5
    # "webhook": Telegram posts updates to webhook_url, which must reach the web plugin's
    # /webhook/telegram (e.g. through a reverse proxy); "polling" needs no public address.
    mode: Literal["polling", "webhook"] = "polling"
    webhook_url: str = ""


def chat_key_of(message: Any) -> str:
    """``CHAT`` or, for a forum topic, ``CHAT/TOPIC``: the session key of a message."""
    thread = message.message_thread_id if getattr(message, "is_topic_message", False) else None
    return f"{message.chat.id}/{thread}" if thread else str(message.chat.id)


def split_key(chat_key: str) -> tuple[int, int | None]:
    chat, _, thread = chat_key.partition("/")
    return int(chat), int(thread) if thread else None


class TelegramChannel(ChatChannel):
    name = "telegram"
    settings: TelegramSettings
    outgoing_file_limit = 50 * 1024 * 1024  # the Bot API's limit for files a bot sends

    def __init__(self, kernel: Any, settings: TelegramSettings, token: str) -> None:
        super().__init__(kernel, settings, token)
        self.app: Any = None
        self.bot_name = ""
        self._webhook_cleanup: asyncio.Task[Any] | None = None
        self._token_refused = False

    # -- lifecycle ------------------------------------------------------------

    async def start(self, gateway: Any) -> None:
        from telegram import Update
        from telegram.ext import Application, CallbackQueryHandler, MessageHandler, TypeHandler, filters

        self.gateway = gateway
        builder = Application.builder().token(self._token).concurrent_updates(True)
        if self.settings.base_url:
            builder = builder.base_url(self.settings.base_url)
            builder = builder.base_file_url(self.settings.base_file_url or self.settings.base_url.replace("/bot", "/file/bot"))
        polling_request, _ = _polling_types()
        builder = builder.get_updates_request(
            polling_request(self._on_poll_status, connection_pool_size=1, read_timeout=self.settings.poll_timeout_secs + 10)
        )
        self.app = builder.build()
        self.app.add_handler(TypeHandler(Update, self._on_any_update), group=-1)
        self.app.add_handler(CallbackQueryHandler(self._on_callback))
        # An edited message is not a new question: answering it again would run the agent twice.
        self.app.add_handler(MessageHandler(filters.ALL & ~filters.UpdateType.EDITED, self._on_message))
        self.app.add_error_handler(self._on_handler_error)
        self.state = "connecting"
        # Connecting happens in the background: an unreachable Telegram never holds up the daemon.
        self._tasks.append(asyncio.create_task(self._connect(), name="telegram-connect"))
        self._tasks.append(asyncio.create_task(self.watch_approvals(), name="telegram-approvals"))

    async def _connect(self) -> None:
        """Bring the bot up, retrying with backoff until it works (or the token is wrong)."""
        from telegram.error import InvalidToken

        delay = 0.5
        while True:
            try:
                await self._bring_up()
                break
            except InvalidToken as err:
                self.state, self.detail = "error", f"invalid bot token: {err}"
                log.error("telegram: %s", self.detail)
                return
            except asyncio.CancelledError:
                raise
            except Exception as err:
                self.state, self.detail = "connecting", f"{type(err).__name__}: {err}"
                log.warning("telegram: cannot start (%s); retrying in %.1fs", self.detail, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
        self.state, self.detail = "running", f"@{self.bot_name}"
        self.kernel.publish("channel.connected", channel=self.name, bot=self.bot_name)

    async def _bring_up(self) -> None:
        await self.app.initialize()  # getMe; a no-op once it has worked
        self.bot_name = self.app.bot.username or ""
        if not self.app.running:
            await self.app.start()
        if self.settings.mode == "webhook":
            await self._call(lambda: self.app.bot.set_webhook(self.settings.webhook_url, secret_token=self.webhook_secret))
        elif not self.app.updater.running:
            # Polling starts by deleting any webhook (a leftover from webhook mode would block getUpdates).
            await self.app.updater.start_polling(
                timeout=self.settings.poll_timeout_secs, error_callback=self._on_poll_error, drop_pending_updates=False
            )

    @property
    def webhook_secret(self) -> str:
        """The secret Telegram sends with each webhook call: derived from the bot token, never stored."""
        return hashlib.sha256(f"oxios-telegram-webhook:{self._token}".encode()).hexdigest()[:48]

    async def receive_webhook(self, secret: str, update: dict[str, Any]) -> bool:
        """One update posted by Telegram; False (and nothing done) unless the secret matches."""
        from telegram import Update

        if self.app is None or self.state != "running" or not hmac.compare_digest(secret, self.webhook_secret):
            return False
        await self.app.update_queue.put(Update.de_json(update, self.app.bot))
        return True

    def _on_poll_error(self, err: Exception) -> None:
        # python-telegram-bot keeps polling with backoff (1 s growing to 30 s); we record why it is unhappy.
        from telegram.error import Conflict

        _, token_refused = _polling_types()
        if isinstance(err, token_refused):
            if not self._token_refused:
                log.error("telegram: %s", TOKEN_REFUSED)
            self._token_refused = True
            self.state, self.detail = "error", TOKEN_REFUSED
            return
        if isinstance(err, Conflict) and "webhook" in str(err).lower():
            self.detail = "a webhook is set for this bot token; removing it (this channel polls)"
            if self._webhook_cleanup is None or self._webhook_cleanup.done():
                self._webhook_cleanup = asyncio.get_running_loop().create_task(self._delete_webhook())
        elif isinstance(err, Conflict):
            self.detail = f"another poller is using this bot token ({err})"
        else:
            self.detail = f"polling failed: {type(err).__name__}: {err}"
        log.warning("telegram polling: %s", self.detail)

    def _on_poll_status(self, status: int) -> None:
        """Each getUpdates answer: a token refused before that works again means polling is back."""
        if status == 200 and self._token_refused:
            self._token_refused = False
            self.state, self.detail = "running", f"@{self.bot_name}"
            log.warning("telegram: the bot token is accepted again; polling resumed")
            self.kernel.publish("channel.connected", channel=self.name, bot=self.bot_name)

    async def _delete_webhook(self) -> None:
        try:
            await self._call(lambda: self.app.bot.delete_webhook())
            log.warning("telegram: removed a webhook that blocked polling")
        except Exception as err:
            log.warning("telegram: could not remove the webhook: %s", err)

    async def _on_any_update(self, update: Any, context: Any) -> None:
        if self.state == "running":
            self.detail = f"@{self.bot_name}"  # an update arrived: whatever went wrong before has passed

    async def _on_handler_error(self, update: object, context: Any) -> None:
        log.error("telegram: handler failed: %s", context.error, exc_info=context.error)

    async def stop(self) -> None:
        self.cancel_inflight()  # first: python-telegram-bot waits for running handlers
        if self._webhook_cleanup is not None:
            self._tasks.append(self._webhook_cleanup)
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

    # -- incoming -------------------------------------------------------------

    async def _on_message(self, update: Any, context: Any) -> None:
        msg, user, chat = update.effective_message, update.effective_user, update.effective_chat
        if msg is None or user is None or chat is None or user.is_bot:
            return
        chat_key = chat_key_of(msg)
        _, thread = split_key(chat_key)
        inbound = Inbound(
            chat_key=chat_key,
            user_id=str(user.id),
            user_name=user.full_name or "",
            text=msg.text or msg.caption or "",
            commands=bool(msg.text),
            chat_id=str(chat.id),
            thread_id=str(thread or ""),
            private=chat.type == "private",
        )

        async def reply(text: str) -> Any:
            return await self._send_text(chat.id, thread, text, markdown=False)

        has_file = msg.document is not None or bool(msg.photo)
        await self.receive(inbound, reply, (lambda: self._save_file(msg, inbound.chat_key, reply)) if has_file else None)

    def streamer(self, inbound: Inbound) -> ReplyStreamer:
        chat_id, thread = int(inbound.chat_id), int(inbound.thread_id) if inbound.thread_id else None
        return ReplyStreamer(
            send=lambda t: self._send_text(chat_id, thread, t),
            edit=self._edit_text,
            live_edit=functools.partial(self._edit_text, patient=False),
            limit=SPLIT_AT,
            interval=self.settings.edit_interval_secs,
        )

    async def _save_file(self, msg: Any, chat_key: str, reply: Any) -> list[Attachment] | None:
        if msg.document is not None:
            item, name, mime = (
                msg.document,
                msg.document.file_name or f"file_{msg.document.file_unique_id}",
                msg.document.mime_type,
            )
        else:
            item = msg.photo[-1]  # the largest size
            name, mime = f"photo_{item.file_unique_id}.jpg", "image/jpeg"
        if item.file_size and item.file_size > self.file_limit:
            await reply(
                f"Sorry, that file is too large ({item.file_size / 1e6:.1f} MB); the limit is {self.settings.max_file_mb:g} MB."
            )
            return None
        target, why = await self.upload_target(chat_key, name)
        if target is None:
            await reply(f"Sorry, I cannot store that file: {why}")
            return None
        try:
            tg_file = await self._call(item.get_file)
            await self._call(lambda: tg_file.download_to_drive(custom_path=target))
        except Exception as err:
            log.warning("telegram: download failed: %s", err)
            await reply("Sorry, I could not download that file.")
            return None
        if target.stat().st_size > self.file_limit:  # the declared size lied
            target.unlink(missing_ok=True)
            await reply("Sorry, that file is too large.")
            return None
        return [self.attachment(target, mime)]

    # -- buttons: approvals and interview questions ------------------------------------

    async def offer_approval(self, chat_key: str, approval_id: str, text: str) -> None:
        from telegram import InlineKeyboardButton, InlineKeyboardMarkup

        chat_id, thread = split_key(chat_key)
        markup = InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton("Approve", callback_data=f"approve:{approval_id}"),
                    InlineKeyboardButton("Reject", callback_data=f"reject:{approval_id}"),
                ]
            ]
        )
        await self._call(lambda: self.app.bot.send_message(chat_id, text, reply_markup=markup, message_thread_id=thread))

    def _question_markup(self, form: Any, index: int) -> Any:
        from telegram import InlineKeyboardButton, InlineKeyboardMarkup

        _, buttons = form.render(index)
        if not buttons:
            return None
        keys = [InlineKeyboardButton(label, callback_data=f"q:{form.id}:{index}:{token}") for label, token in buttons]
        # Short choices side by side, long ones (or many) one per row.
        if len(keys) <= 3 and all(len(label) <= 16 for label, _ in buttons):
            return InlineKeyboardMarkup([keys])
        return InlineKeyboardMarkup([[k] for k in keys])

    async def offer_question(self, form: Any, index: int) -> None:
        chat_id, thread = split_key(form.chat_key)
        text, _ = form.render(index)
        markup = self._question_markup(form, index)
        await self._call(lambda: self.app.bot.send_message(chat_id, text, reply_markup=markup, message_thread_id=thread))

    async def _on_callback(self, update: Any, context: Any) -> None:
        query = update.callback_query
        if query is None or query.from_user is None:
            return
        data, user = query.data or "", query.from_user
        message = query.message
        chat_key = chat_key_of(message) if message is not None and getattr(message, "chat", None) else ""
        if data.startswith("q:"):
            await self._on_question(query, user, chat_key, data)
            return
        verb, _, approval_id = data.partition(":")
        done, answer = await self.answer_approval(str(user.id), user.full_name or "", verb, approval_id, chat_key=chat_key)
        await self._call(lambda: query.answer(answer, show_alert=not done))
        if done and getattr(message, "text", None):
            await self._call(lambda: query.edit_message_text(f"{message.text}\n\n{answer[:-1]} by {user.full_name}"))

    async def _on_question(self, query: Any, user: Any, chat_key: str, data: str) -> None:
        from telegram.error import BadRequest

        try:
            _, form_id, index, token = data.split(":", 3)
            press = self.press_question(str(user.id), user.full_name or "", chat_key, form_id, int(index), token)
        except ValueError:
            await self._call(lambda: query.answer("Unknown button.", show_alert=True))
            return
        await self._call(lambda: query.answer(press.notice, show_alert=not press.ok))
        if press.form is None:
            return
        text, _ = press.form.render(int(index))
        try:
            await self._call(lambda: query.edit_message_text(text, reply_markup=self._question_markup(press.form, int(index))))
        except BadRequest as err:
            if "not modified" not in str(err).lower():
                log.warning("telegram: could not update a question: %s", err)
        if press.complete:
            await self.send_answers(press.form, str(user.id), user.full_name or "")

    # -- outgoing -------------------------------------------------------------

    async def post(self, chat_key: str, text: str, files: list[tuple[str, bytes]]) -> list[int]:
        """Text (split, rendered) then files, to a chat or a forum topic. Raises when delivery failed."""
        chat_id, thread = split_key(chat_key)
        sent = [(await self._send_text(chat_id, thread, chunk)).message_id for chunk in split_message(text, SPLIT_AT)]
        for name, data in files:
            message = await self._call(
                lambda name=name, data=data: self.app.bot.send_document(
                    chat_id, document=data, filename=name, message_thread_id=thread
                )
            )
            sent.append(message.message_id)
        return sent

    async def _send_text(self, chat_id: int, thread: int | None, text: str, *, markdown: bool = True) -> Any:
        from telegram.constants import ParseMode
        from telegram.error import BadRequest

        bot = self.app.bot
        if markdown:
            try:
                return await self._call(
                    lambda: bot.send_message(chat_id, to_telegram_html(text), parse_mode=ParseMode.HTML, message_thread_id=thread)
                )
            except BadRequest as err:
                if not _formatting_rejected(err):
                    raise
                log.info("telegram rejected the formatting (%s); sending plain text", err)
        return await self._call(lambda: bot.send_message(chat_id, text, message_thread_id=thread))

    async def _edit_text(self, message: Any, text: str, *, patient: bool = True) -> Any:
        from telegram.constants import ParseMode
        from telegram.error import BadRequest

        bot = self.app.bot
        try:
            return await self._call(
                lambda: bot.edit_message_text(
                    to_telegram_html(text), chat_id=message.chat_id, message_id=message.message_id, parse_mode=ParseMode.HTML
                ),
                patient=patient,
            )
        except BadRequest as err:
            if "not modified" in str(err).lower():
                return message
            if not _formatting_rejected(err):
                raise
            log.info("telegram rejected the formatting (%s); editing as plain text", err)
        return await self._call(
            lambda: bot.edit_message_text(text, chat_id=message.chat_id, message_id=message.message_id), patient=patient
        )

    async def _call(self, fn: Callable[[], Awaitable[Any]], *, patient: bool = True) -> Any:
        """Call the Bot API; retry 429 (after retry_after), network errors and 5xx with backoff.

        ``patient=False`` (edits while a reply streams) raises at once instead:
        the streamer skips that edit and respects the rate limit itself.
        """
        from telegram.error import NetworkError, RetryAfter, TimedOut

        retries = self.settings.max_retries if patient else 0
        delay = 0.25
        for attempt in range(retries + 1):
            try:
                return await fn()
            except RetryAfter as err:
                wait = err.retry_after.total_seconds() if hasattr(err.retry_after, "total_seconds") else float(err.retry_after)
                if attempt == retries:
                    raise
                log.info("telegram: rate limited; retrying after %.1fs", wait)
                await asyncio.sleep(wait)
            except (TimedOut, NetworkError) as err:
                if _is_client_error(err) or attempt == retries:
                    raise
                log.info("telegram: %s; retrying in %.2fs", err, delay)
                await asyncio.sleep(delay + random.uniform(0, delay / 2))
                delay = min(delay * 2, 10.0)
        raise AssertionError("unreachable")


TOKEN_REFUSED = (
    "Telegram refused the bot token (401 Unauthorized): it was revoked, or the bot deleted; "
    "polling keeps retrying (backoff up to 30 s), so a token that works again recovers by itself "
    "(a new token from BotFather needs the config changed and a restart)"
)


@functools.cache
def _polling_types() -> tuple[type, type[Exception]]:
    """The HTTP client getUpdates runs on, and the error it raises when Telegram refuses the token.

    python-telegram-bot ends its polling loop silently on a 401 (``InvalidToken``)
    while the updater still says it is running. Raised as a network error
    instead, the 401 reaches our error callback and polling keeps retrying
    with its usual backoff (growing to 30 s), so a restored token recovers.
    """
    from telegram.error import NetworkError
    from telegram.request import HTTPXRequest

    class TokenRefused(NetworkError):
        pass

    class PollingRequest(HTTPXRequest):
        def __init__(self, on_status: Callable[[int], None], **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.on_status = on_status

        async def do_request(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
            status, payload = await super().do_request(*args, **kwargs)
            self.on_status(status)
            if status == 401:
                raise TokenRefused("Unauthorized: Telegram refused the bot token")
            return status, payload

    return PollingRequest, TokenRefused


def _formatting_rejected(err: Exception) -> bool:
    low = str(err).lower()
    return "parse" in low or "entit" in low


def _is_client_error(err: Exception) -> bool:
    from telegram.error import BadRequest, Forbidden

    return isinstance(err, (BadRequest, Forbidden))
