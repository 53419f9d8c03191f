"""BoundedQueue and ReplayBuffer in use; the ``test_*`` functions run as tests."""

from __future__ import annotations

import asyncio
import threading

import pytest

from pytest_resources.components.buffers import (
    BoundedQueue,
    Overflow,
    QueueClosedError,
    ReplayBuffer,
)


def test_a_slow_subscriber_loses_the_oldest_events_and_we_can_see_how_many() -> None:
    with BoundedQueue[int](capacity=100) as inbox:
        for event in range(250):
            inbox.put(event)  # never waits: the oldest event makes room
        assert inbox.dropped == 150
        assert inbox.get() == 150  # the oldest event still kept


@pytest.mark.asyncio
async def test_a_thread_feeds_an_event_loop_with_back_pressure() -> None:
    jobs = BoundedQueue[str | None](capacity=2, overflow=Overflow.BLOCK)

    def producer() -> None:
        for n in range(10):
            jobs.put(f"job-{n}", timeout=10)  # waits while the loop is behind
        jobs.put(None, timeout=10)  # one stop marker per consumer (safe in BLOCK mode)

    thread = threading.Thread(target=producer)
    thread.start()
    done = []
    while (job := await jobs.aget(timeout=10)) is not None:  # the loop keeps running meanwhile
        done.append(job)
    thread.join()
    jobs.close()
    assert done == [f"job-{n}" for n in range(10)]
    assert jobs.dropped == 0


@pytest.mark.asyncio
async def test_closing_the_queue_ends_every_consumer() -> None:
    queue = BoundedQueue[int](capacity=10)

    async def consumer(seen: list[int]) -> None:
        try:
            while True:
                seen.append(await queue.aget())
        except QueueClosedError:
            return  # the queue was closed: this consumer is done

    seen: list[int] = []
    consumers = [asyncio.create_task(consumer(seen)) for _ in range(3)]
    for n in range(5):
        await queue.aput(n)
    await asyncio.sleep(0)  # one loop turn: the consumers take everything, then wait
    assert queue.close() == 0  # nothing was left unconsumed; the waiting consumers wake
    await asyncio.gather(*consumers)
    assert seen == [0, 1, 2, 3, 4]


class FakeClock:
    """Seconds that only move when the test says so: TTL tests need no sleeping."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_reconnecting_client_gets_what_it_missed() -> None:
    clock = FakeClock()
    history = ReplayBuffer[str](capacity=3, ttl=60.0, clock=clock)
    last_seen = history.append("price=10")  # the client saw this one, then disconnected
    history.append("price=11")
    history.append("price=12")

    replay = history.since(last_seen)
    assert [e.message for e in replay.entries] == ["price=11", "price=12"]
    assert replay.missed == 0
    last_seen = replay.cursor

    clock.now += 61  # everything so far expires
    history.append("price=13")
    history.append("price=14")
    history.append("price=15")
    history.append("price=16")  # capacity 3: price=13 is pushed out
    replay = history.since(last_seen)
    assert [e.message for e in replay.entries] == ["price=14", "price=15", "price=16"]
    assert replay.missed == 1, "tell the client to resynchronise from a snapshot"
    assert history.close() == 3
