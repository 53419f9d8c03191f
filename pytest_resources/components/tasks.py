"""``BackgroundTaskManager``: fire-and-forget asyncio tasks that are kept, limited, watched
and shut down under one deadline."""

from __future__ import annotations

import asyncio
import copy
import logging
import warnings
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal, Protocol, TypedDict, TypeVar

from ..awaits import await_chain

__all__ = [
    "BackgroundTaskManager",
    "FailureHandler",
    "PendingLimitError",
    "ShutdownStats",
    "StuckTask",
    "TaskFailure",
    "TaskManagerClosedError",
    "TaskStats",
]

T = TypeVar("T")
logger = logging.getLogger(__name__)

DEFAULT_SHUTDOWN_TIMEOUT = 30.0


class TaskManagerClosedError(RuntimeError):
    """``create_task`` was called on a manager that is shut down or shutting down."""


class PendingLimitError(RuntimeError):
    """``create_task`` found ``limit`` tasks running and ``pending_limit`` already waiting."""


class FailureHandler(Protocol):
    """Called with each task that ended with an exception (instead of the error log)."""

    def __call__(self, task: asyncio.Task[Any], exception: BaseException, /) -> None: ...


@dataclass(frozen=True)
class TaskFailure:
    """A task that ended with an exception nobody had handled."""

    name: str
    exception: BaseException


@dataclass(frozen=True)
class TaskStats:
    """Counters of a manager at one moment; ``failed`` includes handled failures."""

    active: int
    pending: int
    created: int
    completed: int
    failed: int
    cancelled: int
    closed: bool


class StuckTask(TypedDict):
    """A task that was cancelled and had not exited when the shutdown deadline passed."""

    name: str
    stack: list[str]


class ShutdownStats(TypedDict):
    """What ``shutdown()`` did.

    ``status`` is ``"clean"`` when no task was left to cancel, ``"cancelled"`` when every
    cancelled task exited in time and ``"timed_out"`` when ``remaining_tasks`` did not.
    ``initial_tasks`` counts the tasks it had to end (unfinished when it began, plus any that
    an eager task factory registered while it ran): ``completed_tasks + remaining_tasks``.
    """

    status: Literal["clean", "cancelled", "timed_out"]
    initial_tasks: int
    completed_tasks: int
    remaining_tasks: int
    duration_seconds: float
    stuck_tasks: list[StuckTask]


class BackgroundTaskManager:
    """Owns background tasks: keeps them referenced, limits them, collects their failures and
    ends them all under one deadline.

    >>> async with BackgroundTaskManager(limit=10) as manager:
    ...     manager.create_task(poll(), name="poller")
    ...     await manager.wait_for_all()

    ``limit`` caps how many tasks run at once; the others wait, up to ``pending_limit`` of
    them (then ``create_task`` raises ``PendingLimitError``). A task that raises is logged
    (or passed to ``on_error``) and kept in ``failures`` (the last ``max_failures`` of them)
    until ``take_failures()``; its exception is never "never retrieved".
    """

    def __init__(
        self,
        *,
        limit: int | None = None,
        pending_limit: int | None = None,
        on_error: FailureHandler | None = None,
        max_failures: int = 100,
        shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
        name: str = "",
    ) -> None:
        if limit is not None and limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        if pending_limit is not None and (limit is None or pending_limit < 0):
            raise ValueError("pending_limit needs a limit and must be 0 or more")
        if shutdown_timeout < 0:
            raise ValueError(f"shutdown_timeout must be 0 or more, got {shutdown_timeout}")
        self.name = name
        #: Seconds ``aclose()`` and ``async with`` give ``shutdown()``.
        self.shutdown_timeout = shutdown_timeout
        self._limit = limit
        self._pending_limit = pending_limit
        self._on_error = on_error
        self._tasks: set[asyncio.Task[Any]] = set()
        self._failures: deque[TaskFailure] = deque(maxlen=max_failures)
        # Slots handed out under ``limit``; a waiting task holds an unresolved gate.
        self._running = 0
        self._gates: deque[asyncio.Future[None]] = deque()
        self._waiting = 0
        self._created = 0
        self._completed = 0
        self._failed = 0
        self._cancelled = 0
        self._closed = False
        self._shutdown: asyncio.Task[ShutdownStats] | None = None

    def __repr__(self) -> str:
        name = f" {self.name!r}" if self.name else ""
        state = "closed" if self._closed else "open"
        return f"<BackgroundTaskManager{name} {state} tasks={len(self._tasks)}>"

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if not getattr(self, "_closed", True):
            _warn(f"unclosed {self!r}", ResourceWarning, source=self)

    def __len__(self) -> int:
        return len(self._tasks)

    @property
    def closed(self) -> bool:
        """True once ``shutdown()`` has begun: new tasks are refused."""
        return self._closed

    @property
    def tasks(self) -> frozenset[asyncio.Task[Any]]:
        """The unfinished tasks, as of now."""
        return frozenset(self._tasks)

    @property
    def pending_count(self) -> int:
        """Tasks waiting for a slot under ``limit``."""
        return self._waiting

    @property
    def active_count(self) -> int:
        """Unfinished tasks that are not waiting for a slot."""
        return len(self._tasks) - self._waiting

    @property
    def failures(self) -> tuple[TaskFailure, ...]:
        """Failures not yet taken (oldest first), without taking them."""
        return tuple(self._failures)

    def take_failures(self) -> list[TaskFailure]:
        """Return and forget the failures collected so far: they count as seen."""
        taken = list(self._failures)
        self._failures.clear()
        return taken

    def stats(self) -> TaskStats:
        return TaskStats(
            active=self.active_count,
            pending=self._waiting,
            created=self._created,
            completed=self._completed,
            failed=self._failed,
            cancelled=self._cancelled,
            closed=self._closed,
        )

    def create_task(
        self, coro: Coroutine[Any, Any, T], *, name: str | None = None
    ) -> asyncio.Task[T]:
        """Start ``coro`` as a task this manager keeps until it ends; returns the task.

        Raises ``TaskManagerClosedError`` after ``shutdown()`` began and ``PendingLimitError``
        when the waiting room is full; ``coro`` is closed in both cases.
        """
        if self._closed:
            coro.close()
            raise TaskManagerClosedError(f"{self!r} is shut down: it starts no new task")
        loop = asyncio.get_running_loop()
        if self._limit is None:
            task = loop.create_task(coro, name=name)
            task.add_done_callback(self._on_done)
        else:
            gate = self._gate(coro, loop)
            task = loop.create_task(_after(gate, coro), name=name)
            task.add_done_callback(partial(self._on_limited_done, coro, gate))
        self._created += 1
        self._tasks.add(task)
        return task

    def _gate(
        self, coro: Coroutine[Any, Any, Any], loop: asyncio.AbstractEventLoop
    ) -> asyncio.Future[None] | None:
        """A slot now (None), or a future resolved when one frees up."""
        assert self._limit is not None
        if self._running < self._limit:
            self._running += 1
            return None
        if self._pending_limit is not None and self._waiting >= self._pending_limit:
            coro.close()
            raise PendingLimitError(
                f"{self!r}: {self._limit} tasks running and {self._waiting} waiting"
            )
        gate: asyncio.Future[None] = loop.create_future()
        self._gates.append(gate)
        self._waiting += 1
        return gate

    def _on_limited_done(
        self,
        coro: Coroutine[Any, Any, Any],
        gate: asyncio.Future[None] | None,
        task: asyncio.Task[Any],
    ) -> None:
        # Settled here, not inside the task: a task cancelled before its first step never
        # runs a line of its coroutine, yet its slot or place in line must be given back.
        coro.close()  # a no-op unless the task ended before starting it
        if gate is None or (gate.done() and not gate.cancelled()):
            self._release()
        else:
            gate.cancel()
            self._waiting -= 1
        self._on_done(task)

    def _release(self) -> None:
        """Hand the slot to the oldest waiting task, or give it back."""
        while self._gates:
            gate = self._gates.popleft()
            if not gate.done():  # cancelled gates were counted off by their task
                self._waiting -= 1
                gate.set_result(None)
                return
        self._running -= 1

    def _on_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        self._completed += 1
        if task.cancelled():
            self._cancelled += 1
            return
        exc = task.exception()
        if exc is None:
            return
        self._failed += 1
        if self._on_error is not None:
            try:
                self._on_error(task, exc)
            except Exception:
                logger.exception("on_error of %r raised for task %r", self, task.get_name())
            else:
                return
        logger.error("background task %r failed", task.get_name(), exc_info=exc)
        self._failures.append(TaskFailure(task.get_name(), exc))

    async def wait_for_all(self) -> None:
        """Wait until no task is left, including tasks started while waiting."""
        while self._tasks:
            await asyncio.wait(list(self._tasks))

    async def shutdown(self, timeout: float = DEFAULT_SHUTDOWN_TIMEOUT) -> ShutdownStats:
        """Refuse new tasks, cancel the running ones and wait for them, all within ``timeout``
        seconds overall.

        Safe to call more than once and from several tasks at once: every call waits for the
        first one and gets the same stats. Cancelling a caller raises ``CancelledError`` in that
        caller while the shutdown itself carries on.
        """
        if timeout < 0:
            raise ValueError(f"timeout must be 0 or more, got {timeout}")
        if self._shutdown is None:
            self._closed = True
            self._shutdown = asyncio.get_running_loop().create_task(
                self._end_all(timeout), name=f"shutdown of {self!r}"
            )
        return copy.deepcopy(await asyncio.shield(self._shutdown))

    async def aclose(self) -> None:
        """``shutdown()`` with the manager's ``shutdown_timeout``, for ``contextlib.aclosing``."""
        await self.shutdown(self.shutdown_timeout)

    async def __aenter__(self) -> BackgroundTaskManager:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.shutdown(self.shutdown_timeout)

    async def _end_all(self, timeout: float) -> ShutdownStats:
        loop = asyncio.get_running_loop()
        start = loop.time()
        deadline = start + timeout
        cancelled: set[asyncio.Task[Any]] = set()
        # Loop because a task can still appear, e.g. one an eager task factory ran to its
        # first await inside create_task() while this shutdown began.
        while pending := {t for t in self._tasks if not t.done()}:
            for task in pending - cancelled:
                task.cancel()
            cancelled |= pending
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            await asyncio.wait(pending, timeout=remaining)
        stuck = [t for t in cancelled if not t.done()]
        if stuck:
            logger.error("%r: %d task(s) ignored cancellation for %ss", self, len(stuck), timeout)
        return ShutdownStats(
            status="timed_out" if stuck else "cancelled" if cancelled else "clean",
            initial_tasks=len(cancelled),
            completed_tasks=len(cancelled) - len(stuck),
            remaining_tasks=len(stuck),
            duration_seconds=loop.time() - start,
            stuck_tasks=[
                StuckTask(name=t.get_name(), stack=await_chain(t.get_coro())) for t in stuck
            ],
        )


async def _after(gate: asyncio.Future[None] | None, coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` once ``gate`` (if any) lets it."""
    if gate is not None:
        await gate
    return await coro
