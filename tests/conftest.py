"""Host test helpers. The fixtures themselves live in oxios.testing (a pytest plugin)."""

from __future__ import annotations

import os
import shutil

import pytest
from fakes.fixtures import fake_anthropic, fake_openai  # noqa: F401  (wire-compatible fake LLM servers)


def require_binary(name: str) -> str:
    """Path of a system binary; in CI (CI=true) a missing one fails, elsewhere it skips."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is required in CI but is not installed (scripts/install.sh --dev installs it)")
        pytest.skip(f"{name} is not installed")
    return path
