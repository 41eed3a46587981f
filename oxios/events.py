"""The event bus: typed events, bounded per-subscriber queues, a replay ring.

Publishing never waits. A subscriber whose queue is full loses its oldest
events and, on its next read, gets a ``bus.lagged`` event saying how many it
missed, so a slow consumer (an SSE client on a bad link) never blocks the
kernel and always knows when it must resync.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

from oxios_hookspecs import Event

log = logging.getLogger(__name__)

LAGGED = "bus.lagged"


class Subscription:
    """One subscriber's bounded queue. Iterate it, or ``await get()``."""

    def __init__(self, bus: EventBus, maxsize: int, types: set[str] | None) -> None:
        self._bus = bus
        self._queue: deque[Event] = deque()
        self._maxsize = maxsize
        self._types = types
        self._missed = 0
        self._ready = asyncio.Event()
        self.closed = False

    def wants(self, event: Event) -> bool:
        if self._types is None:
            return True
        return event.type in self._types or any(t.endswith(".*") and event.type.startswith(t[:-1]) for t in self._types)

    def _offer(self, event: Event) -> None:
        if len(self._queue) >= self._maxsize:
            self._queue.popleft()
            self._missed += 1
        self._queue.append(event)
        self._ready.set()

    def get_nowait(self) -> Event | None:
        if self._missed:
            missed, self._missed = self._missed, 0
            return Event(type=LAGGED, data={"missed": missed})
        if self._queue:
            return self._queue.popleft()
        self._ready.clear()
        return None

    async def get(self, timeout: float | None = None) -> Event | None:
        """The next event; ``None`` after ``timeout`` seconds or once closed."""
        while not self.closed:
            event = self.get_nowait()
            if event is not None:
                return event
            try:
                # asyncio.timeout, not wait_for: 3.11's wait_for swallows a cancel that lands as the event fires.
                async with asyncio.timeout(timeout):
                    await self._ready.wait()
            except TimeoutError:
                return None
        return None

    def close(self) -> None:
        self.closed = True
        self._ready.set()
        self._bus._unsubscribe(self)

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iter()

    async def _iter(self) -> AsyncIterator[Event]:
        while True:
            event = await self.get()
            if event is None:
                return
            yield event

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventBus:
    """Fan-out of :class:`Event` to subscribers, plus a ring for replay."""

    def __init__(self, history: int = 1000) -> None:
        self._subs: list[Subscription] = []
        self._ring: deque[Event] = deque(maxlen=history)
        self._ids = itertools.count(1)
        self._listeners: list[Callable[[Event], Any]] = []

    def publish(self, type: str, **data: Any) -> Event:
        """Publish an event now; never blocks, never raises for a subscriber."""
        event = Event(type=type, data=data, id=next(self._ids))
        self._ring.append(event)
        for sub in list(self._subs):
            if sub.wants(event):
                sub._offer(event)
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # a listener's bug must not reach the publisher
                log.exception("event listener failed for %s", event.type)
        return event

    def subscribe(self, *, maxsize: int = 256, types: set[str] | None = None) -> Subscription:
        sub = Subscription(self, maxsize, types)
        self._subs.append(sub)
        return sub

    def add_listener(self, listener: Callable[[Event], Any]) -> None:
        """A synchronous callback for every event (must be quick and never block)."""
        self._listeners.append(listener)

    def _unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)

    def since(self, last_id: int) -> tuple[list[Event], bool]:
        """Events after ``last_id`` from the ring, and whether any were lost."""
        events = [e for e in self._ring if e.id > last_id]
        oldest = self._ring[0].id if self._ring else last_id + 1
        lost = last_id + 1 < oldest
        return events, lost

    @property
    def last_id(self) -> int:
        return self._ring[-1].id if self._ring else 0

    @property
    def subscriber_count(self) -> int:
        return len(self._subs)
