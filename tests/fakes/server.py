"""What the wire-compatible fake LLM servers share: the reply script and a threaded uvicorn.

The servers run real uvicorn on a free 127.0.0.1 port in a background
thread, so async tests, sync tests and ``oxios`` subprocesses can all reach
them. Replies are queued (``enqueue_text``, ``enqueue_tool_call`` ...) and
served in order; a request that finds the queue empty gets HTTP 400 with a
message saying so, and the fixture fails the test at teardown.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import uvicorn


@dataclass
class ScriptedReply:
    """One scripted answer of a fake server."""

    text: str = ""
    tool_calls: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)
    status: int = 200  # != 200: an error reply
    error_message: str = ""
    retry_after: str | None = None
    delay: float = 0.0  # seconds to wait before answering (timeouts)
    usage: tuple[int, int] | None = None  # (input, output) tokens
    stop: str | None = None  # wire stop/finish reason override ("length", "max_tokens" ...)
    abort_stream: bool = False  # streaming: send the text, then end without finishing
    stream_error: str = ""  # streaming: answer 200, then send an error event of this type


class ReplyScript:
    """The queue of replies and the record of requests. Thread-safe enough for one test."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._queue: deque[ScriptedReply] = deque()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.requests: list[dict[str, Any]] = []  # JSON bodies, in order
        self.headers: list[dict[str, str]] = []  # request headers, in order (lower-case names)
        self.exhausted: str | None = None

    # -- scripting ------------------------------------------------------------------

    def enqueue(self, reply: ScriptedReply) -> ReplyScript:
        with self._lock:
            self._queue.append(reply)
        return self

    def enqueue_text(
        self, text: str, *, usage: tuple[int, int] | None = None, delay: float = 0.0, stop: str | None = None
    ) -> ReplyScript:
        return self.enqueue(ScriptedReply(text=text, usage=usage, delay=delay, stop=stop))

    def enqueue_tool_call(
        self, name: str, args: dict[str, Any] | None = None, id: str | None = None, *, text: str = ""
    ) -> ReplyScript:
        return self.enqueue_turn(text, [(name, args or {}, id or self.new_id())])

    def enqueue_turn(
        self, text: str = "", tool_calls: list[tuple[Any, ...]] = (), *, usage: tuple[int, int] | None = None
    ) -> ReplyScript:  # type: ignore[assignment]
        calls = [(c[0], dict(c[1]), c[2] if len(c) > 2 else self.new_id()) for c in tool_calls]
        return self.enqueue(ScriptedReply(text=text, tool_calls=calls, usage=usage))

    def enqueue_error(
        self, status: int, message: str = "", *, retry_after: str | float | None = None, times: int = 1
    ) -> ReplyScript:
        for _ in range(times):
            self.enqueue(
                ScriptedReply(
                    status=status,
                    error_message=message or f"scripted HTTP {status}",
                    retry_after=None if retry_after is None else str(retry_after),
                )
            )
        return self

    def enqueue_slow(self, delay: float, text: str = "late") -> ReplyScript:
        return self.enqueue_text(text, delay=delay)

    def enqueue_abort(self, text: str = "partial") -> ReplyScript:
        """Streaming only: send ``text`` then end the stream without a finish."""
        return self.enqueue(ScriptedReply(text=text, abort_stream=True))

    def enqueue_stream_error(self, error_type: str = "overloaded_error", message: str = "Overloaded") -> ReplyScript:
        """Streaming only: HTTP 200, then an error event (as servers do when they fail mid-stream)."""
        return self.enqueue(ScriptedReply(stream_error=error_type, error_message=message))

    @property
    def remaining(self) -> int:
        return len(self._queue)

    @property
    def last(self) -> dict[str, Any]:
        return self.requests[-1]

    # -- pointing Oxios at the fake ----------------------------------------------------

    kind = ""
    default_model = "fake-model"
    api_key: str | None = None

    @property
    def base_url(self) -> str:  # overridden by each server
        raise NotImplementedError

    def config(self, name: str = "fake", **settings: Any) -> dict[str, Any]:
        """Config overrides making this fake the default provider ``name`` (for kernel factories)."""
        entry = {
            "kind": self.kind,
            "base_url": self.base_url,
            "api_key": self.api_key or "sk-fake-key",
            "default_model": self.default_model,
        }
        entry.update(settings)
        return {
            "providers": {name: entry},
            "kernel": {"default_provider": name, "default_model": entry["default_model"]},
            "llm": {"retry_base_delay_secs": 0.01},
            "orchestrator": {"default_mode": "chat"},  # no routing call unless a test asks ("#spec" still forces it)
        }

    def env(self, name: str = "fake", **settings: Any) -> dict[str, str]:
        """The same as OXIOS__ environment variables, for ``oxios`` subprocesses."""
        out: dict[str, str] = {}
        for section, values in self.config(name, **settings).items():
            for key, value in values.items():
                if isinstance(value, dict):
                    out.update({f"OXIOS__{section}__{key}__{k}".upper(): str(v) for k, v in value.items()})
                else:
                    out[f"OXIOS__{section}__{key}".upper()] = str(value)
        return out

    def new_id(self) -> str:
        return f"call_{self.name}_{next(self._ids)}"

    # -- serving --------------------------------------------------------------------

    def record_rejected(self, body: Any, headers: dict[str, str]) -> None:
        """A request refused before scripting (bad key): recorded, no reply consumed."""
        with self._lock:
            self.requests.append(body if isinstance(body, dict) else {})
            self.headers.append(headers)

    def next_reply(self, body: dict[str, Any], headers: dict[str, str]) -> ScriptedReply | None:
        with self._lock:
            self.requests.append(body)
            self.headers.append(headers)
            if not self._queue:
                self.exhausted = f"fake {self.name} server: request #{len(self.requests)} arrived with no scripted reply queued"
                return None
            return self._queue.popleft()


def estimate_tokens(value: Any) -> int:
    text = value if isinstance(value, str) else json.dumps(value)
    return max(1, len(text) // 4)


def split_text(text: str, parts: int = 3) -> list[str]:
    """The text in a few pieces, as a real stream delivers it."""
    if not text:
        return []
    step = max(1, -(-len(text) // parts))
    return [text[i : i + step] for i in range(0, len(text), step)]


class ThreadedServer:
    """A real uvicorn serving ``app`` on a free 127.0.0.1 port in a daemon thread."""

    def __init__(self, app: Any) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False, timeout_graceful_shutdown=1)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, name=f"fake-llm-{self.port}", daemon=True)

    def _run(self) -> None:
        asyncio.run(self.server.serve(sockets=[self.sock]))

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("fake LLM server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()
