"""A small suite with one real leak of every kind, next to the clean way to write each test.

Run it with ``tox -e demo`` (or ``python examples/run_demo.py``) to see the reports.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

# Things the leaking tests keep alive on purpose, the way a forgotten global would.
KEPT: list[object] = []


def test_thread_leak() -> None:
    stop = threading.Event()
    KEPT.append(stop)
    threading.Thread(target=stop.wait, name="forgotten-worker", daemon=True).start()


def test_thread_joined() -> None:
    worker = threading.Thread(target=sum, args=([1, 2],))
    worker.start()
    worker.join()


def test_file_leak(tmp_path: Path) -> None:
    KEPT.append(open(tmp_path / "data.txt", "w"))  # noqa: SIM115


def test_socket_leak() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    KEPT.append(server)


def test_unclosed_file_dropped(tmp_path: Path) -> None:
    open(tmp_path / "dropped.txt", "w")  # noqa: SIM115 - the ResourceWarning is the point


def test_child_process_leak() -> None:
    KEPT.append(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"]))


def test_env_leak() -> None:
    os.environ["DEMO_LEAKED_SETTING"] = "on"


def test_env_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_SETTING", "on")


def test_cwd_leak(tmp_path: Path) -> None:
    os.chdir(tmp_path)


def test_cwd_restored(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)


def test_sys_path_leak() -> None:
    sys.path.append("/opt/demo-plugins")


def test_signal_handler_leak() -> None:
    signal.signal(signal.SIGUSR1, lambda signum, frame: None)


def test_logging_handler_leak() -> None:
    logging.getLogger().addHandler(logging.StreamHandler())


def test_warnings_filter_changed() -> None:
    # pytest's warnings plugin puts the filters back after each test, so this persists only
    # under -p no:warnings: the demo runs it there.
    warnings.filterwarnings("ignore", message="demo:", category=UserWarning)


def test_warnings_filter_scoped() -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="demo:", category=UserWarning)


@pytest.mark.asyncio
async def test_task_leak() -> None:
    async def poll_forever() -> None:
        while True:
            await asyncio.sleep(1)

    KEPT.append(asyncio.get_running_loop().create_task(poll_forever()))


@pytest.fixture(scope="module")
def shared_server() -> Iterator[socket.socket]:
    # Owned by the module: not blamed on the first test that uses it, checked at module end.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    yield server
    server.close()


def test_uses_module_fixture(shared_server: socket.socket) -> None:
    assert shared_server.getsockname()[0] == "127.0.0.1"
