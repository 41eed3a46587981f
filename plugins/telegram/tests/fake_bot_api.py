"""A local fake of the Telegram Bot API, served by uvicorn on 127.0.0.1.

It speaks the real wire protocol (form-encoded or multipart requests,
``{"ok": ..., "result": ...}`` envelopes, long-polled getUpdates) so
python-telegram-bot's own HTTP client is exercised, and it behaves like the
real server where bots trip up: identical edits are rejected, messages over
4096 characters are rejected, malformed HTML is rejected, getUpdates answers
409 while a webhook is set, unknown chats are "not found", and 429, 5xx,
409 (another poller) and 400 answers can be injected, and the token revoked
(401 Unauthorized for every method, as after a revocation in BotFather).
"""

from __future__ import annotations

import asyncio
import html.parser
import itertools
import json
import socket
import time
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

TOKEN = "123456:TEST-token-for-the-fake-bot-api-server"
BOT_USER = {
    "id": 42,
    "is_bot": True,
    "first_name": "Oxios",
    "username": "oxios_test_bot",
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}
ALLOWED_TAGS = {
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "code",
    "pre",
    "a",
    "tg-spoiler",
    "blockquote",
    "span",
}


class _HtmlCheck(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.error = ""

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag not in ALLOWED_TAGS:
            self.error = f'Unsupported start tag "{tag}"'
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.error = f'Can\'t find end tag corresponding to start tag "{tag}"'


def _parse_error(text: str) -> str:
    check = _HtmlCheck()
    check.feed(text)
    check.close()
    if check.stack and not check.error:
        check.error = f'Can\'t find end tag corresponding to start tag "{check.stack[-1]}"'
    return check.error


class FakeBotApi:
    def __init__(self) -> None:
        self.updates: list[dict[str, Any]] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}
        self.files: dict[str, bytes] = {}
        self.failures: dict[str, list[tuple[int, int | None, str | None]]] = {}
        self.webhook: dict[str, Any] | None = None
        self.missing_chats: set[int] = set()  # sending there answers "chat not found"
        self.revoked = False  # the token was revoked: every method answers 401 Unauthorized
        self.refused: list[str] = []  # the methods answered 401, in order
        self.polled_offset = 0  # the offset of the last getUpdates: updates below it are confirmed
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1000)
        self._new_update = asyncio.Event()
        self.port = _free_port()
        self.server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    # -- test controls ------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    def fail_next(
        self, method: str, status: int, *, retry_after: int | None = None, times: int = 1, description: str | None = None
    ) -> None:
        self.failures.setdefault(method, []).extend([(status, retry_after, description)] * times)

    def _push(self, update: dict[str, Any]) -> None:
        update["update_id"] = next(self._update_ids)
        self.updates.append(update)
        self._new_update.set()

    @property
    def last_update_id(self) -> int:
        return self.updates[-1]["update_id"] if self.updates else 0

    def user_message(
        self,
        chat_id: int,
        user_id: int,
        text: str = "",
        *,
        thread_id: int | None = None,
        document: dict[str, Any] | None = None,
        photo: list[dict[str, Any]] | None = None,
        caption: str | None = None,
        chat_type: str | None = None,
    ) -> None:
        chat_type = chat_type or ("supergroup" if thread_id else "private")
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": chat_type, "is_forum": bool(thread_id)},
            "from": {"id": user_id, "is_bot": False, "first_name": f"User{user_id}"},
        }
        if text:
            message["text"] = text
            if text.startswith("/"):
                message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        if thread_id:
            message["message_thread_id"] = thread_id
            message["is_topic_message"] = True
        if document:
            message["document"] = document
        if photo:
            message["photo"] = photo
        if caption:
            message["caption"] = caption
        self._push({"message": message})

    def edit_message(self, chat_id: int, user_id: int, message_id: int, text: str) -> None:
        """The user edits a message they sent earlier: an ``edited_message`` update."""
        message = {
            "message_id": message_id,
            "date": int(time.time()) - 60,
            "edit_date": int(time.time()),
            "chat": {"id": chat_id, "type": "private"},
            "from": {"id": user_id, "is_bot": False, "first_name": f"User{user_id}"},
            "text": text,
        }
        self._push({"edited_message": message})

    def add_file(self, file_id: str, data: bytes, *, declared_size: int | None = None) -> dict[str, Any]:
        self.files[file_id] = data
        return {
            "file_id": file_id,
            "file_unique_id": f"u{file_id}",
            "file_name": f"{file_id}.txt",
            "mime_type": "text/plain",
            "file_size": declared_size if declared_size is not None else len(data),
        }

    def add_photo(self, file_id: str, data: bytes) -> list[dict[str, Any]]:
        """A photo as Telegram sends it: several sizes, the largest last."""
        self.files[file_id] = data
        small = {"file_id": f"{file_id}-s", "file_unique_id": f"u{file_id}-s", "width": 90, "height": 90, "file_size": 10}
        return [small, {"file_id": file_id, "file_unique_id": f"u{file_id}", "width": 800, "height": 600, "file_size": len(data)}]

    def callback(self, user_id: int, data: str, message: dict[str, Any]) -> None:
        self._push(
            {
                "callback_query": {
                    "id": f"cb{next(self._update_ids)}",
                    "chat_instance": "ci",
                    "from": {"id": user_id, "is_bot": False, "first_name": f"User{user_id}"},
                    "data": data,
                    "message": message,
                }
            }
        )

    def sent(self, method: str | None = None, chat_id: int | None = None) -> list[dict[str, Any]]:
        return [
            p
            for m, p in self.calls
            if (method is None or m == method) and (chat_id is None or int(p.get("chat_id", 0)) == chat_id)
        ]

    def answers(self) -> list[str]:
        """The texts of every answerCallbackQuery (the little notice a button press shows)."""
        return [str(p.get("text", "")) for p in self.sent("answerCallbackQuery")]

    def chat_text(self, chat_id: int, thread_id: int | None = None) -> list[str]:
        """The current text of every text message the bot has in a chat (after edits), in order."""
        return [
            m["text"]
            for (c, _), m in sorted(self.messages.items(), key=lambda kv: kv[0][1])
            if c == chat_id and "text" in m and (thread_id is None or m.get("message_thread_id") == thread_id)
        ]

    async def wait_for(self, predicate: Any, timeout: float = 10.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            await asyncio.sleep(0.02)
        raise AssertionError(f"condition not met within {timeout}s; calls: {[m for m, _ in self.calls][-20:]}")

    # -- server ---------------------------------------------------------------

    async def start(self) -> None:
        app = Starlette(
            routes=[
                Route("/bot{token}/{method}", self._method, methods=["GET", "POST"]),
                Route("/file/bot{token}/{path:path}", self._file, methods=["GET"]),
            ]
        )
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self._task = asyncio.create_task(self.server.serve())
        while not self.server.started:  # uvicorn exposes a flag, not an event
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
            self._new_update.set()
            await asyncio.wait_for(self._task, 10)
            self.server = None

    async def _params(self, request: Request) -> dict[str, Any]:
        ctype = request.headers.get("content-type", "")
        if "json" in ctype:
            return await request.json()
        form = await request.form()
        params: dict[str, Any] = {}
        for key, value in form.multi_items():
            if hasattr(value, "read"):
                params[key] = {"filename": value.filename, "data": await value.read()}
                continue
            try:
                params[key] = json.loads(value) if value[:1] in "{[" else value
            except ValueError:
                params[key] = value
        return params

    async def _method(self, request: Request) -> Response:
        if request.path_params["token"] != TOKEN or self.revoked:
            self.refused.append(request.path_params["method"])
            return JSONResponse({"ok": False, "error_code": 401, "description": "Unauthorized"}, status_code=401)
        method = request.path_params["method"]
        params = await self._params(request)
        queued = self.failures.get(method)
        if queued:
            status, retry_after, description = queued.pop(0)
            self.calls.append((f"{method}!{status}", params))
            body: dict[str, Any] = {
                "ok": False,
                "error_code": status,
                "description": description or ("Too Many Requests" if status == 429 else "Internal Server Error"),
            }
            if retry_after is not None:
                body["parameters"] = {"retry_after": retry_after}
                body["description"] = f"Too Many Requests: retry after {retry_after}"
            return JSONResponse(body, status_code=status)
        if method != "getUpdates":
            self.calls.append((method, params))
        handler = getattr(self, f"m_{method}", None)
        if handler is None:
            return JSONResponse({"ok": False, "error_code": 404, "description": "Not Found: method not found"}, status_code=404)
        try:
            result = await handler(params)
        except _ApiError as err:
            return JSONResponse({"ok": False, "error_code": err.status, "description": err.args[0]}, status_code=err.status)
        return JSONResponse({"ok": True, "result": result})

    async def _file(self, request: Request) -> Response:
        data = self.files.get(request.path_params["path"].split("/")[-1])
        if data is None:
            return Response(status_code=404)
        return Response(data, media_type="application/octet-stream")

    # -- methods --------------------------------------------------------------

    async def m_getMe(self, p: dict[str, Any]) -> Any:
        return BOT_USER

    async def m_deleteWebhook(self, p: dict[str, Any]) -> Any:
        self.webhook = None
        return True

    async def m_setWebhook(self, p: dict[str, Any]) -> Any:
        self.webhook = {"url": p.get("url"), "secret_token": p.get("secret_token")}
        return True

    async def m_setMyCommands(self, p: dict[str, Any]) -> Any:
        return True

    async def m_getUpdates(self, p: dict[str, Any]) -> Any:
        if self.webhook is not None:
            raise _ApiError(
                "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
                409,
            )
        offset = int(p.get("offset") or 0)
        self.polled_offset = max(self.polled_offset, offset)
        timeout = min(float(p.get("timeout") or 0), 1.0)  # short polls keep tests fast
        deadline = time.monotonic() + timeout
        while True:
            ready = [u for u in self.updates if u["update_id"] >= offset]
            if ready or time.monotonic() >= deadline or (self.server and self.server.should_exit):
                return ready
            self._new_update.clear()
            try:
                await asyncio.wait_for(self._new_update.wait(), max(0.01, deadline - time.monotonic()))
            except TimeoutError:
                pass

    def _check_text(self, p: dict[str, Any]) -> str:
        text = str(p.get("text", ""))
        if not text.strip():
            raise _ApiError("Bad Request: message text is empty")
        if p.get("parse_mode") == "HTML":
            error = _parse_error(text)
            if error:
                raise _ApiError(f"Bad Request: can't parse entities: {error}")
            plain = _strip_tags(text)
        else:
            plain = text
        if len(plain) > 4096:
            raise _ApiError("Bad Request: message is too long")
        return text

    def _message(self, chat_id: int, text: str | None, thread: Any = None, **extra: Any) -> dict[str, Any]:
        if chat_id in self.missing_chats:
            raise _ApiError("Bad Request: chat not found")
        msg: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private"},
            "from": BOT_USER,
            **extra,
        }
        if text is not None:
            msg["text"] = text
        if thread:
            msg["message_thread_id"] = int(thread)
            msg["is_topic_message"] = True
            msg["chat"] = {"id": chat_id, "type": "supergroup", "is_forum": True}
        self.messages[(chat_id, msg["message_id"])] = msg
        return msg

    async def m_sendMessage(self, p: dict[str, Any]) -> Any:
        if int(p["chat_id"]) in self.missing_chats:
            raise _ApiError("Bad Request: chat not found")
        text = self._check_text(p)
        extra = {"reply_markup": p["reply_markup"]} if "reply_markup" in p else {}
        return self._message(int(p["chat_id"]), text, p.get("message_thread_id"), **extra)

    async def m_editMessageText(self, p: dict[str, Any]) -> Any:
        key = (int(p["chat_id"]), int(p["message_id"]))
        if key not in self.messages:
            raise _ApiError("Bad Request: message to edit not found")
        text = self._check_text(p)
        if self.messages[key].get("text") == text and p.get("reply_markup") == self.messages[key].get("reply_markup"):
            raise _ApiError(
                "Bad Request: message is not modified: specified new message content and reply markup are exactly the same"
            )
        self.messages[key]["text"] = text
        if p.get("reply_markup"):
            self.messages[key]["reply_markup"] = p["reply_markup"]
        else:
            self.messages[key].pop("reply_markup", None)  # an edit without a keyboard removes it
        return self.messages[key]

    async def m_answerCallbackQuery(self, p: dict[str, Any]) -> Any:
        return True

    async def m_getFile(self, p: dict[str, Any]) -> Any:
        file_id = p["file_id"]
        if file_id not in self.files:
            raise _ApiError("Bad Request: invalid file_id")
        return {
            "file_id": file_id,
            "file_unique_id": f"u{file_id}",
            "file_size": len(self.files[file_id]),
            "file_path": f"documents/{file_id}",
        }

    async def m_sendDocument(self, p: dict[str, Any]) -> Any:
        doc = p.get("document")
        size = len(doc["data"]) if isinstance(doc, dict) else 0
        name = doc["filename"] if isinstance(doc, dict) else "file"
        return self._message(
            int(p["chat_id"]),
            None,
            p.get("message_thread_id"),
            document={"file_id": f"sent{size}", "file_unique_id": f"us{size}", "file_name": name, "file_size": size},
        )


class _ApiError(Exception):
    def __init__(self, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.status = status


def _strip_tags(text: str) -> str:
    import html as html_mod
    import re

    return html_mod.unescape(re.sub(r"<[^>]+>", "", text))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
