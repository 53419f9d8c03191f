from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import pytest
from publishers.publisher_brokers import PrivateBroker

from pytest_resources.brokers.base import Unavailable
from pytest_resources.fixtures.brokers import broker_session

StartBroker = Callable[..., PrivateBroker]


@pytest.fixture
def private_broker(tmp_path: Path, pytestconfig: pytest.Config) -> Iterator[StartBroker]:
    """Start brokers only this test uses: ``private_broker("redis", *extra_args)``."""
    started: list[PrivateBroker] = []

    def start(kind: str, *extra: str) -> PrivateBroker:
        try:
            broker = PrivateBroker(kind, tmp_path / f"{kind}-{len(started)}", extra)
        except Unavailable as exc:
            broker_session(pytestconfig).unavailable(f"no local {kind} server: {exc}")
        started.append(broker)
        broker.start()
        return broker

    yield start
    for broker in started:
        broker.stop()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections (into the backlog) and never answers."""
    with closing(socket.socket()) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on: connections are refused."""
    with closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
