"""Webhook fan-out on a BackgroundTaskManager; the ``test_*`` functions run as tests."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from pytest_resources.components.tasks import BackgroundTaskManager


class Notifier:
    """Sends each event to a TCP receiver in the background, at most ``limit`` at once."""

    def __init__(self, manager: BackgroundTaskManager, port: int) -> None:
        self._manager = manager
        self._port = port

    def notify(self, event: str) -> None:
        self._manager.create_task(self._send(event), name=f"notify {event}")

    async def _send(self, event: str) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self._port)
        try:
            writer.write(event.encode() + b"\n")
            await writer.drain()
            await reader.readline()  # the receiver's acknowledgement
        finally:
            writer.close()
            await writer.wait_closed()


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[tuple[int, list[str]]]:
    """A real TCP server on a free port that acknowledges and records each line."""
    received: list[str] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append((await reader.readline()).decode().strip())
        writer.write(b"ok\n")
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1], received


@pytest.mark.asyncio
async def test_every_event_is_delivered(
    task_manager: BackgroundTaskManager, receiver: tuple[int, list[str]]
) -> None:
    port, received = receiver
    notifier = Notifier(task_manager, port)
    for i in range(50):
        notifier.notify(f"order-{i}")
    await task_manager.wait_for_all()
    assert sorted(received) == sorted(f"order-{i}" for i in range(50))
    assert task_manager.stats().failed == 0


@pytest.mark.asyncio
async def test_a_failed_delivery_is_collected_not_lost(task_manager: BackgroundTaskManager) -> None:
    with socket.socket() as probe:  # a port with nobody listening
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    Notifier(task_manager, closed_port).notify("order-1")
    await task_manager.wait_for_all()
    [failure] = task_manager.take_failures()  # taken: the fixture will not complain
    assert failure.name == "notify order-1"
    assert isinstance(failure.exception, ConnectionRefusedError)


@pytest.mark.asyncio
async def test_limit_and_one_deadline_shutdown() -> None:
    release = asyncio.Event()
    manager = BackgroundTaskManager(limit=2, name="workers")

    async def stubborn() -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()
        await release.wait()  # ignores the cancel until released

    for i in range(3):
        manager.create_task(stubborn(), name=f"stubborn-{i}")
    await asyncio.sleep(0)
    assert (manager.active_count, manager.pending_count) == (2, 1)

    stats = await manager.shutdown(timeout=0.1)
    assert stats["status"] == "timed_out"
    # The waiting task never started, so it exited at once; the two running ones are stuck.
    assert (stats["completed_tasks"], stats["remaining_tasks"]) == (1, 2)
    assert sorted(s["name"] for s in stats["stuck_tasks"]) == ["stubborn-0", "stubborn-1"]
    release.set()
    await manager.wait_for_all()
