"""BackgroundTaskManager under load: many tasks, deep spawning, many shutdown callers."""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from pytest_resources.components.tasks import BackgroundTaskManager, TaskManagerClosedError

pytestmark = [pytest.mark.slow, pytest.mark.asyncio]

N = 100_000
FACTORIES = [pytest.param(None, id="default-factory")]
if hasattr(asyncio, "eager_task_factory"):  # Python 3.12+
    FACTORIES.append(pytest.param(asyncio.eager_task_factory, id="eager-factory"))


@pytest_asyncio.fixture(params=FACTORIES)
async def task_factory(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    loop = asyncio.get_running_loop()
    loop.set_task_factory(request.param)
    yield
    loop.set_task_factory(None)


async def blocked() -> None:
    # Its own future: cancelling 100k waiters of one Event costs O(n) each inside Event.
    await asyncio.get_running_loop().create_future()


@pytest.mark.parametrize("limit", [None, 100])
async def test_100k_blocked_tasks_are_all_cancelled_by_one_shutdown(
    task_factory: None, limit: int | None
) -> None:
    manager = BackgroundTaskManager(limit=limit)
    tasks = [manager.create_task(blocked()) for _ in range(N)]
    await asyncio.sleep(0)
    assert len(manager) == N
    if limit is not None:
        assert (manager.active_count, manager.pending_count) == (limit, N - limit)
    stats = await manager.shutdown(timeout=50)
    assert stats["status"] == "cancelled"
    assert (stats["initial_tasks"], stats["completed_tasks"], stats["remaining_tasks"]) == (N, N, 0)
    assert all(t.cancelled() for t in tasks)
    assert (len(manager), manager.pending_count, manager.active_count) == (0, 0, 0)
    assert manager.stats().cancelled == N


async def test_100k_tasks_cancelled_one_by_one_while_others_complete(task_factory: None) -> None:
    async def quick(i: int) -> int:
        await asyncio.sleep(0)
        return i

    async with BackgroundTaskManager(limit=1000) as manager:
        stuck = [manager.create_task(blocked()) for _ in range(N // 2)]
        quick_ones = [manager.create_task(quick(i)) for i in range(N // 2)]
        for task in stuck:
            task.cancel()
        await manager.wait_for_all()
        stats = manager.stats()
        assert (stats.created, stats.completed, stats.cancelled, stats.failed) == (N, N, N // 2, 0)
        assert sum(t.result() for t in quick_ones) == sum(range(N // 2))
        assert manager.pending_count == 0


async def test_100k_created_and_completed_with_a_limit_keep_no_memory(task_factory: None) -> None:
    async def noop() -> None:
        await asyncio.sleep(0)

    async with BackgroundTaskManager(limit=50) as manager:

        async def batch(n: int) -> None:
            for _ in range(n // 1000):
                for _ in range(1000):
                    manager.create_task(noop())
                await manager.wait_for_all()

        await batch(10_000)
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            await batch(N)
            gc.collect()
            growth = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        # Under 10 bytes a task: a task kept by mistake costs hundreds.
        assert growth < 1_000_000, f"{growth} bytes kept after {N} tasks"


async def test_nested_spawning_ends_cleanly_when_shutdown_interrupts_it(task_factory: None) -> None:
    """A tree of tasks spawning children; shutdown starts halfway and refuses new children."""
    manager = BackgroundTaskManager()
    spawned = 0
    halfway = asyncio.Event()

    async def node(depth: int) -> None:
        nonlocal spawned
        spawned += 1
        if spawned >= N // 2:
            halfway.set()
        await asyncio.sleep(0)
        for _ in range(2 if depth else 0):
            try:
                manager.create_task(node(depth - 1))
            except TaskManagerClosedError:
                return  # asked for after the close began: refused, never started
        await blocked()  # the tree stays up until shutdown

    manager.create_task(node(17))  # 2**18 - 1 nodes if nothing stopped it
    await halfway.wait()
    stats = await manager.shutdown(timeout=50)
    assert stats["status"] == "cancelled"
    assert stats["remaining_tasks"] == 0
    assert len(manager) == 0
    assert spawned == manager.stats().created
    assert N // 2 <= spawned < 2**18 - 1
    assert manager.stats().failed == 0


async def test_many_concurrent_shutdown_callers_get_one_shutdown(task_factory: None) -> None:
    release = asyncio.Event()
    exited = 0

    async def slow_exit() -> None:
        nonlocal exited
        try:
            await blocked()
        finally:
            await release.wait()
            exited += 1

    manager = BackgroundTaskManager()
    for _ in range(10_000):
        manager.create_task(slow_exit())
    await asyncio.sleep(0)

    go = asyncio.Event()

    async def managed_caller() -> None:
        await go.wait()
        await manager.shutdown(timeout=50)

    for _ in range(100):  # callers that are themselves among the tasks being shut down
        manager.create_task(managed_caller())
    await asyncio.sleep(0)
    go.set()
    await asyncio.sleep(0)
    assert manager.closed
    callers = [asyncio.create_task(manager.shutdown(timeout=50)) for _ in range(1000)]
    await asyncio.sleep(0)
    assert not any(c.done() for c in callers)
    release.set()
    results = await asyncio.gather(*callers)
    assert exited == 10_000
    assert all(r == results[0] for r in results)
    assert results[0]["status"] == "cancelled"
    assert results[0]["initial_tasks"] == 10_100
    assert results[0]["completed_tasks"] == 10_100
    assert manager.stats().cancelled == 10_100
