from __future__ import annotations

import aio_pika
import pytest
from pytester_run import Run
from redis import Redis

from pytest_resources.components.publishers import (
    ConsoleSettings,
    KafkaPublisher,
    PublisherClosedError,
    PublisherConfigError,
    RedisPublisher,
)
from pytest_resources.fixtures.publishers import PublisherFactory


@pytest.mark.asyncio
async def test_a_console_publisher_is_started(
    publisher: PublisherFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    console = await publisher("console")
    await console.publish("hello")
    assert capsys.readouterr().out == "hello\n"


@pytest.mark.asyncio
async def test_settings_are_used_as_given(publisher: PublisherFactory) -> None:
    console = await publisher(ConsoleSettings(name="given"))
    assert console.name == "given"
    with pytest.raises(TypeError, match="options go with a type name"):
        await publisher(ConsoleSettings(), name="x")


@pytest.mark.asyncio
async def test_a_bad_option_is_the_config_error(publisher: PublisherFactory) -> None:
    with pytest.raises(PublisherConfigError, match="unknown key 'chanel'"):
        await publisher("redis", chanel="typo")


@pytest.mark.asyncio
@pytest.mark.requires_broker("redis")
async def test_redis_comes_from_the_session_broker(
    publisher: PublisherFactory, redis_client: Redis
) -> None:
    events = await publisher("redis", stream="events")
    assert isinstance(events, RedisPublisher)
    await events.publish("e")
    assert redis_client.xlen("events") == 1


@pytest.mark.requires_broker("rabbitmq")
@pytest.mark.asyncio
async def test_rabbitmq_comes_from_the_session_broker(
    publisher: PublisherFactory, rabbitmq_url: str, rabbitmq_prefix: str
) -> None:
    connection = await aio_pika.connect(rabbitmq_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(rabbitmq_prefix + "q", exclusive=True)
        events = await publisher("rabbitmq", routing_key=queue.name)
        await events.publish("e")
        assert (await queue.get(timeout=10)).body == b"e"


@pytest.mark.requires_broker("kafka")
@pytest.mark.asyncio
async def test_kafka_gets_a_topic_of_its_own(
    publisher: PublisherFactory, kafka_topic_prefix: str
) -> None:
    events = await publisher("kafka", enable_idempotence=False)
    assert isinstance(events, KafkaPublisher)
    assert events.settings.topic == kafka_topic_prefix + "events"
    assert (await events.publish("e")).offset is not None


def test_publishers_are_closed_at_teardown(run: Run) -> None:
    result = run(
        """
import pytest

leftover = []

@pytest.mark.asyncio
@pytest.mark.asyncio
async def test_make(publisher):
    leftover.append(await publisher("console"))

def test_closed():
    assert leftover[0].closed
""",
        "-p",
        "no:randomly",
    )
    result.assert_outcomes(passed=2)


@pytest.mark.asyncio
async def test_a_closed_publisher_refuses(publisher: PublisherFactory) -> None:
    console = await publisher("console")
    await console.close()
    with pytest.raises(PublisherClosedError):
        await console.publish("late")
