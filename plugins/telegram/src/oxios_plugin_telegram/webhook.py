"""POST /webhook/telegram: Telegram's webhook calls, served by the web plugin (webhook mode)."""

from __future__ import annotations

import json
from typing import Any

MAX_UPDATE_BYTES = 1024 * 1024
PATH = "/webhook/telegram"
SECRET_HEADER = "x-telegram-bot-api-secret-token"


def webhook_route(kernel: Any) -> Any:
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    async def endpoint(request: Request) -> Response:
        channel = kernel.channels.get("telegram")
        if channel is None or channel.settings.mode != "webhook":
            return JSONResponse({"error": "the telegram channel is not in webhook mode"}, status_code=404)
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_UPDATE_BYTES:
                return JSONResponse({"error": "update too large"}, status_code=413)
        try:
            update = json.loads(body)
        except ValueError:
            return JSONResponse({"error": "malformed JSON"}, status_code=400)
        if not isinstance(update, dict) or not await channel.receive_webhook(request.headers.get(SECRET_HEADER, ""), update):
            return JSONResponse({"error": "unknown or missing secret token"}, status_code=403)
        return JSONResponse({"ok": True})

    return Route(PATH, endpoint, methods=["POST"])
