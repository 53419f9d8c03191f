"""Enqueue → receive → ack throughput of each MessageQueue backend against the raw client
doing the same safe loop (the baseline), measured in one run.

Baselines: memory — ``asyncio.PriorityQueue`` put/get/task_done; Redis — redis-py LPUSH, then
LMOVE into a processing list (the atomic move) and LREM to ack; RabbitMQ — aio-pika publish
with confirms into a durable priority queue, consume with manual ack. Each round sends N
messages, then receives and acks them one by one; rounds alternate between the queue and its
baseline and the median is reported. Brokers come from ``PYTEST_RESOURCES_<KIND>_URL`` or are
started as local processes (redis-server, rabbitmq-server) for the run.

The Redis baseline is the reliable-queue pattern of the Redis docs and does the same durable
steps as ``RedisMessageQueue``, no more and no fewer: one write that stores the message, one
atomic move into an in-flight structure on receive, one removal on ack — three round trips
per message on both sides, each awaited before the next, with the body JSON-encoded before it
is sent and decoded when it is handled. The client is redis-py with its defaults (a 5 s socket
timeout on every command; the queue bounds every command too). What the queue adds — priority
order, a lease deadline for the recovery sweep, a lease token checked on settle, exact stats,
wake-ups for idle receivers — runs inside those same three round trips, in Lua on the server:
the ratio is its price.

    python benchmarks/bench_queues.py [--rounds 5] [--messages 2000] \
        [--backends memory,redis,rabbitmq]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from pytest_resources.brokers.chain import Provisioner
from pytest_resources.brokers.owner import Owner
from pytest_resources.brokers.settings import BrokerSettings
from pytest_resources.brokers.shared import SessionDir
from pytest_resources.components.queues import (
    InMemoryMessageQueue,
    MessageQueue,
    RabbitMQMessageQueue,
    RedisMessageQueue,
)

Loop = Callable[[int], Coroutine[Any, Any, None]]


async def queue_loop(queue: MessageQueue, n: int) -> None:
    async with queue:
        for i in range(n):
            await queue.enqueue({"i": i})
        for _ in range(n):
            delivery = await queue.receive(timeout=30)
            assert delivery is not None
            await queue.ack(delivery)
        await queue.destroy()


async def raw_memory(n: int) -> None:
    queue: asyncio.PriorityQueue[tuple[int, int, dict[str, int]]] = asyncio.PriorityQueue()
    for i in range(n):
        await queue.put((0, i, {"i": i}))
    for _ in range(n):
        await queue.get()
        queue.task_done()


def raw_redis(url: str) -> Loop:
    async def loop(n: int) -> None:
        from redis.asyncio import Redis

        client = Redis.from_url(url)
        name = f"raw-{uuid.uuid4().hex}"
        try:
            for i in range(n):
                await client.lpush(name, json.dumps({"i": i}, separators=(",", ":")))
            for _ in range(n):
                item: Any = await client.lmove(name, f"{name}:processing", "RIGHT", "LEFT")
                assert "i" in json.loads(item)  # handled
                await client.lrem(f"{name}:processing", 1, item)
        finally:
            await client.delete(name, f"{name}:processing")
            await client.aclose()

    return loop


def raw_rabbitmq(url: str) -> Loop:
    async def loop(n: int) -> None:
        import aio_pika

        connection = await aio_pika.connect(url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            await channel.set_qos(prefetch_count=16)
            name = f"raw-{uuid.uuid4().hex}"
            queue = await channel.declare_queue(name, durable=True, arguments={"x-max-priority": 9})
            for i in range(n):
                await channel.default_exchange.publish(
                    aio_pika.Message(
                        f'{{"i":{i}}}'.encode(), delivery_mode=aio_pika.DeliveryMode.PERSISTENT
                    ),
                    routing_key=name,
                )
            async with queue.iterator() as messages:
                received = 0
                async for message in messages:
                    await message.ack()
                    received += 1
                    if received == n:
                        break
            await queue.delete()

    return loop


async def timed(loop: Loop, n: int) -> float:
    begin = time.perf_counter()
    await loop(n)
    return n / (time.perf_counter() - begin)


def broker_url(kind: str, provisioner: Provisioner) -> str:
    return os.environ.get(f"PYTEST_RESOURCES_{kind.upper()}_URL") or provisioner.broker(kind).url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--backends", default="memory,redis,rabbitmq")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        session = SessionDir(Path(tmp) / "brokers")
        session.claim(Owner.current())
        settings = BrokerSettings(mode="require", providers=("process",), ryuk=False)
        provisioner = Provisioner(settings, session, lambda _: None, lambda _: None)
        try:
            print(f"{'backend':<10}{'queue msg/s':>13}{'raw msg/s':>11}{'ratio':>8}  baseline")
            for backend in args.backends.split(","):
                run_backend(backend, provisioner, args.rounds, args.messages)
        finally:
            provisioner.finish()


def run_backend(backend: str, provisioner: Provisioner, rounds: int, n: int) -> None:
    make: Callable[[], MessageQueue]
    raw: Loop
    if backend == "memory":
        make, raw, baseline = InMemoryMessageQueue, raw_memory, "asyncio.PriorityQueue"
    elif backend == "redis":
        url = broker_url("redis", provisioner)
        make, raw = (lambda: RedisMessageQueue(f"bench-{uuid.uuid4().hex}", url)), raw_redis(url)
        baseline = "redis-py LPUSH + LMOVE + LREM"
    else:
        url = broker_url("rabbitmq", provisioner)
        make = lambda: RabbitMQMessageQueue(f"bench-{uuid.uuid4().hex}", url)  # noqa: E731
        raw, baseline = raw_rabbitmq(url), "aio-pika confirmed publish + consume + ack"
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(rounds):  # alternating, so drift hits both alike
        ours.append(asyncio.run(timed(lambda k: queue_loop(make(), k), n)))
        theirs.append(asyncio.run(timed(raw, n)))
    mine, base = statistics.median(ours), statistics.median(theirs)
    print(f"{backend:<10}{mine:>13,.0f}{base:>11,.0f}{mine / base:>7.2f}x  {baseline}")


if __name__ == "__main__":
    main()
