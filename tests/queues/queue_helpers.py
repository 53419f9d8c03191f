"""The harness the queue tests share: queues of one backend on a ``ManualClock``."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from pytest_resources.components.queues import ManualClock, MessageQueue, RetryPolicy
from pytest_resources.fixtures.queues import QueueFactory

CHILD = Path(__file__).with_name("queue_child.py")


class Harness:
    """Queues of one backend on a ``ManualClock``. RabbitMQ runs delays on the broker's own
    TTL clock: there ``advance`` moves only the processing-time clock and waits are real."""

    def __init__(self, factory: QueueFactory) -> None:
        self.factory = factory
        self.backend = factory.backend
        self.clock = ManualClock()
        self.real_delays = self.backend == "rabbitmq"

    def queue(self, **settings: Any) -> MessageQueue:
        settings.setdefault("clock", self.clock)
        settings.setdefault("retry", RetryPolicy(max_attempts=3, backoff=0.2, factor=2))
        settings.setdefault("lease", 10.0)
        settings.setdefault("poll_interval", 0.05)
        return self.factory(**settings)

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    async def consume_in_child_and_kill(self, name: str) -> str:
        """A child process receives one message (holding its lease) and is SIGKILLed; returns
        the id it had."""
        assert self.factory.url is not None
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(CHILD),
            self.backend,
            self.factory.url,
            name,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 60)
        finally:
            proc.kill()
            await proc.communicate()
        assert proc.returncode == -9
        return line.decode().strip()
