"""BoundedQueue put/get against the queues you would otherwise use.

- sync: ``collections.deque(maxlen=...)`` behind a ``threading.Lock`` (the baseline counts its
  drops too, as ``BoundedQueue`` does), against ``put``/``get``;
- asyncio: ``asyncio.Queue(maxsize)`` against ``aput``/``aget``, once without waiting and once
  as a producer/consumer hand-off through a one-slot queue, where every item parks a task.

BoundedQueue does more than each baseline (one queue for threads and loops, timeouts, drop
counting, close waking every waiter); this measures what that costs. Contenders alternate
round by round; each round gives a ratio (contender time / baseline time in that round, so
load from other processes hits both alike); the figure printed is the median ratio with its
range. Below 1.0 means BoundedQueue is faster.

    python benchmarks/bench_buffers.py [--ops 200000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from pytest_resources.components.buffers import BoundedQueue, Overflow

CAPACITY = 1024


class LockedDeque:
    """The hand-written baseline: a bounded deque under a lock, counting what it drops."""

    def __init__(self, capacity: int) -> None:
        self._items: deque[int] = deque(maxlen=capacity)
        self._lock = threading.Lock()
        self.dropped = 0

    def put(self, item: int) -> None:
        with self._lock:
            if len(self._items) == self._items.maxlen:
                self.dropped += 1
            self._items.append(item)

    def get(self) -> int:
        with self._lock:
            return self._items.popleft()


Run = Callable[[int], None]


def sync_put_get(make: Callable[[], LockedDeque | BoundedQueue[int]]) -> Run:
    def run(n: int) -> None:
        q = make()
        put, get = q.put, q.get
        for i in range(n):
            put(i)
            get()

    return run


def sync_overflow(make: Callable[[], LockedDeque | BoundedQueue[int]]) -> Run:
    def run(n: int) -> None:
        q = make()
        put = q.put
        for i in range(n):
            put(i)
        assert q.dropped == n - CAPACITY

    return run


def in_loop(body: Callable[[int], Coroutine[Any, Any, None]]) -> Run:
    def run(n: int) -> None:
        asyncio.run(body(n))

    return run


async def asyncio_put_get(n: int) -> None:
    q: asyncio.Queue[int] = asyncio.Queue(CAPACITY)
    for i in range(n):
        await q.put(i)
        await q.get()


async def bounded_put_get(n: int) -> None:
    q = BoundedQueue[int](CAPACITY, Overflow.BLOCK)
    for i in range(n):
        await q.aput(i)
        await q.aget()


async def asyncio_handoff(n: int) -> None:
    q: asyncio.Queue[int] = asyncio.Queue(1)

    async def consume() -> None:
        for _ in range(n):
            await q.get()

    consumer = asyncio.create_task(consume())
    for i in range(n):
        await q.put(i)
    await consumer


async def bounded_handoff(n: int) -> None:
    q = BoundedQueue[int](1, Overflow.BLOCK)

    async def consume() -> None:
        for _ in range(n):
            await q.aget()

    consumer = asyncio.create_task(consume())
    for i in range(n):
        await q.aput(i)
    await consumer


def timed(run: Run, n: int) -> float:
    gc.collect()
    start = time.perf_counter()
    run(n)
    return time.perf_counter() - start


def compare(title: str, baseline: Run, contender: Run, n: int, rounds: int) -> None:
    base_times: list[float] = []
    times: list[float] = []
    for round_ in range(rounds + 1):
        pair = [(baseline, base_times), (contender, times)]
        for run, into in pair if round_ % 2 else reversed(pair):
            elapsed = timed(run, n)
            if round_:  # round 0 warms up
                into.append(elapsed)
    ratios = [c / b for b, c in zip(base_times, times, strict=True)]
    print(
        f"  {title:<44} {statistics.median(times) / n * 1e9:7.0f} ns/item vs "
        f"{statistics.median(base_times) / n * 1e9:7.0f} ns/item   "
        f"ratio {statistics.median(ratios):4.2f} (rounds {min(ratios):.2f}-{max(ratios):.2f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    n, rounds = args.ops, args.rounds
    print(
        f"BoundedQueue vs baselines: {n} operations, {rounds} rounds (time ratio, lower is better)"
    )
    print("vs deque(maxlen) + Lock:")
    compare(
        "put + get (drop_oldest)",
        sync_put_get(lambda: LockedDeque(CAPACITY)),
        sync_put_get(lambda: BoundedQueue[int](CAPACITY)),
        n,
        rounds,
    )
    compare(
        "put into a full queue (drops, counted)",
        sync_overflow(lambda: LockedDeque(CAPACITY)),
        sync_overflow(lambda: BoundedQueue[int](CAPACITY)),
        n,
        rounds,
    )
    print("vs asyncio.Queue:")
    compare(
        "await put + await get, no waiting",
        in_loop(asyncio_put_get),
        in_loop(bounded_put_get),
        n,
        rounds,
    )
    compare(
        "producer/consumer tasks, one-slot queue",
        in_loop(asyncio_handoff),
        in_loop(bounded_handoff),
        n // 4,
        rounds,
    )


if __name__ == "__main__":
    main()
