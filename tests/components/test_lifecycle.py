from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Awaitable, Callable, Coroutine, MutableMapping
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest

from pytest_resources.components.lifecycle import (
    CleanupError,
    CleanupRegistry,
    RegistryClosedError,
)

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Message, Receive, Send], Coroutine[Any, Any, None]]


def note_of(exc: BaseException) -> str:
    return "\n".join(getattr(exc, "__notes__", []))


# --- closing -------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_closers_run_once_in_reverse_order_sync_and_async() -> None:
    calls: list[str] = []

    def close_sync() -> None:
        calls.append("sync")

    async def close_async() -> None:
        await asyncio.sleep(0)
        calls.append("async")

    registry = CleanupRegistry()
    registry.register(close_sync)
    registry.register(close_async)
    registry.register(lambda: calls.append("lambda"))
    assert len(registry) == 3
    await registry.aclose()
    await registry.aclose()
    assert calls == ["lambda", "async", "sync"]
    assert registry.closed


@pytest.mark.asyncio
async def test_register_works_as_a_decorator_and_returns_the_closer() -> None:
    registry = CleanupRegistry()
    closed: list[bool] = []

    @registry.register
    async def close_pool() -> None:
        closed.append(True)

    await close_pool()  # still the original function
    await registry.aclose()
    assert closed == [True, True]


@pytest.mark.asyncio
async def test_every_closer_runs_and_all_errors_are_collected() -> None:
    calls: list[str] = []

    def ok(name: str) -> Callable[[], None]:
        return lambda: calls.append(name)

    async def bad_async() -> None:
        calls.append("bad-async")
        raise OSError("socket gone")

    def bad_sync() -> None:
        calls.append("bad-sync")
        raise ValueError("double close")

    registry = CleanupRegistry(name="app")
    registry.register(ok("first"), name="first")
    registry.register(bad_sync, name="cache")
    registry.register(ok("middle"), name="middle")
    registry.register(bad_async, name="client")
    with pytest.raises(CleanupError) as info:
        await registry.aclose()
    assert calls == ["bad-async", "middle", "bad-sync", "first"]
    group = info.value
    assert str(group) == "2 of 4 closers failed (2 sub-exceptions)"
    assert [type(e) for e in group.exceptions] == [OSError, ValueError]
    assert [note_of(e) for e in group.exceptions] == [
        "while closing 'client'",
        "while closing 'cache'",
    ]
    assert isinstance(group, ExceptionGroup)  # so except* can pick the kinds it handles


@pytest.mark.asyncio
async def test_except_star_selects_failures_by_type() -> None:
    def fail() -> None:
        raise ConnectionError("broker")

    registry = CleanupRegistry()
    registry.register(fail)
    caught: list[BaseException] = []
    try:
        await registry.aclose()
    except* ConnectionError as group:
        caught.extend(group.exceptions)
    assert [type(e) for e in caught] == [ConnectionError]


@pytest.mark.asyncio
async def test_a_hanging_closer_times_out_and_the_rest_still_run() -> None:
    calls: list[str] = []
    cancelled = asyncio.Event()

    async def hang() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    registry = CleanupRegistry(timeout=30)
    registry.register(lambda: calls.append("first"))
    registry.register(hang, name="stuck pool", timeout=0.05)
    registry.register(lambda: calls.append("last"))
    with pytest.raises(CleanupError) as info:
        await registry.aclose()
    [error] = info.value.exceptions
    assert isinstance(error, TimeoutError)
    assert str(error) == "closing 'stuck pool' took more than 0.05s"
    assert note_of(error) == "while closing 'stuck pool'"
    assert cancelled.is_set()
    assert calls == ["last", "first"]


@pytest.mark.asyncio
async def test_a_closers_own_timeout_error_is_not_relabelled() -> None:
    async def own_timeout() -> None:
        raise TimeoutError("upstream did not answer")

    registry = CleanupRegistry()
    registry.register(own_timeout)
    with pytest.raises(CleanupError) as info:
        await registry.aclose()
    assert [str(e) for e in info.value.exceptions] == ["upstream did not answer"]


@pytest.mark.asyncio
async def test_concurrent_and_later_closes_wait_for_the_first_and_share_its_result() -> None:
    release = asyncio.Event()
    runs = 0

    async def slow_fail() -> None:
        nonlocal runs
        runs += 1
        await release.wait()
        raise RuntimeError("late")

    registry = CleanupRegistry()
    registry.register(slow_fail)
    callers = [asyncio.create_task(registry.aclose()) for _ in range(5)]
    await asyncio.sleep(0.01)
    assert not any(c.done() for c in callers)
    release.set()
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert runs == 1
    assert all(isinstance(r, CleanupError) for r in results)
    first = results[0]
    assert isinstance(first, CleanupError)
    assert all(isinstance(r, CleanupError) and r.exceptions == first.exceptions for r in results)
    with pytest.raises(CleanupError) as later:
        await registry.aclose()
    assert later.value.exceptions == first.exceptions


@pytest.mark.asyncio
async def test_a_cancelled_caller_is_cancelled_and_the_closing_carries_on() -> None:
    started = asyncio.Event()
    release = asyncio.Event()
    finished: list[bool] = []

    async def slow() -> None:
        started.set()
        await release.wait()
        finished.append(True)

    registry = CleanupRegistry()
    registry.register(slow)
    caller = asyncio.create_task(registry.aclose())
    await started.wait()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert caller.cancelled()
    assert registry.closed
    release.set()
    await registry.aclose()
    assert finished == [True]


@pytest.mark.asyncio
async def test_register_after_close_is_refused() -> None:
    registry = CleanupRegistry(name="gone")
    await registry.aclose()
    with pytest.raises(RegistryClosedError, match="'gone' closed"):
        registry.register(print)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda r: r.register(42), TypeError, "a closer must be callable, got 42"),
        (lambda r: r.register(print, timeout=0), ValueError, "timeout must be more than 0"),
        (lambda r: CleanupRegistry(timeout=-1), ValueError, "timeout must be more than 0"),
    ],
)
@pytest.mark.asyncio
async def test_bad_arguments_are_refused(
    call: Callable[[CleanupRegistry], object], error: type[Exception], message: str
) -> None:
    registry = CleanupRegistry()
    with pytest.raises(error, match=message):
        call(registry)
    assert len(registry) == 0
    await registry.aclose()


@pytest.mark.asyncio
async def test_async_with_closes_and_lets_the_body_exception_through() -> None:
    closed: list[bool] = []
    with pytest.raises(KeyError):  # noqa: PT012 - the body is the subject
        async with CleanupRegistry() as registry:
            registry.register(lambda: closed.append(True))
            raise KeyError("body")
    assert closed == [True]
    with pytest.raises(RegistryClosedError):
        async with registry:
            pass


def test_an_unclosed_registry_warns_when_collected() -> None:
    registry = CleanupRegistry(name="leaky")
    registry.register(print)
    with pytest.warns(ResourceWarning, match="unclosed <CleanupRegistry 'leaky' open closers=1>"):
        del registry  # no cycle: the refcount drop runs __del__ here


@pytest.mark.asyncio
async def test_a_closed_registry_is_collected_silently() -> None:
    registry = CleanupRegistry()
    await registry.aclose()
    ref = weakref.ref(registry)
    del registry
    gc.collect()
    assert ref() is None


# --- ASGI lifespan -------------------------------------------------------------------------


def lifespan_app(lifespan: Callable[[object], AbstractAsyncContextManager[Any]]) -> App:
    """An ASGI app that runs ``lifespan`` the way Starlette's router does for ``lifespan=``."""

    async def app(scope: Message, receive: Receive, send: Send) -> None:
        assert scope["type"] == "lifespan"
        started = False
        assert (await receive())["type"] == "lifespan.startup"
        try:
            async with lifespan(app) as state:
                if state is not None:
                    scope["state"].update(state)
                await send({"type": "lifespan.startup.complete"})
                started = True
                assert (await receive())["type"] == "lifespan.shutdown"
        except Exception as exc:
            failed = "shutdown" if started else "startup"
            await send({"type": f"lifespan.{failed}.failed", "message": repr(exc)})
        else:
            await send({"type": "lifespan.shutdown.complete"})

    return app


async def serve(app: App, while_up: Callable[[], Awaitable[None]]) -> list[Message]:
    """Drive ``app``'s lifespan as a server does: startup, run ``while_up``, shutdown."""
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    sent: list[Message] = []
    replied = asyncio.Event()

    async def send(message: Message) -> None:
        sent.append(message)
        replied.set()

    async def step(message: Message) -> str:
        replied.clear()
        await inbox.put(message)
        await replied.wait()
        return str(sent[-1]["type"])

    running = asyncio.create_task(app({"type": "lifespan", "state": {}}, inbox.get, send))
    if await step({"type": "lifespan.startup"}) == "lifespan.startup.complete":
        await while_up()
        await step({"type": "lifespan.shutdown"})
    await running
    return sent


@pytest.mark.asyncio
async def test_registry_is_an_asgi_lifespan_that_closes_at_shutdown() -> None:
    registry = CleanupRegistry()
    closed: list[str] = []

    async def up() -> None:
        assert not registry.closed
        registry.register(lambda: closed.append("pool"))

        async def close_client() -> None:
            closed.append("client")

        registry.register(close_client)

    sent = await serve(lifespan_app(registry), up)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert closed == ["client", "pool"]
    assert registry.closed


@pytest.mark.asyncio
async def test_a_failing_closer_fails_the_lifespan_shutdown() -> None:
    registry = CleanupRegistry()

    def broken() -> None:
        raise OSError("refused")

    async def up() -> None:
        registry.register(broken)

    sent = await serve(lifespan_app(registry), up)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.failed"]
    assert "CleanupError('1 of 1 closers failed'" in sent[-1]["message"]


@pytest.mark.asyncio
async def test_a_closed_registry_fails_a_second_lifespan_startup() -> None:
    registry = CleanupRegistry()
    await registry.aclose()

    async def up() -> None:
        raise AssertionError("never up")

    sent = await serve(lifespan_app(registry), up)
    assert [m["type"] for m in sent] == ["lifespan.startup.failed"]
    assert "RegistryClosedError" in sent[0]["message"]
