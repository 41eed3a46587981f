"""JSON conversations with the model for the protocol's thinking steps."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any

from oxios_hookspecs import Message, ModelRequest, Usage

log = logging.getLogger(__name__)


class JsonReplyError(ValueError):
    """The model did not produce usable JSON, even after a corrective retry."""


def extract_json(text: str) -> Any:
    """The first JSON object in ``text`` (fenced or bare)."""
    fenced = re.search(r"```(?:json)?\s*(\{.*?\})\s*```", text, re.S)
    candidate = fenced.group(1) if fenced else text[text.find("{") : text.rfind("}") + 1]
    if not candidate:
        raise ValueError("no JSON object in the reply")
    return json.loads(candidate)


async def ask_json(
    kernel: Any,
    system: str,
    prompt: str,
    *,
    validate: Callable[[Any], Any],
    model: str = "",
    usage: list[Usage] | None = None,
    max_tokens: int = 2048,
) -> Any:
    """Ask for JSON; on a malformed reply ask once more, naming the problem; then give up."""
    providers = kernel.service("providers")
    messages = [Message.user(prompt)]
    problem = ""
    for attempt in range(2):
        response = await providers.complete(ModelRequest(model=model, messages=messages, system=system, max_tokens=max_tokens))
        if usage is not None:
            usage.append(response.usage)
        text = response.message.text
        try:
            return validate(extract_json(text))
        except (ValueError, KeyError, TypeError) as err:
            problem = str(err)
            log.info("ouroboros: malformed JSON from the model (attempt %d): %s", attempt + 1, problem)
            messages = [
                *messages,
                Message.assistant(text or "(empty)"),
                Message.user(f"That reply was not usable: {problem}. Answer again with only the JSON object."),
            ]
    raise JsonReplyError(problem)
