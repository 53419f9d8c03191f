"""A server process under test, supervised; the ``test_*`` functions run as tests."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from collections.abc import Callable

import pytest

from pytest_resources.components.processes import ProcessSupervisor

# A TCP echo server that prints its port once it listens (so the test never sleeps), and
# shuts down cleanly, exit status 0, on SIGTERM.
ECHO_SERVER = """
import signal, socket, sys
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
server = socket.create_server(("127.0.0.1", 0))
print(server.getsockname()[1], flush=True)
while True:
    conn, _ = server.accept()
    with conn:
        conn.sendall(conn.recv(1024))
"""


def port_of(server: ProcessSupervisor) -> int:
    stdout = server.process.stdout
    assert stdout is not None
    return int(stdout.readline())


def echo(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(data)
        return conn.recv(1024)


def test_a_server_under_test_is_stopped_and_reaped() -> None:
    with ProcessSupervisor(
        [sys.executable, "-c", ECHO_SERVER], stdout=subprocess.PIPE, stop_timeout=5
    ) as server:
        assert echo(port_of(server), b"hello") == b"hello"
    assert server.exit is not None
    assert server.exit.exit_code == 0  # it handled SIGTERM and exited cleanly
    assert server.exit.stopped
    assert not server.exit.escalated


def test_the_fixture_stops_what_the_test_leaves_running(
    process_supervisor: Callable[..., ProcessSupervisor],
) -> None:
    server = process_supervisor([sys.executable, "-c", ECHO_SERVER], stdout=subprocess.PIPE)
    assert echo(port_of(server), b"ping") == b"ping"
    # No stop() here: teardown sends SIGTERM, the server exits, the test passes. Had it
    # ignored SIGTERM for stop_timeout seconds, the test would error at teardown.


def test_a_hung_child_is_killed_and_the_result_says_so() -> None:
    hung = ProcessSupervisor(
        [
            sys.executable,
            "-c",
            "import signal, time\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ready', flush=True)\n"
            "while True: time.sleep(3600)",
        ],
        stdout=subprocess.PIPE,
    ).start()
    assert hung.process.stdout is not None
    assert hung.process.stdout.readline() == b"ready\n"
    result = hung.stop(timeout=0.1)  # SIGTERM is ignored, so SIGKILL after 0.1 s
    assert result.signal is signal.SIGKILL
    assert result.escalated


@pytest.mark.asyncio
async def test_async_use_keeps_the_loop_running() -> None:
    async with ProcessSupervisor(
        [sys.executable, "-c", ECHO_SERVER], stdout=subprocess.PIPE
    ) as server:
        port = port_of(server)  # one short blocking read; fine in a test
        assert echo(port, b"async") == b"async"
    # `async with` ended in `await server.astop()`, which polls without blocking the loop.
    assert server.exit is not None
    assert server.exit.exit_code == 0
