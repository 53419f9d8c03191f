"""RedisPublisher against the session's real Redis (one database per xdist worker)."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from publishers.publisher_brokers import (  # noqa: F401 (fixtures)
    closed_port_fixture,
    silent_port_fixture,
)
from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from pytest_resources.components.publishers import (
    PublishError,
    PublisherStartError,
    RedisPublisher,
    RedisSettings,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.requires_broker("redis")]


@pytest.mark.usefixtures("redis_client")  # flushes this worker's database around the test
async def test_pubsub_confirms_with_the_receiver_count(redis_url: str) -> None:
    channel = f"events-{uuid.uuid4().hex}"
    subscriber = AsyncRedis.from_url(redis_url)
    pubsub = subscriber.pubsub()
    try:
        await pubsub.subscribe(channel)
        subscribed = await pubsub.get_message(timeout=5)
        assert subscribed is not None
        assert subscribed["type"] == "subscribe"
        async with RedisPublisher({"url": redis_url, "channel": channel}) as publisher:
            receipt = await publisher.publish({"n": 1})
            nobody = await publisher.publish("x", key=f"{channel}-empty")
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]
        await subscriber.aclose()
    assert (receipt.receivers, receipt.target) == (1, f"redis channel {channel}")
    assert nobody.receivers == 0
    assert message is not None
    assert message["data"] == b'{"n":1}'


async def test_stream_confirms_with_the_entry_id(redis_url: str, redis_client: Redis) -> None:
    settings = RedisSettings(url=redis_url, stream="events", stream_maxlen=1000)
    async with RedisPublisher(settings) as publisher:
        first = await publisher.publish(b"one", headers={"kind": "test"})
        second = await publisher.publish("two", key="other")
    entries = redis_client.xrange("events")
    assert [(i.decode(), f) for i, f in entries] == [  # type: ignore[union-attr]
        (first.message_id, {b"kind": b"test", b"data": b"one"})
    ]
    assert redis_client.xrange("other")[0][1] == {b"data": b"two"}  # type: ignore[index]
    assert second.target == "redis stream other"


async def test_pubsub_refuses_headers_without_retrying(redis_url: str) -> None:
    async with RedisPublisher({"url": redis_url, "channel": "c"}) as publisher:
        with pytest.raises(PublishError, match=r"after 1 attempt.*carries no headers"):
            await publisher.publish("x", headers={"a": "b"})


async def test_the_pool_never_exceeds_max_connections(redis_url: str, redis_client: Redis) -> None:
    settings = RedisSettings(url=redis_url, stream="s", max_connections=3)
    async with RedisPublisher(settings) as publisher:
        await asyncio.gather(*(publisher.publish(str(i)) for i in range(60)))
        clients = redis_client.client_list()
    db = int(redis_url.rsplit("/", 1)[1])
    ours = [c for c in clients if int(c["db"]) == db and c["cmd"] in ("xadd", "ping")]
    assert 1 <= len(ours) <= 3
    assert redis_client.xlen("s") == 60


async def test_close_releases_every_connection(redis_url: str, redis_client: Redis) -> None:
    publisher = await RedisPublisher({"url": redis_url, "stream": "s"}).start()
    await asyncio.gather(*(publisher.publish("e") for _ in range(20)))
    result = await publisher.close()
    assert result.status == "closed"
    db = int(redis_url.rsplit("/", 1)[1])
    assert not [c for c in redis_client.client_list() if int(c["db"]) == db and c["cmd"] == "xadd"]


async def test_a_refused_connection_at_start_is_a_clear_error(closed_port: int) -> None:
    publisher = RedisPublisher({"url": f"redis://127.0.0.1:{closed_port}/0", "stream": "s"})
    began = time.monotonic()
    with pytest.raises(
        PublisherStartError, match=rf"could not start: .*127\.0\.0\.1:{closed_port}"
    ):
        await publisher.start()
    assert time.monotonic() - began < 5
    assert (await publisher.close()).status == "closed"


async def test_a_server_that_never_answers_fails_start_within_the_timeouts(
    silent_port: int,
) -> None:
    settings = RedisSettings(
        url=f"redis://127.0.0.1:{silent_port}/0",
        stream="s",
        socket_connect_timeout=0.5,
        socket_timeout=0.5,
    )
    publisher = RedisPublisher(settings)
    began = time.monotonic()
    with pytest.raises(PublisherStartError, match="could not start"):
        await publisher.start()
    assert time.monotonic() - began < 1.5
    await publisher.close()
