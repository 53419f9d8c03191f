"""Runnable examples for docs/components/publishers.md, collected as tests."""

from __future__ import annotations

import aio_pika
import pytest
from redis import Redis

from pytest_resources.components.publishers import (
    ConsolePublisher,
    PublisherClosedError,
    PublisherConfigError,
    RabbitMQPublisher,
    RabbitMQSettings,
    RedisPublisher,
    RedisSettings,
    create_publisher,
)
from pytest_resources.fixtures.publishers import PublisherFactory


@pytest.mark.asyncio
@pytest.mark.requires_broker("redis")
async def test_publish_to_a_redis_stream(redis_url: str, redis_client: Redis) -> None:
    settings = RedisSettings(url=redis_url, stream="signups")
    async with RedisPublisher(settings) as publisher:
        receipt = await publisher.publish({"user": 7})  # returns once XADD replied
    [(entry_id, fields)] = redis_client.xrange("signups")  # type: ignore[misc]
    assert (entry_id, fields) == (f"{receipt.message_id}".encode(), {b"data": b'{"user":7}'})


@pytest.mark.asyncio
@pytest.mark.requires_broker("rabbitmq")
async def test_publish_with_confirms(rabbitmq_url: str, rabbitmq_prefix: str) -> None:
    connection = await aio_pika.connect(rabbitmq_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(rabbitmq_prefix + "emails", exclusive=True)
        config = {"type": "rabbitmq", "url": rabbitmq_url, "routing_key": queue.name}
        async with create_publisher(config) as publisher:  # the same as RabbitMQSettings
            await publisher.publish("welcome", headers={"lang": "en"})
        assert (await queue.get(timeout=10)).body == b"welcome"
    assert isinstance(publisher, RabbitMQPublisher)
    assert isinstance(publisher.settings, RabbitMQSettings)


def test_a_typo_in_the_config_is_one_line() -> None:
    with pytest.raises(PublisherConfigError, match="redis publisher: unknown key 'chanel'"):
        create_publisher({"type": "redis", "chanel": "events"})


@pytest.mark.asyncio
async def test_closed_means_closed() -> None:
    publisher = await ConsolePublisher().start()
    first = await publisher.close()
    assert await publisher.close() is first  # idempotent: the same result
    with pytest.raises(PublisherClosedError):
        await publisher.publish("late")


@pytest.mark.asyncio
@pytest.mark.requires_broker("redis")
async def test_the_publisher_fixture(publisher: PublisherFactory, redis_client: Redis) -> None:
    events = await publisher("redis", stream="events")  # on the session's Redis
    await events.publish(b"raw bytes")
    assert redis_client.xlen("events") == 1
    # no close needed: the fixture closes it, and fails the test if that went wrong
