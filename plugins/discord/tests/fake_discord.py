"""A local fake of Discord's REST API and gateway, served by uvicorn on 127.0.0.1.

discord.py's own HTTP client and gateway WebSocket talk to it exactly as to
Discord (HELLO, IDENTIFY, READY, GUILD_CREATE, heartbeats, RESUME, dispatched
MESSAGE_CREATE and INTERACTION_CREATE), so the channel is tested over the
wire. Like Discord, it rejects messages over 2000 characters, answers 404
for unknown channels, and can answer 429 with ``retry_after``, 5xx, or close
the gateway with a code (4014: a privileged intent is not enabled).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import time
from datetime import UTC, datetime
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

TOKEN = "MTIz.fake-discord-token.for-tests"
BOT = {"id": "900", "username": "oxios", "discriminator": "0", "global_name": "Oxios", "avatar": None, "bot": True}
GUILD = "700"
CHANNEL = "710"
OTHER_CHANNEL = "711"
THREAD_A = "721"
THREAD_B = "722"


def _iso() -> str:
    return datetime.now(UTC).isoformat()


def user(uid: int | str) -> dict[str, Any]:
    return {"id": str(uid), "username": f"user{uid}", "discriminator": "0", "global_name": None, "avatar": None}


class FakeDiscord:
    def __init__(self) -> None:
        self.port = _free_port()
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.messages: dict[str, dict[str, Any]] = {}
        self.files: dict[str, bytes] = {}
        self.failures: dict[str, list[tuple[int, float]]] = {}
        self.missing_channels: set[str] = set()
        self.identify_close_code: int | None = None  # close the gateway with this code instead of READY
        self._ids = itertools.count(100_000)
        self._sockets: list[WebSocket] = []
        self._seq = itertools.count(1)
        self.identifies = 0
        self._clicked: dict[str, str] = {}  # interaction id -> message id
        self.resumes = 0
        self.server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    def _id(self) -> str:
        return str(next(self._ids))

    # -- server ---------------------------------------------------------------

    async def start(self) -> None:
        app = Starlette(
            routes=[
                Route("/api/v10/users/@me", self._me),
                Route("/api/v10/oauth2/applications/@me", self._application),
                Route("/api/v10/gateway/bot", self._gateway_bot),
                Route("/api/v10/gateway", self._gateway_bot),
                Route("/api/v10/channels/{cid}", self._get_channel),
                Route("/api/v10/channels/{cid}/messages", self._create_message, methods=["POST"]),
                Route("/api/v10/channels/{cid}/messages/{mid}", self._edit_message, methods=["PATCH"]),
                Route("/api/v10/interactions/{iid}/{token}/callback", self._interaction_callback, methods=["POST"]),
                Route("/attachments/{name}", self._attachment),
                WebSocketRoute("/gateway", self._gateway),
                Route("/{path:path}", self._unknown, methods=["GET", "POST", "PATCH", "PUT", "DELETE"]),
            ]
        )
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"))
        self._task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        for ws in list(self._sockets):
            try:
                await ws.close(code=1001)
            except Exception:
                pass
        if self.server is not None:
            self.server.should_exit = True
            await asyncio.wait_for(self._task, 10)
            self.server = None

    # -- gateway --------------------------------------------------------------

    def _guild(self) -> dict[str, Any]:
        text = {
            "type": 0,
            "position": 0,
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": None,
            "topic": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "guild_id": GUILD,
        }
        thread = {
            "type": 11,
            "guild_id": GUILD,
            "parent_id": CHANNEL,
            "owner_id": BOT["id"],
            "message_count": 0,
            "member_count": 1,
            "rate_limit_per_user": 0,
            "flags": 0,
            "thread_metadata": {"archived": False, "auto_archive_duration": 1440, "archive_timestamp": _iso(), "locked": False},
        }
        return {
            "id": GUILD,
            "name": "Test guild",
            "owner_id": "1",
            "unavailable": False,
            "large": False,
            "member_count": 2,
            "roles": [
                {
                    "id": GUILD,
                    "name": "@everyone",
                    "permissions": "68608",
                    "position": 0,
                    "color": 0,
                    "hoist": False,
                    "managed": False,
                    "mentionable": False,
                    "flags": 0,
                }
            ],
            "channels": [{**text, "id": CHANNEL, "name": "general"}, {**text, "id": OTHER_CHANNEL, "name": "random"}],
            "threads": [{**thread, "id": THREAD_A, "name": "topic a"}, {**thread, "id": THREAD_B, "name": "topic b"}],
            "members": [],
            "emojis": [],
            "stickers": [],
            "features": [],
            "voice_states": [],
            "presences": [],
            "premium_tier": 0,
            "mfa_level": 0,
            "verification_level": 0,
            "explicit_content_filter": 0,
            "default_message_notifications": 0,
            "afk_timeout": 300,
            "nsfw_level": 0,
            "preferred_locale": "en-US",
            "system_channel_flags": 0,
            "joined_at": _iso(),
        }

    async def _gateway(self, ws: WebSocket) -> None:
        await ws.accept()
        self._sockets.append(ws)
        try:
            await ws.send_text(json.dumps({"op": 10, "d": {"heartbeat_interval": 41250}, "s": None, "t": None}))
            while True:
                frame = json.loads(await ws.receive_text())
                op = frame.get("op")
                if op == 1:
                    await ws.send_text(json.dumps({"op": 11, "d": None, "s": None, "t": None}))
                elif op == 2:
                    if frame["d"].get("token") != TOKEN:
                        await ws.close(code=4004)
                        return
                    if self.identify_close_code is not None:
                        self.identifies += 1
                        await ws.close(code=self.identify_close_code)
                        return
                    self.identifies += 1
                    await self._send(
                        ws,
                        "READY",
                        {
                            "v": 10,
                            "user": BOT,
                            "guilds": [{"id": GUILD, "unavailable": True}],
                            "session_id": f"session-{self.identifies}",
                            "resume_gateway_url": f"ws://127.0.0.1:{self.port}/gateway",
                            "application": {"id": BOT["id"], "flags": 0},
                            "private_channels": [],
                        },
                    )
                    await self._send(ws, "GUILD_CREATE", self._guild())
                elif op == 6:
                    self.resumes += 1
                    await self._send(ws, "RESUMED", {})
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            if ws in self._sockets:
                self._sockets.remove(ws)

    async def _send(self, ws: WebSocket, event: str, data: dict[str, Any]) -> None:
        await ws.send_text(json.dumps({"op": 0, "t": event, "s": next(self._seq), "d": data}))

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        for ws in list(self._sockets):
            await self._send(ws, event, data)

    async def connected(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not self._sockets and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

    # -- test controls ----------------------------------------------------------

    def _message(self, channel_id: str, author: dict[str, Any], content: str, **extra: Any) -> dict[str, Any]:
        msg = {
            "id": self._id(),
            "channel_id": channel_id,
            "author": author,
            "content": content,
            "timestamp": _iso(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "pinned": False,
            "type": 0,
            "flags": 0,
            "components": [],
            **extra,
        }
        if channel_id != "dm" and not channel_id.startswith("8"):
            msg["guild_id"] = GUILD
        return msg

    async def user_message(
        self, channel_id: str, author_id: int, content: str = "", *, attachments: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        msg = self._message(channel_id, user(author_id), content, attachments=attachments or [])
        await self.dispatch("MESSAGE_CREATE", msg)
        return msg

    def add_file(self, name: str, data: bytes, *, declared_size: int | None = None) -> dict[str, Any]:
        self.files[name] = data
        url = f"http://127.0.0.1:{self.port}/attachments/{name}"
        return {
            "id": self._id(),
            "filename": name,
            "size": declared_size if declared_size is not None else len(data),
            "url": url,
            "proxy_url": url,
            "content_type": "text/plain",
        }

    async def click(self, author_id: int, message: dict[str, Any], custom_id: str) -> str:
        iid = self._id()
        self._clicked[iid] = message["id"]
        await self.dispatch(
            "INTERACTION_CREATE",
            {
                "id": iid,
                "application_id": BOT["id"],
                "type": 3,
                "token": f"itoken{iid}",
                "version": 1,
                "data": {"custom_id": custom_id, "component_type": 2},
                "channel_id": message["channel_id"],
                "guild_id": GUILD,
                "member": {
                    "user": user(author_id),
                    "roles": [],
                    "joined_at": _iso(),
                    "deaf": False,
                    "mute": False,
                    "permissions": "68608",
                    "flags": 0,
                },
                "message": message,
                "app_permissions": "68608",
                "locale": "en-US",
                "guild_locale": "en-US",
                "entitlements": [],
                "authorizing_integration_owners": {},
                "context": 0,
                "attachment_size_limit": 26214400,
                "channel": {
                    "id": message["channel_id"],
                    "type": 0,
                    "guild_id": GUILD,
                    "name": "general",
                    "position": 0,
                    "permission_overwrites": [],
                    "nsfw": False,
                    "parent_id": None,
                },
            },
        )
        return iid

    def fail_next(self, route: str, retry_after: float = 0.0, times: int = 1, *, status: int = 429) -> None:
        """The next ``times`` calls of ``route`` fail: 429 with ``retry_after``, or ``status`` (a 5xx)."""
        self.failures.setdefault(route, []).extend([(status, retry_after)] * times)

    def texts(self, channel_id: str) -> list[str]:
        return [m["content"] for m in self.messages.values() if m["channel_id"] == channel_id and m["author"]["id"] == BOT["id"]]

    def sent(self, verb: str) -> list[dict[str, Any]]:
        return [body for v, _path, body in self.calls if v == verb]

    async def wait_for(self, predicate: Any, timeout: float = 10.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            await asyncio.sleep(0.02)
        raise AssertionError(f"condition not met within {timeout}s; calls: {[(v, p) for v, p, _ in self.calls][-12:]}")

    # -- REST -------------------------------------------------------------------

    def _authorized(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bot {TOKEN}"

    def _limited(self, route: str) -> Response | None:
        queued = self.failures.get(route)
        if queued:
            status, retry_after = queued.pop(0)
            self.calls.append((str(status), route, {}))
            if status != 429:
                return JSONResponse({"message": "Service unavailable", "code": 0}, status_code=status)
            return JSONResponse(
                {"message": "You are being rate limited.", "retry_after": retry_after, "global": False},
                status_code=429,
                headers={
                    "Retry-After": str(retry_after),
                    "X-RateLimit-Scope": "user",
                    "Via": "1.1 google",
                    "X-RateLimit-Limit": "5",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset-After": str(retry_after),
                    "X-RateLimit-Bucket": "fakebucket",
                },
            )
        return None

    async def _me(self, request: Request) -> Response:
        if not self._authorized(request):
            return JSONResponse({"message": "401: Unauthorized", "code": 0}, status_code=401)
        return JSONResponse(BOT)

    async def _application(self, request: Request) -> Response:
        return JSONResponse(
            {
                "id": BOT["id"],
                "name": "Oxios",
                "icon": None,
                "description": "",
                "bot_public": True,
                "bot_require_code_grant": False,
                "verify_key": "00",
                "flags": 0,
                "owner": user(1),
                "summary": "",
                "team": None,
            }
        )

    async def _gateway_bot(self, request: Request) -> Response:
        return JSONResponse(
            {
                "url": f"ws://127.0.0.1:{self.port}/gateway",
                "shards": 1,
                "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1},
            }
        )

    async def _get_channel(self, request: Request) -> Response:
        cid = request.path_params["cid"]
        if cid in self.missing_channels:
            return JSONResponse({"message": "Unknown Channel", "code": 10003}, status_code=404)
        return JSONResponse({"id": cid, "type": 1, "recipients": [user(1)], "last_message_id": None})

    async def _body(self, request: Request) -> tuple[dict[str, Any], dict[str, bytes]]:
        ctype = request.headers.get("content-type", "")
        if "multipart" in ctype:
            form = await request.form()
            files = {}
            payload: dict[str, Any] = {}
            for key, value in form.multi_items():
                if hasattr(value, "read"):
                    files[value.filename] = await value.read()
                elif key == "payload_json":
                    payload = json.loads(value)
            return payload, files
        raw = await request.body()
        return (json.loads(raw) if raw else {}), {}

    async def _create_message(self, request: Request) -> Response:
        if not self._authorized(request):
            return JSONResponse({"message": "401: Unauthorized", "code": 0}, status_code=401)
        cid = request.path_params["cid"]
        if cid in self.missing_channels:
            return JSONResponse({"message": "Unknown Channel", "code": 10003}, status_code=404)
        limited = self._limited("create_message")
        if limited is not None:
            return limited
        body, files = await self._body(request)
        self.calls.append(("POST", f"/channels/{cid}/messages", {**body, "files": files}))
        content = body.get("content") or ""
        if len(content) > 2000:
            return JSONResponse(
                {
                    "message": "Invalid Form Body",
                    "code": 50035,
                    "errors": {
                        "content": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."}]}
                    },
                },
                status_code=400,
            )
        attachments = [
            {"id": self._id(), "filename": n, "size": len(d), "url": "http://x/a", "proxy_url": "http://x/a"}
            for n, d in files.items()
        ]
        msg = self._message(cid, BOT, content, components=body.get("components") or [], attachments=attachments)
        self.messages[msg["id"]] = msg
        return JSONResponse(msg)

    async def _edit_message(self, request: Request) -> Response:
        mid = request.path_params["mid"]
        limited = self._limited("edit_message")
        if limited is not None:
            return limited
        body, _ = await self._body(request)
        self.calls.append(("PATCH", f"/channels/{request.path_params['cid']}/messages/{mid}", body))
        msg = self.messages.get(mid)
        if msg is None:
            return JSONResponse({"message": "Unknown Message", "code": 10008}, status_code=404)
        if len(body.get("content") or "") > 2000:
            return JSONResponse({"message": "Invalid Form Body", "code": 50035}, status_code=400)
        if "content" in body:
            msg["content"] = body["content"]
        if "components" in body:
            msg["components"] = body["components"]
        msg["edited_timestamp"] = _iso()
        return JSONResponse(msg)

    async def _interaction_callback(self, request: Request) -> Response:
        body, _ = await self._body(request)
        iid = request.path_params["iid"]
        self.calls.append(("CALLBACK", iid, body))
        resource: dict[str, Any] = {"type": body.get("type")}
        data = body.get("data") or {}
        if body.get("type") == 7:  # update the message the button is on
            target = self.messages.get(self._clicked.get(iid, ""))
            if target is not None:
                target.update({k: v for k, v in data.items() if k in ("content", "components")})
                resource["message"] = target
        return JSONResponse(
            {
                "interaction": {
                    "id": iid,
                    "type": 3,
                    "response_message_loading": False,
                    "response_message_ephemeral": bool(data.get("flags", 0) & 64),
                },
                "resource": resource,
            }
        )

    async def _unknown(self, request: Request) -> Response:
        self.calls.append(("404", f"{request.method} {request.url.path}", {}))
        return JSONResponse({"message": "404: Not Found", "code": 0}, status_code=404)

    async def _attachment(self, request: Request) -> Response:
        data = self.files.get(request.path_params["name"])
        return Response(data, media_type="application/octet-stream") if data is not None else Response(status_code=404)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
