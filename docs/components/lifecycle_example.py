"""An application's resources closed by a CleanupRegistry; the ``test_*`` functions run as
tests."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

from pytest_resources.components.lifecycle import CleanupError, CleanupRegistry


class App:
    """Opens a thread pool, a TCP server and a client connection to it, registering each
    closer right after opening the thing."""

    def __init__(self, registry: CleanupRegistry) -> None:
        self.registry = registry
        self.closed: list[str] = []

    async def start(self) -> None:
        self.executor = ThreadPoolExecutor(2)
        self.registry.register(self._close_executor, name="executor")

        self.server = await asyncio.start_server(self._echo, "127.0.0.1", 0)
        self.registry.register(self._close_server, name="server")

        port = self.server.sockets[0].getsockname()[1]
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
        self.registry.register(self._close_client, name="client", timeout=2)

    async def ping(self) -> bytes:
        self.writer.write(b"ping\n")
        return await self.reader.readline()

    async def _echo(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            writer.write(line)
        writer.close()
        await writer.wait_closed()

    def _close_executor(self) -> None:
        self.executor.shutdown()
        self.closed.append("executor")

    async def _close_server(self) -> None:
        self.server.close()
        await self.server.wait_closed()
        self.closed.append("server")

    async def _close_client(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()
        self.closed.append("client")


@pytest.mark.asyncio
async def test_closes_everything_in_reverse_order() -> None:
    app = App(CleanupRegistry(name="app"))
    async with app.registry:
        await app.start()
        assert await app.ping() == b"ping\n"
    assert app.closed == ["client", "server", "executor"]
    assert not app.server.is_serving()
    with pytest.raises(RuntimeError, match="after shutdown"):
        app.executor.submit(print)


@pytest.mark.asyncio
async def test_as_the_lifespan_of_an_asgi_app() -> None:
    registry = CleanupRegistry()
    app = App(registry)
    # What Starlette and FastAPI do with ``lifespan=registry`` around serving the app.
    async with registry(app):
        await app.start()
        assert await app.ping() == b"ping\n"
    assert app.closed == ["client", "server", "executor"]


@pytest.mark.asyncio
async def test_one_failing_closer_does_not_keep_the_others_open() -> None:
    app = App(CleanupRegistry())
    await app.start()

    def broken() -> None:
        raise OSError("metrics socket already gone")

    app.registry.register(broken, name="metrics")
    with pytest.raises(CleanupError) as info:
        await app.registry.aclose()
    assert app.closed == ["client", "server", "executor"]
    [error] = info.value.exceptions
    assert error.__notes__ == ["while closing 'metrics'"]


@pytest.mark.asyncio
async def test_the_fixture_closes_at_teardown(cleanup_registry: CleanupRegistry) -> None:
    app = App(cleanup_registry)
    await app.start()
    assert await app.ping() == b"ping\n"
    # No close here: the fixture's teardown runs the closers (and would fail on an error).
