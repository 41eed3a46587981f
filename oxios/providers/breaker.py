"""A circuit breaker per provider: closed -> open -> half-open -> closed.

Closed: calls pass; ``threshold`` consecutive failures open it. Open: calls
fail fast with :class:`BreakerOpenError` until ``cooldown`` seconds passed.
Half-open: exactly one probe call passes (others still fail fast); its
success closes the breaker, its failure opens it again for another cooldown.
The clock is injectable so tests drive transitions without sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

from .errors import BreakerOpenError

BreakerState = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    def __init__(
        self,
        provider: str,
        *,
        threshold: int = 5,
        cooldown: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[CircuitBreaker, str], None] | None = None,
    ) -> None:
        self.provider = provider
        self.threshold = threshold  # 0 or less disables the breaker
        self.cooldown = cooldown
        self.clock = clock
        self.on_change = on_change
        self.state: BreakerState = "closed"
        self.failures = 0  # consecutive
        self.opened_at = 0.0
        self.last_error = ""
        self._probe_in_flight = False

    # -- the call protocol: acquire() before, then success()/failure()/release() --

    def acquire(self) -> None:
        """Let a call through or raise :class:`BreakerOpenError` (fail fast)."""
        if self.threshold <= 0:
            return
        if self.state == "open":
            remaining = self.opened_at + self.cooldown - self.clock()
            if remaining > 0:
                raise BreakerOpenError(self.provider, remaining)
            self._set("half_open", "cool-down elapsed; probing")
        if self.state == "half_open":
            if self._probe_in_flight:
                raise BreakerOpenError(self.provider, 0.0)
            self._probe_in_flight = True

    def success(self) -> None:
        self._probe_in_flight = False
        self.failures = 0
        if self.state != "closed":
            self._set("closed", "probe succeeded")

    def failure(self, error: str = "") -> None:
        self._probe_in_flight = False
        self.failures += 1
        self.last_error = error
        if self.threshold <= 0:
            return
        if self.state == "half_open" or (self.state == "closed" and self.failures >= self.threshold):
            self.opened_at = self.clock()
            reason = "probe failed" if self.state == "half_open" else f"{self.failures} consecutive failures"
            self._set("open", reason)

    def release(self) -> None:
        """The call ended without a verdict (cancelled, or a caller error): free the probe slot."""
        self._probe_in_flight = False

    # -- reporting ----------------------------------------------------------

    def effective_state(self) -> BreakerState:
        """The state a call arriving now would see (an expired open breaker reads half_open)."""
        if self.state == "open" and self.clock() >= self.opened_at + self.cooldown:
            return "half_open"
        return self.state

    def status(self) -> dict[str, Any]:
        state = self.effective_state()
        out: dict[str, Any] = {"state": state, "consecutive_failures": self.failures, "threshold": self.threshold}
        if state == "open":
            out["retry_in_secs"] = round(max(self.opened_at + self.cooldown - self.clock(), 0.0), 1)
        if self.last_error:
            out["last_error"] = self.last_error
        return out

    def _set(self, state: BreakerState, reason: str) -> None:
        self.state = state
        if self.on_change is not None:
            self.on_change(self, reason)
