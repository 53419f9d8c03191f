"""A consumer in a child process: receives one message, says which, and holds it (renewing its
lease) until it is killed. Run as ``python queue_child.py BACKEND URL NAME``."""

from __future__ import annotations

import asyncio
import sys

from pytest_resources.components.queues import RabbitMQMessageQueue, RedisMessageQueue


async def main(backend: str, url: str, name: str) -> None:
    queue_class = RedisMessageQueue if backend == "redis" else RabbitMQMessageQueue
    async with queue_class(name, url, lease=30.0) as queue:
        delivery = await queue.receive(timeout=30)
        assert delivery is not None
        async with queue.renewing(delivery):
            print(delivery.id, flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
