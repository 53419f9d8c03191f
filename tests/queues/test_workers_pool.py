"""TaskManager on every queue backend: handlers, results, chunks, session instances, health
and shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from queues.queue_helpers import Harness

from pytest_resources.components.queues import ManualClock, MessageQueue, RetryPolicy
from pytest_resources.components.workers import (
    TaskAbandonedError,
    TaskContext,
    TaskFailedError,
    TaskManager,
    TaskPoolClosedError,
)

FAST = RetryPolicy(max_attempts=3, backoff=0.05, factor=2)


@pytest_asyncio.fixture
async def queue(harness: Harness) -> AsyncIterator[MessageQueue]:
    """A real-clock queue with fast retries (the pool's workers wait in real time)."""
    async with harness.factory(retry=FAST, poll_interval=0.05) as queue:
        yield queue


class Session:
    """A stand-in for an agent session: counts its turns, closes for real."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.turns = 0
        self.closed = False
        self.active = 0
        self.most_active = 0

    async def aclose(self) -> None:
        self.closed = True


@pytest.mark.asyncio
async def test_results_and_chunks_reach_the_submitter(task_manager_pool: TaskManager) -> None:
    async def count(payload: dict[str, int], context: TaskContext) -> int:
        for i in range(payload["n"]):
            context.emit({"i": i})
        return payload["n"] * 10

    async def shout(payload: str, context: TaskContext) -> str:
        return payload.upper()

    task_manager_pool.register("count", count)
    task_manager_pool.register("shout", shout)
    counting = await task_manager_pool.submit("count", {"n": 3})
    shouting = await task_manager_pool.submit("shout", "hi")
    assert [chunk async for chunk in counting] == [{"i": 0}, {"i": 1}, {"i": 2}]
    assert await counting.result(timeout=30) == 30
    assert await shouting.result(timeout=30) == "HI"
    assert counting.done()
    with pytest.raises(LookupError, match="no handler registered for task type 'nope'"):
        await task_manager_pool.submit("nope")


@pytest.mark.asyncio
async def test_a_failing_task_is_retried_then_fails_its_handle(queue: MessageQueue) -> None:
    attempts: list[int] = []

    async def flaky(payload: None, context: TaskContext) -> None:
        attempts.append(context.attempt)
        raise ValueError(f"attempt {context.attempt}")

    async def recovers(payload: None, context: TaskContext) -> int:
        if context.attempt < 2:
            raise ValueError("first try")
        return context.attempt

    async with TaskManager(queue, workers=2) as pool:
        pool.register("flaky", flaky)
        pool.register("recovers", recovers)
        failing = await pool.submit("flaky")
        recovering = await pool.submit("recovers")
        with pytest.raises(TaskFailedError, match="failed 3x") as info:
            await failing.result(timeout=30)
        assert isinstance(info.value.__cause__, ValueError)
        assert await recovering.result(timeout=30) == 2
    assert attempts == [1, 2, 3]
    stats = await queue.stats()
    assert (stats.completed, stats.failed, stats.dead_lettered) == (1, 4, 1)
    [letter] = await queue.dead_letters()
    assert letter.body["type"] == "flaky"


@pytest.mark.asyncio
async def test_a_task_of_an_unknown_type_is_dead_lettered(queue: MessageQueue) -> None:
    async def echo(payload: str, context: TaskContext) -> str:
        return payload

    pool = TaskManager(queue, workers=1)
    pool.register("echo", echo)
    # Sent elsewhere, for a type nobody here handles; it goes first (priority 9).
    await queue.enqueue({"type": "gone", "id": "t1", "key": None, "payload": None}, priority=9)
    handle = await pool.submit("echo", "after")
    async with pool:
        assert await handle.result(timeout=30) == "after"  # one worker: "gone" was handled
    stats = await queue.stats()
    assert (stats.completed, stats.dead_lettered, stats.pending) == (1, 1, 0)
    [letter] = await queue.dead_letters()
    assert letter.body["type"] == "gone"


@pytest.mark.asyncio
async def test_session_instances_are_reused_serialised_and_expire(queue: MessageQueue) -> None:
    clock = ManualClock()
    made: list[Session] = []

    def open_session(key: str) -> Session:
        made.append(Session(key))
        return made[-1]

    async def turn(payload: int, context: TaskContext) -> tuple[str, int]:
        session: Session = context.instance
        session.active += 1
        session.most_active = max(session.most_active, session.active)
        await asyncio.sleep(0)  # give other workers a chance to interleave
        session.turns += 1
        session.active -= 1
        return session.key, session.turns

    async with TaskManager(queue, workers=4, instance_ttl=60, clock=clock) as pool:
        pool.register("turn", turn, instances=open_session)
        handles = [await pool.submit("turn", i, key=f"agent-{i % 2}#session") for i in range(8)]
        results = [await h.result(timeout=30) for h in handles]
        assert sorted(results) == sorted(
            (f"agent-{i}#session", n) for i in (0, 1) for n in range(1, 5)
        )
        assert sorted(s.key for s in made) == ["agent-0#session", "agent-1#session"]
        assert all(s.most_active == 1 for s in made)  # one turn at a time per session
        assert (await pool.health()).active_instances == 2
        clock.advance(59)
        assert await pool.cleanup_instances() == 0
        clock.advance(1)
        assert await pool.cleanup_instances() == 2
        assert all(s.closed for s in made)
        assert (await pool.health()).active_instances == 0


@pytest.mark.asyncio
async def test_an_expired_instance_closes_outside_the_lock(queue: MessageQueue) -> None:
    clock = ManualClock()
    closing, release = asyncio.Event(), asyncio.Event()

    class SlowToClose(Session):
        async def aclose(self) -> None:
            closing.set()
            await release.wait()
            self.closed = True

    async def turn(payload: None, context: TaskContext) -> str:
        return str(context.instance.key)

    async with TaskManager(queue, workers=2, instance_ttl=10, clock=clock) as pool:
        pool.register("turn", turn, instances=SlowToClose)
        assert await (await pool.submit("turn", key="old")).result(timeout=30) == "old"
        clock.advance(10)
        cleanup = asyncio.get_running_loop().create_task(pool.cleanup_instances())
        await closing.wait()
        # While "old" is still closing, a new session opens and runs: no lock is held.
        assert await (await pool.submit("turn", key="new")).result(timeout=30) == "new"
        release.set()
        assert await cleanup == 1


@pytest.mark.asyncio
async def test_health_while_a_task_runs(task_manager_pool: TaskManager) -> None:
    started, release = asyncio.Event(), asyncio.Event()

    async def hold(payload: None, context: TaskContext) -> str:
        started.set()
        await release.wait()
        return "done"

    task_manager_pool.register("hold", hold)
    handle = await task_manager_pool.submit("hold")
    await started.wait()
    health = await task_manager_pool.health()
    assert (health.running, health.worker_count, health.running_tasks) == (True, 4, 1)
    assert (health.queue.processing, health.queue.pending) == (1, 0)
    release.set()
    assert await handle.result(timeout=30) == "done"


@pytest.mark.asyncio
async def test_shutdown_lets_running_tasks_finish(queue: MessageQueue) -> None:
    started, release = asyncio.Event(), asyncio.Event()

    async def hold(payload: None, context: TaskContext) -> str:
        started.set()
        await release.wait()
        return "finished"

    pool = TaskManager(queue, workers=3)
    pool.register("hold", hold)
    await pool.start()
    handle = await pool.submit("hold")
    await started.wait()
    first = asyncio.get_running_loop().create_task(pool.shutdown(timeout=30))
    second = asyncio.get_running_loop().create_task(pool.shutdown(timeout=30))
    await asyncio.sleep(0)
    with pytest.raises(TaskPoolClosedError):
        await pool.submit("hold")
    release.set()
    stats = await first
    assert stats == await second
    assert (stats["status"], stats["initial_tasks"]) == ("clean", 0), stats
    assert await handle.result() == "finished"
    health = await pool.health()
    assert (health.running, health.worker_count, health.queue.completed) == (False, 0, 1)


@pytest.mark.asyncio
async def test_shutdown_deadline_cancels_and_requeues(harness: Harness) -> None:
    queue = harness.factory(retry=FAST, poll_interval=0.05)
    started = asyncio.Event()

    async def stuck(payload: Any, context: TaskContext) -> None:
        started.set()
        await asyncio.Event().wait()

    async with queue:
        pool = TaskManager(queue, workers=2)
        pool.register("stuck", stuck)
        await pool.start()
        handle = await pool.submit("stuck", {"job": 1})
        await started.wait()
        stats = await pool.shutdown(timeout=0.2)
        assert (stats["status"], stats["initial_tasks"], stats["remaining_tasks"]) == (
            "cancelled",
            1,
            0,
        )
        with pytest.raises(TaskAbandonedError):
            await handle.result()
        again = await queue.receive(timeout=30)  # the cancelled task's message came back
        assert again is not None
        assert (again.body["payload"], again.redelivered, again.attempt) == ({"job": 1}, True, 1)
        await queue.ack(again)
