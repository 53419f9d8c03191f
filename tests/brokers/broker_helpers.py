"""Helpers for the broker tests: what a real client does, and when a provider is there."""

from __future__ import annotations

import time
from collections.abc import Callable

import psutil
import pytest

from pytest_resources.brokers.base import Unavailable
from pytest_resources.brokers.container import docker_client
from pytest_resources.brokers.kinds import KIND_SPECS
from pytest_resources.fixtures.brokers import broker_session

#: One inner test per broker kind that proves a real client round trip.
ROUNDTRIP = {
    "redis": """
import pytest

@pytest.mark.requires_broker("redis")
def test_roundtrip(redis_client):
    redis_client.set("key", "value")
    assert redis_client.get("key") == b"value"
    assert redis_client.info("server")["redis_version"]
""",
    "rabbitmq": """
import aio_pika
import pytest

@pytest.mark.asyncio
@pytest.mark.requires_broker("rabbitmq")
async def test_roundtrip(rabbitmq_url, rabbitmq_prefix):
    connection = await aio_pika.connect(rabbitmq_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(rabbitmq_prefix + "q", auto_delete=True)
        await channel.default_exchange.publish(aio_pika.Message(b"hello"), routing_key=queue.name)
        message = await queue.get(timeout=30)
        await message.ack()
        assert message.body == b"hello"
""",
    "kafka": """
import asyncio
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

@pytest.mark.asyncio
@pytest.mark.requires_broker("kafka")
async def test_roundtrip(kafka_bootstrap_servers, kafka_topic_prefix):
    topic = kafka_topic_prefix + "t"
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"hello", partition=0)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka_bootstrap_servers, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, 0)])
        message = await asyncio.wait_for(consumer.getone(), 30)
    finally:
        await consumer.stop()
    assert message.value == b"hello"
""",
}


def mode(config: pytest.Config) -> str:
    return broker_session(config).settings.mode


def image(config: pytest.Config, kind: str) -> str:
    return broker_session(config).settings.image(kind)


def need(config: pytest.Config, check: Callable[[], object]) -> None:
    """Skip when ``check`` raises Unavailable; fail instead under --resource-brokers=require."""
    try:
        check()
    except Unavailable as exc:
        if mode(config) == "require":
            pytest.fail(f"required for this test: {exc}", pytrace=False)
        pytest.skip(str(exc))


def need_binary(config: pytest.Config, kind: str) -> None:
    need(config, KIND_SPECS[kind].binary)


def need_image(config: pytest.Config, image: str) -> None:
    def present() -> None:
        with docker_client() as client:
            if not client.images.list(name=image):
                raise Unavailable(f"image {image} is not present (.ci/build-images builds it)")

    need(config, present)


def listening(port: int) -> bool:
    return any(
        c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN
        for c in psutil.net_connections("tcp")
    )


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` (another process's progress) until true; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)
