"""The lifecycle every publisher shares, shown on the console publisher (no broker needed)."""

from __future__ import annotations

import asyncio
import gc
import weakref

import pytest

from pytest_resources.components.publishers import (
    ConsolePublisher,
    ConsoleSettings,
    PublisherClosedError,
)


@pytest.mark.asyncio
async def test_publish_writes_a_line_and_confirms(capsys: pytest.CaptureFixture[str]) -> None:
    async with ConsolePublisher() as publisher:
        receipt = await publisher.publish({"user": 7}, key="signup", headers={"v": "1"})
        await publisher.publish("plain")
    assert capsys.readouterr().out == '[signup] v=1 {"user":7}\nplain\n'
    assert receipt.target == "console stdout"
    assert receipt.attempts == 1


@pytest.mark.asyncio
async def test_stderr_stream(capsys: pytest.CaptureFixture[str]) -> None:
    async with ConsolePublisher({"stream": "stderr"}) as publisher:
        await publisher.publish(b"to stderr")
    assert capsys.readouterr().err == "to stderr\n"


@pytest.mark.asyncio
async def test_publish_after_close_raises_a_runtime_error() -> None:
    publisher = await ConsolePublisher().start()
    await publisher.close()
    with pytest.raises(PublisherClosedError, match=r"<ConsolePublisher 'console stdout' closed>"):
        await publisher.publish("late")
    assert issubclass(PublisherClosedError, RuntimeError)
    with pytest.raises(PublisherClosedError):
        await publisher.start()


@pytest.mark.asyncio
async def test_publish_before_start_says_how_to_start() -> None:
    publisher = ConsolePublisher()
    with pytest.raises(RuntimeError, match="is not started: use 'async with' or await start"):
        await publisher.publish("early")
    await publisher.close()


@pytest.mark.asyncio
async def test_concurrent_closes_share_one_result() -> None:
    publisher = await ConsolePublisher().start()
    first, second = await asyncio.gather(publisher.close(), publisher.close())
    assert first is second
    assert first.status == "closed"
    assert await publisher.close() is first
    assert publisher.closed


@pytest.mark.asyncio
async def test_a_cancelled_close_caller_does_not_stop_the_close() -> None:
    publisher = await ConsolePublisher().start()
    waiter = asyncio.ensure_future(publisher.close())
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert (await publisher.close()).status == "closed"


@pytest.mark.asyncio
async def test_close_without_start_is_clean() -> None:
    result = await ConsolePublisher().close()
    assert result.status == "closed"
    assert result.error is None


@pytest.mark.asyncio
async def test_the_body_exception_passes_through_async_with() -> None:
    publisher = ConsolePublisher()
    with pytest.raises(KeyError):
        async with publisher:
            raise KeyError("body")
    assert publisher.closed


@pytest.mark.asyncio
async def test_an_open_publisher_warns_when_collected() -> None:
    publisher = await ConsolePublisher(ConsoleSettings(name="forgotten")).start()
    with pytest.warns(ResourceWarning, match=r"unclosed <ConsolePublisher 'forgotten' open>"):
        del publisher  # no cycle: the refcount drop runs __del__ here


@pytest.mark.asyncio
async def test_a_closed_or_never_started_publisher_is_collected_silently() -> None:
    started = await ConsolePublisher().start()
    await started.close()
    refs = [weakref.ref(started), weakref.ref(ConsolePublisher())]
    del started
    gc.collect()
    assert [ref() for ref in refs] == [None, None]
