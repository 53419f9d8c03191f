"""Private brokers for the publisher fault tests: started on free ports, restarted on the same
port, paused (SIGSTOP) and resumed; never the session's shared broker.

Test modules import the fixtures they use (``private_broker``, ``silent_port``,
``closed_port``): a conftest.py here would shadow ``tests/conftest.py`` as ``conftest``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing
from pathlib import Path

import pytest

from pytest_resources.brokers import process
from pytest_resources.brokers.base import Launch, Unavailable
from pytest_resources.brokers.kinds import KIND_SPECS
from pytest_resources.brokers.wire import free_ports, wait_ready
from pytest_resources.fixtures.brokers import broker_session

#: A started broker answers within this many seconds (RabbitMQ needs a few).
READY_TIMEOUT = 120.0
#: Redis with every write fsynced before it is acknowledged: a restart keeps every entry.
REDIS_DURABLE = ("--appendonly", "yes", "--appendfsync", "always")


class PrivateBroker:
    """One broker of ``kind`` that belongs to one test."""

    def __init__(
        self,
        kind: str,
        data_dir: Path,
        extra: tuple[str, ...] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.kind = KIND_SPECS[kind]
        ports = free_ports(self.kind.ports)
        self.url = self.kind.url(ports[0])
        self.data_dir = data_dir
        launch = self.kind.launch(self.kind.binary(), ports, str(data_dir))
        self.launch: Launch = launch._replace(
            argv=launch.argv + extra, env={**launch.env, **(env or {})}
        )
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

    def kill(self) -> None:
        """SIGKILL the server: it gets no chance to save anything on its way out."""
        assert self.spawned is not None
        os.kill(self.spawned.pid, signal.SIGKILL)
        self.stop()  # waits until it is gone

    async def restart(self, *, kill: bool = False) -> None:
        """Stop (or kill) the server and start it again on the same port, off the event loop."""
        await asyncio.to_thread(self.kill if kill else self.stop)
        await asyncio.to_thread(self.start)


StartBroker = Callable[..., PrivateBroker]


@pytest.fixture(name="private_broker")
def private_broker_fixture(tmp_path: Path, pytestconfig: pytest.Config) -> Iterator[StartBroker]:
    """Start brokers only this test uses: ``private_broker("redis", *extra_args, env={...})``."""
    started: list[PrivateBroker] = []

    def start(kind: str, *extra: str, env: Mapping[str, str] | None = None) -> PrivateBroker:
        try:
            broker = PrivateBroker(kind, tmp_path / f"{kind}-{len(started)}", extra, env)
        except Unavailable as exc:
            broker_session(pytestconfig).unavailable(f"no local {kind} server: {exc}")
        started.append(broker)
        broker.start()
        return broker

    yield start
    for broker in started:
        broker.stop()


@pytest.fixture(name="silent_port")
def silent_port_fixture() -> Iterator[int]:
    """A port that accepts TCP connections (into the backlog) and never answers."""
    with closing(socket.socket()) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]


@pytest.fixture(name="closed_port")
def closed_port_fixture() -> int:
    """A port nothing listens on: connections are refused."""
    with closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
