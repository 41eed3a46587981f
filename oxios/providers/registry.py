"""The "providers" service: named providers, model resolution, retries, breakers, fallbacks.

Callers (the turn loop, Ouroboros, memory consolidation ...) never call a
provider directly; they call :meth:`ProviderRegistry.stream` or
:meth:`ProviderRegistry.complete`, which pick the provider for the request's
model, retry transient failures with exponential backoff and jitter
(honouring ``Retry-After``), guard each provider with a circuit breaker and
fall back to ``llm.fallback_models`` when a provider is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from types import TracebackType
from typing import Any, Literal

import msgspec

from oxios_hookspecs import ModelInfo, ModelRequest, ModelResponse, StreamEvent

from ..config import Config, ProviderConfig
from ..logs import redact
from .breaker import CircuitBreaker
from .errors import BreakerOpenError, NoProviderError, ProviderError, ProviderUnavailableError, UnknownModelError

log = logging.getLogger(__name__)

# With no [providers.*] configured, these exist implicitly (usable iff their env key is set).
IMPLICIT_PROVIDERS: dict[str, str] = {"anthropic": "anthropic", "openai": "openai"}

# Which kind a bare model name most likely belongs to, when no provider lists it.
_KIND_BY_PREFIX = (("claude", "anthropic"), ("gpt-", "openai"), ("o1", "openai"), ("o3", "openai"), ("o4", "openai"))


class ProviderEntry:
    """One named provider: the object, its config, its breaker, or why it could not be built."""

    def __init__(self, name: str, kind: str, provider: Any, breaker: CircuitBreaker, error: str = "") -> None:
        self.name = name
        self.kind = kind
        self.provider = provider
        self.breaker = breaker
        self.error = error

    def usable(self) -> tuple[bool, str]:
        """Whether calls can be made (credentials and config), ignoring the breaker."""
        if self.provider is None:
            return False, self.error
        check = getattr(self.provider, "usable", None)
        if check is None:
            return True, ""
        ok, reason = check()
        return bool(ok), str(reason or "")

    def default_model(self) -> str:
        return str(getattr(self.provider, "default_model", "") or "")

    def models(self) -> list[ModelInfo]:
        if self.provider is None:
            return []
        try:
            return list(self.provider.models())
        except Exception as err:  # a provider's listing must not break `oxios models`
            log.warning("provider %s failed to list models: %s", self.name, redact(str(err)))
            return []


class ProviderRegistry:
    def __init__(
        self,
        config: Config,
        kinds: dict[str, Callable[..., Any]],
        *,
        publish: Callable[..., Any] | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.kinds = kinds
        self._publish = publish
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._clock_kw = {"clock": clock} if clock is not None else {}
        self.entries: dict[str, ProviderEntry] = {}
        configured = dict(config.providers)
        self.implicit = not configured
        if self.implicit:
            configured = {name: ProviderConfig(kind=kind) for name, kind in IMPLICIT_PROVIDERS.items()}
        for name, settings in configured.items():
            self.entries[name] = self._build(name, settings)

    def _build(self, name: str, settings: ProviderConfig) -> ProviderEntry:
        llm = self.config.llm
        breaker = CircuitBreaker(
            name,
            threshold=llm.breaker_failure_threshold,
            cooldown=llm.breaker_cooldown_secs,
            on_change=self._breaker_changed,
            **self._clock_kw,
        )
        factory = self.kinds.get(settings.kind)
        if factory is None:
            known = ", ".join(sorted(self.kinds)) or "none"
            error = f"unknown provider kind {settings.kind!r} in providers.{name}.kind (known kinds: {known})"
            return ProviderEntry(name, settings.kind, None, breaker, error)
        try:
            provider = factory(name, {"name": name, **msgspec.to_builtins(settings)})
        except Exception as err:
            return ProviderEntry(name, settings.kind, None, breaker, f"providers.{name}: {redact(str(err))}")
        return ProviderEntry(name, settings.kind, provider, breaker)

    # -- lookup ------------------------------------------------------------------

    def get(self, name: str) -> Any:
        """The provider object named ``name`` (raises :class:`UnknownModelError`, a LookupError)."""
        entry = self.entries.get(name)
        if entry is None or entry.provider is None:
            raise UnknownModelError(
                entry.error if entry else f"no provider named {name!r} (configured: {', '.join(self.entries) or 'none'})"
            )
        return entry.provider

    def usable(self) -> list[str]:
        """Names of the providers that can be called now (credentials present, breaker not open)."""
        return [n for n, e in self.entries.items() if e.usable()[0] and e.breaker.effective_state() != "open"]

    def default(self) -> tuple[Any, str]:
        """The default (provider, model): kernel.default_provider/default_model, else the first usable."""
        return self.resolve("")

    def resolve(self, ref: str = "", provider: str | None = None) -> tuple[Any, str]:
        """Map ``"model"``, ``"provider/model"`` or ``""`` (the default) onto (provider object, model id)."""
        entry, model = self._resolve_entry(ref, provider)
        return entry.provider, model

    def _resolve_entry(self, ref: str, provider: str | None = None) -> tuple[ProviderEntry, str]:
        kernel = self.config.kernel
        if provider:
            entry = self._entry(provider)
            return entry, self._strip(ref, entry) or self._model_for(entry)
        if "/" in ref:
            prefix, _, rest = ref.partition("/")
            if prefix in self.entries:
                return self._entry(prefix), rest or self._model_for(self._entry(prefix))
        if ref:
            listed = [e for e in self.entries.values() if any(m.id == ref for m in e.models())]
            guessed = [e for e in self.entries.values() for p, k in _KIND_BY_PREFIX if ref.startswith(p) and e.kind == k]
            for candidates in (listed, guessed):
                # Usable first, and the default provider first among equals (it may share model ids).
                for entry in sorted(candidates, key=lambda e: (not e.usable()[0], e.name != kernel.default_provider)):
                    return entry, ref
            return self._default_entry(), ref
        entry = self._default_entry()
        if kernel.default_model and kernel.default_provider in ("", entry.name):
            return entry, kernel.default_model
        return entry, self._model_for(entry)

    def _entry(self, name: str) -> ProviderEntry:
        entry = self.entries.get(name)
        if entry is None:
            raise UnknownModelError(
                f"no provider named {name!r} (configured: {', '.join(self.entries) or 'none'}); see `oxios models`"
            )
        return entry

    @staticmethod
    def _strip(ref: str, entry: ProviderEntry) -> str:
        prefix = entry.name + "/"
        return ref[len(prefix) :] if ref.startswith(prefix) else ref

    def _model_for(self, entry: ProviderEntry) -> str:
        model = entry.default_model()
        if not model:
            raise NoProviderError(
                f"provider {entry.name!r} has no default model: set one with "
                f"`oxios config set providers.{entry.name}.default_model MODEL` (the model your server serves)"
            )
        return model

    def _default_entry(self) -> ProviderEntry:
        wanted = self.config.kernel.default_provider
        if wanted:
            entry = self._entry(wanted)
            ok, reason = entry.usable()
            if ok:
                return entry
            log.warning("default provider %s is not usable (%s); using the first usable one", wanted, reason)
        for entry in self.entries.values():
            if entry.usable()[0]:
                return entry
        reasons = "; ".join(f"{e.name}: {e.usable()[1]}" for e in self.entries.values())
        raise NoProviderError(f"No provider is usable ({reasons})." if reasons else "")

    def model_info(self, ref: str = "") -> ModelInfo:
        """What is known about a model (context window, prices); defaults when the provider does not say."""
        entry, model = self._resolve_entry(ref)
        for info in entry.models():
            if info.id == model:
                return info
        return ModelInfo(id=model, provider=entry.name)

    # -- listing -------------------------------------------------------------------

    def models(self) -> list[dict[str, Any]]:
        """Every configured provider and model, with whether it is usable and why not."""
        try:
            default_entry, default_model = self._resolve_entry("")
            default = (default_entry.name, default_model)
        except ProviderError:
            default = ("", "")
        rows: list[dict[str, Any]] = []
        for entry in self.entries.values():
            ok, reason = entry.usable()
            breaker = entry.breaker.status()
            if ok and breaker["state"] == "open":
                ok, reason = False, f"circuit breaker open (retry in {breaker.get('retry_in_secs', 0)}s)"
            infos = entry.models() or [None]
            for info in infos:
                rows.append(
                    {
                        "provider": entry.name,
                        "kind": entry.kind,
                        "model": info.id if info else "",
                        "ref": f"{entry.name}/{info.id}" if info else entry.name,
                        "context_window": info.context_window if info else None,
                        "usable": ok,
                        "reason": reason,
                        "breaker": breaker["state"],
                        "default": bool(info) and (entry.name, info.id) == default,
                        "implicit": self.implicit,
                    }
                )
        return rows

    def status(self) -> dict[str, Any]:
        providers = {}
        for name, entry in self.entries.items():
            ok, reason = entry.usable()
            providers[name] = {"kind": entry.kind, "usable": ok, "reason": reason, "breaker": entry.breaker.status()}
        usable = self.usable()
        problems = [
            f"circuit breaker open for {name} (next probe in {p['breaker'].get('retry_in_secs', 0)}s)"
            for name, p in providers.items()
            if p["breaker"]["state"] == "open"
        ]
        if not usable:
            problems.append("no usable LLM provider (see `oxios models` / `oxios doctor`)")
        # An open breaker is worth a line in `oxios status` even while other providers work.
        return {"healthy": not problems, "detail": "; ".join(problems) or None, "usable": usable, "providers": providers}

    async def stop(self) -> None:
        """Close the providers' HTTP clients (service shutdown)."""
        for entry in self.entries.values():
            closer = getattr(entry.provider, "close", None)
            if closer is not None:
                try:
                    await closer()
                except Exception as err:
                    log.warning("provider %s failed to close: %s", entry.name, redact(str(err)))

    # -- calling ---------------------------------------------------------------------

    def _targets(self, request: ModelRequest, provider: str | None) -> list[tuple[ProviderEntry, str]]:
        """The primary (provider, model) for the request, then each fallback model that resolves."""
        primary = self._resolve_entry(request.model, provider)
        targets = [primary]
        for ref in self.config.llm.fallback_models:
            try:
                target = self._resolve_entry(ref)
            except ProviderError as err:
                log.warning("fallback model %s skipped: %s", ref, err)
                continue
            usable, reason = target[0].usable()
            if not usable:
                log.info("fallback model %s skipped: %s", ref, reason)
            elif (target[0].name, target[1]) not in [(e.name, m) for e, m in targets]:
                targets.append(target)
        return targets

    async def complete(self, request: ModelRequest, provider: str | None = None) -> ModelResponse:
        """Non-streaming call with retries, breaker and fallbacks."""
        for attempt in _Attempts(self, request, self._targets(request, provider)):
            async with attempt:
                return await attempt.provider.complete(attempt.request)
        raise AssertionError("unreachable: _Attempts raises when every target failed")

    async def stream(self, request: ModelRequest, provider: str | None = None) -> AsyncIterator[StreamEvent]:
        """Streaming call. Retries and fallbacks apply until the first event was yielded;
        a failure after that is raised to the caller (its partial output cannot be unsaid)."""
        for attempt in _Attempts(self, request, self._targets(request, provider)):
            async with attempt, contextlib.aclosing(attempt.provider.stream(attempt.request)) as events:
                async for event in events:
                    attempt.started = True
                    yield event

    def _breaker_changed(self, breaker: CircuitBreaker, reason: str) -> None:
        log.warning("provider %s circuit breaker -> %s (%s)", breaker.provider, breaker.state, reason)
        self._event("provider.breaker", provider=breaker.provider, state=breaker.state, reason=reason, failures=breaker.failures)

    def _event(self, type: str, **data: Any) -> None:
        if self._publish is not None:
            self._publish(type, **data)


class _Attempt:
    """One call to one (provider, model), made inside ``async with``: how the block ends is the verdict."""

    def __init__(self, policy: _Attempts, entry: ProviderEntry, request: ModelRequest, retries: int) -> None:
        self.entry = entry
        self.provider: Any = entry.provider  # the object to call
        self.request = request
        self.retries = retries  # of this target, before this attempt
        self.started = False  # output reached the caller: a failure now is final
        self.outcome: Literal["success", "retry", "fallback"] | None = None
        self._policy = policy

    async def __aenter__(self) -> _Attempt:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, raw: BaseException | None, traceback: TracebackType | None
    ) -> bool:
        return await self._policy.settle(self, raw)


class _Attempts:
    """The retry / circuit-breaker / fallback policy of one call, shared by ``complete`` and ``stream``.

    Iterating yields :class:`_Attempt` objects: the primary target, its retries
    (after backoff), then each fallback model. It stops after a success; when
    every target failed it raises the primary target's error.
    """

    def __init__(self, registry: ProviderRegistry, request: ModelRequest, targets: list[tuple[ProviderEntry, str]]) -> None:
        self.registry = registry
        self.request = request
        self.targets = targets
        self.first: ProviderError | None = None  # the requested model's failure: what the caller gets
        self.last: ProviderError | None = None  # the latest one: what the next fallback event names

    def __iter__(self) -> Iterator[_Attempt]:
        for index, (entry, model) in enumerate(self.targets):
            request = msgspec.structs.replace(self.request, model=model)
            if index:
                self.registry._event("provider.fallback", provider=entry.name, model=model, error=str(self.last))
            retries = 0
            while True:
                try:
                    entry.breaker.acquire()
                except BreakerOpenError as err:
                    self._give_up(err)
                    break
                attempt = _Attempt(self, entry, request, retries)
                yield attempt
                if attempt.outcome == "success":
                    return
                if attempt.outcome != "retry":
                    break
                retries += 1
        assert self.first is not None
        raise self.first  # fallbacks' own errors are in events and logs

    async def settle(self, attempt: _Attempt, raw: BaseException | None) -> bool:
        """Account for how ``attempt`` ended; True swallows its failure because a retry or fallback follows."""
        entry = attempt.entry
        if raw is None:
            entry.breaker.success()
            attempt.outcome = "success"
            return False
        err = _as_provider_error(raw, entry.name)
        if err is None:  # cancelled, closed early by the caller, or a bug: no verdict on the provider
            entry.breaker.release()
            return False
        if not err.retryable:  # the request's own fault (400, a bad key): not an outage, no fallback
            entry.breaker.release()
        else:
            entry.breaker.failure(redact(str(err)))
        if not err.retryable or attempt.started:
            if err is raw:
                return False
            raise err from raw
        delay = self._retry_delay(attempt, err)
        if delay is None:
            self._give_up(err)
            attempt.outcome = "fallback"
            return True
        await self.registry._sleep(delay)
        attempt.outcome = "retry"
        return True

    def _retry_delay(self, attempt: _Attempt, err: ProviderError) -> float | None:
        """How long to wait before retrying the same target (announced as an event), or None to move on."""
        entry, llm = attempt.entry, self.registry.config.llm
        if attempt.retries >= llm.max_retries or entry.breaker.state == "open":
            return None
        if err.retry_after is not None:
            if err.retry_after > llm.retry_max_delay_secs:
                log.warning(
                    "provider %s asked to retry after %.0fs (over llm.retry_max_delay_secs); giving up",
                    entry.name,
                    err.retry_after,
                )
                return None
            delay = err.retry_after
        else:
            backoff = min(llm.retry_base_delay_secs * (2**attempt.retries), llm.retry_max_delay_secs)
            delay = backoff / 2 + self.registry._rng.uniform(0, backoff / 2)  # "equal jitter"
        message = redact(str(err))
        log.info("provider %s failed (%s); retry %d in %.2fs", entry.name, message, attempt.retries + 1, delay)
        self.registry._event(
            "provider.retry",
            provider=entry.name,
            model=attempt.request.model,
            attempt=attempt.retries + 1,
            delay_secs=round(delay, 3),
            status=err.status,
            error=message,
        )
        return delay

    def _give_up(self, err: ProviderError) -> None:
        self.first, self.last = self.first or err, err


def _as_provider_error(raw: BaseException, provider: str) -> ProviderError | None:
    """Our error type for ``raw``, or None when it is not a provider failure (cancellation, bugs)."""
    if isinstance(raw, ProviderError):
        if not raw.provider:
            raw.provider = provider
        return raw
    retryable = getattr(raw, "retryable", None)
    if isinstance(retryable, bool) and isinstance(raw, Exception):
        # A plugin's own error type, following the documented duck-typed contract.
        return ProviderError(
            redact(str(raw)),
            provider=provider,
            status=getattr(raw, "status", None),
            retryable=retryable,
            retry_after=getattr(raw, "retry_after", None),
        )
    if isinstance(raw, TimeoutError | ConnectionError):
        return ProviderUnavailableError(f"provider {provider!r}: {type(raw).__name__}: {raw}", provider=provider)
    return None


def from_plugins(config: Config, plugins: Any = None) -> ProviderRegistry:
    """A registry outside a running kernel (``oxios models``, ``oxios doctor``): kinds from the plugins."""
    from ..plugins import PluginManager

    pm = plugins or PluginManager()
    pm.load()
    kinds: dict[str, Callable[..., Any]] = {}

    def make_register(plugin: str) -> Callable[[str, Callable[..., Any]], None]:
        def register(kind: str, factory: Callable[..., Any]) -> None:
            kinds.setdefault(kind, factory)

        return register

    pm.collect("register_providers", make_register)
    return ProviderRegistry(config, kinds)


def start(kernel: Any) -> ProviderRegistry:
    """Service factory (kernel SERVICES): build the registry from config and the registered kinds."""
    registry = ProviderRegistry(kernel.config, kernel.provider_kinds, publish=kernel.publish)
    kernel.expose("providers.models", registry.models)
    kernel.expose("providers.status", registry.status)
    return registry
