"""Prometheus metrics for ``GET /api/metrics``, in the app's own registry.

HTTP figures come from the API middleware; agent, token, tool, denial and
circuit-breaker figures come from kernel events (a bus listener) and, at
scrape time, from the services' ``status()``.
"""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

log = logging.getLogger("oxios.web.metrics")

BREAKER_STATES = {"closed": 0, "half_open": 1, "half-open": 1, "open": 2}
DENIAL_EVENTS = {"tool.denied", "policy.denied", "action.denied", "exec.denied", "approval.rejected", "ssrf.blocked"}


class WebMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "oxios_http_requests", "HTTP and WebSocket requests to the API", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "oxios_http_request_duration_seconds",
            "Time to answer an API request (streams: their life)",
            ["method", "route"],
            registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
        )
        self.denials = Counter("oxios_denials", "Refused requests and actions", ["reason"], registry=r)
        self.agent_events = Counter("oxios_agent_events", "Agent lifecycle events", ["event"], registry=r)
        self.agents_active = Gauge("oxios_agents_active", "Agents queued or running now", registry=r)
        self.tokens = Counter("oxios_llm_tokens", "LLM tokens used", ["direction"], registry=r)
        self.tool_calls = Counter("oxios_tool_calls", "Tool calls finished", ["tool", "status"], registry=r)
        self.breaker = Gauge(
            "oxios_circuit_breaker_state", "Provider circuit breaker: 0 closed, 1 half-open, 2 open", ["provider"], registry=r
        )
        self.events = Counter("oxios_events", "Kernel events seen, by type", ["type"], registry=r)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method=method, route=route, status=str(status)).inc()
        self.latency.labels(method=method, route=route).observe(seconds)

    def on_event(self, event: Any) -> None:
        """A bus listener: quick, never raises."""
        try:
            self._count(event.type, event.data or {})
        except Exception:  # a metric must never disturb the publisher
            log.exception("metrics: could not count %s", event.type)

    def _count(self, kind: str, data: dict[str, Any]) -> None:
        self.events.labels(type=kind).inc()
        if kind.startswith("agent."):
            self.agent_events.labels(event=kind.split(".", 1)[1]).inc()
        if kind in ("tool.finished", "tool.completed"):
            failed = bool(data.get("is_error")) or data.get("ok") is False or data.get("status") in ("error", "denied")
            self.tool_calls.labels(
                tool=str(data.get("tool") or data.get("name") or "?"), status="error" if failed else "ok"
            ).inc()
        if kind in DENIAL_EVENTS or (kind == "tool.finished" and data.get("status") == "denied"):
            self.denials.labels(reason="policy").inc()
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else None
        if kind in ("token.usage", "llm.usage", "provider.usage") or (usage and kind == "agent.turn"):
            source = usage or data
            self.tokens.labels(direction="input").inc(max(0, int(source.get("input_tokens") or 0)))
            self.tokens.labels(direction="output").inc(max(0, int(source.get("output_tokens") or 0)))
        if kind.startswith(("breaker.", "provider.breaker", "circuit.")):
            state = str(data.get("state") or kind.rsplit(".", 1)[-1]).lower()
            provider = str(data.get("provider") or data.get("name") or "?")
            if state in BREAKER_STATES:
                self.breaker.labels(provider=provider).set(BREAKER_STATES[state])

    def refresh(self, kernel: Any) -> None:
        """Figures read from the services at scrape time."""
        agents = kernel.services.get("agents")
        if agents is not None:
            try:
                self.agents_active.set(sum(1 for a in agents.list() if _field(a, "status") in ("queued", "running")))
            except Exception:
                log.exception("metrics: agents.list failed")
        providers = kernel.services.get("providers")
        if providers is not None and callable(getattr(providers, "status", None)):
            try:
                for name, entry in (providers.status().get("providers") or {}).items():
                    state = str((entry.get("breaker") or {}).get("state", "")).lower()
                    if state in BREAKER_STATES:
                        self.breaker.labels(provider=name).set(BREAKER_STATES[state])
            except Exception:
                log.exception("metrics: providers.status failed")


def _field(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
