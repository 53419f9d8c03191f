"""RedisMessageQueue and a TaskManager on it against a Redis of their own that is restarted:
calls fail with MessageQueueUnavailableError while it is away, the workers wait it out, and
every task is handled (the Redis fsyncs every write, so a restart keeps what it acknowledged)."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from publishers.publisher_brokers import (  # noqa: F401 (fixtures)
    REDIS_DURABLE,
    StartBroker,
    private_broker_fixture,
)

from pytest_resources.components.queues import MessageQueueUnavailableError, RedisMessageQueue
from pytest_resources.components.workers import TaskContext, TaskManager

pytestmark = pytest.mark.asyncio

WORKERS = 4
BATCH = 100


async def test_workers_wait_out_a_redis_restart_and_handle_every_task(
    private_broker: StartBroker,
) -> None:
    broker = private_broker("redis", *REDIS_DURABLE)
    handled: Counter[int] = Counter()
    done = {BATCH: asyncio.Event(), 2 * BATCH: asyncio.Event()}

    async def handle(payload: int, context: TaskContext) -> None:
        handled[payload] += 1
        if len(handled) in done:
            done[len(handled)].set()

    async with RedisMessageQueue("faults", broker.url, poll_interval=0.05) as queue:
        pool = TaskManager(queue, workers=WORKERS)
        pool.register("job", handle)
        async with pool:
            await asyncio.gather(*(pool.submit("job", i) for i in range(BATCH)))
            await asyncio.wait_for(done[BATCH].wait(), timeout=30)

            await asyncio.to_thread(broker.stop)  # the workers are waiting in receive()
            with pytest.raises(MessageQueueUnavailableError):
                await queue.enqueue("while away")
            await asyncio.to_thread(broker.start)

            await asyncio.gather(*(pool.submit("job", i) for i in range(BATCH, 2 * BATCH)))
            await asyncio.wait_for(done[2 * BATCH].wait(), timeout=30)
            health = await pool.health()
    assert health.worker_count == WORKERS  # none died with the connection
    assert set(handled) == set(range(2 * BATCH))
    assert sum(handled.values()) == 2 * BATCH  # nothing was in flight: nothing ran twice


async def test_a_lost_connection_is_unavailable_not_a_client_error(
    private_broker: StartBroker,
) -> None:
    broker = private_broker("redis")
    async with RedisMessageQueue("faults", broker.url, poll_interval=0.05) as queue:
        await queue.enqueue("kept")
        await asyncio.to_thread(broker.stop)
        with pytest.raises(MessageQueueUnavailableError, match="Redis at"):
            await queue.receive(timeout=0)
        with pytest.raises(MessageQueueUnavailableError):
            await queue.stats()
