"""The policy engine: every registered policy votes; deny beats ask beats allow.

With no vote at all, exec and network actions are denied and everything else
is allowed (read-only tools inside the workspace): Oxios fails closed where
it matters.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec

from oxios_hookspecs import Action, ActionContext, Decision

from ..logs import redact
from ..plugins import resolve_within

log = logging.getLogger(__name__)

_RANK = {"allow": 0, "ask": 1, "deny": 2}


class Verdict(msgspec.Struct, kw_only=True):
    """The combined result: the winning verdict, its reason, and every vote."""

    verdict: str
    reason: str
    policy: str
    votes: list[Decision] = []

    @property
    def allowed(self) -> bool:
        return self.verdict == "allow"


def default_decision(action: Action) -> Decision:
    if action.kind in ("exec", "url") or action.tier in ("exec", "network"):
        return Decision(verdict="deny", reason="no policy allowed this action (exec and network fail closed)", policy="default")
    return Decision(verdict="allow", reason="no policy objected", policy="default")


def combine(votes: list[Decision], action: Action) -> Verdict:
    if not votes:
        d = default_decision(action)
        return Verdict(verdict=d.verdict, reason=d.reason, policy=d.policy, votes=[])
    winner = max(votes, key=lambda d: _RANK.get(d.verdict, 2))
    return Verdict(verdict=winner.verdict, reason=winner.reason, policy=winner.policy, votes=votes)


async def collect_votes(kernel: Any, action: Action, context: ActionContext) -> list[Decision]:
    votes: list[Decision] = []
    timeout = kernel.config.security.policy_timeout_secs
    for impl in kernel.plugins.implementations("check_action"):
        name = kernel.plugins.plugin_of(impl.plugin)
        try:
            result = await resolve_within(kernel.plugins.call_impl(impl, "check_action", action=action, context=context), timeout)
        except TimeoutError:
            # A policy that hangs votes deny: silence must not open the boundary, nor hold every action forever.
            log.error("policy %s did not answer within %gs on %s; counted as deny", name, timeout, action.describe())
            result = Decision(verdict="deny", reason=f"policy {name} did not answer within {timeout:g}s", policy=name)
        except Exception as err:
            # A policy that crashes votes deny: a bug must never open the boundary.
            log.exception("policy %s failed", name)
            result = Decision(verdict="deny", reason=f"policy {name} failed: {err}", policy=name)
        for decision in result if isinstance(result, list) else [result]:
            if decision is None:
                continue
            if not isinstance(decision, Decision) or decision.verdict not in _RANK:
                # Not a vote this engine understands: counted as deny, never as silence (fail closed).
                log.error("policy %s returned %r, not a Decision with verdict allow, ask or deny", name, decision)
                decision = Decision(
                    verdict="deny", reason=f"policy {name} returned an invalid vote: {decision!r:.200}", policy=name
                )
            if not decision.policy:
                decision = msgspec.structs.replace(decision, policy=name)
            votes.append(decision)
    return votes


async def evaluate(kernel: Any, action: Action, context: ActionContext) -> Verdict:
    return combine(await collect_votes(kernel, action, context), action)


async def decide(kernel: Any, action: Action, context: ActionContext) -> Verdict:
    """Evaluate and audit: every decision the kernel facade makes lands in the audit chain."""
    verdict = await evaluate(kernel, action, context)
    audit = kernel.services.get("audit")
    if audit is not None:
        try:
            audit.append(
                context.agent_id or "system",
                f"policy.{action.kind}",
                action.describe(),
                verdict.allowed,
                verdict.reason,
                {
                    "verdict": verdict.verdict,
                    "policy": verdict.policy,
                    "role": context.role,
                    "session": context.session_id,
                    "tool": action.tool,
                    "votes": [msgspec.to_builtins(v) for v in verdict.votes],
                },
            )
        except Exception:
            # An audit failure must not open the boundary: it turns the decision into a deny.
            log.exception("audit append failed")
            return Verdict(verdict="deny", reason="the decision could not be audited", policy="audit", votes=verdict.votes)
    if verdict.verdict == "deny":
        kernel.publish(
            "policy.denied",
            agent_id=context.agent_id,
            session_id=context.session_id,
            kind=action.kind,
            tool=action.tool,
            what=redact(action.describe()),
            policy=verdict.policy,
            reason=redact(verdict.reason),
        )
    return verdict
