"""pytest fixtures for the fake LLM servers (imported by tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .anthropic_server import FakeAnthropic
from .openai_server import FakeOpenAI

FAKE_OPENAI_KEY = "sk-fake-openai-0123456789"
FAKE_ANTHROPIC_KEY = "sk-ant-fake-0123456789"


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    """A started fake OpenAI server that requires ``FAKE_OPENAI_KEY`` (``.config()`` sets it)."""
    server = FakeOpenAI(api_key=FAKE_OPENAI_KEY).start()
    try:
        yield server
    finally:
        server.stop()
    if server.exhausted:
        pytest.fail(server.exhausted)


@pytest.fixture
def fake_anthropic() -> Iterator[FakeAnthropic]:
    """A started fake Anthropic server that requires ``FAKE_ANTHROPIC_KEY`` (``.config()`` sets it)."""
    server = FakeAnthropic(api_key=FAKE_ANTHROPIC_KEY).start()
    try:
        yield server
    finally:
        server.stop()
    if server.exhausted:
        pytest.fail(server.exhausted)
