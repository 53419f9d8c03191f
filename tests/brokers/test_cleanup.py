"""Nothing is left behind: after a normal end, SIGINT, a killed worker or a killed session."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from brokers.broker_helpers import listening, need_binary, wait_for
from pytester_run import Run

BLOCKS = """
import os, pathlib, signal, threading
import pytest

def test_block(redis_client):
    port = redis_client.info("server")["tcp_port"]
    pathlib.Path(__file__).parent.joinpath("port").write_text(str(port))
    threading.Event().wait(120)
"""
KILLS_ITS_WORKER = """
import os, pathlib, signal

def test_killed(redis_client):
    port = redis_client.info("server")["tcp_port"]
    pathlib.Path(__file__).parent.joinpath("port").write_text(str(port))
    os.kill(os.getpid(), signal.SIGKILL)

def test_other(redis_client):
    redis_client.set("k", "v")
"""
ARGS = (
    "-p",
    "no:cacheprovider",
    "--resource-brokers=require",
    "--resource-broker-providers=process",
)


class Session:
    """An inner pytest run we can interrupt or kill while its broker is up."""

    def __init__(self, pytester: pytest.Pytester, source: str, *args: str) -> None:
        pytester.makepyfile(test_it=source)
        pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
        self.dir = pytester.path
        self.log = (pytester.path / "out.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", *ARGS, *args, f"--basetemp={pytester.path / 'bt'}"],
            cwd=pytester.path,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def broker_port(self) -> int:
        port = self.dir / "port"
        wait_for(lambda: port.exists() and port.read_text() != "", 120, "the inner test to start")
        return int(port.read_text())

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.log.close()


@pytest.fixture
def session(
    pytester: pytest.Pytester, pytestconfig: pytest.Config
) -> Iterator[Callable[..., Session]]:
    need_binary(pytestconfig, "redis")
    opened: list[Session] = []

    def start(source: str, *args: str) -> Session:
        opened.append(Session(pytester, source, *args))
        return opened[-1]

    yield start
    for each in opened:
        each.close()


def test_sigint_mid_test_stops_the_broker(session: Callable[..., Session]) -> None:
    inner = session(BLOCKS)
    port = inner.broker_port()
    assert listening(port)
    inner.proc.send_signal(signal.SIGINT)
    assert inner.proc.wait(timeout=60) == pytest.ExitCode.INTERRUPTED
    assert not listening(port)
    assert not list((inner.dir / "bt").glob("resources-brokers/redis"))


def test_a_killed_worker_does_not_leave_the_broker_running(session: Callable[..., Session]) -> None:
    inner = session(KILLS_ITS_WORKER, "-n", "2")
    port = inner.broker_port()
    assert inner.proc.wait(timeout=120) == pytest.ExitCode.TESTS_FAILED
    assert "worker 'gw" in (inner.dir / "out.log").read_text()
    assert not listening(port)


def test_the_next_session_stops_what_a_killed_session_left(
    session: Callable[..., Session], run: Run
) -> None:
    inner = session(BLOCKS)
    port = inner.broker_port()
    inner.proc.kill()  # no finalizer, no sessionfinish: the broker outlives it
    inner.proc.wait()
    run("def test_nothing():\n    pass\n").assert_outcomes(passed=1)
    assert not listening(port)
    assert not Path(inner.dir / "bt" / "resources-brokers" / "redis").exists()
