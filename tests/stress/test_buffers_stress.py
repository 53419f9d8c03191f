"""BoundedQueue and ReplayBuffer under many producer and consumer threads and tasks: every
item is accounted for exactly once."""

from __future__ import annotations

import asyncio
import sys
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from functools import partial

import pytest

from pytest_resources.components.buffers import (
    BoundedQueue,
    Overflow,
    QueueClosedError,
    ReplayBuffer,
)

PRODUCERS = 8
CONSUMERS = 8
ITEMS = 50_000  # per producer

pytestmark = pytest.mark.slow

Item = tuple[int, int] | None  # (producer, sequence); None tells a consumer to stop


@pytest.fixture(autouse=True)
def frequent_thread_switches() -> Iterator[None]:
    """Switch threads every microsecond instead of every 5 ms, so races get a chance to show."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def run_threads(bodies: Sequence[Callable[[], object]]) -> list[object]:
    """Run each body in its own thread, started together; return the results in order, or
    re-raise the first failure once every thread has been joined."""
    start = threading.Barrier(len(bodies))
    results: list[object] = [None] * len(bodies)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            start.wait()
            results[i] = bodies[i]()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


class LastOut:
    """Tells the last of ``count`` finishing producers that it is the last."""

    def __init__(self, count: int) -> None:
        self._left = count
        self._lock = threading.Lock()

    def done(self) -> bool:
        with self._lock:
            self._left -= 1
            return self._left == 0


def produce(q: BoundedQueue[Item], producer: int, last: LastOut) -> None:
    for seq in range(ITEMS):
        q.put((producer, seq))
    if last.done():
        for _ in range(CONSUMERS):
            q.put(None)


async def aproduce(q: BoundedQueue[Item], producer: int, last: LastOut) -> None:
    for seq in range(ITEMS):
        await q.aput((producer, seq))
    if last.done():
        for _ in range(CONSUMERS):
            await q.aput(None)


def consume(q: BoundedQueue[Item]) -> list[Item]:
    got: list[Item] = []
    while (item := q.get()) is not None:
        got.append(item)
    return got


async def aconsume(q: BoundedQueue[Item]) -> list[Item]:
    got: list[Item] = []
    while (item := await q.aget()) is not None:
        got.append(item)
    return got


def consume_until_closed(q: BoundedQueue[Item]) -> list[Item]:
    got: list[Item] = []
    try:
        while True:
            got.append(q.get())
    except QueueClosedError:
        return got


def assert_in_order_per_producer(received: list[Item]) -> None:
    """A consumer sees each producer's items in the order they were put."""
    last: dict[int, int] = {}
    for item in received:
        assert item is not None
        producer, seq = item
        assert seq > last.get(producer, -1)
        last[producer] = seq


def everything(producers: int) -> Counter[Item]:
    return Counter((p, s) for p in range(producers) for s in range(ITEMS))


def test_blocking_queue_delivers_every_item_exactly_once_across_threads() -> None:
    q = BoundedQueue[Item](64, Overflow.BLOCK)
    last = LastOut(PRODUCERS)
    results = run_threads(
        [partial(produce, q, p, last) for p in range(PRODUCERS)]
        + [partial(consume, q) for _ in range(CONSUMERS)]
    )
    received = [r for r in results[PRODUCERS:] if isinstance(r, list)]
    for got in received:
        assert_in_order_per_producer(got)
    assert Counter(item for got in received for item in got) == everything(PRODUCERS)
    assert (len(q), q.dropped, q.waiting) == (0, 0, 0)
    q.close()


@pytest.mark.asyncio
async def test_threads_and_tasks_share_a_blocking_queue_without_losing_an_item() -> None:
    q = BoundedQueue[Item](32, Overflow.BLOCK)
    half = PRODUCERS // 2
    last = LastOut(PRODUCERS)
    threads = run_in_threads(
        [partial(produce, q, p, last) for p in range(half)]
        + [partial(consume, q) for _ in range(CONSUMERS // 2)]
    )
    tasks = [asyncio.create_task(aproduce(q, p, last)) for p in range(half, PRODUCERS)]
    consumers = [asyncio.create_task(aconsume(q)) for _ in range(CONSUMERS - CONSUMERS // 2)]
    await asyncio.gather(*tasks)
    received = await asyncio.gather(*consumers)
    thread_results = await asyncio.to_thread(threads)
    received += [r for r in thread_results[half:] if isinstance(r, list)]
    assert Counter(item for got in received for item in got) == everything(PRODUCERS)
    assert (len(q), q.waiting) == (0, 0)
    q.close()


def run_in_threads(bodies: Sequence[Callable[[], object]]) -> Callable[[], list[object]]:
    """Start ``run_threads(bodies)`` in a thread of its own; the returned call joins it and
    returns its results."""
    outcome: list[list[object]] = []
    errors: list[BaseException] = []

    def body() -> None:
        try:
            outcome.append(run_threads(bodies))
        except BaseException as exc:
            errors.append(exc)

    runner = threading.Thread(target=body)
    runner.start()

    def join() -> list[object]:
        runner.join()
        if errors:
            raise errors[0]
        return outcome[0]

    return join


def test_drop_oldest_accounts_for_every_item_as_received_dropped_or_discarded() -> None:
    q = BoundedQueue[Item](16)
    last = LastOut(PRODUCERS)
    # Here a stop marker could be dropped, so consumers run until the queue is closed.
    join = run_in_threads([partial(consume_until_closed, q) for _ in range(CONSUMERS)])
    run_threads([partial(produce, q, p, last) for p in range(PRODUCERS)])
    discarded = q.close()
    received = [r for r in join() if isinstance(r, list)]
    for got in received:
        assert_in_order_per_producer([i for i in got if i is not None])
    total = sum(len(got) for got in received)
    assert total + q.dropped + discarded == PRODUCERS * ITEMS + CONSUMERS
    unique = Counter(item for got in received for item in got if item is not None)
    assert max(unique.values()) == 1, "no item is delivered twice"


@pytest.mark.asyncio
async def test_close_wakes_every_parked_thread_and_task() -> None:
    for _ in range(50):
        empty = BoundedQueue[int](1, Overflow.BLOCK)
        full = BoundedQueue[int](1, Overflow.BLOCK)
        full.put(0)
        join = run_in_threads(
            [partial(expect_closed, empty.get) for _ in range(8)]
            + [partial(expect_closed, partial(full.put, 1)) for _ in range(8)]
        )
        tasks = [asyncio.create_task(aexpect_closed(empty.aget())) for _ in range(8)]
        tasks += [asyncio.create_task(aexpect_closed(full.aput(1))) for _ in range(8)]
        while empty.waiting + full.waiting < 32:  # until everyone is parked
            await asyncio.sleep(0)
        empty.close()
        full.close()
        assert await asyncio.gather(*tasks) == ["closed"] * 16
        assert await asyncio.to_thread(join) == ["closed"] * 16
        assert empty.waiting + full.waiting == 0


def expect_closed(call: Callable[[], object]) -> str:
    try:
        call()
    except QueueClosedError:
        return "closed"
    return "returned"


async def aexpect_closed(call: Awaitable[object]) -> str:
    try:
        await call
    except QueueClosedError:
        return "closed"
    return "returned"


def test_replay_buffer_gives_out_every_cursor_once_and_replays_without_gaps() -> None:
    buf = ReplayBuffer[tuple[int, int]](1000)
    writers = 8
    readers = 4
    done = threading.Event()
    last = LastOut(writers)

    def write(w: int) -> list[int]:
        cursors = [buf.append((w, i)) for i in range(ITEMS)]
        if last.done():
            done.set()
        return cursors

    def read() -> int:
        cursor, seen = 0, 0
        while True:
            finished = done.is_set()
            replay = buf.since(cursor)
            cursors = [e.cursor for e in replay.entries]
            assert cursors == list(range(replay.cursor - len(cursors) + 1, replay.cursor + 1))
            assert replay.missed + len(cursors) == replay.cursor - cursor
            seen += len(cursors) + replay.missed
            cursor = replay.cursor
            if finished:
                return seen

    results = run_threads(
        [partial(write, w) for w in range(writers)] + [read for _ in range(readers)]
    )
    given = [c for r in results[:writers] if isinstance(r, list) for c in r]
    assert sorted(given) == list(range(1, writers * ITEMS + 1))
    assert results[writers:] == [writers * ITEMS] * readers
    final = buf.since(0)
    assert [e.cursor for e in final.entries] == list(
        range(writers * ITEMS - 999, writers * ITEMS + 1)
    )
    assert final.missed == writers * ITEMS - 1000
    buf.close()
