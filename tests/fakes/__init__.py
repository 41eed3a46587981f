"""Wire-compatible fake LLM servers (OpenAI chat completions, Anthropic messages) for tests.

Fixtures (registered by tests/conftest.py): ``fake_openai`` and
``fake_anthropic`` yield a started server with ``.base_url``,
``.enqueue_text(text)``, ``.enqueue_tool_call(name, args, id=None)``,
``.enqueue_turn(text, [(name, args), ...])``, ``.enqueue_error(status,
retry_after=...)``, ``.enqueue_slow(delay, text)``, ``.requests`` (JSON
bodies) and ``.headers``; ``.config()`` gives kernel config overrides and
``.env()`` the same as OXIOS__ variables for ``oxios`` subprocesses. Both
accept any key unless built with ``api_key=...``. A request arriving with
no reply queued gets HTTP 400 and fails the test at teardown.
"""

from __future__ import annotations

from .anthropic_server import FakeAnthropic
from .openai_server import FakeOpenAI
from .server import ReplyScript, ScriptedReply

__all__ = ["FakeAnthropic", "FakeOpenAI", "ReplyScript", "ScriptedReply"]
