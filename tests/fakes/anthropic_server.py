"""A local server speaking Anthropic's Messages API wire format (JSON and SSE streams).

    fake = FakeAnthropic(api_key="sk-ant-test").start()
    fake.enqueue_tool_call("ls", {"path": "."}).enqueue_text("two files")
    client = anthropic.AsyncAnthropic(base_url=fake.base_url, api_key="sk-ant-test")

Streams carry ``event:`` lines (the SDK dispatches on them): message_start,
content_block_start/delta/stop (text_delta, input_json_delta), ping,
message_delta (stop_reason, output usage) and message_stop. The key is
accepted as ``x-api-key`` or ``Authorization: Bearer``.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from .server import ReplyScript, ScriptedReply, ThreadedServer, estimate_tokens, split_text

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


async def _json_or_none(request: Request) -> Any:
    try:
        return await request.json()
    except json.JSONDecodeError:
        return None


def error_response(status: int, message: str, retry_after: str | None = None) -> JSONResponse:
    headers = {"retry-after": retry_after} if retry_after is not None else {}
    body = {"type": "error", "error": {"type": ERROR_TYPES.get(status, "api_error"), "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


def sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


class FakeAnthropic(ReplyScript):
    kind = "anthropic"

    def __init__(self, *, api_key: str | None = None) -> None:
        super().__init__("anthropic")
        self.api_key = api_key  # None: any key is accepted
        self.app = Starlette(routes=[Route("/v1/messages", self.messages, methods=["POST"])])
        self._server: ThreadedServer | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None, "call start() first"
        return f"http://127.0.0.1:{self._server.port}"

    def start(self) -> FakeAnthropic:
        self._server = ThreadedServer(self.app)
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    def _authorized(self, request: Request) -> bool:
        if self.api_key is None:
            return True
        bearer = request.headers.get("authorization", "")
        return request.headers.get("x-api-key") == self.api_key or bearer == f"Bearer {self.api_key}"

    async def messages(self, request: Request) -> Response:
        if not self._authorized(request):
            self.record_rejected(await _json_or_none(request), {k.lower(): v for k, v in request.headers.items()})
            return error_response(401, "invalid x-api-key")
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return error_response(400, "body is not JSON")
        problem = self._validate(body)
        if problem:
            return error_response(400, problem)
        reply = self.next_reply(body, {k.lower(): v for k, v in request.headers.items()})
        if reply is None:
            return error_response(400, self.exhausted or "no scripted reply")
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.status != 200:
            return error_response(reply.status, reply.error_message, reply.retry_after)
        usage = reply.usage or (
            estimate_tokens([body.get("system", ""), body["messages"]]),
            estimate_tokens(reply.text or reply.tool_calls),
        )
        if body.get("stream"):
            return StreamingResponse(self._events(reply, body, usage), media_type="text/event-stream")
        return JSONResponse(self._message(reply, body, usage))

    @staticmethod
    def _validate(body: Any) -> str:
        """The checks the real API makes that a client bug would trip."""
        if not isinstance(body, dict) or not body.get("model") or not isinstance(body.get("messages"), list):
            return "model and messages are required"
        if not isinstance(body.get("max_tokens"), int):
            return "max_tokens: Field required"
        for i, message in enumerate(body["messages"]):
            if message.get("role") not in ("user", "assistant"):
                return f"messages.{i}.role: must be user or assistant (system goes in the top-level system field)"
            content = message.get("content")
            if not content:
                return f"messages.{i}: all messages must have non-empty content"
        return ""

    @staticmethod
    def _stop(reply: ScriptedReply) -> str:
        return reply.stop or ("tool_use" if reply.tool_calls else "end_turn")

    def _message(self, reply: ScriptedReply, body: dict[str, Any], usage: tuple[int, int]) -> dict[str, Any]:
        content: list[dict[str, Any]] = [{"type": "text", "text": reply.text}] if reply.text else []
        content += [{"type": "tool_use", "id": cid, "name": name, "input": args} for name, args, cid in reply.tool_calls]
        return {
            "id": f"msg_{uuid.uuid4().hex[:16]}",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": content,
            "stop_reason": self._stop(reply),
            "stop_sequence": None,
            "usage": {"input_tokens": usage[0], "output_tokens": usage[1]},
        }

    async def _events(self, reply: ScriptedReply, body: dict[str, Any], usage: tuple[int, int]) -> AsyncIterator[bytes]:
        start = self._message(ScriptedReply(), body, (usage[0], 1))
        start.update(content=[], stop_reason=None)
        yield sse("message_start", {"type": "message_start", "message": start})
        yield sse("ping", {"type": "ping"})
        if reply.stream_error:
            yield sse("error", {"type": "error", "error": {"type": reply.stream_error, "message": reply.error_message}})
            return
        index = 0
        if reply.text:
            yield sse(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}},
            )
            for piece in split_text(reply.text):
                yield sse(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": piece}},
                )
                await asyncio.sleep(0)
            if reply.abort_stream:
                return
            yield sse("content_block_stop", {"type": "content_block_stop", "index": index})
            index += 1
        for name, args, cid in reply.tool_calls:
            block = {"type": "tool_use", "id": cid, "name": name, "input": {}}
            yield sse("content_block_start", {"type": "content_block_start", "index": index, "content_block": block})
            for piece in split_text(json.dumps(args), 2):
                delta = {"type": "input_json_delta", "partial_json": piece}
                yield sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
            yield sse("content_block_stop", {"type": "content_block_stop", "index": index})
            index += 1
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": self._stop(reply), "stop_sequence": None},
            "usage": {"output_tokens": usage[1]},
        }
        yield sse("message_delta", delta)
        yield sse("message_stop", {"type": "message_stop"})
