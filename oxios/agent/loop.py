"""The turn loop: think with the model, call tools, feed results back, until an answer.

One turn = one streamed model call. Text deltas go to ``on_token`` as they
arrive; tool calls are dispatched through policy (``dispatch``); the loop ends
on a reply without tool calls, at ``max_turns``, when the budget would be
passed, or when cancelled (every await is a cancellation point). Before each
call the history is compacted if it nears the model's window.

Each call offers only the tools the agent may use: the caller's tool list
(``tools=`` on fork/spawn) when there is one, narrowed to what the agent's
role (patterns, tiers, capabilities) and its persona's ``tools`` permit now
(service ``rbac``). A hidden tool the model names anyway still goes through
policy and is denied and audited there.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import msgspec

from oxios_hookspecs import (
    ActionContext,
    Message,
    ModelRequest,
    StopEvent,
    TextBlock,
    TextDelta,
    ToolCallEvent,
    ToolSpec,
    ToolUseBlock,
    Usage,
    UsageEvent,
)

from .budget import BudgetExceeded
from .context import SUMMARY_SYSTEM, compact, estimate_request
from .dispatch import dispatch_calls

log = logging.getLogger(__name__)

DEFAULT_MAX_OUTPUT = 4096

LoopStatus = Literal["completed", "max_turns", "budget_exceeded"]


class LoopResult(msgspec.Struct, kw_only=True):
    text: str
    status: LoopStatus = "completed"
    reason: str = ""
    turns: int = 0
    tool_calls: int = 0
    usage: Usage = msgspec.field(default_factory=Usage)
    cost_usd: float = 0.0
    model: str = ""
    compactions: int = 0
    messages: list[Message] = []


class TurnLoop:
    """One agent's conversation with its model. Build, then ``await run()``."""

    def __init__(
        self,
        kernel: Any,
        *,
        messages: list[Message],
        context: ActionContext,
        system: str = "",
        model: str = "",
        tools: list[str] | None = None,
        max_turns: int | None = None,
        on_token: Callable[[str], Awaitable[None]] | None = None,
        on_progress: Callable[[], None] | None = None,
        on_usage: Callable[[Usage, float], None] | None = None,
    ) -> None:
        self.kernel = kernel
        self.messages = list(messages)
        self.context = context
        self.system = system
        self.model_ref = model
        self.allowed = set(tools) if tools is not None else None
        self.max_turns = max_turns or kernel.config.kernel.max_turns
        self.on_token = on_token
        self.on_progress = on_progress or (lambda: None)
        self.on_usage = on_usage
        self.result = LoopResult(text="")

    async def run(self) -> LoopResult:
        providers = self.kernel.service("providers", "no LLM provider registry is running")
        budget = self.kernel.services.get("budget")
        provider, model = providers.resolve(self.model_ref)  # raises NoProviderError with the how-to
        info = providers.model_info(self.model_ref)
        window = info.context_window or 128_000
        res = self.result
        res.model = f"{getattr(provider, 'name', '')}/{model}".lstrip("/")
        wanted_output = min(DEFAULT_MAX_OUTPUT, max(256, window // 4))
        final_text = ""
        while True:
            if res.turns >= self.max_turns:
                res.status = "max_turns"
                res.reason = f"stopped after max_turns={self.max_turns} model turns without a final answer"
                break
            specs = self._offered_tools()
            self.messages = await self._compact(specs, window, wanted_output, model)
            estimate = estimate_request(self.system, self.messages, specs)
            max_tokens = wanted_output
            if budget is not None:
                try:
                    max_tokens = budget.admit(self.context.agent_id, model, estimate, wanted_output)
                except BudgetExceeded as err:
                    res.status = "budget_exceeded"
                    res.reason = str(err)
                    break
            request = ModelRequest(
                model=self.model_ref or model,
                messages=list(self.messages),
                system=self.system,
                tools=specs,
                max_tokens=max_tokens,
            )
            res.turns += 1
            text, calls, usage = await self._stream(providers, request)
            self._charge(budget, model, usage)
            content: list[Any] = [TextBlock(text=text)] if text else []
            content += [ToolUseBlock(id=c.id, name=c.name, input=c.arguments) for c in calls]
            if content:
                self.messages.append(Message(role="assistant", content=content))
            if not calls:
                final_text = text
                break
            res.tool_calls += len(calls)
            results = await dispatch_calls(self.kernel, calls, self.context, self.allowed, offered=[s.name for s in specs])
            self.on_progress()
            self.messages.append(Message(role="user", content=list(results)))
            if text:
                final_text = text
        res.text = final_text
        res.messages = self.messages
        return res

    def _offered_tools(self) -> list[ToolSpec]:
        """The caller's tool list narrowed to what role and persona permit; asked per request (both can change)."""
        specs = self.kernel.tools.specs(sorted(self.allowed) if self.allowed is not None else None)
        rbac = self.kernel.services.get("rbac")
        if rbac is None:  # no role service: offer everything; the rbac policy still judges each call
            return specs
        return rbac.offered_tools(self.context.agent_id, self.context.role, specs)

    async def _stream(self, providers: Any, request: ModelRequest) -> tuple[str, list[ToolCallEvent], Usage]:
        parts: list[str] = []
        calls: list[ToolCallEvent] = []
        usage = Usage()
        async for event in providers.stream(request):
            self.on_progress()
            if isinstance(event, TextDelta):
                parts.append(event.text)
                if self.on_token is not None and event.text:
                    await self.on_token(event.text)
            elif isinstance(event, ToolCallEvent):
                calls.append(event)
            elif isinstance(event, UsageEvent):
                usage = usage + event.usage
            elif isinstance(event, StopEvent):
                pass
        return "".join(parts), calls, usage

    def _charge(self, budget: Any, model: str, usage: Usage) -> float:
        cost = budget.record(self.context.agent_id, model, usage) if budget is not None else 0.0
        self.result.usage = self.result.usage + usage
        self.result.cost_usd += cost
        self.kernel.publish(
            "token.usage",
            agent_id=self.context.agent_id,
            session_id=self.context.session_id,
            model=model,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cost_usd=round(cost, 6),
        )
        if self.on_usage is not None:
            self.on_usage(usage, cost)
        return cost

    async def _compact(self, specs: list[Any], window: int, reserve: int, model: str) -> list[Message]:
        async def summarize(text: str) -> str:
            providers = self.kernel.service("providers")
            request = ModelRequest(
                model=self.model_ref or model, system=SUMMARY_SYSTEM, messages=[Message.user(text)], max_tokens=600
            )
            response = await providers.complete(request)
            self._charge(self.kernel.services.get("budget"), model, response.usage)
            return response.message.text

        messages, report = await compact(
            self.system, self.messages, specs, window=window, reserve_output=reserve, summarize=summarize
        )
        if report is not None:
            self.result.compactions += 1
            log.info("agent %s: context compacted %s", self.context.agent_id, report)
            self.kernel.publish("agent.compacted", agent_id=self.context.agent_id, **report)
        return messages
