"""``BasePublisher``: the lifecycle every publisher shares — start, confirmed publish with
bounded retries, idempotent close under one deadline — around four backend steps."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import warnings
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import urlsplit, urlunsplit

from .config import PublisherSettings

__all__ = [
    "BasePublisher",
    "CloseResult",
    "PublishError",
    "PublishReceipt",
    "PublisherClosedError",
    "PublisherStartError",
]

logger = logging.getLogger(__name__)
S = TypeVar("S", bound=PublisherSettings)
P = TypeVar("P", bound="BasePublisher[Any]")

#: Longest pause between two attempts of one publish.
MAX_BACKOFF = 1.0
#: Seconds an abort (connections dropped without an orderly close) may take.
ABORT_TIMEOUT = 5.0


class PublisherClosedError(RuntimeError):
    """The publisher is closed or closing: it publishes nothing more. Raised by ``publish()``
    after ``close()`` began, also for a publish that was in flight and not yet confirmed."""


class PublishError(Exception):
    """The broker did not confirm the event: it was refused, or no confirmation came within
    ``publish_timeout``. It may still have been delivered (at-least-once: publish again)."""


class PublisherStartError(ConnectionError):
    """``start()`` could not connect to the broker; everything it opened is closed again."""


@dataclass(frozen=True)
class PublishReceipt:
    """The broker's confirmation of one event.

    ``receivers``: Redis Pub/Sub subscribers that got it; ``message_id``: the Redis Streams
    entry id; ``partition`` and ``offset``: where Kafka stored it; ``attempts``: tries this
    publish needed (more than 1 after connection errors; the event may then be stored twice).
    """

    target: str
    receivers: int | None = None
    message_id: str | None = None
    partition: int | None = None
    offset: int | None = None
    attempts: int = 1


@dataclass(frozen=True)
class CloseResult:
    """How ``close()`` went: ``"closed"`` in order, ``"timed_out"`` when publishes in flight
    or the client's close outlasted ``close_timeout`` (connections were then aborted), or
    ``"failed"`` when the client's close raised (``error`` says what; also aborted)."""

    status: Literal["closed", "timed_out", "failed"]
    duration_seconds: float
    error: str | None = None


def encode(event: object) -> bytes:
    """Bytes as they are, text as UTF-8, anything else as compact JSON."""
    if isinstance(event, bytes):
        return event
    if isinstance(event, bytearray | memoryview):
        return bytes(event)
    if isinstance(event, str):
        return event.encode()
    try:
        return json.dumps(event, separators=(",", ":")).encode()
    except (TypeError, ValueError) as exc:
        raise TypeError(f"cannot publish {type(event).__name__}: not JSON ({exc})") from None


class BasePublisher(ABC, Generic[S]):
    """Publishes events to one broker target and returns once the broker confirmed them.

    >>> async with RedisPublisher(RedisSettings(url=url, stream="events")) as publisher:
    ...     receipt = await publisher.publish({"type": "signup", "user": 7})

    ``publish()`` retries connection errors with backoff until ``publish_timeout``; other
    refusals raise ``PublishError`` at once. ``close()`` refuses new publishes, waits for the
    ones in flight, closes the client, and aborts the connections if that outlasts
    ``close_timeout``; a concurrent or later call waits for the first and gets its result.

    Backends implement ``_open`` (connect and check), ``_send`` (one attempt, confirmed),
    ``_shutdown`` (orderly close), ``_abort`` (drop everything, also after a failed
    ``_open``) and ``_transient`` (is this error worth another attempt).
    """

    settings: S

    def __init__(self, settings: S) -> None:
        self.settings = settings
        self.name = settings.name or self._target()
        self._open_now = False
        self._starting: asyncio.Task[None] | None = None
        self._closing: asyncio.Task[CloseResult] | None = None
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        # Set when closing begins: wakes publishes pausing between attempts.
        self._stop = asyncio.Event()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open" if self._open_now else "not started"
        return f"<{type(self).__name__} {self.name!r} {state}>"

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if getattr(self, "_open_now", False) and getattr(self, "_closing", True) is None:
            _warn(f"unclosed {self!r}", ResourceWarning, source=self)

    @property
    def closed(self) -> bool:
        """True once ``close()`` has begun."""
        return self._closing is not None

    @property
    def in_flight(self) -> int:
        """Publishes started and not yet confirmed or failed."""
        return self._in_flight

    async def __aenter__(self: P) -> P:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self: P) -> P:
        """Connect and check the broker answers, within the backend's connect timeout.

        Raises ``PublisherStartError`` (everything opened is closed again; ``start()`` may be
        tried again) or ``PublisherClosedError`` after ``close()``.
        """
        if self._closing is not None:
            raise PublisherClosedError(f"{self!r} is closed")
        if self._open_now:
            return self
        if self._starting is None:
            self._starting = asyncio.get_running_loop().create_task(
                self._open_or_clean_up(), name=f"start of {self!r}"
            )
            self._starting.add_done_callback(self._after_start)
        starting = self._starting
        try:
            await asyncio.shield(starting)
        except asyncio.CancelledError:
            # The start task was cancelled by close(), not our caller.
            if starting.cancelled() and self._closing is not None and not _caller_cancelled():
                raise PublisherClosedError(f"{self!r} was closed while starting") from None
            raise
        return self

    def _after_start(self, task: asyncio.Task[None]) -> None:
        self._starting = None
        if not task.cancelled():
            task.exception()  # seen by the callers of start(); never "never retrieved"

    async def _open_or_clean_up(self) -> None:
        timeout = self._connect_timeout()
        try:
            async with asyncio.timeout(timeout):
                await self._open()
        except BaseException as exc:
            await self._abort_quietly()
            if isinstance(exc, asyncio.CancelledError):
                raise
            reason = f"no answer within {timeout:g}s" if isinstance(exc, TimeoutError) else exc
            raise PublisherStartError(
                f"{self!r} could not start: {_describe(reason)} ({self._where()})"
            ) from exc
        self._open_now = True

    async def publish(
        self,
        event: object,
        *,
        key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> PublishReceipt:
        """Publish ``event`` (bytes, text, or anything JSON can encode) and return the broker's
        confirmation.

        ``key`` is the Kafka message key, the RabbitMQ routing key, or the Redis channel or
        stream, each in place of the configured one; ``headers`` go with the event where the
        broker carries them. Raises ``PublishError`` when it was not confirmed and
        ``PublisherClosedError`` once the publisher is closing.
        """
        if self._closing is not None:
            raise PublisherClosedError(f"{self!r} is closed: it publishes nothing more")
        if not self._open_now:
            raise RuntimeError(f"{self!r} is not started: use 'async with' or await start()")
        body = encode(event)
        self._in_flight += 1
        self._idle.clear()
        try:
            return await self._publish(body, key, headers)
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()

    async def _publish(
        self, body: bytes, key: str | None, headers: Mapping[str, str] | None
    ) -> PublishReceipt:
        # No asyncio.timeout around an attempt: it would cost more than a Redis round trip
        # adds. Each attempt is bounded by the client's own timeouts; the deadline decides
        # whether another attempt begins.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.publish_timeout
        backoff = self.settings.retry_backoff
        attempt = 1
        while True:
            try:
                receipt = await self._send(body, key, headers)
            except Exception as exc:
                if self._closing is not None:
                    raise PublisherClosedError(
                        f"{self!r} was closed before the broker confirmed the event"
                    ) from exc
                remaining = deadline - loop.time()
                if remaining <= 0 or not self._transient(exc):
                    raise PublishError(
                        f"{self!r}: not confirmed after {attempt} attempt(s)"
                        f"{'' if remaining > 0 else ' within publish_timeout'}: {_describe(exc)}"
                    ) from exc
                await self._pause(min(backoff, remaining))
                backoff = min(backoff * 2, MAX_BACKOFF)
                attempt += 1
                continue
            if attempt == 1:
                return receipt
            return dataclasses.replace(receipt, attempts=attempt)

    async def _pause(self, seconds: float) -> None:
        """Wait before the next attempt; a close cuts the wait short."""
        try:
            async with asyncio.timeout(seconds):
                await self._stop.wait()
        except TimeoutError:
            return

    async def close(self) -> CloseResult:
        """Stop publishing and release every connection within ``close_timeout`` seconds.

        Idempotent: a concurrent or later call waits for the first and returns the same
        result. Cancelling a caller cancels only its wait, not the close.
        """
        if self._closing is None:
            self._stop.set()
            self._closing = asyncio.get_running_loop().create_task(
                self._close(), name=f"close of {self!r}"
            )
        return await asyncio.shield(self._closing)

    aclose = close

    async def _close(self) -> CloseResult:
        loop = asyncio.get_running_loop()
        began = loop.time()
        timeout = self.settings.close_timeout
        status: Literal["closed", "timed_out", "failed"] = "closed"
        error = None
        try:
            async with asyncio.timeout(timeout):
                if self._starting is not None:
                    self._starting.cancel()
                    await asyncio.wait([self._starting])
                if self._open_now:
                    await self._idle.wait()
                    await self._shutdown()
        except TimeoutError:
            status, error = "timed_out", f"not closed within {timeout:g}s; connections aborted"
        except Exception as exc:
            status, error = "failed", f"{_describe(exc)}; connections aborted"
        if status != "closed":
            logger.warning("%r: %s", self, error)
            await self._abort_quietly()
        self._open_now = False
        return CloseResult(status, loop.time() - began, error)

    async def _abort_quietly(self) -> None:
        try:
            async with asyncio.timeout(ABORT_TIMEOUT):
                await self._abort()
        except Exception:
            logger.exception("%r: aborting its connections failed", self)

    def _connect_timeout(self) -> float:
        """Longest ``start()`` may take: the backend's connect timeout plus a check."""
        return self.settings.close_timeout

    def _where(self) -> str:
        """Where the publisher connects, for error messages (no password)."""
        return self._target()

    @abstractmethod
    def _target(self) -> str:
        """The configured destination, e.g. ``redis stream events``."""

    @abstractmethod
    async def _open(self) -> None: ...

    @abstractmethod
    async def _send(
        self, body: bytes, key: str | None, headers: Mapping[str, str] | None
    ) -> PublishReceipt: ...

    @abstractmethod
    async def _shutdown(self) -> None: ...

    @abstractmethod
    async def _abort(self) -> None: ...

    def _transient(self, exc: Exception) -> bool:
        """Whether another attempt may succeed (a connection error, not a refusal)."""
        return isinstance(exc, ConnectionError | TimeoutError)


def _caller_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _describe(exc: object) -> str:
    if isinstance(exc, BaseException):
        text = str(exc) or repr(exc)
        return f"{type(exc).__name__}: {text}"
    return str(exc)


def redact(url: str) -> str:
    """``url`` with its password replaced by ``***``, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + netloc))
