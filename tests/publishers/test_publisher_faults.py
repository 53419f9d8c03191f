"""Faults on brokers each test starts for itself: restarts mid-publish, a close while
publishes are in flight, a close while starting. The session's shared brokers are never
touched."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from publishers.publisher_brokers import (  # noqa: F401 (fixtures)
    REDIS_DURABLE,
    StartBroker,
    private_broker_fixture,
    silent_port_fixture,
)
from redis.asyncio import Redis

from pytest_resources.components.publishers import (
    BasePublisher,
    KafkaPublisher,
    KafkaSettings,
    PublisherClosedError,
    PublishReceipt,
    RabbitMQPublisher,
    RabbitMQSettings,
    RedisPublisher,
    RedisSettings,
)

pytestmark = pytest.mark.asyncio
#: Events published after the broker is back, so the loop outlives the restart.
AFTER_RESTART = 30

Confirmed = list[tuple[int, PublishReceipt]]


async def publish_through(
    publisher: BasePublisher[Any], restart: Callable[[], Awaitable[None]]
) -> Confirmed:
    """Publish numbered events without pause while ``restart`` runs; stop a while after it."""
    confirmed: Confirmed = []
    running = asyncio.Event()
    restarted = asyncio.Event()

    async def loop() -> None:
        after = 0
        while after < AFTER_RESTART:
            confirmed.append((len(confirmed), await publisher.publish({"i": len(confirmed)})))
            running.set()
            after += restarted.is_set()

    task = asyncio.create_task(loop())
    await running.wait()
    await restart()
    restarted.set()
    await task
    return confirmed


async def wait_until_in_flight(publisher: BasePublisher[Any]) -> None:
    while not publisher.in_flight:  # the publish task runs up to its first await
        await asyncio.sleep(0)


async def test_redis_restart_mid_publish_loses_no_confirmed_event(
    private_broker: StartBroker,
) -> None:
    broker = private_broker("redis", *REDIS_DURABLE)
    settings = RedisSettings(url=broker.url, stream="events", retry_backoff=0.01)
    async with RedisPublisher(settings) as publisher:
        confirmed = await publish_through(publisher, broker.restart)
    client = Redis.from_url(broker.url, decode_responses=True)
    try:
        entries: list[tuple[str, dict[str, str]]] = await client.xrange("events")  # type: ignore[assignment]
    finally:
        await client.aclose()
    stored = {entry_id: json.loads(fields["data"]) for entry_id, fields in entries}
    missing = [n for n, r in confirmed if stored.get(r.message_id or "") != {"i": n}]
    assert not missing, f"{len(missing)} confirmed events lost: {missing[:10]}"
    assert any(r.attempts > 1 for _, r in confirmed), "no publish spanned the restart"


async def test_rabbitmq_restart_mid_publish_loses_no_confirmed_event(
    private_broker: StartBroker,
) -> None:
    broker = private_broker("rabbitmq")
    connection = await aio_pika.connect(broker.url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange("events", durable=True)
        queue = await channel.declare_queue("stored", durable=True)
        await queue.bind(exchange, "k")
    settings = RabbitMQSettings(
        url=broker.url, exchange="events", routing_key="k", publish_timeout=120.0
    )
    async with RabbitMQPublisher(settings) as publisher:
        confirmed = await publish_through(publisher, broker.restart)
    stored = []
    connection = await aio_pika.connect(broker.url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue("stored", durable=True, passive=True)
        while (message := await queue.get(fail=False)) is not None:
            stored.append(json.loads(message.body)["i"])
            await message.ack()
    missing = sorted({n for n, _ in confirmed} - set(stored))
    assert not missing, f"{len(missing)} confirmed events lost: {missing[:10]}"
    assert any(r.attempts > 1 for _, r in confirmed), "no publish spanned the restart"


async def read_topic(servers: str, topic: str, expected: set[int]) -> set[int]:
    """Every event number on ``topic``, read until ``expected`` is covered (or 30 s)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=servers, auto_offset_reset="earliest")
    await consumer.start()
    seen: set[int] = set()
    try:
        partitions = await consumer._client._wait_on_metadata(topic)
        consumer.assign([TopicPartition(topic, p) for p in partitions])
        async with asyncio.timeout(30):
            while not expected <= seen:
                batches = await consumer.getmany(timeout_ms=1000)
                seen |= {json.loads(m.value)["i"] for ms in batches.values() for m in ms}
    except TimeoutError:
        pass
    finally:
        await consumer.stop()
    return seen


async def test_kafka_publish_in_flight_across_a_restart_is_confirmed(
    private_broker: StartBroker,
) -> None:
    # tansu keeps topics in memory and, once restarted, does not serve fetches of what it
    # stored again; so what is read back is checked before the restart, and across it the
    # test checks that a publish in flight while Kafka is down is confirmed once it is back
    # and that the publisher keeps working.
    broker = private_broker("kafka")
    settings = KafkaSettings(bootstrap_servers=broker.url, topic="events", enable_idempotence=False)
    async with KafkaPublisher(settings) as publisher:
        before = {n for n in range(20) if await publisher.publish({"i": n})}
        assert await read_topic(broker.url, "events", before) >= before
        await asyncio.to_thread(broker.stop)
        in_flight = asyncio.create_task(publisher.publish({"i": 20}))
        await wait_until_in_flight(publisher)
        await asyncio.to_thread(broker.start)
        receipt = await in_flight
        after = [await publisher.publish({"i": n}) for n in range(21, 41)]
    assert receipt.offset is not None
    assert all(r.offset is not None for r in after)


async def test_close_waits_for_a_publish_in_flight(private_broker: StartBroker) -> None:
    broker = private_broker("redis")
    publisher = await RedisPublisher({"url": broker.url, "stream": "s"}).start()
    broker.pause()
    try:
        in_flight = asyncio.create_task(publisher.publish("last words"))
        await wait_until_in_flight(publisher)
        closing = asyncio.create_task(publisher.close())
        await asyncio.sleep(0)  # let close() begin
        assert publisher.closed
        with pytest.raises(PublisherClosedError):
            await publisher.publish("too late")
        assert not closing.done()
    finally:
        broker.resume()
    receipt = await in_flight
    assert (await closing).status == "closed"
    assert receipt.message_id is not None


async def test_close_timeout_aborts_a_publish_the_broker_never_answers(
    private_broker: StartBroker,
) -> None:
    broker = private_broker("redis")
    settings = RedisSettings(url=broker.url, stream="s", close_timeout=0.5)
    publisher = await RedisPublisher(settings).start()
    broker.pause()
    try:
        in_flight = asyncio.create_task(publisher.publish("stuck"))
        await wait_until_in_flight(publisher)
        result = await publisher.close()
        with pytest.raises(PublisherClosedError, match="closed before the broker confirmed"):
            await in_flight
    finally:
        broker.resume()
    assert result.status == "timed_out"
    assert 0.5 <= result.duration_seconds < 5
    assert result.error == "not closed within 0.5s; connections aborted"


async def test_close_with_kafka_down_is_bounded_and_fails_unsent_events(
    private_broker: StartBroker,
) -> None:
    # aiokafka's own stop() flushes forever while Kafka is down (aiokafka#1101).
    broker = private_broker("kafka")
    settings = KafkaSettings(
        bootstrap_servers=broker.url, topic="t", enable_idempotence=False, close_timeout=1.0
    )
    publisher = await KafkaPublisher(settings).start()
    await publisher.publish("before")
    await asyncio.to_thread(broker.stop)
    in_flight = asyncio.create_task(publisher.publish("never delivered"))
    await wait_until_in_flight(publisher)
    result = await publisher.close()
    with pytest.raises(PublisherClosedError):
        await in_flight
    assert result.status == "timed_out"
    assert result.duration_seconds < 1.0 + 5


async def test_close_while_starting_ends_the_start(silent_port: int) -> None:
    publisher = RedisPublisher({"url": f"redis://127.0.0.1:{silent_port}/0", "stream": "s"})
    starting = asyncio.create_task(publisher.start())
    await asyncio.sleep(0)  # start() is now waiting for the server's PING reply
    result = await publisher.close()
    with pytest.raises(PublisherClosedError, match="closed while starting"):
        await starting
    assert result.status == "closed"
    assert result.duration_seconds < 1
