"""Leases (memory, Redis), a broker that is down at start, close timeouts and the
ResourceWarning of a queue nobody closed."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest
from queues.queue_helpers import Harness

from pytest_resources.components.queues import (
    InMemoryMessageQueue,
    MessageQueueClosedError,
    MessageQueueUnavailableError,
    RabbitMQMessageQueue,
    RedisMessageQueue,
)
from pytest_resources.fixtures.queues import BACKENDS, QueueFactory

LEASED = [backend for backend in BACKENDS if backend != "rabbitmq"]  # RabbitMQ has no lease clock


@pytest.mark.asyncio
@pytest.mark.parametrize("message_queue_factory", LEASED, indirect=True)
async def test_an_extended_lease_holds_an_expired_one_is_swept_back(harness: Harness) -> None:
    async with harness.queue(lease=10) as queue:
        message_id = await queue.enqueue("long job")
        delivery = await queue.receive(timeout=5)
        assert delivery is not None
        harness.advance(9)
        assert await queue.extend(delivery)
        harness.advance(9)  # 18 s after receipt, 9 after the renewal
        assert await queue.receive(timeout=0) is None
        harness.advance(1)
        again = await queue.receive(timeout=5)  # the sweep put it back
        assert again is not None
        assert (again.id, again.redelivered) == (message_id, True)
        # The first consumer's lease is gone: its late ack settles nothing.
        assert not await queue.extend(delivery)
        assert not await queue.ack(delivery)
        assert await queue.ack(again)
        stats = await queue.stats()
        assert (stats.completed, stats.pending, stats.processing) == (1, 0, 0)


@pytest.mark.asyncio
@pytest.mark.parametrize("message_queue_factory", LEASED[1:], indirect=True)
async def test_renewing_keeps_a_real_lease_past_its_length(
    message_queue_factory: QueueFactory,
) -> None:
    async with (
        message_queue_factory(lease=0.3, poll_interval=0.05) as holder,
        message_queue_factory(lease=0.3, poll_interval=0.05) as other,
    ):
        await holder.enqueue("held")
        delivery = await holder.receive(timeout=5)
        assert delivery is not None
        async with holder.renewing(delivery, interval=0.05):
            begin = time.monotonic()
            assert await other.receive(timeout=1.0) is None  # more than three leases long
            assert time.monotonic() - begin >= 0.9
        assert await holder.ack(delivery)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.asyncio
@pytest.mark.parametrize("scheme", ["redis", "amqp"])
async def test_a_broker_that_is_down_fails_start_fast_and_close_still_works(scheme: str) -> None:
    port = closed_port()
    queue = (
        RedisMessageQueue("down", f"redis://127.0.0.1:{port}/0", connect_timeout=2)
        if scheme == "redis"
        else RabbitMQMessageQueue("down", f"amqp://guest:guest@127.0.0.1:{port}/")
    )
    begin = time.monotonic()
    with pytest.raises(MessageQueueUnavailableError, match=f"127.0.0.1:{port}"):
        await queue.start()
    with pytest.raises(MessageQueueUnavailableError):  # the same error, not a second attempt
        await queue.enqueue("x")
    assert time.monotonic() - begin < 5
    result = await queue.close()
    assert (result.requeued, result.timed_out) == (0, False)
    with pytest.raises(MessageQueueClosedError):
        await queue.enqueue("x")


class _StuckOnClose(InMemoryMessageQueue):
    """A backend whose disconnect never returns, like a broker that stopped answering."""

    async def _disconnect(self) -> None:
        await asyncio.Event().wait()


@pytest.mark.asyncio
async def test_close_is_bounded_by_its_timeout() -> None:
    queue = _StuckOnClose()
    await queue.start()
    result = await queue.close(timeout=0.1)
    assert result.timed_out
    assert 0.1 <= result.duration_seconds < 2


@pytest.mark.asyncio
async def test_cancelling_a_close_caller_does_not_cancel_the_close() -> None:
    queue = _StuckOnClose()
    await queue.start()
    caller = asyncio.get_running_loop().create_task(queue.close(timeout=0.2))
    await asyncio.sleep(0)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert (await queue.close()).timed_out  # the first close ran on, to its own deadline


@pytest.mark.parametrize(
    "make",
    [
        lambda: InMemoryMessageQueue("forgotten"),
        lambda: RedisMessageQueue("forgotten"),
        lambda: RabbitMQMessageQueue("forgotten"),
    ],
    ids=["memory", "redis", "rabbitmq"],
)
def test_a_queue_garbage_collected_open_warns_naming_itself(make: object) -> None:
    queue = make()  # type: ignore[operator]
    name = type(queue).__name__
    with pytest.warns(ResourceWarning, match=f"unclosed <{name} 'forgotten' open>"):
        del queue  # the last reference: collected at once
