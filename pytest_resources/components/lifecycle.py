"""``CleanupRegistry``: close what an application opened (singletons, pools, clients) in
reverse order, each under a timeout, and report every failure rather than the first."""

from __future__ import annotations

import asyncio
import inspect
import warnings
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["CleanupError", "CleanupRegistry", "RegistryClosedError"]

DEFAULT_TIMEOUT = 10.0
C = TypeVar("C", bound=Callable[[], object])


class RegistryClosedError(RuntimeError):
    """``register`` (or a second lifespan) on a registry that is closing or closed."""


class CleanupError(ExceptionGroup[Exception]):
    """Closers that raised or ran out of time; each exception carries a note naming it."""


@dataclass(frozen=True)
class _Closer:
    name: str
    close: Callable[[], object]
    timeout: float


class CleanupRegistry:
    """Closers registered while an application starts, run in reverse order when it stops.

    A closer is any callable taking no argument, plain or async (``pool.close``,
    ``client.aclose``). ``aclose()`` runs them all, the last registered first, each within its
    timeout, then raises ``CleanupError`` with every failure. It also serves as an ASGI
    lifespan: ``FastAPI(lifespan=registry)`` closes everything at shutdown.

    >>> registry = CleanupRegistry(timeout=5)
    >>> registry.register(pool.close, name="db pool")
    >>> async with registry:
    ...     ...

    A timeout is enforced by cancelling the closer's awaitable, so it bounds async closers;
    a plain function runs to its end.
    """

    def __init__(self, *, timeout: float = DEFAULT_TIMEOUT, name: str = "") -> None:
        _check_timeout(timeout)
        self.name = name
        self._timeout = timeout
        self._closers: list[_Closer] = []
        self._closing: asyncio.Task[list[Exception]] | None = None

    def __repr__(self) -> str:
        name = f" {self.name!r}" if self.name else ""
        state = "closed" if self.closed else "open"
        return f"<CleanupRegistry{name} {state} closers={len(self._closers)}>"

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if getattr(self, "_closing", True) is None:
            _warn(f"unclosed {self!r}", ResourceWarning, source=self)

    def __len__(self) -> int:
        return len(self._closers)

    @property
    def closed(self) -> bool:
        """True once ``aclose()`` has begun."""
        return self._closing is not None

    def register(self, closer: C, *, name: str | None = None, timeout: float | None = None) -> C:
        """Add ``closer`` (run at close, before everything registered earlier); returns it, so
        this also works as a decorator. ``timeout`` overrides the registry's for this one."""
        if self.closed:
            raise RegistryClosedError(f"{self!r} is closed: it takes no new closer")
        if not callable(closer):
            raise TypeError(f"a closer must be callable, got {closer!r}")
        if timeout is not None:
            _check_timeout(timeout)
        label = name or getattr(closer, "__qualname__", None) or repr(closer)
        self._closers.append(_Closer(label, closer, self._timeout if timeout is None else timeout))
        return closer

    async def aclose(self) -> None:
        """Run every closer, the last registered first; raise ``CleanupError`` if any failed.

        Idempotent: a concurrent or later call waits for the first and raises the same
        failures. Cancelling a caller cancels only its wait, not the closing.
        """
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(
                self._close_all(), name=f"close of {self!r}"
            )
        errors = await asyncio.shield(self._closing)
        if errors:
            raise CleanupError(f"{len(errors)} of {len(self._closers)} closers failed", errors)

    async def __aenter__(self) -> CleanupRegistry:
        if self.closed:
            raise RegistryClosedError(f"{self!r} is closed")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    @asynccontextmanager
    async def __call__(self, app: object = None) -> AsyncIterator[None]:
        """The ASGI lifespan context (Starlette's and FastAPI's ``lifespan=``): nothing at
        startup, ``aclose()`` at shutdown. It yields no state."""
        async with self:
            yield

    async def _close_all(self) -> list[Exception]:
        errors = []
        for closer in reversed(self._closers):
            try:
                await _run(closer)
            except Exception as exc:
                exc.add_note(f"while closing {closer.name!r}")
                errors.append(exc)
        return errors


async def _run(closer: _Closer) -> None:
    result = closer.close()
    if not inspect.isawaitable(result):
        return
    scope = asyncio.timeout(closer.timeout)
    try:
        async with scope:
            await result
    except TimeoutError as exc:
        if not scope.expired():
            raise  # the closer's own TimeoutError
        raise TimeoutError(f"closing {closer.name!r} took more than {closer.timeout}s") from exc


def _check_timeout(timeout: float) -> None:
    if timeout <= 0:
        raise ValueError(f"timeout must be more than 0, got {timeout}")
