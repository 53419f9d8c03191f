"""Stdlib-only handshakes: is a broker really there (not just an open port)?"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager

from .base import ProtocolError

LOOPBACK = "127.0.0.1"


@contextmanager
def connect(host: str, port: int, timeout: float, tls: bool = False) -> Iterator[socket.socket]:
    import ssl  # on use: only TLS URLs need it

    sock = socket.create_connection((host, port), timeout=timeout)
    with closing(sock):
        if not tls:
            yield sock
            return
        with ssl.create_default_context().wrap_socket(sock, server_hostname=host) as wrapped:
            yield wrapped


def recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ProtocolError(f"connection closed after {len(data)} of {size} bytes")
        data += chunk
    return data


def recv_line(sock: socket.socket, limit: int = 512) -> bytes:
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = sock.recv(1)
        if not chunk or len(data) > limit:
            raise ProtocolError(f"no complete reply line (got {data[:60]!r})")
        data += chunk
    return data[:-2]


def free_ports(count: int) -> list[int]:
    """Ports the kernel just handed out on 127.0.0.1 (held together, so all distinct)."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for s in socks:
            s.bind((LOOPBACK, 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def wait_ready(
    check: Callable[[float], None],
    timeout: float,
    alive: Callable[[], str | None] = lambda: None,
    progress: Callable[[float], None] | None = None,
) -> float:
    """Repeat ``check`` until it passes; return the seconds it took.

    ``alive`` returns why the server is gone (then waiting stops at once). ``progress`` is
    called about every five seconds so a slow start does not look hung.
    """
    start = time.monotonic()
    deadline = start + timeout
    next_note = start + 5.0
    pause = 0.02
    last: Exception | None = None
    while True:
        try:
            check(min(2.0, max(0.1, deadline - time.monotonic())))
            return time.monotonic() - start
        except OSError as exc:
            last = exc
        gone = alive()
        if gone is not None:
            raise ProtocolError(gone)
        now = time.monotonic()
        if now >= deadline:
            raise TimeoutError(f"not ready after {timeout:g}s: {last}")
        if progress is not None and now >= next_note:
            progress(now - start)
            next_note = now + 5.0
        # Polling a port is the only readiness signal a foreign server gives us.
        time.sleep(min(pause, deadline - now))
        pause = min(pause * 2, 0.25)
