"""The event bus: a slow subscriber never blocks, and learns what it missed."""

from __future__ import annotations

from oxios.events import LAGGED, EventBus


async def test_publish_reaches_subscribers_in_order() -> None:
    bus = EventBus()
    with bus.subscribe() as sub:
        bus.publish("agent.started", agent_id="a")
        bus.publish("agent.stopped", agent_id="a")
        first, second = await sub.get(timeout=10), await sub.get(timeout=10)
    assert (first.type, second.type) == ("agent.started", "agent.stopped")
    assert second.id == first.id + 1
    assert bus.subscriber_count == 0


async def test_slow_subscriber_is_told_how_many_it_missed() -> None:
    bus = EventBus()
    slow = bus.subscribe(maxsize=3)
    for i in range(10):
        bus.publish("tick", n=i)  # never blocks although nobody reads
    lag = await slow.get(timeout=10)
    assert lag.type == LAGGED and lag.data == {"missed": 7}
    rest = [(await slow.get(timeout=10)).data["n"] for _ in range(3)]
    assert rest == [7, 8, 9]
    assert await slow.get(timeout=0.01) is None


async def test_type_filter_and_wildcards() -> None:
    bus = EventBus()
    sub = bus.subscribe(types={"cron.*", "agent.started"})
    bus.publish("agent.stopped")
    bus.publish("cron.triggered", job="x")
    bus.publish("agent.started")
    assert (await sub.get(timeout=10)).type == "cron.triggered"
    assert (await sub.get(timeout=10)).type == "agent.started"


def test_replay_ring_reports_loss() -> None:
    bus = EventBus(history=5)
    for i in range(8):
        bus.publish("tick", n=i)
    events, lost = bus.since(6)
    assert [e.data["n"] for e in events] == [6, 7] and not lost
    events, lost = bus.since(1)
    assert lost and [e.data["n"] for e in events] == [3, 4, 5, 6, 7]


def test_broken_listener_does_not_reach_publisher() -> None:
    bus = EventBus()
    seen = []
    bus.add_listener(lambda e: 1 / 0)
    bus.add_listener(seen.append)
    bus.publish("x")
    assert [e.type for e in seen] == ["x"]
