"""A private S3 server (moto's, its own process on 127.0.0.1) for tansu to keep its topics in.

tansu's default ``memory://`` storage dies with the broker; an S3 server that outlives the
broker's restarts lets a test read back, after a restart, everything that was confirmed before.
Test modules import the ``s3_storage`` fixture from here (see publisher_brokers.py for why).
"""

from __future__ import annotations

import http.client
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_resources.brokers import process
from pytest_resources.brokers.base import Launch, ProtocolError
from pytest_resources.brokers.wire import LOOPBACK, free_ports, wait_ready
from pytest_resources.fixtures.brokers import broker_session

#: moto imports every AWS service it mocks before it listens.
READY_TIMEOUT = 60.0
BUCKET = "tansu"
#: Packages ``python -m moto.server`` needs (``pip install 'moto[server]'``).
SERVER_PACKAGES = ("moto", "flask", "flask_cors")


def _request(port: int, method: str, path: str, timeout: float) -> None:
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        response.read()
    finally:
        connection.close()
    if response.status != 200:
        raise ProtocolError(f"S3 {method} {path} answered HTTP {response.status}")


class S3Server:
    """An S3 server holding one empty bucket, for one test."""

    def __init__(self, data_dir: Path) -> None:
        self.port = free_ports(1)[0]
        self.data_dir = data_dir
        self.launch = Launch(
            (sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(self.port))
        )
        self.spawned: process.Spawned | None = None

    def start(self) -> None:
        self.spawned = process.spawn(self.launch, self.data_dir)
        spawned = self.spawned
        wait_ready(
            lambda t: _request(self.port, "GET", "/", t),  # lists the buckets
            READY_TIMEOUT,
            lambda: process.exit_reason(spawned),
        )
        _request(self.port, "PUT", f"/{BUCKET}", READY_TIMEOUT)

    def stop(self) -> None:
        if self.spawned is not None:
            process.stop(self.spawned)
            self.spawned = None

    def tansu_env(self) -> dict[str, str]:
        """What tansu's object store needs to keep its topics in this server's bucket."""
        return {
            "STORAGE_ENGINE": f"s3://{BUCKET}/",
            "AWS_ENDPOINT": f"http://{LOOPBACK}:{self.port}",
            "AWS_ALLOW_HTTP": "true",
            # Given, so the object store never asks a cloud metadata service for credentials;
            # moto accepts any.
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
        }


@pytest.fixture(name="s3_storage")
def s3_storage_fixture(tmp_path: Path, pytestconfig: pytest.Config) -> Iterator[S3Server]:
    """A started S3 server with the bucket tansu uses; stopped at teardown."""
    missing = [name for name in SERVER_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        broker_session(pytestconfig).unavailable(
            f"no local S3 server: {', '.join(missing)} not installed (pip install 'moto[server]')"
        )
    server = S3Server(tmp_path / "s3")
    try:
        server.start()
        yield server
    finally:
        server.stop()
