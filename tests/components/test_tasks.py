from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
import logging
import tracemalloc
import weakref
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from pytest_resources.components.tasks import (
    BackgroundTaskManager,
    PendingLimitError,
    TaskManagerClosedError,
)

FACTORIES = [pytest.param(None, id="default-factory")]
if hasattr(asyncio, "eager_task_factory"):  # Python 3.12+
    FACTORIES.append(pytest.param(asyncio.eager_task_factory, id="eager-factory"))


@pytest_asyncio.fixture(params=FACTORIES)
async def task_factory(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """Run the test on a loop with each task factory (eager ones finish tasks inside
    create_task)."""
    loop = asyncio.get_running_loop()
    loop.set_task_factory(request.param)
    yield
    loop.set_task_factory(None)


@pytest_asyncio.fixture
async def manager(task_factory: None) -> AsyncIterator[BackgroundTaskManager]:
    m = BackgroundTaskManager(name="test")
    yield m
    await m.shutdown(timeout=5)


class Stubborn:
    """Tasks that swallow cancellation until ``release`` is set."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.cancelled = 0
        self.started = 0
        self.all_started = asyncio.Event()
        self.expected = 1

    async def run(self) -> None:
        self.started += 1
        if self.started == self.expected:
            self.all_started.set()
        while not self.release.is_set():
            try:
                await self.release.wait()
            except asyncio.CancelledError:
                self.cancelled += 1


async def forever() -> None:
    await asyncio.Event().wait()


# --- create_task, wait_for_all, references -------------------------------------------------


@pytest.mark.asyncio
async def test_create_task_returns_the_task_and_runs_it(manager: BackgroundTaskManager) -> None:
    async def double(x: int) -> int:
        await asyncio.sleep(0)
        return 2 * x

    task = manager.create_task(double(21), name="doubler")
    assert isinstance(task, asyncio.Task)
    assert task.get_name() == "doubler"
    assert await task == 42


@pytest.mark.asyncio
async def test_manager_holds_a_running_task_and_drops_it_when_done() -> None:
    gate = asyncio.Event()

    async def wait_gate() -> None:
        await gate.wait()

    async with BackgroundTaskManager() as manager:
        ref = weakref.ref(manager.create_task(wait_gate()))
        gc.collect()
        assert ref() is not None
        assert len(manager) == 1
        gate.set()
        await manager.wait_for_all()
        gc.collect()
        assert ref() is None  # the finished task's metadata is released
        assert len(manager) == 0


@pytest.mark.asyncio
async def test_wait_for_all_waits_for_nested_tasks(manager: BackgroundTaskManager) -> None:
    done: list[int] = []

    async def spawn(depth: int) -> None:
        await asyncio.sleep(0)
        if depth:
            manager.create_task(spawn(depth - 1))
            manager.create_task(spawn(depth - 1))
        done.append(depth)

    manager.create_task(spawn(4))
    await manager.wait_for_all()
    assert len(done) == 31
    assert len(manager) == 0
    stats = manager.stats()
    assert (stats.created, stats.completed, stats.active) == (31, 31, 0)


@pytest.mark.asyncio
async def test_wait_for_all_with_no_task_returns_at_once() -> None:
    async with BackgroundTaskManager() as manager:
        await manager.wait_for_all()
        assert manager.stats().created == 0


# --- failures ------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_failures_are_collected_logged_and_counted(
    manager: BackgroundTaskManager, caplog: pytest.LogCaptureFixture
) -> None:
    async def boom() -> None:
        raise ValueError("boom")

    task = manager.create_task(boom(), name="exploder")
    await manager.wait_for_all()
    assert task.done()
    del task
    gc.collect()
    assert manager.stats().failed == 1
    [failure] = manager.failures
    assert failure.name == "exploder"
    assert isinstance(failure.exception, ValueError)
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR] == [
        "background task 'exploder' failed"
    ]
    assert "never retrieved" not in caplog.text
    assert manager.take_failures() == [failure]
    assert manager.failures == ()
    assert manager.stats().failed == 1


@pytest.mark.asyncio
async def test_on_error_handler_sees_failures_instead_of_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[tuple[str, BaseException]] = []

    def handler(task: asyncio.Task[Any], exc: BaseException) -> None:
        seen.append((task.get_name(), exc))

    async def boom() -> None:
        raise KeyError("k")

    async with BackgroundTaskManager(on_error=handler) as manager:
        manager.create_task(boom(), name="k")
        await manager.wait_for_all()
        assert [(name, type(exc)) for name, exc in seen] == [("k", KeyError)]
        assert manager.failures == ()
        assert manager.stats().failed == 1
    assert not caplog.records


@pytest.mark.asyncio
async def test_failing_on_error_handler_is_logged_and_the_failure_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def handler(task: asyncio.Task[Any], exc: BaseException) -> None:
        raise RuntimeError("handler bug")

    async def boom() -> None:
        raise KeyError("k")

    async with BackgroundTaskManager(on_error=handler) as manager:
        manager.create_task(boom(), name="k")
        await manager.wait_for_all()
        assert [type(f.exception) for f in manager.take_failures()] == [KeyError]
    messages = [r.getMessage() for r in caplog.records]
    assert any("on_error" in m and "'k'" in m for m in messages)
    assert "background task 'k' failed" in messages


@pytest.mark.asyncio
async def test_only_the_last_max_failures_are_kept(caplog: pytest.LogCaptureFixture) -> None:
    async def boom(i: int) -> None:
        raise ValueError(i)

    async with BackgroundTaskManager(max_failures=3) as manager:
        for i in range(10):
            manager.create_task(boom(i), name=f"b{i}")
        await manager.wait_for_all()
        assert [f.name for f in manager.take_failures()] == ["b7", "b8", "b9"]
        assert manager.stats().failed == 10


@pytest.mark.asyncio
async def test_a_task_cancelled_by_its_owner_counts_as_cancelled_not_failed(
    manager: BackgroundTaskManager,
) -> None:
    task = manager.create_task(forever())
    await asyncio.sleep(0)
    task.cancel()
    await manager.wait_for_all()
    stats = manager.stats()
    assert (stats.cancelled, stats.failed, stats.completed) == (1, 0, 1)
    assert manager.failures == ()


# --- limits --------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_limit_caps_running_tasks_and_starts_waiting_ones_in_order(
    task_factory: None,
) -> None:
    limited = BackgroundTaskManager(limit=2)
    release = asyncio.Event()
    running = 0
    peak = 0
    order: list[int] = []

    async def work(i: int) -> int:
        nonlocal running, peak
        order.append(i)
        running += 1
        peak = max(peak, running)
        await release.wait()
        running -= 1
        return i

    async with limited:
        tasks = [limited.create_task(work(i)) for i in range(6)]
        await asyncio.sleep(0)
        assert (limited.active_count, limited.pending_count, len(limited)) == (2, 4, 6)
        assert order == [0, 1]
        release.set()
        await limited.wait_for_all()
        assert [t.result() for t in tasks] == list(range(6))
    assert peak == 2
    assert order == list(range(6))
    assert limited.pending_count == 0


@pytest.mark.asyncio
async def test_pending_limit_refuses_and_closes_the_coroutine() -> None:
    async with BackgroundTaskManager(limit=1, pending_limit=1) as manager:
        manager.create_task(forever())
        manager.create_task(forever())
        refused = forever()
        with pytest.raises(PendingLimitError, match="1 tasks running and 1 waiting"):
            manager.create_task(refused)
        assert inspect.getcoroutinestate(refused) == inspect.CORO_CLOSED
        assert len(manager) == 2


@pytest.mark.asyncio
async def test_cancelling_a_waiting_task_frees_its_place_and_never_starts_it() -> None:
    started: list[str] = []
    release = asyncio.Event()

    async def work(name: str) -> None:
        started.append(name)
        await release.wait()

    async with BackgroundTaskManager(limit=1, pending_limit=1) as manager:
        manager.create_task(work("a"))
        waiting = manager.create_task(work("b"))
        await asyncio.sleep(0)
        waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiting
        assert manager.pending_count == 0
        manager.create_task(work("c"))  # the waiting room has room again
        release.set()
        await manager.wait_for_all()
    assert started == ["a", "c"]


@pytest.mark.asyncio
async def test_a_task_cancelled_after_being_granted_a_slot_passes_it_on(
    task_factory: None,
) -> None:
    started: list[str] = []
    release = asyncio.Event()
    tasks: dict[str, asyncio.Task[None]] = {}

    async def first() -> None:
        started.append("first")
        await release.wait()
        # Queued before the slot is handed to "second", so "second" is cancelled after the
        # grant and before it runs.
        asyncio.get_running_loop().call_soon(tasks["second"].cancel)

    async def work(name: str) -> None:
        started.append(name)

    async with BackgroundTaskManager(limit=1) as manager:
        manager.create_task(first())
        tasks["second"] = manager.create_task(work("second"))
        manager.create_task(work("third"))
        await asyncio.sleep(0)
        release.set()
        await manager.wait_for_all()
        assert tasks["second"].cancelled()
        assert (manager.pending_count, manager.active_count) == (0, 0)
        manager.create_task(work("fourth"))  # the slot was not lost
        await manager.wait_for_all()
    assert started == ["first", "third", "fourth"]


@pytest.mark.asyncio
async def test_tasks_cancelled_before_their_first_step_give_back_slot_and_place(
    task_factory: None,
) -> None:
    async def work() -> str:
        await asyncio.sleep(0)
        return "ran"

    async with BackgroundTaskManager(limit=1, pending_limit=1) as manager:
        coros = [work(), work()]
        holding, waiting = (manager.create_task(c) for c in coros)
        holding.cancel()
        waiting.cancel()
        await manager.wait_for_all()
        assert holding.cancelled()
        assert waiting.cancelled()
        assert all(inspect.getcoroutinestate(c) == inspect.CORO_CLOSED for c in coros)
        assert (manager.pending_count, manager.active_count) == (0, 0)
        again = [manager.create_task(work()), manager.create_task(work())]
        await manager.wait_for_all()
        assert [t.result() for t in again] == ["ran", "ran"]


@pytest.mark.asyncio
async def test_shutdown_right_after_create_task_closes_every_coroutine(
    task_factory: None,
) -> None:
    manager = BackgroundTaskManager(limit=2)
    coros = [forever() for _ in range(5)]
    tasks = [manager.create_task(c) for c in coros]
    stats = await manager.shutdown(timeout=5)
    assert (stats["status"], stats["completed_tasks"]) == ("cancelled", 5)
    assert all(t.cancelled() for t in tasks)
    assert all(inspect.getcoroutinestate(c) == inspect.CORO_CLOSED for c in coros)
    assert (manager.pending_count, manager.active_count, len(manager)) == (0, 0, 0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"limit": 0}, "limit must be at least 1"),
        ({"pending_limit": 5}, "pending_limit needs a limit"),
        ({"limit": 1, "pending_limit": -1}, "pending_limit needs a limit"),
        ({"shutdown_timeout": -1}, "shutdown_timeout must be 0 or more"),
    ],
)
def test_invalid_settings_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BackgroundTaskManager(**kwargs)


# --- shutdown ------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_shutdown_cancels_running_tasks_and_reports(manager: BackgroundTaskManager) -> None:
    tasks = [manager.create_task(forever(), name=f"f{i}") for i in range(3)]
    await asyncio.sleep(0)
    stats = await manager.shutdown(timeout=5)
    assert stats["status"] == "cancelled"
    assert (stats["initial_tasks"], stats["completed_tasks"], stats["remaining_tasks"]) == (
        3,
        3,
        0,
    )
    assert stats["stuck_tasks"] == []
    assert 0 <= stats["duration_seconds"] < 5
    assert all(t.cancelled() for t in tasks)
    assert manager.closed
    assert manager.stats().cancelled == 3


@pytest.mark.asyncio
async def test_shutdown_of_an_idle_manager_is_clean() -> None:
    manager = BackgroundTaskManager()
    stats = await manager.shutdown()
    assert stats["status"] == "clean"
    assert stats["initial_tasks"] == 0


@pytest.mark.asyncio
async def test_create_task_after_shutdown_raises_and_closes_the_coroutine() -> None:
    manager = BackgroundTaskManager(name="done")
    await manager.shutdown()
    coro = forever()
    with pytest.raises(TaskManagerClosedError, match="'done' closed"):
        manager.create_task(coro)
    assert inspect.getcoroutinestate(coro) == inspect.CORO_CLOSED


@pytest.mark.asyncio
async def test_shutdown_timeout_is_one_deadline_and_names_the_stuck_tasks(
    task_factory: None, caplog: pytest.LogCaptureFixture
) -> None:
    stubborn = Stubborn()
    stubborn.expected = 50
    manager = BackgroundTaskManager()
    tasks = [manager.create_task(stubborn.run(), name=f"stubborn-{i}") for i in range(50)]
    await stubborn.all_started.wait()
    stats = await manager.shutdown(timeout=0.2)
    # A per-task timeout would take 50 x 0.2 s; one deadline takes 0.2 s.
    assert 0.2 <= stats["duration_seconds"] < 5
    assert stats["status"] == "timed_out"
    assert (stats["initial_tasks"], stats["completed_tasks"], stats["remaining_tasks"]) == (
        50,
        0,
        50,
    )
    assert sorted(s["name"] for s in stats["stuck_tasks"]) == sorted(t.get_name() for t in tasks)
    assert any("in run" in line for line in stats["stuck_tasks"][0]["stack"])
    assert stubborn.cancelled == 50  # cancelled once each, not again and again
    assert "50 task(s) ignored cancellation" in caplog.text
    stubborn.release.set()
    await manager.wait_for_all()
    assert await manager.shutdown() == stats  # later calls get the first call's stats


@pytest.mark.asyncio
async def test_shutdown_waits_for_tasks_that_clean_up_on_cancel(task_factory: None) -> None:
    cleaned = asyncio.Event()
    in_cleanup = asyncio.Event()
    allow = asyncio.Event()

    async def careful() -> None:
        try:
            await forever()
        finally:
            in_cleanup.set()
            await allow.wait()
            cleaned.set()

    manager = BackgroundTaskManager()
    manager.create_task(careful())
    await asyncio.sleep(0)
    shutting = asyncio.create_task(manager.shutdown(timeout=10))
    await in_cleanup.wait()
    assert not shutting.done()
    allow.set()
    stats = await shutting
    assert cleaned.is_set()
    assert stats["status"] == "cancelled"


@pytest.mark.asyncio
async def test_timeout_zero_cancels_without_waiting() -> None:
    manager = BackgroundTaskManager()
    task = manager.create_task(forever())
    await asyncio.sleep(0)
    stats = await manager.shutdown(timeout=0)
    assert (stats["status"], stats["remaining_tasks"]) == ("timed_out", 1)
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert task.cancelled()


@pytest.mark.asyncio
async def test_negative_shutdown_timeout_is_refused() -> None:
    manager = BackgroundTaskManager()
    with pytest.raises(ValueError, match="timeout must be 0 or more"):
        await manager.shutdown(timeout=-1)
    assert not manager.closed
    await manager.shutdown()


@pytest.mark.asyncio
async def test_concurrent_shutdowns_wait_for_the_first_and_get_the_same_stats(
    task_factory: None,
) -> None:
    release = asyncio.Event()
    exited = 0

    async def slow_exit() -> None:
        nonlocal exited
        try:
            await forever()
        finally:
            await release.wait()
            exited += 1

    manager = BackgroundTaskManager()
    for _ in range(5):
        manager.create_task(slow_exit())
    await asyncio.sleep(0)
    callers = [asyncio.create_task(manager.shutdown(timeout=10)) for _ in range(10)]
    await asyncio.sleep(0.01)
    assert not any(c.done() for c in callers)  # nobody returns while the first still works
    release.set()
    results = await asyncio.gather(*callers)
    assert exited == 5
    assert all(r == results[0] for r in results)
    assert results[0]["completed_tasks"] == 5
    results[0]["stuck_tasks"].append({"name": "x", "stack": []})
    assert (await manager.shutdown())["stuck_tasks"] == []  # each caller gets its own copy


@pytest.mark.asyncio
async def test_cancelled_shutdown_caller_gets_cancelled_and_shutdown_carries_on(
    task_factory: None,
) -> None:
    release = asyncio.Event()
    in_cleanup = asyncio.Event()

    async def slow_exit() -> None:
        try:
            await forever()
        finally:
            in_cleanup.set()
            await release.wait()

    manager = BackgroundTaskManager()
    worker = manager.create_task(slow_exit())
    await asyncio.sleep(0)
    caller = asyncio.create_task(manager.shutdown(timeout=10))
    await in_cleanup.wait()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert caller.cancelled()
    assert manager.closed
    assert not worker.done()
    release.set()
    stats = await manager.shutdown()
    assert stats["status"] == "cancelled"
    assert worker.cancelled()


@pytest.mark.asyncio
async def test_shutdown_called_from_a_managed_task_does_not_deadlock(task_factory: None) -> None:
    manager = BackgroundTaskManager()
    others = [manager.create_task(forever()) for _ in range(3)]

    async def stop_all() -> None:
        await manager.shutdown(timeout=5)

    stopper = manager.create_task(stop_all())
    await asyncio.sleep(0)
    stats = await manager.shutdown()
    assert stats["status"] == "cancelled"
    assert stats["initial_tasks"] == 4
    assert stopper.cancelled()  # it was one of the tasks the shutdown ended
    assert all(t.cancelled() for t in others)


@pytest.mark.asyncio
async def test_work_spawned_during_shutdown_is_refused(task_factory: None) -> None:
    refused: list[BaseException] = []
    manager = BackgroundTaskManager()

    async def spawns_on_cancel() -> None:
        try:
            await forever()
        except asyncio.CancelledError:
            try:
                manager.create_task(forever())
            except TaskManagerClosedError as exc:
                refused.append(exc)
            raise

    manager.create_task(spawns_on_cancel())
    await asyncio.sleep(0)
    stats = await manager.shutdown(timeout=5)
    assert len(refused) == 1
    assert (stats["initial_tasks"], stats["completed_tasks"]) == (1, 1)
    assert len(manager) == 0


@pytest.mark.asyncio
async def test_shutdown_does_not_uncancel_the_tasks_it_cancels(task_factory: None) -> None:
    seen: list[int] = []

    async def note_cancelling() -> None:
        try:
            await forever()
        finally:
            task = asyncio.current_task()
            assert task is not None
            seen.append(task.cancelling())

    manager = BackgroundTaskManager()
    task = manager.create_task(note_cancelling())
    await asyncio.sleep(0)
    await manager.shutdown()
    assert seen == [1]
    assert task.cancelling() == 1
    assert task.cancelled()


# --- context manager and close -------------------------------------------------------------


@pytest.mark.asyncio
async def test_context_exit_shuts_down(task_factory: None) -> None:
    async with BackgroundTaskManager() as manager:
        task = manager.create_task(forever())
        await asyncio.sleep(0)
    assert manager.closed
    assert task.cancelled()


@pytest.mark.asyncio
async def test_body_exception_propagates_after_shutdown(task_factory: None) -> None:
    with pytest.raises(ValueError, match="body"):  # noqa: PT012 - the body is the subject
        async with BackgroundTaskManager() as manager:
            task = manager.create_task(forever())
            await asyncio.sleep(0)
            raise ValueError("body")
    assert task.cancelled()
    assert manager.closed


@pytest.mark.asyncio
async def test_cancelled_body_propagates_cancellation() -> None:
    entered = asyncio.Event()
    managers: list[BackgroundTaskManager] = []

    async def body() -> None:
        async with BackgroundTaskManager() as manager:
            managers.append(manager)
            manager.create_task(forever())
            entered.set()
            await forever()

    outer = asyncio.create_task(body())
    await entered.wait()
    outer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await outer
    assert managers[0].closed
    assert len(managers[0]) == 0


@pytest.mark.asyncio
async def test_aclose_fits_contextlib_aclosing() -> None:
    async with contextlib.aclosing(BackgroundTaskManager(shutdown_timeout=1)) as manager:
        task = manager.create_task(forever())
        await asyncio.sleep(0)
    assert task.cancelled()
    assert manager.closed


def test_an_unclosed_manager_warns_when_collected() -> None:
    manager = BackgroundTaskManager(name="forgotten")
    with pytest.warns(ResourceWarning, match="unclosed <BackgroundTaskManager 'forgotten' open"):
        del manager  # no cycle: the refcount drop runs __del__ here


@pytest.mark.asyncio
async def test_a_closed_manager_is_collected_silently() -> None:
    manager = BackgroundTaskManager()
    await manager.shutdown()
    ref = weakref.ref(manager)
    del manager
    gc.collect()
    assert ref() is None  # filterwarnings=error would have turned a warning into a failure


@pytest.mark.asyncio
async def test_repr_and_counts() -> None:
    manager = BackgroundTaskManager(name="r")
    task = manager.create_task(forever())
    assert repr(manager) == "<BackgroundTaskManager 'r' open tasks=1>"
    assert manager.tasks == frozenset({task})
    assert (len(manager), manager.active_count, manager.pending_count) == (1, 1, 0)
    await manager.shutdown()
    assert repr(manager) == "<BackgroundTaskManager 'r' closed tasks=0>"


# --- memory --------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_100k_finished_tasks_leave_no_growth(manager: BackgroundTaskManager) -> None:
    async def noop() -> None:
        pass

    async def run(n: int) -> None:
        for _ in range(n // 1000):
            for _ in range(1000):
                manager.create_task(noop())
            await manager.wait_for_all()

    await run(10_000)  # warm up free lists and caches
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        await run(100_000)
        gc.collect()
        growth = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert manager.stats().completed == 110_000
    assert len(manager) == 0
    # Under 10 bytes a task: a task kept by mistake costs hundreds.
    assert growth < 1_000_000, f"{growth} bytes kept after 100k tasks"
