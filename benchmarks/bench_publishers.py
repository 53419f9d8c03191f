"""Each publisher against its raw client doing the same safe publish, on local brokers.

Per backend, one round publishes N events one after another, each awaited until the broker
confirmed it (Redis: the PUBLISH/XADD reply; Kafka: the acks="all" acknowledgement; RabbitMQ:
the publisher confirm), once through the raw client and once through the publisher, in
alternating order. The figure is raw time / publisher time from the medians over the rounds
(1.0 = no overhead; target >= 0.9).

Starts redis-server, rabbitmq-server and tansu on free ports (skips a broker it cannot start).

    python benchmarks/bench_publishers.py [--events 2000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from pytest_resources.brokers import process
from pytest_resources.brokers.base import Unavailable
from pytest_resources.brokers.kinds import KIND_SPECS
from pytest_resources.brokers.wire import free_ports, wait_ready
from pytest_resources.components.publishers import (
    BasePublisher,
    KafkaPublisher,
    KafkaSettings,
    RabbitMQPublisher,
    RabbitMQSettings,
    RedisPublisher,
    RedisSettings,
)

Publish = Callable[[bytes], Awaitable[object]]
BODY = b'{"type":"signup","user":7,"plan":"pro"}'
TARGET = 0.9


@contextlib.contextmanager
def local_broker(kind: str, data_dir: Path) -> Iterator[str]:
    spec = KIND_SPECS[kind]
    ports = free_ports(spec.ports)
    url = spec.url(ports[0])
    spawned = process.spawn(spec.launch(spec.binary(), ports, str(data_dir)), data_dir)
    try:
        wait_ready(lambda t: spec.check(url, t), 120, lambda: process.exit_reason(spawned))
        yield url
    finally:
        process.stop(spawned)


async def timed(publish: Publish, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        await publish(BODY)
    return time.perf_counter() - start


@contextlib.asynccontextmanager
async def raw_redis(url: str, mode: str) -> AsyncIterator[Publish]:
    from redis.asyncio import BlockingConnectionPool, Redis

    pool = BlockingConnectionPool.from_url(url, max_connections=10, timeout=5.0)
    client = Redis.from_pool(pool)
    try:
        if mode == "channel":
            yield lambda body: client.publish("bench", body)
        else:
            yield lambda body: client.xadd("bench-raw", {"data": body})
    finally:
        await client.aclose()


@contextlib.asynccontextmanager
async def raw_kafka(servers: str) -> AsyncIterator[Publish]:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all", linger_ms=0)
    await producer.start()

    async def publish(body: bytes) -> object:
        return await (await producer.send("bench-raw", body))

    try:
        yield publish
    finally:
        await producer.stop()


@contextlib.asynccontextmanager
async def raw_rabbitmq(url: str) -> AsyncIterator[Publish]:
    import aio_pika

    connection = await aio_pika.connect_robust(url)
    channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
    queue = await channel.declare_queue("bench-raw", durable=True)

    async def publish(body: bytes) -> object:
        message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
        return await channel.default_exchange.publish(
            message, routing_key=queue.name, mandatory=True
        )

    try:
        yield publish
    finally:
        await queue.purge()
        await connection.close()


@contextlib.asynccontextmanager
async def ours(publisher: BasePublisher[Any]) -> AsyncIterator[Publish]:
    async with publisher:
        yield publisher.publish


async def compare(
    name: str,
    raw: Callable[[], contextlib.AbstractAsyncContextManager[Publish]],
    mine: Callable[[], contextlib.AbstractAsyncContextManager[Publish]],
    events: int,
    rounds: int,
) -> float:
    times: dict[str, list[float]] = {"raw": [], "publisher": []}
    async with raw() as raw_publish, mine() as our_publish:
        await timed(raw_publish, events // 10)  # warm both up
        await timed(our_publish, events // 10)
        for r in range(rounds):
            order = [("raw", raw_publish), ("publisher", our_publish)]
            for label, publish in order if r % 2 == 0 else order[::-1]:
                times[label].append(await timed(publish, events))
    raw_median = statistics.median(times["raw"])
    our_median = statistics.median(times["publisher"])
    ratio = raw_median / our_median
    verdict = "ok" if ratio >= TARGET else f"below target {TARGET}"
    print(
        f"{name:<22} raw {raw_median / events * 1e6:7.1f} us  publisher "
        f"{our_median / events * 1e6:7.1f} us  ratio {ratio:.2f}x ({verdict})"
    )
    return ratio


async def run(kind: str, url: str, events: int, rounds: int) -> None:
    if kind == "redis":
        for mode in ("channel", "stream"):
            settings = (
                RedisSettings(url=url, channel="bench")
                if mode == "channel"
                else RedisSettings(url=url, stream="bench")
            )
            await compare(
                f"redis {mode}",
                lambda mode=mode: raw_redis(url, mode),  # type: ignore[misc]
                lambda settings=settings: ours(RedisPublisher(settings)),  # type: ignore[misc]
                events,
                rounds,
            )
    elif kind == "kafka":
        # tansu has no idempotent producers; both sides use acks="all" without it.
        kafka = KafkaSettings(bootstrap_servers=url, topic="bench", enable_idempotence=False)
        await compare(
            "kafka acks=all",
            lambda: raw_kafka(url),
            lambda: ours(KafkaPublisher(kafka)),
            events,
            rounds,
        )
    else:
        rabbit = RabbitMQSettings(url=url, routing_key="bench-raw")
        await compare(
            "rabbitmq confirms",
            lambda: raw_rabbitmq(url),
            lambda: ours(RabbitMQPublisher(rabbit)),
            events,
            rounds,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    print(f"{args.events} sequential confirmed publishes per run, median of {args.rounds} runs")
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("redis", "kafka", "rabbitmq"):
            try:
                with local_broker(kind, Path(tmp) / kind) as url:
                    asyncio.run(run(kind, url, args.events, args.rounds))
            except Unavailable as exc:
                print(f"{kind:<22} skipped: {exc}")


if __name__ == "__main__":
    main()
