"""The ``MessageQueue`` contract every backend keeps: deliveries, retry with backoff, stats,
and the shared lifecycle (idempotent close under a timeout, use after close, ResourceWarning)."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import json
import logging
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self, TypeVar

__all__ = [
    "CloseResult",
    "DeadLetter",
    "Delivery",
    "ManualClock",
    "MessageQueue",
    "MessageQueueClosedError",
    "MessageQueueUnavailableError",
    "QueueStats",
    "RetryPolicy",
]

logger = logging.getLogger("pytest_resources.components.queues")
T = TypeVar("T")

DEFAULT_CLOSE_TIMEOUT = 10.0


class MessageQueueClosedError(RuntimeError):
    """The ``MessageQueue`` is closed (or closing): it enqueues, delivers and settles nothing."""


class MessageQueueUnavailableError(ConnectionError):
    """The broker did not answer when the queue started."""


@dataclass(frozen=True)
class RetryPolicy:
    """How ``nack`` retries: attempt ``n`` failing waits ``backoff * factor ** (n - 1)`` seconds
    (at most ``max_backoff``) before attempt ``n + 1``; attempt ``max_attempts`` failing sends
    the message to the dead letters."""

    max_attempts: int = 3
    backoff: float = 1.0
    factor: float = 2.0
    max_backoff: float = 300.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.backoff < 0 or self.max_backoff < 0:
            raise ValueError("backoff and max_backoff must be 0 or more")
        if self.factor < 1:
            raise ValueError(f"factor must be at least 1, got {self.factor}")

    def delay(self, attempt: int) -> float:
        """Seconds to wait after attempt ``attempt`` (1-based) failed."""
        return float(min(self.backoff * self.factor ** (attempt - 1), self.max_backoff))

    def delays(self) -> list[float]:
        """Every retry delay this policy can ask for, in attempt order."""
        return [self.delay(n) for n in range(1, self.max_attempts)]


@dataclass(frozen=True)
class Delivery:
    """One delivery of a message to this consumer; settle it with ``ack`` or ``nack``.

    ``attempt`` counts handling attempts (1 on the first delivery, +1 per retry after a failed
    attempt). ``redelivered`` is True when the message comes back without a failure being
    counted: its consumer died or gave it back (``nack(requeue=True)``, ``close()``), so a
    handler may already have seen it. ``received_at`` is on the queue's clock.
    """

    id: str
    body: Any
    priority: int
    attempt: int
    redelivered: bool
    received_at: float
    token: str = field(repr=False, compare=False)


@dataclass(frozen=True)
class DeadLetter:
    """A message given up on after its last attempt (or ``nack(retry=False)``)."""

    id: str
    body: Any
    priority: int
    attempts: int


@dataclass(frozen=True)
class QueueStats:
    """Counts at one moment. ``pending``: waiting, delayed ones included; ``processing``:
    delivered and not settled; ``completed``: acked; ``failed``: failed attempts (every
    ``nack`` but requeues); ``dead_lettered``: messages given up on;
    ``avg_processing_seconds``: mean time from delivery to ``ack``."""

    pending: int
    processing: int
    completed: int
    failed: int
    dead_lettered: int
    avg_processing_seconds: float


@dataclass(frozen=True)
class CloseResult:
    """What ``close()`` did: ``requeued`` unsettled deliveries were handed back to the queue."""

    requeued: int
    duration_seconds: float
    timed_out: bool


class ManualClock:
    """A clock that moves only when told: ``clock.advance(30)`` expires 30 s of leases and
    delays without waiting. Starts at the wall time, so it can share leases with real clocks.
    """

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go back")
        self.now += seconds


@dataclass(frozen=True, slots=True)
class Envelope:
    """A message as the backends store it: ``body`` is the JSON text, never re-encoded."""

    id: str
    body: str
    priority: int
    attempt: int

    def retried(self) -> Envelope:
        return Envelope(self.id, self.body, self.priority, self.attempt + 1)

    def dead_letter(self) -> DeadLetter:
        return DeadLetter(self.id, json.loads(self.body), self.priority, self.attempt)


@dataclass
class Counters:
    """Settlement counters kept by the process (memory and RabbitMQ backends)."""

    completed: int = 0
    failed: int = 0
    dead_lettered: int = 0
    processing_seconds: float = 0.0

    def stats(self, pending: int, processing: int) -> QueueStats:
        avg = self.processing_seconds / self.completed if self.completed else 0.0
        return QueueStats(pending, processing, self.completed, self.failed, self.dead_lettered, avg)


class MessageQueue(abc.ABC):
    """A work queue with priorities, delays, leases, retries and dead letters.

    >>> async with InMemoryMessageQueue() as queue:
    ...     await queue.enqueue({"job": 1}, priority=5)
    ...     async for delivery in queue:
    ...         try:
    ...             await handle(delivery.body)
    ...         except Exception:
    ...             await queue.nack(delivery)   # retried with backoff, then dead-lettered
    ...         else:
    ...             await queue.ack(delivery)

    Messages are JSON values. ``priority`` runs from 0 to ``max_priority``, higher first, FIFO
    within a priority. Delivery is at least once: a delivery not settled when its consumer dies
    (or its lease runs out) comes back with ``redelivered=True``.
    """

    backend: ClassVar[str]

    def __init__(
        self,
        name: str,
        *,
        max_priority: int = 9,
        retry: RetryPolicy | None = None,
        lease: float = 30.0,
        poll_interval: float = 1.0,
        clock: Callable[[], float] = time.time,
        close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
    ) -> None:
        if not name:
            raise ValueError("a queue needs a name")
        if not 0 <= max_priority <= 255:
            raise ValueError(f"max_priority must be within 0..255, got {max_priority}")
        if lease <= 0 or poll_interval <= 0 or close_timeout <= 0:
            raise ValueError("lease, poll_interval and close_timeout must be more than 0")
        self.name = name
        self.max_priority = max_priority
        self.retry = retry or RetryPolicy()
        #: Seconds a delivery stays reserved for its consumer (memory, Redis).
        self.lease = lease
        #: Longest a waiting ``receive`` goes without looking again (for delays and leases).
        self.poll_interval = poll_interval
        self.close_timeout = close_timeout
        self._clock = clock
        self._started = False
        self._starting: asyncio.Task[None] | None = None
        self._closing: asyncio.Task[CloseResult] | None = None
        self._unsettled: dict[str, tuple[Delivery, Envelope]] = {}
        self._waiters: set[asyncio.Future[Any]] = set()
        # Receives inside _take(): close() hands back what they take, so it waits for them.
        self._taking = 0
        self._takes_done = asyncio.Event()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<{type(self).__name__} {self.name!r} {state}>"

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if getattr(self, "_closing", True) is None:
            _warn(f"unclosed {self!r}", ResourceWarning, source=self)

    @property
    def closed(self) -> bool:
        """True once ``close()`` has begun."""
        return self._closing is not None

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect and declare what the queue needs; idempotent. Raises
        ``MessageQueueUnavailableError`` when the broker does not answer."""
        self._check_open()
        if self._started:
            return
        if self._starting is None:
            self._starting = asyncio.get_running_loop().create_task(
                self._connect(), name=f"start of {self!r}"
            )
        await asyncio.shield(self._starting)
        self._started = True

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self, timeout: float | None = None) -> CloseResult:
        """Hand unsettled deliveries back, wake waiting receivers with
        ``MessageQueueClosedError`` and disconnect, within ``timeout`` seconds (default
        ``close_timeout``). Idempotent: every call waits for the first and gets its result."""
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(
                self._close_all(self.close_timeout if timeout is None else timeout),
                name=f"close of {self!r}",
            )
        return await asyncio.shield(self._closing)

    async def _close_all(self, timeout: float) -> CloseResult:
        loop = asyncio.get_running_loop()
        begin = loop.time()
        for waiter in self._waiters:
            waiter.cancel()
        requeued = 0
        timed_out = False
        try:
            async with asyncio.timeout(timeout):
                if self._waiters:  # their connections go back to the pool before it closes
                    await asyncio.wait(self._waiters)
                if self._starting is not None:
                    started = await _outcome(self._starting)
                    if started:
                        if self._taking:
                            self._takes_done.clear()
                            await self._takes_done.wait()
                        requeued = await self._release(list(self._unsettled.values()))
                await self._disconnect()
        except TimeoutError:
            timed_out = True
            logger.error("%r: close took more than %ss; connections dropped", self, timeout)
            self._abort()
        except Exception:
            logger.exception("%r: close failed; connections dropped", self)
            self._abort()
        self._unsettled.clear()
        return CloseResult(requeued, loop.time() - begin, timed_out)

    def _check_open(self) -> None:
        if self._closing is not None:
            raise MessageQueueClosedError(f"{self!r} is closed")

    async def _usable(self) -> None:
        self._check_open()
        if not self._started:
            await self.start()

    # --- producing and consuming -----------------------------------------------------------

    async def enqueue(self, message: Any, *, priority: int = 0, delay: float = 0.0) -> str:
        """Add ``message`` (a JSON value); it becomes receivable after ``delay`` seconds.
        Returns the message id. Returns once the broker has it (RabbitMQ: confirmed)."""
        if not 0 <= priority <= self.max_priority:
            raise ValueError(f"priority must be within 0..{self.max_priority}, got {priority}")
        if delay < 0:
            raise ValueError(f"delay must be 0 or more, got {delay}")
        body = json.dumps(message, separators=(",", ":"), allow_nan=False)
        await self._usable()
        envelope = Envelope(uuid.uuid4().hex, body, priority, 1)
        await self._guard(self._put(envelope, delay))
        return envelope.id

    async def receive(self, timeout: float | None = None) -> Delivery | None:
        """The next message, waiting up to ``timeout`` seconds (forever when None); None when
        none came. Raises ``MessageQueueClosedError`` when the queue closes meanwhile."""
        await self._usable()
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            self._check_open()
            self._taking += 1
            try:
                taken = await self._guard(self._take())
            finally:
                self._taking -= 1
                if not self._taking:
                    self._takes_done.set()
            if taken is not None:
                self._unsettled[taken[0].token] = taken
                self._check_open()  # close() began meanwhile: it hands this one back
                return taken[0]
            wait = self.poll_interval
            if deadline is not None:
                wait = min(wait, deadline - loop.time())
                if wait <= 0:
                    return None
            await self._interruptible(self._wait(wait))

    def __aiter__(self) -> AsyncIterator[Delivery]:
        """Deliveries until the queue closes."""
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Delivery]:
        while True:
            try:
                delivery = await self.receive()
            except MessageQueueClosedError:
                return
            if delivery is not None:
                yield delivery

    async def ack(self, delivery: Delivery) -> bool:
        """The message is done. False when its lease had run out and it went to another
        consumer (which will handle it again: at least once)."""
        envelope = self._claim(delivery)
        seconds = max(0.0, self._clock() - delivery.received_at)
        return await self._guard(self._ack(delivery, envelope, seconds))

    async def nack(self, delivery: Delivery, *, requeue: bool = False, retry: bool = True) -> bool:
        """The attempt failed: retry after the policy's backoff, or dead-letter it when it
        was the last attempt (or ``retry=False``). ``requeue=True`` instead gives the message
        back at once, not counted as a failure. False when the lease had run out."""
        if requeue and not retry:
            raise ValueError("requeue=True gives the message back; it cannot also skip retries")
        envelope = self._claim(delivery)
        if requeue:
            return await self._guard(self._requeue(delivery, envelope))
        if retry and delivery.attempt < self.retry.max_attempts:
            delay = self.retry.delay(delivery.attempt)
            return await self._guard(self._retry(delivery, envelope, delay))
        return await self._guard(self._dead_letter(delivery, envelope))

    async def extend(self, delivery: Delivery) -> bool:
        """Renew the delivery's lease for another ``lease`` seconds; False if it was lost."""
        self._check_open()
        if delivery.token not in self._unsettled:
            return False
        return await self._guard(self._extend(delivery))

    @contextlib.asynccontextmanager
    async def renewing(
        self, delivery: Delivery, interval: float | None = None
    ) -> AsyncIterator[None]:
        """Keep the delivery's lease renewed (every ``lease / 3`` seconds) while the block
        runs, so a long handler keeps its message and a dead one loses it."""
        every = self.lease / 3 if interval is None else interval
        renewer = asyncio.get_running_loop().create_task(
            self._renew(delivery, every), name=f"lease renewal of {delivery.id}"
        )
        try:
            yield
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError, MessageQueueClosedError):
                await renewer

    async def _renew(self, delivery: Delivery, every: float) -> None:
        # A timer, not a synchronisation: the lease must be renewed on a schedule.
        while True:
            await asyncio.sleep(every)
            if not await self.extend(delivery):
                break
        logger.warning("%r: lease of %s lost while its handler ran", self, delivery.id)

    async def stats(self) -> QueueStats:
        """Counts at this moment (see ``QueueStats``; per backend in docs/components)."""
        await self._usable()
        return await self._guard(self._stats())

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """The oldest ``limit`` dead letters, left in place."""
        await self._usable()
        return await self._guard(self._dead_letters(limit))

    async def destroy(self) -> None:
        """Delete everything this queue keeps on the broker (messages, dead letters, stats)."""
        await self._usable()
        await self._guard(self._destroy())

    def _claim(self, delivery: Delivery) -> Envelope:
        self._check_open()
        taken = self._unsettled.pop(delivery.token, None)
        if taken is None:
            raise ValueError(f"{delivery!r} is already settled or was not received from {self!r}")
        return taken[1]

    async def _guard(self, awaitable: Awaitable[T]) -> T:
        """Await a broker call; a failure caused by ``close()`` becomes the closed error."""
        try:
            return await awaitable
        except (asyncio.CancelledError, Exception) as exc:
            if self._closing is None or _cancelling():
                raise
            raise MessageQueueClosedError(f"{self!r} closed during the call") from exc

    async def _interruptible(self, wait: Coroutine[Any, Any, None]) -> None:
        """Wait in a task ``close()`` can cancel, so no receiver outlives the queue."""
        if self._closing is not None:  # close() cancels only the waiters it finds
            wait.close()
            self._check_open()
        waiter = asyncio.ensure_future(wait)
        self._waiters.add(waiter)
        waiter.add_done_callback(self._waiters.discard)
        try:
            # Not ``await waiter``: a client that swallows the cancel it gets (redis-py's
            # BLPOP can) would swallow our caller's cancellation with it.
            await asyncio.wait([waiter])
        except asyncio.CancelledError:
            waiter.cancel()
            raise
        await self._guard(waiter)

    # --- what a backend provides -----------------------------------------------------------

    def _delivery(
        self, envelope: Envelope, redelivered: bool, token: str
    ) -> tuple[Delivery, Envelope]:
        body = json.loads(envelope.body)
        delivery = Delivery(
            envelope.id,
            body,
            envelope.priority,
            envelope.attempt,
            redelivered,
            self._clock(),
            token,
        )
        return delivery, envelope

    @abc.abstractmethod
    async def _connect(self) -> None: ...

    @abc.abstractmethod
    async def _disconnect(self) -> None:
        """Close every connection; also called after a failed or cancelled ``_connect``."""

    @abc.abstractmethod
    def _abort(self) -> None:
        """Drop connections without waiting (close timed out)."""

    @abc.abstractmethod
    async def _put(self, envelope: Envelope, delay: float) -> None: ...

    @abc.abstractmethod
    async def _take(self) -> tuple[Delivery, Envelope] | None:
        """A delivery now, or None; never waits for one."""

    @abc.abstractmethod
    async def _wait(self, timeout: float) -> None:
        """Return when a message may have arrived, or after ``timeout`` seconds."""

    @abc.abstractmethod
    async def _ack(self, delivery: Delivery, envelope: Envelope, seconds: float) -> bool: ...

    @abc.abstractmethod
    async def _requeue(self, delivery: Delivery, envelope: Envelope) -> bool: ...

    @abc.abstractmethod
    async def _retry(self, delivery: Delivery, envelope: Envelope, delay: float) -> bool: ...

    @abc.abstractmethod
    async def _dead_letter(self, delivery: Delivery, envelope: Envelope) -> bool: ...

    @abc.abstractmethod
    async def _extend(self, delivery: Delivery) -> bool: ...

    @abc.abstractmethod
    async def _release(self, unsettled: list[tuple[Delivery, Envelope]]) -> int:
        """Give unsettled deliveries back at close; returns how many."""

    @abc.abstractmethod
    async def _stats(self) -> QueueStats: ...

    @abc.abstractmethod
    async def _dead_letters(self, limit: int) -> list[DeadLetter]: ...

    @abc.abstractmethod
    async def _destroy(self) -> None: ...


def _cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def _outcome(task: asyncio.Task[None]) -> bool:
    """Whether ``task`` (a start) succeeded; cancels it if it is still running."""
    if not task.done():
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
    return not task.cancelled() and task.exception() is None
