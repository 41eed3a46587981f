"""Per-agent token and cost budgets, enforced before every model call.

Limits come from ``[budget]`` (defaults for every agent) or are set per agent
(``set``, persisted in state). Before a call the turn loop asks ``admit``:
a call whose estimated input alone would pass a limit is refused, and the
call's ``max_tokens`` is lowered so its output cannot pass it either. Prices
are ``[budget.pricing] model = [input_usd_per_mtok, output_usd_per_mtok]``,
else what the provider says about the model, else free.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from oxios_hookspecs import Usage

KV_NAMESPACE = "budget"


class BudgetExceeded(ValueError):
    """A run would pass its token or cost limit; the message says which and by how much."""


class Account(msgspec.Struct, kw_only=True):
    agent_id: str
    max_tokens: int = 0  # 0 = unlimited
    max_cost_usd: float = 0.0
    used_tokens: int = 0
    used_cost_usd: float = 0.0
    reserved_tokens: int = 0
    reserved_cost_usd: float = 0.0
    updated: float = msgspec.field(default_factory=time.time)

    def remaining_tokens(self) -> int | None:
        if self.max_tokens <= 0:
            return None
        return self.max_tokens - self.used_tokens - self.reserved_tokens

    def remaining_cost(self) -> float | None:
        if self.max_cost_usd <= 0:
            return None
        return self.max_cost_usd - self.used_cost_usd - self.reserved_cost_usd

    def as_dict(self) -> dict[str, Any]:
        out = msgspec.to_builtins(self)
        out["remaining_tokens"] = self.remaining_tokens()
        rc = self.remaining_cost()
        out["remaining_cost_usd"] = round(rc, 6) if rc is not None else None
        return out


class Budget:
    """Service ``budget``: get/set/reserve/release/reset/share, plus what the turn loop uses."""

    def __init__(self, kernel: Any) -> None:
        self.kernel = kernel
        self._accounts: dict[str, Account] = {}

    @property
    def config(self) -> Any:
        """``[budget]`` as the kernel runs it now, so a config reload changes pricing and default limits live."""
        return self.kernel.config.budget

    # -- pricing -----------------------------------------------------------------

    def prices(self, model: str) -> tuple[float, float]:
        """(input, output) USD per million tokens for ``model`` ("provider/model" or bare)."""
        pricing = self.config.pricing
        for key in (model, model.rpartition("/")[2]):
            if key in pricing and len(pricing[key]) >= 2:
                return float(pricing[key][0]), float(pricing[key][1])
        providers = self.kernel.services.get("providers")
        if providers is not None:
            try:
                info = providers.model_info(model)
                return float(info.input_price_per_mtok), float(info.output_price_per_mtok)
            except Exception:
                pass
        return 0.0, 0.0

    def cost(self, model: str, usage: Usage) -> float:
        pin, pout = self.prices(model)
        return (usage.input_tokens * pin + usage.output_tokens * pout) / 1_000_000

    # -- accounts ------------------------------------------------------------------

    def _account(self, agent_id: str) -> Account:
        account = self._accounts.get(agent_id)
        if account is None:
            stored = self.kernel.state.kv_get(KV_NAMESPACE, agent_id) if agent_id else None
            default = self.kernel.state.kv_get(KV_NAMESPACE, "default") or {}
            limits = stored or default
            account = Account(
                agent_id=agent_id,
                max_tokens=int(limits.get("max_tokens", self.config.default_max_tokens)),
                max_cost_usd=float(limits.get("max_cost_usd", self.config.default_max_cost_usd)),
            )
            self._accounts[agent_id] = account
        return account

    def get(self, agent_id: str) -> dict[str, Any]:
        return self._account(agent_id).as_dict()

    def list(self) -> list[dict[str, Any]]:
        return [a.as_dict() for a in self._distinct()]

    def _distinct(self) -> list[Account]:
        """Each account once (agents that :meth:`share` one map to the same object)."""
        return list({id(a): a for a in self._accounts.values()}.values())

    def share(self, agent_id: str, account_id: str) -> dict[str, Any]:
        """Charge ``agent_id``'s calls to ``account_id``'s account: several agents, one budget (a protocol run).

        Call it before the agent's first model call; :meth:`forget` on the agent ends the sharing.
        """
        account = self._account(account_id)
        self._accounts[agent_id] = account
        return account.as_dict()

    def set(self, agent_id: str, *, max_tokens: int | None = None, max_cost_usd: float | None = None) -> dict[str, Any]:
        """Set limits for one agent, or for every new agent with ``agent_id="default"`` (persisted)."""
        if (max_tokens is not None and max_tokens < 0) or (max_cost_usd is not None and max_cost_usd < 0):
            raise ValueError("budget limits must be >= 0 (0 means unlimited)")
        stored = dict(self.kernel.state.kv_get(KV_NAMESPACE, agent_id) or {})
        if max_tokens is not None:
            stored["max_tokens"] = int(max_tokens)
        if max_cost_usd is not None:
            stored["max_cost_usd"] = float(max_cost_usd)
        self.kernel.state.kv_set(KV_NAMESPACE, agent_id, stored)
        account = self._account(agent_id)
        account.max_tokens = int(stored.get("max_tokens", account.max_tokens))
        account.max_cost_usd = float(stored.get("max_cost_usd", account.max_cost_usd))
        account.updated = time.time()
        return account.as_dict()

    def has_limits(self, agent_id: str) -> bool:
        """Whether :meth:`set` gave this agent (or ``"default"``) a limit that is still in force (not 0)."""
        stored = self.kernel.state.kv_get(KV_NAMESPACE, agent_id) or {}
        return bool(stored.get("max_tokens") or stored.get("max_cost_usd"))

    def reserve(self, agent_id: str, *, tokens: int = 0, cost_usd: float = 0.0) -> dict[str, Any]:
        """Hold budget for work about to happen; raises :class:`BudgetExceeded` when it does not fit."""
        account = self._account(agent_id)
        rt, rc = account.remaining_tokens(), account.remaining_cost()
        if rt is not None and tokens > rt:
            raise BudgetExceeded(
                f"agent {agent_id}: reserving {tokens} tokens exceeds the remaining {max(rt, 0)} of {account.max_tokens}"
            )
        if rc is not None and cost_usd > rc:
            raise BudgetExceeded(
                f"agent {agent_id}: reserving ${cost_usd:.4f} exceeds the remaining ${max(rc, 0):.4f} of ${account.max_cost_usd:.4f}"
            )
        account.reserved_tokens += tokens
        account.reserved_cost_usd += cost_usd
        return account.as_dict()

    def release(self, agent_id: str, *, tokens: int = 0, cost_usd: float = 0.0) -> dict[str, Any]:
        account = self._account(agent_id)
        account.reserved_tokens = max(0, account.reserved_tokens - tokens)
        account.reserved_cost_usd = max(0.0, account.reserved_cost_usd - cost_usd)
        return account.as_dict()

    def reset(self, agent_id: str) -> dict[str, Any]:
        account = self._account(agent_id)
        account.used_tokens = account.reserved_tokens = 0
        account.used_cost_usd = account.reserved_cost_usd = 0.0
        account.updated = time.time()
        return account.as_dict()

    # -- what the turn loop uses -----------------------------------------------------

    def admit(self, agent_id: str, model: str, estimated_input: int, wanted_output: int) -> int:
        """Check a model call before it happens; return the max output tokens it may use."""
        account = self._account(agent_id)
        pin, pout = self.prices(model)
        allowed = wanted_output
        rt = account.remaining_tokens()
        if rt is not None:
            if estimated_input + 1 > rt:
                raise BudgetExceeded(
                    f"token budget exhausted: this call needs about {estimated_input} input tokens but only "
                    f"{max(rt, 0)} of {account.max_tokens} remain (used {account.used_tokens})"
                )
            allowed = min(allowed, rt - estimated_input)
        rc = account.remaining_cost()
        if rc is not None:
            input_cost = estimated_input * pin / 1_000_000
            if input_cost >= rc:
                raise BudgetExceeded(
                    f"cost budget exhausted: this call costs about ${input_cost:.4f} for input alone but only "
                    f"${max(rc, 0):.4f} of ${account.max_cost_usd:.4f} remain (spent ${account.used_cost_usd:.4f})"
                )
            if pout > 0:
                allowed = min(allowed, int((rc - input_cost) * 1_000_000 / pout))
        if allowed < 1:
            raise BudgetExceeded(f"budget exhausted: no output tokens left for agent {agent_id}")
        return allowed

    def record(self, agent_id: str, model: str, usage: Usage) -> float:
        """Charge a finished call; returns its cost in USD."""
        account = self._account(agent_id)
        cost = self.cost(model, usage)
        account.used_tokens += usage.input_tokens + usage.output_tokens
        account.used_cost_usd += cost
        account.updated = time.time()
        return cost

    def forget(self, agent_id: str) -> None:
        """Drop an ended agent's in-memory account (its totals live on in the agent record).

        For an agent that shared another account this only ends the sharing."""
        self._accounts.pop(agent_id, None)

    def status(self) -> dict[str, Any]:
        return {
            "healthy": True,
            "detail": None,
            "accounts": len(self._distinct()),
            "default_max_tokens": self.config.default_max_tokens,
            "default_max_cost_usd": self.config.default_max_cost_usd,
        }


def start(kernel: Any) -> Budget:
    budget = Budget(kernel)
    kernel.expose("budget.get", budget.get)
    kernel.expose("budget.list", budget.list)
    kernel.expose("budget.set", budget.set)
    kernel.expose("budget.reserve", budget.reserve)
    kernel.expose("budget.reset", budget.reset)
    return budget
