"""RabbitMQ: URL rules, the AMQP 0-9-1 handshake and a private rabbitmq-server node."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from urllib.parse import urlsplit

from .base import Launch, ProtocolError, Unavailable
from .wire import LOOPBACK, connect, recv_exact

SCHEMES = ("amqp", "amqps")
PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"
METHOD_FRAME = 1
DIST_ON_LOOPBACK = "-kernel inet_dist_use_interface {127,0,0,1}"
# Debian's /usr/sbin/rabbitmq-server is this wrapper; as root it re-runs the server as the
# rabbitmq user through su, a process we could not stop. The real script sits beside it.
DEBIAN_WRAPPER = "rabbitmq-script-wrapper"

# epmd is started by us, in the node's process group, so stopping the group stops it too
# (rabbitmq-server would otherwise start a daemonised epmd that outlives the node).
START = """\
mkdir -p "$RABBITMQ_MNESIA_BASE" "$RABBITMQ_LOG_BASE"
printf '[].' > "$RABBITMQ_ENABLED_PLUGINS_FILE"
epmd -port "$ERL_EPMD_PORT" -address 127.0.0.1 &
until epmd -port "$ERL_EPMD_PORT" -names >/dev/null 2>&1; do
    kill -0 $! 2>/dev/null || { echo "epmd did not start" >&2; exit 1; }
    sleep 0.05
done
exec "$0"
"""


class RabbitMQ:
    name = "rabbitmq"
    ports = 3  # AMQP, Erlang distribution, epmd
    default_image = "rabbitmq:4"
    provide = "apt-get install rabbitmq-server (PyPI has no RabbitMQ server)"

    def parse_url(self, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in SCHEMES:
            raise ValueError(f"expected amqp://user:password@host:port/vhost, got {url!r}")
        if not parts.hostname:
            raise ValueError(f"no host in {url!r}")
        _ = parts.port  # raises ValueError for a port that is not a number
        return url

    def url(self, port: int) -> str:
        return f"amqp://guest:guest@{LOOPBACK}:{port}/"

    def check(self, url: str, timeout: float) -> None:
        parts = urlsplit(url)
        tls = parts.scheme == "amqps"
        port = parts.port or (5671 if tls else 5672)
        with connect(parts.hostname or LOOPBACK, port, timeout, tls=tls) as sock:
            sock.sendall(PROTOCOL_HEADER)
            frame = recv_exact(sock, 7)
        if frame[0] != METHOD_FRAME:
            raise ProtocolError(f"no AMQP 0-9-1 Connection.Start (got {frame!r})")

    def binary(self) -> str:
        found = shutil.which("rabbitmq-server")
        if found is None:
            raise Unavailable("rabbitmq-server not on PATH")
        real = os.path.realpath(found)
        if os.path.basename(real) == DEBIAN_WRAPPER:
            return os.path.join(os.path.dirname(real), "rabbitmq-server")
        return found

    def launch(self, binary: str, ports: Sequence[int], data_dir: str) -> Launch:
        amqp, dist, epmd = ports
        return Launch(
            ("sh", "-c", START, binary),
            {
                "HOME": data_dir,
                "ERL_EPMD_PORT": str(epmd),
                "RABBITMQ_NODENAME": f"pytest-resources-{amqp}@localhost",
                "RABBITMQ_NODE_IP_ADDRESS": LOOPBACK,
                "RABBITMQ_NODE_PORT": str(amqp),
                "RABBITMQ_DIST_PORT": str(dist),
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": DIST_ON_LOOPBACK,
                "RABBITMQ_MNESIA_BASE": f"{data_dir}/mnesia",
                "RABBITMQ_LOG_BASE": f"{data_dir}/log",
                "RABBITMQ_LOGS": "-",
                "RABBITMQ_ENABLED_PLUGINS_FILE": f"{data_dir}/enabled_plugins",
                "RABBITMQ_CONFIG_FILE": f"{data_dir}/rabbitmq",
                "RABBITMQ_CONF_ENV_FILE": f"{data_dir}/rabbitmq-env.conf",
                "RABBITMQ_PID_FILE": f"{data_dir}/pid",
            },
        )

    def container(self, image: str, ports: Sequence[int]) -> Launch:
        return self.launch("rabbitmq-server", ports, "/tmp/pytest-resources")


KIND = RabbitMQ()
