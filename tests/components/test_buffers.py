from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import Callable

import pytest

from pytest_resources.components.buffers import (
    BoundedQueue,
    Overflow,
    QueueClosedError,
    ReplayBuffer,
    ReplayBufferClosedError,
)


def until(condition: Callable[[], bool]) -> None:
    """Wait for another thread to reach a state; yields the GIL, never sleeps a fixed time."""
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(0)


class Worker(threading.Thread):
    """Runs ``target`` once and keeps its result or exception for the test to check."""

    def __init__(self, target: Callable[[], object]) -> None:
        super().__init__(name="buffers-test-worker")
        self._target_fn = target
        self.result: object = None
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self.result = self._target_fn()
        except BaseException as exc:
            self.error = exc

    def outcome(self) -> object:
        self.join(10)
        assert not self.is_alive()
        if self.error is not None:
            raise self.error
        return self.result


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- BoundedQueue: construction and state


@pytest.mark.parametrize("capacity", [0, -1])
def test_capacity_must_be_positive(capacity: int) -> None:
    with pytest.raises(ValueError, match="capacity must be at least 1"):
        BoundedQueue[int](capacity)


def test_overflow_accepts_its_value_and_rejects_unknown_names() -> None:
    assert BoundedQueue[int](1, "block").overflow is Overflow.BLOCK
    assert BoundedQueue[int](1).overflow is Overflow.DROP_OLDEST
    with pytest.raises(ValueError, match="'drop_newest'"):
        BoundedQueue[int](1, "drop_newest")


def test_fifo_order_and_length() -> None:
    q = BoundedQueue[str](3)
    q.put("a")
    q.put("b")
    assert len(q) == 2
    assert q.capacity == 3
    assert [q.get(), q.get()] == ["a", "b"]
    assert len(q) == 0


def test_drop_oldest_discards_the_oldest_and_counts_it() -> None:
    q = BoundedQueue[int](3)
    for i in range(5):
        q.put(i)
    assert q.dropped == 2
    assert len(q) == 3
    assert [q.get(), q.get(), q.get()] == [2, 3, 4]
    assert "dropped=2" in repr(q)


def test_blocking_queue_never_drops() -> None:
    q = BoundedQueue[int](2, Overflow.BLOCK)
    q.put(1)
    q.put(2)
    with pytest.raises(TimeoutError):
        q.put(3, timeout=0)
    assert q.dropped == 0
    assert [q.get(), q.get()] == [1, 2]


def test_put_on_a_full_blocking_queue_times_out_after_the_timeout() -> None:
    q = BoundedQueue[int](1, Overflow.BLOCK)
    q.put(1)
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"within 0\.05 s"):
        q.put(2, timeout=0.05)
    assert time.monotonic() - started >= 0.05
    assert q.waiting == 0, "a timed-out caller must leave the line"


def test_get_on_an_empty_queue_times_out() -> None:
    q = BoundedQueue[int](1)
    with pytest.raises(TimeoutError):
        q.get(timeout=0)
    with pytest.raises(TimeoutError):
        q.get(timeout=0.02)
    assert q.waiting == 0


# --- BoundedQueue: threads


def test_blocked_put_resumes_when_a_get_makes_room() -> None:
    q = BoundedQueue[int](1, Overflow.BLOCK)
    q.put(1)
    putter = Worker(lambda: q.put(2, timeout=10))
    until(lambda: q.waiting == 1)
    assert q.get() == 1
    putter.outcome()
    assert q.get(timeout=0) == 2


def test_blocked_get_resumes_when_an_item_arrives() -> None:
    q = BoundedQueue[str](1)
    getter = Worker(lambda: q.get(timeout=10))
    until(lambda: q.waiting == 1)
    q.put("x")
    assert getter.outcome() == "x"
    assert len(q) == 0


def test_close_wakes_parked_threads_with_the_closed_error() -> None:
    q = BoundedQueue[int](1, Overflow.BLOCK)
    getter = Worker(q.get)
    until(lambda: q.waiting == 1)
    full = BoundedQueue[int](1, Overflow.BLOCK)
    full.put(0)
    putter = Worker(lambda: full.put(1))
    until(lambda: full.waiting == 1)
    q.close()
    full.close()
    with pytest.raises(QueueClosedError, match=r"get\(\) on <BoundedQueue closed"):
        getter.outcome()
    with pytest.raises(QueueClosedError, match=r"put\(\) on"):
        putter.outcome()


def test_close_discards_items_and_is_idempotent() -> None:
    q = BoundedQueue[object](5)
    for _ in range(3):
        q.put(object())
    assert q.close() == 3
    assert q.closed
    assert len(q) == 0
    assert q.close() == 3, "a second close reports what the first discarded"
    with pytest.raises(QueueClosedError):
        q.put(1)
    with pytest.raises(QueueClosedError):
        q.get(timeout=0)


def test_cleanup_is_close() -> None:
    q = BoundedQueue[int](2)
    q.put(1)
    assert q.cleanup() == 1
    assert q.closed


def test_context_manager_closes_and_lets_the_body_error_through() -> None:
    q = BoundedQueue[int](2)

    def body() -> None:
        with q:
            q.put(1)
            raise KeyError("body error")

    with pytest.raises(KeyError):
        body()
    assert q.closed


# --- BoundedQueue: asyncio


@pytest.mark.asyncio
async def test_aget_waits_for_aput_without_blocking_the_loop() -> None:
    q = BoundedQueue[int](1)
    getter = asyncio.create_task(q.aget())
    await asyncio.sleep(0)  # one loop turn: the task runs until it parks
    assert q.waiting == 1
    await q.aput(7)
    assert await getter == 7


@pytest.mark.asyncio
async def test_aput_waits_for_room_in_a_blocking_queue() -> None:
    q = BoundedQueue[int](1, Overflow.BLOCK)
    await q.aput(1)
    putter = asyncio.create_task(q.aput(2))
    await asyncio.sleep(0)
    assert not putter.done()
    assert await q.aget() == 1
    await putter
    assert await q.aget(timeout=0) == 2


@pytest.mark.asyncio
async def test_async_timeouts() -> None:
    q = BoundedQueue[int](1, Overflow.BLOCK)
    with pytest.raises(TimeoutError):
        await q.aget(timeout=0.02)
    await q.aput(1)
    with pytest.raises(TimeoutError):
        await q.aput(2, timeout=0.02)
    assert q.waiting == 0


@pytest.mark.asyncio
async def test_close_wakes_parked_tasks_with_the_closed_error() -> None:
    q = BoundedQueue[int](1)
    getters = [asyncio.create_task(q.aget()) for _ in range(3)]
    await asyncio.sleep(0)
    assert q.waiting == 3
    q.close()
    for task in getters:
        with pytest.raises(QueueClosedError):
            await task
    assert q.waiting == 0


@pytest.mark.asyncio
async def test_cancelled_waiter_leaves_the_line() -> None:
    q = BoundedQueue[int](1)
    first = asyncio.create_task(q.aget())
    second = asyncio.create_task(q.aget())
    await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert q.waiting == 1
    q.put(1)
    assert await second == 1


@pytest.mark.asyncio
async def test_a_woken_waiter_that_is_cancelled_hands_the_item_on() -> None:
    q = BoundedQueue[int](1)
    first = asyncio.create_task(q.aget())
    second = asyncio.create_task(q.aget())
    await asyncio.sleep(0)
    q.put(1)  # wakes `first`, which is cancelled before it can take the item
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await second == 1


@pytest.mark.asyncio
async def test_a_thread_wakes_a_task_on_another_loop() -> None:
    q = BoundedQueue[int](1)
    getter = asyncio.create_task(q.aget())
    await asyncio.sleep(0)
    Worker(lambda: q.put(5)).outcome()
    assert await getter == 5


def test_a_task_wakes_a_parked_thread() -> None:
    q = BoundedQueue[int](1)
    getter = Worker(q.get)
    until(lambda: q.waiting == 1)
    asyncio.run(q.aput(9))
    assert getter.outcome() == 9


def test_a_waiter_whose_loop_was_closed_is_skipped() -> None:
    q = BoundedQueue[int](1)
    loop = asyncio.new_event_loop()
    loop.set_exception_handler(lambda loop, context: None)  # "Task was destroyed" is expected
    orphan = loop.create_task(q.aget())
    loop.run_until_complete(asyncio.sleep(0))
    loop.close()
    assert q.waiting == 1
    q.put(3)  # the wake-up cannot reach the closed loop, so the item stays
    assert q.waiting == 0
    assert q.get(timeout=0) == 3
    del orphan


@pytest.mark.asyncio
async def test_async_context_manager_closes() -> None:
    async with BoundedQueue[int](1) as q:
        await q.aput(1)
    assert q.closed
    with pytest.raises(QueueClosedError):
        await q.aget()


# --- ReplayBuffer


@pytest.mark.parametrize(
    ("capacity", "ttl", "message"),
    [(0, None, "capacity must be at least 1"), (1, 0.0, "ttl must be positive")],
)
def test_replay_buffer_rejects_bad_settings(capacity: int, ttl: float | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ReplayBuffer[int](capacity, ttl)


def test_cursors_count_from_one_and_since_replays_after_a_cursor() -> None:
    buf = ReplayBuffer[str](10)
    assert buf.cursor == 0
    assert [buf.append(m) for m in "abc"] == [1, 2, 3]
    replay = buf.since(1)
    assert [(e.cursor, e.message) for e in replay.entries] == [(2, "b"), (3, "c")]
    assert (replay.cursor, replay.missed) == (3, 0)
    assert buf.since(3).entries == ()
    assert [e.message for e in buf.since().entries] == ["a", "b", "c"]


def test_capacity_pushes_out_the_oldest_and_since_counts_what_was_missed() -> None:
    buf = ReplayBuffer[int](3)
    for i in range(1, 6):
        buf.append(i * 10)
    assert len(buf) == 3
    assert [e.message for e in buf.since(0).entries] == [30, 40, 50]
    assert buf.since(0).missed == 2
    assert buf.since(1).missed == 1
    assert (buf.since(4).missed, [e.cursor for e in buf.since(4).entries]) == (0, [5])


@pytest.mark.parametrize("cursor", [-1, 4])
def test_since_rejects_cursors_never_given_out(cursor: int) -> None:
    buf = ReplayBuffer[int](3)
    for i in range(3):
        buf.append(i)
    with pytest.raises(ValueError, match=f"cursor {cursor} is not between 0 and 3"):
        buf.since(cursor)


def test_entries_expire_after_the_ttl() -> None:
    clock = FakeClock()
    buf = ReplayBuffer[str](10, ttl=10.0, clock=clock)
    buf.append("old")
    clock.now += 5
    buf.append("new")
    assert [e.timestamp for e in buf.since().entries] == [1000.0, 1005.0]
    clock.now += 4.999
    assert len(buf) == 2
    clock.now += 0.001  # "old" is now exactly ttl seconds old
    replay = buf.since()
    assert [e.message for e in replay.entries] == ["new"]
    assert replay.missed == 1
    clock.now += 5
    assert buf.since(1).entries == ()
    assert buf.since(1).missed == 1
    assert len(buf) == 0


def test_prune_drops_expired_entries_and_returns_how_many() -> None:
    clock = FakeClock()
    buf = ReplayBuffer[int](10, ttl=1.0, clock=clock)
    for i in range(4):
        buf.append(i)
        clock.now += 0.25
    clock.now += 0.25
    assert buf.prune() == 2  # ages 1.25 and 1.0 (exactly the ttl); 0.75 and 0.5 stay
    assert [e.message for e in buf.since().entries] == [2, 3]
    assert buf.prune() == 0


def test_without_ttl_nothing_expires() -> None:
    clock = FakeClock()
    buf = ReplayBuffer[int](2, clock=clock)
    buf.append(1)
    clock.now += 1e9
    assert buf.prune() == 0
    assert len(buf) == 1
    assert buf.ttl is None


def test_append_prunes_so_expired_messages_do_not_linger() -> None:
    clock = FakeClock()
    buf = ReplayBuffer[bytes](10, ttl=1.0, clock=clock)
    buf.append(b"x" * 1000)
    clock.now += 2
    buf.append(b"y")
    assert [e.message for e in buf.since().entries] == [b"y"]


def test_entries_and_replays_are_immutable() -> None:
    buf = ReplayBuffer[int](2)
    buf.append(1)
    replay = buf.since()
    with pytest.raises(dataclasses.FrozenInstanceError):
        replay.entries[0].message = 2  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        replay.missed = 1  # type: ignore[misc]


def test_replay_buffer_close_drops_everything_and_is_idempotent() -> None:
    buf = ReplayBuffer[int](5)
    buf.append(1)
    buf.append(2)
    assert buf.close() == 2
    assert buf.cleanup() == 2
    assert buf.closed
    assert "closed" in repr(buf)
    for call in (lambda: buf.append(3), buf.since, buf.prune):
        with pytest.raises(ReplayBufferClosedError):
            call()


def test_replay_buffer_context_manager_closes() -> None:
    with ReplayBuffer[int](5) as buf:
        buf.append(1)
        assert "size=1" in repr(buf)
    assert buf.closed
    assert buf.capacity == 5
