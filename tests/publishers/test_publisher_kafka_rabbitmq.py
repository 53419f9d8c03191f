"""KafkaPublisher and RabbitMQPublisher against the session's real brokers."""

from __future__ import annotations

import gc
import time
import warnings

import aio_pika
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from publishers.publisher_brokers import (  # noqa: F401 (fixtures)
    closed_port_fixture,
)

from pytest_resources.components.publishers import (
    KafkaPublisher,
    KafkaSettings,
    PublishError,
    PublisherStartError,
    RabbitMQPublisher,
    RabbitMQSettings,
)

pytestmark = pytest.mark.asyncio


@pytest.mark.requires_broker("kafka")
async def test_kafka_confirms_with_partition_and_offset(
    kafka_bootstrap_servers: str, kafka_topic_prefix: str
) -> None:
    topic = kafka_topic_prefix + "events"
    # The local broker (tansu) has no idempotent producers; acks="all" stays.
    settings = KafkaSettings(
        bootstrap_servers=kafka_bootstrap_servers, topic=topic, enable_idempotence=False
    )
    async with KafkaPublisher(settings) as publisher:
        receipt = await publisher.publish({"n": 1}, key="user-7", headers={"v": "2"})
    assert receipt.partition is not None
    assert receipt.offset is not None
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap_servers)
    await consumer.start()
    try:
        tp = TopicPartition(topic, receipt.partition)
        consumer.assign([tp])
        consumer.seek(tp, receipt.offset)
        message = await consumer.getone()
    finally:
        await consumer.stop()
    assert (message.key, message.value) == (b"user-7", b'{"n":1}')
    assert list(message.headers) == [("v", b"2")]


@pytest.mark.requires_broker("kafka")
async def test_kafka_start_refused_by_the_broker_leaves_no_unclosed_producer(
    kafka_bootstrap_servers: str, kafka_topic_prefix: str
) -> None:
    # The local tansu refuses idempotent producers: start() fails after connecting, the
    # case where aiokafka alone leaves an "Unclosed AIOKafkaProducer" (aiokafka#938).
    publisher = KafkaPublisher(
        {"bootstrap_servers": kafka_bootstrap_servers, "topic": kafka_topic_prefix + "t"}
    )
    with pytest.raises(PublisherStartError, match="set enable_idempotence=False"):
        await publisher.start()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    assert not [w for w in caught if "Unclosed" in str(w.message)]
    assert (await publisher.close()).status == "closed"


async def test_kafka_down_at_start_is_a_clear_error(closed_port: int) -> None:
    publisher = KafkaPublisher(
        {"bootstrap_servers": f"127.0.0.1:{closed_port}", "topic": "t", "request_timeout_ms": 5000}
    )
    began = time.monotonic()
    with pytest.raises(PublisherStartError, match="Unable to bootstrap"):
        await publisher.start()
    assert time.monotonic() - began < 5


@pytest.mark.requires_broker("rabbitmq")
async def test_rabbitmq_confirms_a_persistent_event_with_headers(
    rabbitmq_url: str, rabbitmq_prefix: str
) -> None:
    connection = await aio_pika.connect(rabbitmq_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(rabbitmq_prefix + "q", exclusive=True)
        settings = RabbitMQSettings(url=rabbitmq_url, routing_key=queue.name)
        async with RabbitMQPublisher(settings) as publisher:
            receipt = await publisher.publish({"n": 1}, headers={"v": "2"})
        message = await queue.get(timeout=10)
        await message.ack()
    assert message.body == b'{"n":1}'
    assert message.headers == {"v": "2"}
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert receipt.target == f"rabbitmq exchange (default) key {queue.name}"


@pytest.mark.requires_broker("rabbitmq")
async def test_rabbitmq_routes_through_its_exchange_and_key_override(
    rabbitmq_url: str, rabbitmq_prefix: str
) -> None:
    exchange = rabbitmq_prefix + "events"
    settings = RabbitMQSettings(
        url=rabbitmq_url, exchange=exchange, exchange_type="topic", routing_key="user.signup"
    )
    async with RabbitMQPublisher(settings) as publisher:
        connection = await aio_pika.connect(rabbitmq_url)
        async with connection:
            channel = await connection.channel()
            queue = await channel.declare_queue(rabbitmq_prefix + "q", exclusive=True)
            await queue.bind(exchange, "user.*")
            await publisher.publish("a")
            await publisher.publish("b", key="user.login")
            with pytest.raises(PublishError, match=r"after 1 attempt.*NO_ROUTE"):
                await publisher.publish("c", key="order.paid")  # no queue takes it
            bodies = [(await queue.get(timeout=10)).body for _ in range(2)]
            await channel.exchange_delete(exchange)
    assert bodies == [b"a", b"b"]


async def test_rabbitmq_down_at_start_is_a_clear_error(closed_port: int) -> None:
    publisher = RabbitMQPublisher({"url": f"amqp://guest:guest@127.0.0.1:{closed_port}/"})
    began = time.monotonic()
    with pytest.raises(PublisherStartError, match=r"could not start: .*guest:\*\*\*@"):
        await publisher.start()
    assert time.monotonic() - began < 10
