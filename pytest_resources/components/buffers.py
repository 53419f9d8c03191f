"""``BoundedQueue`` (fixed capacity, shared by threads and event loops) and ``ReplayBuffer``
(the last N messages, each kept for at most a TTL, replayed from a cursor)."""

from __future__ import annotations

import asyncio
import enum
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from itertools import islice
from types import TracebackType
from typing import Generic, Protocol, Self, TypeVar

__all__ = [
    "BoundedQueue",
    "Clock",
    "Overflow",
    "QueueClosedError",
    "Replay",
    "ReplayBuffer",
    "ReplayBufferClosedError",
    "ReplayEntry",
]

T = TypeVar("T")
R = TypeVar("R")


class _Closing:
    """``with`` (and ``cleanup()``) for a buffer whose ``close()`` releases everything and
    records in ``_discarded`` how much it dropped."""

    _discarded: int | None

    @property
    def closed(self) -> bool:
        return self._discarded is not None

    def close(self) -> int:
        raise NotImplementedError

    def cleanup(self) -> int:
        return self.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class QueueClosedError(RuntimeError):
    """The ``BoundedQueue`` is closed: nothing can be put into it or got from it any more."""


class ReplayBufferClosedError(RuntimeError):
    """The ``ReplayBuffer`` is closed: nothing can be appended or replayed any more."""


class Overflow(enum.Enum):
    """What ``BoundedQueue.put`` does when the queue is full."""

    DROP_OLDEST = "drop_oldest"
    """Discard the oldest item and count it in ``dropped``; ``put`` never waits."""
    BLOCK = "block"
    """Wait until a ``get`` makes room (or the timeout passes)."""


class _Missing(enum.Enum):
    MISSING = enum.auto()


_MISSING = _Missing.MISSING


class _ThreadWaiter:
    """A thread parked until ``wake``; the per-waiter lock is the mechanism
    ``threading.Condition`` uses, without a shared condition per queue side."""

    __slots__ = ("_lock", "woken")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()
        self.woken = False

    def wake(self) -> bool:
        self.woken = True
        self._lock.release()
        return True

    def wait(self, timeout: float | None) -> None:
        self._lock.acquire(timeout=-1 if timeout is None else timeout)


class _TaskWaiter:
    """A coroutine parked on a future of its own loop; ``wake`` may run on any thread."""

    __slots__ = ("_loop", "future", "woken")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.future: asyncio.Future[None] = loop.create_future()
        self.woken = False

    def wake(self) -> bool:
        try:
            same_loop = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            same_loop = False
        if same_loop:
            if self.future.done():  # cancelled or timed out: the next waiter gets the wake-up
                return False
            self.future.set_result(None)
        else:
            try:
                self._loop.call_soon_threadsafe(_resolve, self.future)
            except RuntimeError:  # its loop is closed, so nobody waits there any more
                return False
        self.woken = True
        return True


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


_Waiter = _ThreadWaiter | _TaskWaiter


class BoundedQueue(_Closing, Generic[T]):
    """A FIFO queue of fixed capacity for threads and asyncio tasks alike.

    When full, ``put`` either drops the oldest item and counts it (``Overflow.DROP_OLDEST``,
    the default) or waits for room (``Overflow.BLOCK``). ``put``/``get`` wait in the calling
    thread; ``aput``/``aget`` wait without blocking the event loop. Any mix of threads and
    loops may share one queue. ``close()`` discards every item and wakes every waiter with
    ``QueueClosedError``.

    >>> q = BoundedQueue[int](2)
    >>> for i in range(3):
    ...     q.put(i)
    >>> q.get(), q.dropped
    (1, 1)
    """

    def __init__(self, capacity: int, overflow: Overflow | str = Overflow.DROP_OLDEST) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self._capacity = capacity
        self._overflow = Overflow(overflow)
        self._items: deque[T] = deque()
        self._lock = threading.Lock()
        self._getters: deque[_Waiter] = deque()
        self._putters: deque[_Waiter] = deque()
        self._dropped = 0
        self._discarded: int | None = None

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def overflow(self) -> Overflow:
        return self._overflow

    @property
    def dropped(self) -> int:
        """Items discarded to make room (``Overflow.DROP_OLDEST`` only)."""
        return self._dropped

    @property
    def waiting(self) -> int:
        """Callers parked in ``get``/``aget`` or (when blocking) ``put``/``aput``."""
        return len(self._getters) + len(self._putters)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"size={len(self._items)}"
        return (
            f"<BoundedQueue {state} capacity={self._capacity} "
            f"overflow={self._overflow.value} dropped={self._dropped}>"
        )

    def put(self, item: T, timeout: float | None = None) -> None:
        """Append ``item``; when full and blocking, wait up to ``timeout`` seconds (``None``:
        forever) for room, then raise ``TimeoutError``."""
        with self._lock:
            if self._put_now(item) is not _MISSING:
                return
        self._wait(partial(self._put_now, item), self._putters, timeout)

    def get(self, timeout: float | None = None) -> T:
        """Remove and return the oldest item; wait up to ``timeout`` seconds (``None``:
        forever) for one, then raise ``TimeoutError``."""
        with self._lock:
            item = self._get_now()
        if item is not _MISSING:
            return item
        return self._wait(self._get_now, self._getters, timeout)

    async def aput(self, item: T, timeout: float | None = None) -> None:
        """``put`` for coroutines: waits for room without blocking the event loop."""
        with self._lock:
            if self._put_now(item) is not _MISSING:
                return
        await self._await(partial(self._put_now, item), self._putters, timeout)

    async def aget(self, timeout: float | None = None) -> T:
        """``get`` for coroutines: waits for an item without blocking the event loop."""
        with self._lock:
            item = self._get_now()
        if item is not _MISSING:
            return item
        return await self._await(self._get_now, self._getters, timeout)

    def close(self) -> int:
        """Discard every item, wake every waiter with ``QueueClosedError`` and return how many
        items were discarded. Idempotent: later calls return the first call's count."""
        with self._lock:
            if self._discarded is None:
                self._discarded = len(self._items)
                self._items.clear()
                while self._getters or self._putters:
                    self._wake_one(self._getters)
                    self._wake_one(self._putters)
            return self._discarded

    async def __aenter__(self) -> BoundedQueue[T]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # The *_now methods run under self._lock and return _MISSING when the caller must wait.

    def _put_now(self, item: T) -> _Missing | None:
        if self._discarded is not None:
            raise QueueClosedError(f"put() on {self!r}")
        if len(self._items) >= self._capacity:
            if self._overflow is Overflow.BLOCK:
                return _MISSING
            self._items.popleft()
            self._dropped += 1
        self._items.append(item)
        if self._getters:
            self._wake_one(self._getters)
        return None

    def _get_now(self) -> T | _Missing:
        if self._discarded is not None:
            raise QueueClosedError(f"get() on {self!r}")
        if not self._items:
            return _MISSING
        item = self._items.popleft()
        if self._putters:
            self._wake_one(self._putters)
        return item

    @staticmethod
    def _wake_one(waiters: deque[_Waiter]) -> None:
        while waiters:
            if waiters.popleft().wake():
                return

    def _wait(
        self, attempt: Callable[[], R | _Missing], waiters: deque[_Waiter], timeout: float | None
    ) -> R:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                result = attempt()
                if result is not _MISSING:
                    return result
                remaining = _remaining(deadline, timeout)
                waiter = _ThreadWaiter()
                waiters.append(waiter)
            try:
                waiter.wait(remaining)
            except BaseException:  # KeyboardInterrupt in the main thread
                self._settle(waiter, waiters, leaving=True)
                raise
            self._settle(waiter, waiters, leaving=False)

    async def _await(
        self, attempt: Callable[[], R | _Missing], waiters: deque[_Waiter], timeout: float | None
    ) -> R:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                result = attempt()
                if result is not _MISSING:
                    return result
                remaining = _remaining(deadline, timeout)
                waiter = _TaskWaiter(loop)
                waiters.append(waiter)
            try:
                if remaining is None:  # skip the timeout scope: it costs more than the wait
                    await waiter.future
                else:
                    async with asyncio.timeout(remaining):
                        await waiter.future
            except TimeoutError:
                pass  # the next attempt raises TimeoutError unless a wake-up raced the timeout
            except BaseException:
                self._settle(waiter, waiters, leaving=True)
                raise
            self._settle(waiter, waiters, leaving=False)

    def _settle(self, waiter: _Waiter, waiters: deque[_Waiter], *, leaving: bool) -> None:
        # A waiter nobody woke leaves the line; one that was woken but is leaving anyway
        # (cancelled, interrupted) hands its wake-up on, or it would be lost.
        with self._lock:
            if waiter.woken:
                if leaving:
                    self._wake_one(waiters)
            elif waiter in waiters:  # else a wake-up skipped it (its wait was already over)
                waiters.remove(waiter)


def _remaining(deadline: float | None, timeout: float | None) -> float | None:
    if deadline is None:
        return None
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError(f"nothing changed in the queue within {timeout} s")
    return remaining


class Clock(Protocol):
    """Seconds on a clock that never goes back (``time.monotonic`` by default)."""

    def __call__(self) -> float: ...


@dataclass(frozen=True, slots=True)
class ReplayEntry(Generic[T]):
    """One message and the cursor it was given; ``timestamp`` is the buffer's clock."""

    cursor: int
    message: T
    timestamp: float


@dataclass(frozen=True, slots=True)
class Replay(Generic[T]):
    """What ``ReplayBuffer.since`` found after a cursor.

    ``entries`` are oldest first; ``cursor`` is the one to pass next time; ``missed`` counts
    the messages after the given cursor that are no longer kept (pushed out or expired).
    """

    entries: tuple[ReplayEntry[T], ...]
    cursor: int
    missed: int


class ReplayBuffer(_Closing, Generic[T]):
    """The last ``capacity`` messages, each kept for at most ``ttl`` seconds (``None``:
    until pushed out), replayed from a cursor. Thread-safe.

    Cursors count messages from 1; ``0`` means "from the beginning". Expired messages are
    pruned on every call, so nothing outlives its TTL by more than one call.

    >>> buf = ReplayBuffer[str](capacity=100, ttl=60.0)
    >>> first = buf.append("a")
    >>> _ = buf.append("b")
    >>> [e.message for e in buf.since(first).entries]
    ['b']
    """

    def __init__(self, capacity: int, ttl: float | None = None, *, clock: Clock = time.monotonic):
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        if ttl is not None and ttl <= 0:
            raise ValueError(f"ttl must be positive or None, got {ttl}")
        self._capacity = capacity
        self._ttl = ttl
        self._clock = clock
        self._entries: deque[ReplayEntry[T]] = deque(maxlen=capacity)
        self._cursor = 0
        self._lock = threading.Lock()
        self._discarded: int | None = None

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def ttl(self) -> float | None:
        return self._ttl

    @property
    def cursor(self) -> int:
        """The cursor of the newest message ever appended (``0`` before the first)."""
        return self._cursor

    def __len__(self) -> int:
        """Messages kept now (expired ones are pruned first)."""
        with self._lock:
            self._prune(self._clock())
            return len(self._entries)

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"size={len(self._entries)}"
        return (
            f"<ReplayBuffer {state} capacity={self._capacity} ttl={self._ttl} "
            f"cursor={self._cursor}>"
        )

    def append(self, message: T) -> int:
        """Keep ``message`` and return its cursor; the oldest message goes when full."""
        with self._lock:
            self._check_open("append")
            now = self._clock()
            self._prune(now)
            self._cursor += 1
            self._entries.append(ReplayEntry(self._cursor, message, now))
            return self._cursor

    def since(self, cursor: int = 0) -> Replay[T]:
        """The kept messages after ``cursor``, oldest first.

        Raises ``ValueError`` for a negative cursor or one this buffer never gave out.
        """
        with self._lock:
            self._check_open("since")
            if not 0 <= cursor <= self._cursor:
                raise ValueError(f"cursor {cursor} is not between 0 and {self._cursor}")
            self._prune(self._clock())
            # Cursors are consecutive and only the oldest entries leave, so the position of
            # `cursor` is arithmetic.
            oldest = self._cursor - len(self._entries) + 1
            start = max(cursor + 1 - oldest, 0)
            entries = tuple(islice(self._entries, start, None))
            return Replay(entries, self._cursor, missed=max(oldest - 1 - cursor, 0))

    def prune(self) -> int:
        """Drop expired messages now; return how many went."""
        with self._lock:
            self._check_open("prune")
            return self._prune(self._clock())

    def close(self) -> int:
        """Drop every message and return how many were kept. Idempotent: later calls return
        the first call's count."""
        with self._lock:
            if self._discarded is None:
                self._discarded = len(self._entries)
                self._entries.clear()
            return self._discarded

    def _check_open(self, method: str) -> None:
        if self._discarded is not None:
            raise ReplayBufferClosedError(f"{method}() on {self!r}")

    def _prune(self, now: float) -> int:
        if self._ttl is None:
            return 0
        horizon = now - self._ttl
        entries = self._entries
        before = len(entries)
        while entries and entries[0].timestamp <= horizon:
            entries.popleft()
        return before - len(entries)
