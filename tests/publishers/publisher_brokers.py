"""Private brokers for the publisher fault tests: started on free ports, restarted on the same
port, paused (SIGSTOP) and resumed; never the session's shared broker."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from dataclasses import replace
from pathlib import Path

from pytest_resources.brokers import process
from pytest_resources.brokers.base import Launch
from pytest_resources.brokers.chain import KIND_SPECS
from pytest_resources.brokers.wire import free_ports, wait_ready

#: A started broker answers within this many seconds (RabbitMQ needs a few).
READY_TIMEOUT = 120.0
#: Redis with every write fsynced before it is acknowledged: a restart keeps every entry.
REDIS_DURABLE = ("--appendonly", "yes", "--appendfsync", "always")


class PrivateBroker:
    """One broker of ``kind`` that belongs to one test."""

    def __init__(self, kind: str, data_dir: Path, extra: tuple[str, ...] = ()) -> None:
        self.kind = KIND_SPECS[kind]
        ports = free_ports(self.kind.ports)
        self.url = self.kind.url(ports[0])
        self.data_dir = data_dir
        launch = self.kind.launch(self.kind.binary(), ports, str(data_dir))
        self.launch: Launch = replace(launch, argv=launch.argv + extra)
        self.spawned: process.Spawned | None = None

    def start(self) -> None:
        self.spawned = process.spawn(self.launch, self.data_dir)
        spawned, check, url = self.spawned, self.kind.check, self.url
        wait_ready(lambda t: check(url, t), READY_TIMEOUT, lambda: process.exit_reason(spawned))

    def stop(self) -> None:
        if self.spawned is not None:
            self.resume()  # a stopped process cannot act on SIGTERM
            process.stop(self.spawned)
            self.spawned = None

    def pause(self) -> None:
        """SIGSTOP the server: connections stay open, nothing is answered."""
        assert self.spawned is not None
        os.kill(self.spawned.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.spawned is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.spawned.pid, signal.SIGCONT)

    async def restart(self) -> None:
        """Stop the server and start it again on the same port, off the event loop."""
        await asyncio.to_thread(self.stop)
        await asyncio.to_thread(self.start)
