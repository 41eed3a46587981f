"""JSON conversations with the model for the protocol's thinking steps, each one metered.

Every call the protocol makes itself (classify, interview, seed writer, judge,
evolve) goes through a :class:`Meter`: admitted by the run's budget account
before it is sent (its ``max_tokens`` lowered to what is left), charged after,
and published as a ``token.usage`` event with its ``phase``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any

import msgspec

from oxios_hookspecs import Message, ModelRequest, Usage

from ..agent.context import estimate_request
from ..providers.errors import ProviderError

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


class Meter:
    """One protocol run's budget account (``account_id``), shared by the agents the run spawns.

    Without a ``budget`` service the calls are still published, never refused.
    """

    def __init__(self, kernel: Any, account_id: str, session_id: str | None = None) -> None:
        self.kernel = kernel
        self.account_id = account_id
        self.session_id = session_id

    def _model(self, model_ref: str) -> str:
        """The model id pricing knows (what the turn loop charges under too)."""
        try:
            return self.kernel.service("providers").resolve(model_ref)[1]
        except ProviderError:  # no provider: the call itself will fail with the how-to
            return model_ref

    def admit(self, request: ModelRequest) -> ModelRequest:
        """The request with ``max_tokens`` lowered to what the account has left; raises BudgetExceeded."""
        budget = self.kernel.services.get("budget")
        if budget is None:
            return request
        estimate = estimate_request(request.system, request.messages, request.tools)
        allowed = budget.admit(self.account_id, self._model(request.model), estimate, request.max_tokens)
        return msgspec.structs.replace(request, max_tokens=min(request.max_tokens, allowed))

    def charge(self, model_ref: str, usage: Usage, phase: str) -> float:
        """Record a finished call on the account and publish it; returns its cost in USD."""
        model = self._model(model_ref)
        budget = self.kernel.services.get("budget")
        cost = budget.record(self.account_id, model, usage) if budget is not None else 0.0
        self.kernel.publish(
            "token.usage",
            agent_id=None,
            account=self.account_id,
            session_id=self.session_id,
            phase=phase,
            model=model,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cost_usd=round(cost, 6),
        )
        return cost

    def forget(self) -> None:
        """The run is over: drop its in-memory account (its calls live on as ``token.usage`` events)."""
        budget = self.kernel.services.get("budget")
        if budget is not None:
            budget.forget(self.account_id)


async def ask_json(
    kernel: Any,
    system: str,
    prompt: str,
    *,
    validate: Callable[[Any], Any],
    model: str = "",
    meter: Meter | None = None,
    phase: str = "",
    max_tokens: int = 2048,
    attempts: int = 2,
) -> Any:
    """Ask for JSON; on a malformed reply ask again (``attempts`` in all), naming the problem; then give up.

    With a ``meter`` each attempt is admitted first (BudgetExceeded when the account cannot pay for it)
    and charged under ``phase`` after.
    """
    providers = kernel.service("providers")
    messages = [Message.user(prompt)]
    problem = ""
    for attempt in range(max(1, attempts)):
        request = ModelRequest(model=model, messages=messages, system=system, max_tokens=max_tokens)
        if meter is not None:
            request = meter.admit(request)
        response = await providers.complete(request)
        if meter is not None:
            meter.charge(model, response.usage, phase)
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
