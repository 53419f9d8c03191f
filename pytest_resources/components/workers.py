"""``TaskManager``: a pool of workers consuming a ``MessageQueue``, with handlers per task
type, results and streamed chunks for the submitter, instances kept per session key, health
metrics and a graceful shutdown under one deadline."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
import uuid
import warnings
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .queues.base import (
    Delivery,
    MessageQueue,
    MessageQueueClosedError,
    MessageQueueUnavailableError,
    QueueStats,
)
from .tasks import BackgroundTaskManager, ShutdownStats

__all__ = [
    "InstanceFactory",
    "PoolHealth",
    "TaskAbandonedError",
    "TaskContext",
    "TaskFailedError",
    "TaskHandle",
    "TaskHandler",
    "TaskManager",
    "TaskPoolClosedError",
]

logger = logging.getLogger(__name__)

DEFAULT_SHUTDOWN_TIMEOUT = 30.0
#: Seconds between a worker's attempts to receive while the queue's broker is unavailable.
OUTAGE_RETRY = 0.5


class TaskPoolClosedError(RuntimeError):
    """``submit`` or ``start`` on a ``TaskManager`` that is shutting down or shut down."""


class TaskFailedError(RuntimeError):
    """The task's last attempt failed (the cause is its exception) and it was dead-lettered."""


class TaskAbandonedError(RuntimeError):
    """The pool shut down before the task finished; its message stays in the queue."""


class TaskHandler(Protocol):
    """Handles one task: gets the payload and a ``TaskContext``; returns the result."""

    def __call__(self, payload: Any, context: TaskContext, /) -> Awaitable[Any]: ...


class InstanceFactory(Protocol):
    """Makes the instance for a session key (plain or async). An instance with ``aclose()``
    or ``close()`` is closed when it expires or the pool shuts down."""

    def __call__(self, key: str, /) -> Any: ...


@dataclass(frozen=True)
class TaskContext:
    """What a handler knows about its task; ``emit`` streams a chunk to the submitter."""

    task_id: str
    task_type: str
    key: str | None
    attempt: int
    #: The message came back after its consumer died or gave it up: it may have run before.
    redelivered: bool
    instance: Any
    emit: Callable[[Any], None] = field(repr=False)


@dataclass(frozen=True)
class PoolHealth:
    """``running``: started and not shutting down; ``worker_count``: live workers;
    ``active_instances``: session instances kept; ``running_tasks``: handlers running now."""

    running: bool
    worker_count: int
    active_instances: int
    running_tasks: int
    queue: QueueStats


class TaskHandle:
    """The submitter's side of a task: ``await handle.result()`` and ``async for chunk in
    handle`` (the chunks the handler emitted, every attempt's, until the task ends)."""

    def __init__(self, task_id: str) -> None:
        self.id = task_id
        self._chunks: deque[Any] = deque()
        self._changed = asyncio.Event()
        self._ended = False
        self._result: Any = None
        self._error: BaseException | None = None

    def __repr__(self) -> str:
        return f"<TaskHandle {self.id} {'done' if self._ended else 'pending'}>"

    def done(self) -> bool:
        return self._ended

    async def result(self, timeout: float | None = None) -> Any:
        """The handler's return value; raises ``TaskFailedError`` or ``TaskAbandonedError``.
        Waits at most ``timeout`` seconds (``TimeoutError``)."""
        async with asyncio.timeout(timeout):
            while not self._ended:
                await self._changed.wait()
        if self._error is not None:
            raise self._error
        return self._result

    async def __aiter__(self) -> AsyncIterator[Any]:
        while True:
            while self._chunks:
                yield self._chunks.popleft()
            if self._ended:
                return
            await self._changed.wait()

    def _wake(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _emit(self, chunk: Any) -> None:
        self._chunks.append(chunk)
        self._wake()

    def _end(self, result: Any = None, error: BaseException | None = None) -> None:
        if not self._ended:
            self._ended, self._result, self._error = True, result, error
            self._wake()


@dataclass(frozen=True)
class _Registration:
    handler: TaskHandler
    instances: InstanceFactory | None


@dataclass
class _Instance:
    value: Any
    last_used: float
    users: int = 0
    # One task at a time per session: an agent's turns must not interleave.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class TaskManager:
    """Runs ``workers`` consumers of ``queue``; each task goes to the handler registered for
    its type.

    >>> pool = TaskManager(queue, workers=8)
    >>> pool.register("summarise", summarise, instances=Agent.for_session)
    >>> async with pool:
    ...     handle = await pool.submit("summarise", {"text": ...}, key="agent-7#session-3")
    ...     async for chunk in handle: print(chunk)
    ...     print(await handle.result())

    A failing handler is retried with the queue's backoff; its last failure dead-letters the
    message and fails the handle with ``TaskFailedError``. A task submitted with ``key`` gets
    the instance ``instances(key)`` made for that key, kept across tasks and closed after
    ``instance_ttl`` seconds unused (on ``clock``). Results and chunks reach handles of this
    manager; a task submitted elsewhere runs, its result is not delivered. The queue is not
    closed by the manager.
    """

    def __init__(
        self,
        queue: MessageQueue,
        *,
        workers: int = 8,
        instance_ttl: float = 600.0,
        cleanup_interval: float = 60.0,
        instance_close_timeout: float = 10.0,
        shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
        name: str = "",
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        if min(instance_ttl, cleanup_interval, instance_close_timeout) <= 0:
            raise ValueError("instance_ttl, cleanup_interval and close timeouts must be > 0")
        self.queue = queue
        self.name = name or queue.name
        self.shutdown_timeout = shutdown_timeout
        self._worker_count = workers
        self._instance_ttl = instance_ttl
        self._cleanup_interval = cleanup_interval
        self._instance_close_timeout = instance_close_timeout
        self._clock = clock
        self._registry: dict[str, _Registration] = {}
        self._handles: dict[str, TaskHandle] = {}
        self._instances: dict[tuple[str, str], _Instance] = {}
        self._instances_lock = asyncio.Lock()
        self._tasks = BackgroundTaskManager(name=f"workers of {self.name}")
        self._workers: set[asyncio.Task[None]] = set()
        self._idle: set[asyncio.Task[None]] = set()
        self._reaper: asyncio.Task[None] | None = None
        self._running_tasks = 0
        self._started = False
        self._stopping = False
        self._unavailable = False  # the broker is away (logged once per outage)
        self._shutdown: asyncio.Task[ShutdownStats] | None = None

    def __repr__(self) -> str:
        state = "stopped" if self._stopping else "running" if self._started else "new"
        return f"<TaskManager {self.name!r} {state} workers={len(self._workers)}>"

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if getattr(self, "_shutdown", True) is None:
            _warn(f"unclosed {self!r}", ResourceWarning, source=self)

    @property
    def closed(self) -> bool:
        """True once ``shutdown()`` has begun."""
        return self._shutdown is not None

    def register(
        self, task_type: str, handler: TaskHandler, *, instances: InstanceFactory | None = None
    ) -> None:
        """Handle tasks of ``task_type`` with ``handler``; ``instances`` makes the per-key
        instance for tasks submitted with a ``key``."""
        self._registry[task_type] = _Registration(handler, instances)

    async def start(self) -> None:
        """Start the queue (if needed), the workers and the instance reaper; idempotent."""
        if self._stopping:
            raise TaskPoolClosedError(f"{self!r} is shut down")
        if self._started:
            return
        self._started = True
        await self.queue.start()
        for index in range(self._worker_count):
            worker = self._tasks.create_task(self._work(), name=f"{self.name} worker {index}")
            self._workers.add(worker)
            worker.add_done_callback(self._workers.discard)
        self._reaper = self._tasks.create_task(self._reap(), name=f"{self.name} reaper")

    async def __aenter__(self) -> TaskManager:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.shutdown()

    async def submit(
        self,
        task_type: str,
        payload: Any = None,
        *,
        key: str | None = None,
        priority: int = 0,
        delay: float = 0.0,
    ) -> TaskHandle:
        """Enqueue a task; the handle gets its chunks and result."""
        if self._stopping:
            raise TaskPoolClosedError(f"{self!r} is shut down: it takes no new task")
        if task_type not in self._registry:
            raise LookupError(f"no handler registered for task type {task_type!r}")
        handle = TaskHandle(uuid.uuid4().hex)
        self._handles[handle.id] = handle
        message = {"type": task_type, "id": handle.id, "key": key, "payload": payload}
        try:
            await self.queue.enqueue(message, priority=priority, delay=delay)
        except BaseException:
            del self._handles[handle.id]
            raise
        return handle

    async def health(self) -> PoolHealth:
        return PoolHealth(
            running=self._started and not self._stopping,
            worker_count=len(self._workers),
            active_instances=len(self._instances),
            running_tasks=self._running_tasks,
            queue=await self.queue.stats(),
        )

    # --- workers ---------------------------------------------------------------------------

    async def _work(self) -> None:
        me = asyncio.current_task()
        assert me is not None
        while not self._stopping:
            self._idle.add(me)  # an idle worker holds no message: shutdown may cancel it
            try:
                delivery = await self.queue.receive()
            except MessageQueueClosedError:
                return
            except MessageQueueUnavailableError as exc:
                await self._outage(exc)  # still idle: nothing is held while waiting it out
                continue
            finally:
                self._idle.discard(me)
            if self._unavailable:
                self._unavailable = False
                logger.warning("%r: the queue's broker answers again", self)
            try:
                if delivery is not None:
                    await self._run(delivery)
            except MessageQueueUnavailableError as exc:
                # Its ack or nack did not reach the broker: the message comes back (at least
                # once), so the worker goes on rather than dying with the connection.
                await self._outage(exc)

    async def _outage(self, exc: MessageQueueUnavailableError) -> None:
        """The broker is away: say so once, then retry every ``OUTAGE_RETRY`` seconds."""
        if not self._unavailable:
            self._unavailable = True
            logger.warning("%r: %s; workers retry every %ss", self, exc, OUTAGE_RETRY)
        await asyncio.sleep(OUTAGE_RETRY)

    async def _run(self, delivery: Delivery) -> None:
        body = delivery.body
        task_type, task_id = body["type"], body["id"]
        registration = self._registry.get(task_type)
        handle = self._handles.get(task_id)
        if registration is None:
            await self.queue.nack(delivery, retry=False)
            logger.error("%r: no handler for task type %r; dead-lettered", self, task_type)
            return
        self._running_tasks += 1
        try:
            async with self.queue.renewing(delivery):
                result = await self._call(registration, delivery, handle)
        except asyncio.CancelledError:
            with contextlib.suppress(MessageQueueClosedError):
                await self.queue.nack(delivery, requeue=True)  # another worker will run it
            raise
        except Exception as exc:
            last = delivery.attempt >= self.queue.retry.max_attempts
            logger.warning(
                "%r: task %s (%s) attempt %d failed", self, task_id, task_type, delivery.attempt
            )
            with contextlib.suppress(MessageQueueClosedError):
                await self.queue.nack(delivery)
            if last and handle is not None:
                self._handles.pop(task_id, None)
                error = TaskFailedError(f"task {task_id} ({task_type}) failed {delivery.attempt}x")
                error.__cause__ = exc
                handle._end(error=error)
        else:
            with contextlib.suppress(MessageQueueClosedError):
                await self.queue.ack(delivery)
            if handle is not None:
                self._handles.pop(task_id, None)
                handle._end(result)
        finally:
            self._running_tasks -= 1

    async def _call(
        self, registration: _Registration, delivery: Delivery, handle: TaskHandle | None
    ) -> Any:
        body = delivery.body
        key = body["key"]

        def emit(chunk: Any) -> None:
            if handle is not None:
                handle._emit(chunk)

        def context(instance: Any) -> TaskContext:
            attempt, redelivered = delivery.attempt, delivery.redelivered
            return TaskContext(body["id"], body["type"], key, attempt, redelivered, instance, emit)

        if key is None or registration.instances is None:
            return await registration.handler(body["payload"], context(None))
        async with self._instance(body["type"], key, registration.instances) as instance:
            return await registration.handler(body["payload"], context(instance))

    # --- session instances -----------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _instance(
        self, task_type: str, key: str, factory: InstanceFactory
    ) -> AsyncIterator[Any]:
        async with self._instances_lock:
            entry = self._instances.get((task_type, key))
            if entry is None:
                value = factory(key)
                if inspect.isawaitable(value):
                    value = await value
                entry = self._instances[(task_type, key)] = _Instance(value, self._clock())
            entry.users += 1
        try:
            async with entry.lock:
                yield entry.value
        finally:
            entry.users -= 1
            entry.last_used = self._clock()

    async def cleanup_instances(self) -> int:
        """Close the instances unused for ``instance_ttl`` seconds; returns how many. Runs
        every ``cleanup_interval`` seconds by itself."""
        now = self._clock()
        async with self._instances_lock:
            expired = [
                (k, e)
                for k, e in self._instances.items()
                if e.users == 0 and now - e.last_used >= self._instance_ttl
            ]
            for k, _ in expired:
                del self._instances[k]
        # Closed outside the lock: a slow close must not hold up tasks of other sessions.
        for k, entry in expired:
            await self._close_instance(k, entry.value)
        return len(expired)

    async def _close_instance(self, key: tuple[str, str], value: Any) -> None:
        close = getattr(value, "aclose", None) or getattr(value, "close", None)
        if close is None:
            return
        try:
            async with asyncio.timeout(self._instance_close_timeout):
                outcome = close()
                if inspect.isawaitable(outcome):
                    await outcome
        except Exception:
            logger.exception("%r: closing the instance for %s#%s failed", self, *key)

    async def _reap(self) -> None:
        while True:
            await asyncio.sleep(self._cleanup_interval)  # a schedule, not a synchronisation
            await self.cleanup_instances()

    # --- shutdown --------------------------------------------------------------------------

    async def shutdown(
        self, timeout: float | None = None, *, grace: float | None = None
    ) -> ShutdownStats:
        """Stop taking tasks; give running handlers ``grace`` seconds (default: half of
        ``timeout``) to finish, then cancel the rest, whose messages go back to the queue, and
        wait for them until ``timeout`` seconds have passed in all. Then close every instance
        (each within ``instance_close_timeout``) and fail unfinished handles with
        ``TaskAbandonedError``.

        Idempotent: every call waits for the first and gets the same stats (those of the
        underlying ``BackgroundTaskManager``: ``initial_tasks`` counts the handlers that had
        to be cancelled).
        """
        total = self.shutdown_timeout if timeout is None else timeout
        if total < 0 or (grace is not None and not 0 <= grace <= total):
            raise ValueError("timeout must be 0 or more, and grace within 0..timeout")
        if self._shutdown is None:
            self._stopping = True
            self._shutdown = asyncio.get_running_loop().create_task(
                self._stop(total, total / 2 if grace is None else grace),
                name=f"shutdown of {self!r}",
            )
        return await asyncio.shield(self._shutdown)

    async def aclose(self) -> None:
        await self.shutdown()

    async def _stop(self, timeout: float, grace: float) -> ShutdownStats:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if self._reaper is not None:
            self._reaper.cancel()
        for worker in list(self._idle):
            worker.cancel()
        # Busy workers end after their current task; the reaper and idle ones end now.
        waiting = {t for t in self._tasks.tasks if not t.done()}
        if waiting and grace:
            await asyncio.wait(waiting, timeout=grace)
        stats = await self._tasks.shutdown(max(0.0, deadline - loop.time()))
        entries = list(self._instances.items())
        self._instances.clear()
        for key, entry in entries:
            await self._close_instance(key, entry.value)
        for handle in self._handles.values():
            handle._end(error=TaskAbandonedError(f"{self!r} shut down before task {handle.id}"))
        self._handles.clear()
        return stats
