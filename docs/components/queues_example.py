"""An order queue on every backend; the ``test_*`` functions run as tests (once per backend)."""

from __future__ import annotations

import pytest

from pytest_resources.components.queues import (
    DeadLetter,
    InMemoryMessageQueue,
    ManualClock,
    MessageQueue,
    RetryPolicy,
)


async def process_orders(queue: MessageQueue, count: int) -> list[str]:
    """Handle ``count`` orders, best priority first; an order without items is refused."""
    shipped = []
    for _ in range(count):
        delivery = await queue.receive(timeout=10)
        assert delivery is not None
        if not delivery.body["items"]:
            await queue.nack(delivery, retry=False)  # no retry can fix it: dead-letter it
            continue
        shipped.append(delivery.body["id"])
        await queue.ack(delivery)
    return shipped


@pytest.mark.asyncio
async def test_express_orders_ship_first(message_queue: MessageQueue) -> None:
    await message_queue.enqueue({"id": "standard-1", "items": ["book"]})
    await message_queue.enqueue({"id": "express-1", "items": ["phone"]}, priority=9)
    await message_queue.enqueue({"id": "empty", "items": []}, priority=5)
    await message_queue.enqueue({"id": "standard-2", "items": ["pen"]})

    assert await process_orders(message_queue, 4) == ["express-1", "standard-1", "standard-2"]
    [refused] = await message_queue.dead_letters()
    assert refused.body["id"] == "empty"
    stats = await message_queue.stats()
    assert (stats.completed, stats.dead_lettered, stats.pending) == (3, 1, 0)


@pytest.mark.asyncio
async def test_backoff_without_waiting() -> None:
    clock = ManualClock()
    retry = RetryPolicy(max_attempts=3, backoff=30, factor=2)  # waits 30 s, then 60 s
    async with InMemoryMessageQueue("payments", retry=retry, clock=clock) as queue:
        message_id = await queue.enqueue({"charge": 42})
        for wait in (30, 60):
            delivery = await queue.receive(timeout=0)
            assert delivery is not None
            await queue.nack(delivery)  # the payment provider is down
            assert await queue.receive(timeout=0) is None  # backing off
            clock.advance(wait)
        last = await queue.receive(timeout=0)
        assert last is not None
        assert last.attempt == 3
        await queue.nack(last)
        assert await queue.dead_letters() == [DeadLetter(message_id, {"charge": 42}, 0, 3)]
