"""One suite, every backend: the same semantics on memory, Redis and RabbitMQ."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from queues.queue_helpers import Harness

from pytest_resources.components.queues import (
    DeadLetter,
    Delivery,
    MessageQueue,
    MessageQueueClosedError,
    MessageQueueUnavailableError,
    QueueStats,
    RedisMessageQueue,
    RetryPolicy,
)
from pytest_resources.components.queues.redis import _TAKE
from pytest_resources.fixtures.queues import BACKENDS

BROKERS = [backend for backend in BACKENDS if backend != "memory"]
REDIS = ["redis"]


async def take(queue: MessageQueue, timeout: float = 10.0) -> Delivery:
    delivery = await queue.receive(timeout=timeout)
    assert delivery is not None, f"nothing received from {queue!r} within {timeout}s"
    return delivery


async def wait_out(harness: Harness, queue: MessageQueue, seconds: float, since: float) -> Delivery:
    """Let ``seconds`` of delay pass (counted from ``since``, a ``time.monotonic()`` taken
    before the message was sent), proving nothing comes before them, and receive."""
    if harness.real_delays:
        delivery = await take(queue)
        assert time.monotonic() - since >= seconds * 0.9  # the broker's TTL, in ms
        return delivery
    assert await queue.receive(timeout=0) is None
    harness.advance(seconds)
    return await take(queue)


@pytest.mark.asyncio
async def test_higher_priority_first_fifo_within_a_priority(harness: Harness) -> None:
    async with harness.queue() as queue:
        sent = [(0, "a"), (5, "b"), (9, "c"), (5, "d"), (0, "e"), (9, "f"), (1, "g")]
        for priority, body in sent:
            await queue.enqueue(body, priority=priority)
        received = []
        for _ in sent:
            delivery = await take(queue)
            received.append((delivery.priority, delivery.body))
            await queue.ack(delivery)
        assert received == [(9, "c"), (9, "f"), (5, "b"), (5, "d"), (1, "g"), (0, "a"), (0, "e")]
        assert await queue.receive(timeout=0) is None


@pytest.mark.asyncio
async def test_a_delayed_message_waits_its_delay(harness: Harness) -> None:
    async with harness.queue() as queue:
        sent = time.monotonic()
        await queue.enqueue({"later": True}, delay=0.3, priority=9)
        await queue.enqueue({"now": True})
        first = await take(queue)
        assert first.body == {"now": True}
        later = await wait_out(harness, queue, 0.3, sent)
        assert (later.body, later.attempt, later.redelivered) == ({"later": True}, 1, False)
        await queue.ack(first)
        await queue.ack(later)


@pytest.mark.asyncio
async def test_retries_back_off_exponentially_then_dead_letter(harness: Harness) -> None:
    async with harness.queue() as queue:
        message_id = await queue.enqueue({"job": 7}, priority=3)
        attempts = []
        delivery = await take(queue)
        for delay in (0.2, 0.4):  # backoff 0.2 * 2 ** (attempt - 1)
            attempts.append(delivery.attempt)
            failed = time.monotonic()
            assert await queue.nack(delivery)
            delivery = await wait_out(harness, queue, delay, failed)
            assert (delivery.id, delivery.priority, delivery.redelivered) == (message_id, 3, False)
        attempts.append(delivery.attempt)
        assert await queue.nack(delivery)  # the last attempt failed: dead-lettered
        assert attempts == [1, 2, 3]
        assert await queue.receive(timeout=0) is None
        assert await queue.dead_letters() == [DeadLetter(message_id, {"job": 7}, 3, 3)]
        assert await queue.stats() == QueueStats(0, 0, 0, 3, 1, 0.0)


@pytest.mark.asyncio
async def test_nack_without_retry_dead_letters_at_once(harness: Harness) -> None:
    async with harness.queue() as queue:
        message_id = await queue.enqueue("poison")
        assert await queue.nack(await take(queue), retry=False)
        assert await queue.dead_letters() == [DeadLetter(message_id, "poison", 0, 1)]
        stats = await queue.stats()
        assert (stats.failed, stats.dead_lettered, stats.pending) == (1, 1, 0)


@pytest.mark.asyncio
async def test_requeue_gives_the_message_back_without_a_failure(harness: Harness) -> None:
    async with harness.queue() as queue:
        message_id = await queue.enqueue("x")
        first = await take(queue)
        assert (first.attempt, first.redelivered) == (1, False)
        assert await queue.nack(first, requeue=True)
        again = await take(queue)
        assert (again.id, again.attempt, again.redelivered) == (message_id, 1, True)
        assert await queue.ack(again)
        stats = await queue.stats()
        assert (stats.completed, stats.failed, stats.pending, stats.processing) == (1, 0, 0, 0)


@pytest.mark.asyncio
async def test_a_consumer_killed_mid_message_does_not_lose_it(harness: Harness) -> None:
    async with harness.queue(lease=30.0) as queue:
        message_id = await queue.enqueue({"order": 1})
        if harness.backend == "memory":
            # The consumer is a task; it dies holding the delivery, never settling it.
            received: asyncio.Future[Delivery] = asyncio.get_running_loop().create_future()

            async def consumer() -> None:
                delivery = await take(queue)
                async with queue.renewing(delivery):
                    received.set_result(delivery)
                    await asyncio.Event().wait()

            task = asyncio.get_running_loop().create_task(consumer())
            assert (await received).id == message_id
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        else:
            assert await harness.consume_in_child_and_kill(queue.name) == message_id
        if not harness.real_delays:
            # The dead consumer's lease still holds the message, until it runs out.
            assert await queue.receive(timeout=0) is None
            harness.advance(60)
        again = await take(queue, timeout=30)
        assert (again.id, again.body, again.redelivered) == (message_id, {"order": 1}, True)
        assert await queue.ack(again)
        stats = await queue.stats()
        assert (stats.completed, stats.pending, stats.processing) == (1, 0, 0)


@pytest.mark.asyncio
async def test_stats_are_exact(harness: Harness) -> None:
    async with harness.queue(retry=RetryPolicy(max_attempts=3, backoff=60)) as queue:
        assert await queue.stats() == QueueStats(0, 0, 0, 0, 0, 0.0)
        for body in "abcd":
            await queue.enqueue(body)
        await queue.enqueue("e", delay=60)
        a, b, c = [await take(queue) for _ in range(3)]
        assert await queue.stats() == QueueStats(2, 3, 0, 0, 0, 0.0)
        harness.advance(2.0)
        await queue.ack(a)
        harness.advance(1.0)
        await queue.nack(b)  # retried in 60 s
        await queue.nack(c, retry=False)
        assert await queue.stats() == QueueStats(3, 0, 1, 2, 1, 2.0)
        d = await take(queue)
        harness.advance(4.0)
        await queue.ack(d)
        assert await queue.stats() == QueueStats(2, 0, 2, 2, 1, 3.0)


@pytest.mark.asyncio
async def test_settling_twice_or_a_foreign_delivery_is_an_error(harness: Harness) -> None:
    async with harness.queue() as queue, harness.queue(name=queue.name + "-other") as other:
        await queue.enqueue(1)
        delivery = await take(queue)
        with pytest.raises(ValueError, match="not received from"):
            await other.ack(delivery)
        assert await queue.ack(delivery)
        with pytest.raises(ValueError, match="already settled"):
            await queue.nack(delivery)


@pytest.mark.asyncio
async def test_bad_messages_and_arguments_are_refused_before_sending(harness: Harness) -> None:
    async with harness.queue() as queue:
        with pytest.raises(TypeError, match="not JSON serializable"):
            await queue.enqueue({"when": object()})
        with pytest.raises(ValueError, match=r"priority must be within 0\.\.9"):
            await queue.enqueue(1, priority=10)
        with pytest.raises(ValueError, match="delay must be 0 or more"):
            await queue.enqueue(1, delay=-1)
        assert await queue.stats() == QueueStats(0, 0, 0, 0, 0, 0.0)


@pytest.mark.asyncio
async def test_iteration_yields_until_close(harness: Harness) -> None:
    queue = harness.queue()
    async with queue:
        for i in range(3):
            await queue.enqueue(i)
        seen = []
        async for delivery in queue:
            seen.append(delivery.body)
            await queue.ack(delivery)
            if len(seen) == 3:
                break

        holding = asyncio.Event()

        async def drain() -> list[int]:
            bodies = []
            async for delivery in queue:
                bodies.append(delivery.body)
                holding.set()  # and holds it, unsettled
            return bodies

        draining = asyncio.get_running_loop().create_task(drain())
        await queue.enqueue(99)
        await holding.wait()
    assert seen == [0, 1, 2]
    assert await draining == [99]  # ended quietly by close()


@pytest.mark.asyncio
async def test_close_is_idempotent_wakes_receivers_and_refuses_use(harness: Harness) -> None:
    queue = harness.queue()
    await queue.start()
    await queue.enqueue("held")
    held = await take(queue)
    waiting = asyncio.get_running_loop().create_task(queue.receive())
    await asyncio.sleep(0)  # it usually starts waiting; either way it must end closed
    first, second = await asyncio.gather(queue.close(), queue.close())
    assert first is second
    assert (first.requeued, first.timed_out) == (1, False)
    assert await queue.close() is first
    with pytest.raises(MessageQueueClosedError):
        await waiting
    for call in (
        queue.enqueue("x"),
        queue.receive(timeout=0),
        queue.ack(held),
        queue.nack(held),
        queue.stats(),
    ):
        with pytest.raises(MessageQueueClosedError, match="is closed"):
            await call


@pytest.mark.asyncio
@pytest.mark.parametrize("message_queue_factory", BROKERS, indirect=True)
async def test_close_hands_unsettled_deliveries_back(harness: Harness) -> None:
    # (An in-memory queue ends with its close: nothing can survive it.)
    first = harness.queue()
    await first.start()
    message_id = await first.enqueue("work")
    await take(first)
    assert (await first.close()).requeued == 1
    async with harness.queue() as second:
        again = await take(second)
        assert (again.id, again.redelivered) == (message_id, True)
        assert await second.ack(again)


class _TakeReplyLost(RedisMessageQueue):
    """Loses the reply of every receive script, as a connection that drops after the server
    ran it does: the message is leased, and the receive fails."""

    async def _run(self, script: Any, *args: str | int) -> Any:
        reply = await super()._run(script, *args)
        if script is _TAKE:
            raise ConnectionError("reply lost")
        return reply


@pytest.mark.asyncio
@pytest.mark.parametrize("message_queue_factory", REDIS, indirect=True)
async def test_a_receive_that_lost_its_reply_hands_the_message_back_at_close(
    harness: Harness,
) -> None:
    async with harness.queue() as queue:
        message_id = await queue.enqueue("work")
        assert harness.factory.url is not None
        lossy = _TakeReplyLost(queue.name, harness.factory.url, clock=harness.clock, lease=10.0)
        await lossy.start()
        with pytest.raises(ConnectionError, match="reply lost"):
            await lossy.receive(timeout=0)
        assert (await queue.stats()).processing == 1  # leased to a delivery nobody has
        assert await queue.receive(timeout=0) is None
        assert (await lossy.close()).requeued == 1  # not left to its lease (the clock stands)
        again = await take(queue)
        assert (again.id, again.redelivered) == (message_id, True)
        assert await queue.ack(again)


@pytest.mark.asyncio
@pytest.mark.parametrize("message_queue_factory", REDIS, indirect=True)
async def test_redis_scripts_are_loaded_again_when_the_server_lost_them(
    harness: Harness,
) -> None:
    from redis.asyncio import Redis

    async with harness.queue() as queue:
        await queue.enqueue("before")
        admin = Redis.from_url(str(harness.factory.url))
        try:
            await admin.script_flush()  # as a restarted server, or SCRIPT FLUSH
        finally:
            await admin.aclose()
        await queue.enqueue("after")
        for body in ("before", "after"):
            delivery = await take(queue)
            assert delivery.body == body
            assert await queue.ack(delivery)
        assert (await queue.stats()).completed == 2


@pytest.mark.asyncio
@pytest.mark.parametrize("message_queue_factory", REDIS, indirect=True)
async def test_a_redis_command_that_gets_no_answer_fails_within_its_timeout(
    harness: Harness,
) -> None:
    from redis.asyncio import Redis

    url = str(harness.factory.url)
    async with harness.queue() as queue:
        await queue.enqueue("kept")
        stuck = RedisMessageQueue(queue.name, url, poll_interval=0.05, command_timeout=0.3)
        await stuck.start()
        admin = Redis.from_url(url)
        try:
            await admin.client_pause(5000, all=False)  # scripts wait, as on a hung server
            begin = time.monotonic()
            with pytest.raises(MessageQueueUnavailableError, match="did not answer within"):
                await stuck.receive(timeout=0)
            assert time.monotonic() - begin < 2.0  # 0.35 s, not the 5 s pause
        finally:
            await admin.client_unpause()
            await admin.aclose()
        await stuck.close()
        delivery = await take(queue)  # nothing lost: never taken, or handed back at close
        assert delivery.body == "kept"
        assert await queue.ack(delivery)
