"""Faults on brokers each test starts for itself: restarts mid-publish, a close while
publishes are in flight, a close while starting. The session's shared brokers are never
touched."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
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
from publishers.s3_storage import S3Server, s3_storage_fixture  # noqa: F401 (fixture)
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
#: Events confirmed before the restart begins, and published after the broker is back (so
#: the loop outlives the restart).
BEFORE_RESTART = AFTER_RESTART = 30


@dataclass(frozen=True)
class PublishRun:
    #: (event number, receipt) of every publish that returned, in order.
    confirmed: list[tuple[int, PublishReceipt]]
    #: Events whose publish began before the restart ended and returned after it.
    spanning: list[int]


async def publish_through(
    publisher: BasePublisher[Any], restart: Callable[[], Awaitable[None]]
) -> PublishRun:
    """Publish numbered events without pause; run ``restart`` once some are confirmed, and
    stop a while after it."""
    run = PublishRun([], [])
    running = asyncio.Event()
    restarted = asyncio.Event()

    async def loop() -> None:
        after = 0
        while after < AFTER_RESTART:
            n, before = len(run.confirmed), not restarted.is_set()
            run.confirmed.append((n, await publisher.publish({"i": n})))
            if n + 1 >= BEFORE_RESTART:
                running.set()
            if before and restarted.is_set():
                run.spanning.append(n)
            after += restarted.is_set()

    task = asyncio.create_task(loop())
    await running.wait()
    await restart()
    restarted.set()
    await task
    return run


async def wait_until_in_flight(publisher: BasePublisher[Any]) -> None:
    while not publisher.in_flight:  # the publish task runs up to its first await
        await asyncio.sleep(0)


async def test_redis_restart_mid_publish_loses_no_confirmed_event(
    private_broker: StartBroker,
) -> None:
    broker = private_broker("redis", *REDIS_DURABLE)
    settings = RedisSettings(url=broker.url, stream="events", retry_backoff=0.01)
    async with RedisPublisher(settings) as publisher:
        confirmed = (await publish_through(publisher, broker.restart)).confirmed
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
        confirmed = (await publish_through(publisher, broker.restart)).confirmed
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


async def read_topic(servers: str, topic: str) -> dict[tuple[int | None, int | None], int]:
    """Every event number on ``topic`` by (partition, offset), read to each partition's end
    (or for 30 s)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=servers, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    stored: dict[tuple[int | None, int | None], int] = {}
    try:
        numbers = await consumer._client._wait_on_metadata(topic)
        partitions = [TopicPartition(topic, p) for p in numbers]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        async with asyncio.timeout(30):
            while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
                batches = await consumer.getmany(timeout_ms=1000)
                for messages in batches.values():
                    stored |= {(m.partition, m.offset): json.loads(m.value)["i"] for m in messages}
    except TimeoutError:
        pass  # the broker serves no more: the caller's check names what is missing
    finally:
        await consumer.stop()
    return stored


async def test_kafka_restart_mid_publish_loses_no_confirmed_event(
    s3_storage: S3Server, private_broker: StartBroker
) -> None:
    # tansu keeps the topic in an S3 server that outlives it, and is killed (SIGKILL), so
    # what it confirmed had to be stored before it answered.
    broker = private_broker("kafka", env=s3_storage.tansu_env())
    settings = KafkaSettings(bootstrap_servers=broker.url, topic="events", enable_idempotence=False)
    async with KafkaPublisher(settings) as publisher:
        run = await publish_through(publisher, partial(broker.restart, kill=True))
    stored = await read_topic(broker.url, "events")
    missing = [n for n, r in run.confirmed if stored.get((r.partition, r.offset)) != n]
    assert not missing, f"{len(missing)} confirmed events lost: {missing[:10]}"
    # aiokafka resends a batch the broker did not answer itself, so ``attempts`` stays 1.
    assert run.spanning, "no publish was in flight across the restart"


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
