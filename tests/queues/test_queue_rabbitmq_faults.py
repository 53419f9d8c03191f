"""RabbitMQMessageQueue against a broker of its own that is restarted or stopped mid-run: the
queue reconnects, nothing is lost, stale deliveries settle nothing, stats stay exact."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import aio_pika
import pytest
from publishers.publisher_brokers import (  # noqa: F401 (fixtures)
    StartBroker,
    private_broker_fixture,
)

from pytest_resources.components.queues import (
    Delivery,
    MessageQueueUnavailableError,
    QueueStats,
    RabbitMQMessageQueue,
    RetryPolicy,
)
from pytest_resources.components.queues.base import Envelope

pytestmark = pytest.mark.asyncio

WORKERS = 8
BEFORE = 3000  # enqueued before the restart
AFTER = 200  # enqueued once the broker is back
#: Messages handled before the broker goes down, so the restart hits a busy consumer.
RESTART_AFTER = 500


async def take(queue: RabbitMQMessageQueue, timeout: float = 30.0) -> Delivery:
    delivery = await queue.receive(timeout=timeout)
    assert delivery is not None, f"nothing received within {timeout}s"
    return delivery


@pytest.mark.parametrize("kill", [False, True], ids=["stop", "kill"])
async def test_a_broker_restart_mid_consume_loses_nothing_and_counts_once(
    private_broker: StartBroker, kill: bool
) -> None:
    broker = private_broker("rabbitmq")
    total = BEFORE + AFTER
    handled: Counter[int] = Counter()
    redelivered = 0
    busy = asyncio.Event()
    everything = asyncio.Event()

    async with RabbitMQMessageQueue(
        "faults", broker.url, poll_interval=0.05, reconnect_interval=0.2, prefetch=64
    ) as queue:
        for start in range(0, BEFORE, 200):
            await asyncio.gather(*(queue.enqueue(i) for i in range(start, start + 200)))
        held = await take(queue)  # received before the restart, acked after it

        async def worker() -> None:
            nonlocal redelivered
            async for delivery in queue:
                handled[delivery.body] += 1
                redelivered += delivery.redelivered
                await queue.ack(delivery)  # False for a delivery the restart took back
                if len(handled) >= RESTART_AFTER:
                    busy.set()
                if len(handled) == total:
                    everything.set()

        workers = [asyncio.create_task(worker()) for _ in range(WORKERS)]
        try:
            await busy.wait()
            await broker.restart(kill=kill)
            # The broker took the held message back: acking it now settles nothing.
            assert not await queue.ack(held)
            for start in range(BEFORE, total, 100):
                await asyncio.gather(*(queue.enqueue(i) for i in range(start, start + 100)))
            await asyncio.wait_for(everything.wait(), timeout=120)
            stats = await queue.stats()
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    assert set(handled) == set(range(total))  # every message, the held one included
    duplicates = sum(handled.values()) - total
    assert duplicates <= redelivered  # only redeliveries run twice
    # Acks lost with the connection are not counted twice, stale ones not at all.
    assert stats == QueueStats(0, 0, total, 0, 0, stats.avg_processing_seconds)


async def test_a_broker_that_goes_down_fails_calls_in_bounded_time_then_recovers(
    private_broker: StartBroker,
) -> None:
    broker = private_broker("rabbitmq")
    async with RabbitMQMessageQueue(
        "down", broker.url, publish_timeout=1.0, reconnect_interval=0.2, poll_interval=0.05
    ) as queue:
        await queue.enqueue("before")
        delivery = await take(queue)
        await asyncio.to_thread(broker.stop)

        begin = time.monotonic()
        with pytest.raises(MessageQueueUnavailableError, match="unreachable"):
            await queue.enqueue("while down")
        with pytest.raises(MessageQueueUnavailableError):
            await queue.stats()
        assert await queue.receive(timeout=0.2) is None  # a receiver just waits
        assert not await queue.nack(delivery, requeue=True)  # its channel is gone
        assert time.monotonic() - begin < 10

        await asyncio.to_thread(broker.start)
        await queue.enqueue("after")
        bodies = {(await take(queue)).body, (await take(queue)).body}
        assert bodies == {"before", "after"}  # "before" came back from the broker


async def test_close_while_the_broker_is_down_is_bounded(private_broker: StartBroker) -> None:
    broker = private_broker("rabbitmq")
    queue = RabbitMQMessageQueue("closing", broker.url, reconnect_interval=0.2)
    await queue.start()
    await queue.enqueue("x")
    assert await queue.receive(timeout=10) is not None
    await asyncio.to_thread(broker.stop)
    waiting = asyncio.create_task(queue.enqueue("never confirmed"))
    done, _ = await asyncio.wait([waiting], timeout=0.5)
    assert not done  # it waits for the reconnect (publish_timeout is 30 s)
    result = await queue.close(timeout=5)
    assert not result.timed_out
    assert result.duration_seconds < 5
    with pytest.raises(RuntimeError, match="closed"):
        await waiting


class _DropsAfterRetryPublish(RabbitMQMessageQueue):
    """Loses its connection right after a retry was published and confirmed, before the
    failed attempt is acked (the robust connection then reconnects, as after a network cut)."""

    async def _publish(self, envelope: Envelope, delay: float) -> None:
        await super()._publish(envelope, delay)
        if envelope.attempt > 1:
            assert self._connection is not None
            assert self._connection.transport is not None
            await self._connection.transport.connection.close()


async def test_a_connection_lost_between_retry_and_ack_runs_the_next_attempt_once(
    private_broker: StartBroker,
) -> None:
    broker = private_broker("rabbitmq")
    retry = RetryPolicy(max_attempts=3, backoff=0.2)
    async with _DropsAfterRetryPublish(
        "retry", broker.url, retry=retry, reconnect_interval=0.2, poll_interval=0.05
    ) as queue:
        message_id = await queue.enqueue("flaky")
        first = await take(queue)
        assert await queue.nack(first)  # attempt 2 is published; then the connection drops
        # Attempt 1 comes back from the broker (its ack was lost) and is settled unseen.
        second = await take(queue)
        assert (second.id, second.attempt) == (message_id, 2)
        assert await queue.ack(second)
        assert await queue.receive(timeout=1.0) is None
        stats = await queue.stats()
        assert stats == QueueStats(0, 0, 1, 1, 0, stats.avg_processing_seconds)


async def test_a_queue_deleted_under_its_consumer_is_declared_again(
    private_broker: StartBroker,
) -> None:
    broker = private_broker("rabbitmq")
    async with RabbitMQMessageQueue(
        "deleted", broker.url, reconnect_interval=0.2, poll_interval=0.05
    ) as queue:
        await queue.enqueue(1)
        assert await queue.ack(await take(queue))  # consuming now
        connection = await aio_pika.connect(broker.url)
        async with connection:
            channel = await connection.channel()
            await channel.queue_delete("deleted")  # the broker cancels the consumer
        await queue.enqueue(2)
        assert (await take(queue)).body == 2
