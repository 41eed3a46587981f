"""A local server speaking OpenAI's chat-completions wire format (JSON and SSE streams).

    fake = FakeOpenAI(api_key="sk-test").start()
    fake.enqueue_tool_call("ls", {"path": "."}).enqueue_text("two files")
    client = openai.AsyncOpenAI(base_url=fake.base_url, api_key="sk-test")

Every stream chunk carries id/model/created (the SDK's ``.stream()`` helper
needs them); tool calls arrive as a first chunk with id and name, then the
arguments in pieces; usage comes in a final chunk when the request asks for
``stream_options.include_usage``. Errors use OpenAI's error body.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from .server import ReplyScript, ScriptedReply, ThreadedServer, estimate_tokens, split_text

ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 429: "rate_limit_exceeded", 500: "server_error"}


async def _json_or_none(request: Request) -> Any:
    try:
        return await request.json()
    except json.JSONDecodeError:
        return None


def error_response(status: int, message: str, retry_after: str | None = None) -> JSONResponse:
    headers = {"retry-after": retry_after} if retry_after is not None else {}
    body = {"error": {"message": message, "type": ERROR_TYPES.get(status, "server_error"), "param": None, "code": None}}
    return JSONResponse(body, status_code=status, headers=headers)


class FakeOpenAI(ReplyScript):
    kind = "openai"

    def __init__(self, *, api_key: str | None = None, models: list[str] | None = None) -> None:
        super().__init__("openai")
        self.api_key = api_key  # None: any key (or none) is accepted
        self.model_ids = models or ["fake-model"]
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self.chat_completions, methods=["POST"]),
                Route("/v1/models", self.list_models, methods=["GET"]),
            ]
        )
        self._server: ThreadedServer | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None, "call start() first"
        return f"http://127.0.0.1:{self._server.port}/v1"

    def start(self) -> FakeOpenAI:
        self._server = ThreadedServer(self.app)
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    def _authorized(self, request: Request) -> bool:
        return self.api_key is None or request.headers.get("authorization") == f"Bearer {self.api_key}"

    async def list_models(self, request: Request) -> Response:
        if not self._authorized(request):
            return error_response(401, "Incorrect API key provided.")
        return JSONResponse(
            {"object": "list", "data": [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in self.model_ids]}
        )

    async def chat_completions(self, request: Request) -> Response:
        if not self._authorized(request):
            self.record_rejected(await _json_or_none(request), {k.lower(): v for k, v in request.headers.items()})
            return error_response(401, "Incorrect API key provided.")
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return error_response(400, "body is not JSON")
        if not isinstance(body, dict) or not body.get("model") or not isinstance(body.get("messages"), list):
            return error_response(400, "model and messages are required")
        reply = self.next_reply(body, {k.lower(): v for k, v in request.headers.items()})
        if reply is None:
            return error_response(400, self.exhausted or "no scripted reply")
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.status != 200:
            return error_response(reply.status, reply.error_message, reply.retry_after)
        usage = self._usage(reply, body)
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return StreamingResponse(self._chunks(reply, body, usage if include_usage else None), media_type="text/event-stream")
        return JSONResponse(self._completion(reply, body, usage))

    @staticmethod
    def _usage(reply: ScriptedReply, body: dict[str, Any]) -> dict[str, int]:
        prompt, completion = reply.usage or (estimate_tokens(body["messages"]), estimate_tokens(reply.text or reply.tool_calls))
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    @staticmethod
    def _finish(reply: ScriptedReply) -> str:
        return reply.stop or ("tool_calls" if reply.tool_calls else "stop")

    def _completion(self, reply: ScriptedReply, body: dict[str, Any], usage: dict[str, int]) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
        if reply.tool_calls:
            message["tool_calls"] = [
                {"id": cid, "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}
                for name, args, cid in reply.tool_calls
            ]
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [{"index": 0, "message": message, "finish_reason": self._finish(reply), "logprobs": None}],
            "usage": usage,
        }

    async def _chunks(self, reply: ScriptedReply, body: dict[str, Any], usage: dict[str, int] | None) -> AsyncIterator[bytes]:
        base = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": body["model"],
        }

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            data = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}
            return f"data: {json.dumps(data)}\n\n".encode()

        if reply.stream_error:
            error = {"message": reply.error_message, "type": reply.stream_error, "param": None, "code": None}
            yield f"data: {json.dumps({'error': error})}\n\n".encode()
            return
        yield chunk({"role": "assistant", "content": ""})
        for piece in split_text(reply.text):
            yield chunk({"content": piece})
            await asyncio.sleep(0)
        if reply.abort_stream:
            return
        for index, (name, args, cid) in enumerate(reply.tool_calls):
            yield chunk(
                {"tool_calls": [{"index": index, "id": cid, "type": "function", "function": {"name": name, "arguments": ""}}]}
            )
            for piece in split_text(json.dumps(args), 2):
                yield chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
        yield chunk({}, self._finish(reply))
        if usage is not None:
            yield f"data: {json.dumps({**base, 'choices': [], 'usage': usage})}\n\n".encode()
        yield b"data: [DONE]\n\n"
