"""``RabbitMQMessageQueue``: a durable priority queue consumed with manual acks; retries wait in
one TTL queue per delay tier, and the last failure is rejected into a dead-letter exchange.

Needs aio-pika (``pip install 'pytest-resource-guard[rabbitmq]'``), imported when it starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, TypeVar

from .base import (
    Counters,
    DeadLetter,
    Delivery,
    Envelope,
    MessageQueue,
    MessageQueueUnavailableError,
    QueueStats,
)

if TYPE_CHECKING:
    from aio_pika.abc import (
        AbstractChannel,
        AbstractConnection,
        AbstractIncomingMessage,
        AbstractQueue,
    )

__all__ = ["RabbitMQMessageQueue"]

T = TypeVar("T")

ATTEMPT_HEADER = "x-attempt"
#: A delay tier queue deletes itself after this long unused, beyond twice its TTL.
_TIER_IDLE_MS = 60_000


class _Tier:
    """A queue whose messages wait ``ms`` and then dead-letter into the main queue."""

    def __init__(self, queue: AbstractQueue, expires_ms: int) -> None:
        self.queue = queue
        self.expires_ms = expires_ms
        self.declared = time.monotonic()

    def stale(self) -> bool:
        # Redeclaring renews x-expires. A message published before half the expiry has passed
        # leaves the tier (after its TTL, under half the expiry) before the queue can expire.
        return (time.monotonic() - self.declared) * 1000 > self.expires_ms / 2


class RabbitMQMessageQueue(MessageQueue):
    """A ``MessageQueue`` on RabbitMQ (``name`` is the queue; ``name.dlx`` / ``name.dead`` the
    dead-letter exchange and queue; ``name.delay.<ms>`` the delay tiers).

    Every queue is durable and every message persistent; ``enqueue`` returns after the
    publisher confirm. A consumer's unacked messages return to the queue (``redelivered``)
    when its connection dies. A delivery stays reserved until settled (``extend`` has nothing
    to renew), up to RabbitMQ's ``consumer_timeout`` (30 min by default). ``prefetch``
    deliveries are buffered per consumer; priorities order what the broker has not yet sent.

    Stats: ``pending`` is the broker's count (main queue and this queue's delay tiers) plus the
    local buffer; the other counters are this instance's.
    """

    backend = "rabbitmq"

    def __init__(
        self,
        name: str,
        url: str = "amqp://guest:guest@127.0.0.1:5672/",
        *,
        prefetch: int = 16,
        connect_timeout: float = 10.0,
        publish_timeout: float = 30.0,
        **settings: Any,
    ) -> None:
        super().__init__(name, **settings)
        if prefetch < 1:
            raise ValueError(f"prefetch must be at least 1, got {prefetch}")
        self.url = url
        self._prefetch = prefetch
        self._connect_timeout = connect_timeout
        self._publish_timeout = publish_timeout
        self._connection: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None
        self._queue: AbstractQueue | None = None
        self._dead: AbstractQueue | None = None
        self._tiers: dict[int, _Tier] = {}
        self._consumer: asyncio.Task[str] | None = None
        # Broker calls run as tasks of their own: aiormq closes the channel when a caller is
        # cancelled mid-call, and with it every other consumer's deliveries.
        self._calls: set[asyncio.Future[Any]] = set()
        self._buffer: deque[AbstractIncomingMessage] = deque()
        self._messages: dict[str, AbstractIncomingMessage] = {}
        self._signal = asyncio.Event()
        self._counters = Counters()

    async def _connect(self) -> None:
        try:
            import aio_pika
        except ImportError as exc:
            raise ImportError(
                "RabbitMQMessageQueue needs aio-pika: pip install 'pytest-resource-guard[rabbitmq]'"
            ) from exc
        try:
            async with asyncio.timeout(self._connect_timeout):
                self._connection = await aio_pika.connect(self.url)
        except (OSError, TimeoutError, aio_pika.exceptions.AMQPConnectionError) as exc:
            raise MessageQueueUnavailableError(
                f"{self!r}: RabbitMQ at {self.url} did not answer: {exc!r}"
            ) from exc
        channel = await self._connection.channel(publisher_confirms=True)
        self._channel = channel
        await channel.set_qos(prefetch_count=self._prefetch)
        dlx = await channel.declare_exchange(
            f"{self.name}.dlx", aio_pika.ExchangeType.FANOUT, durable=True
        )
        self._dead = await channel.declare_queue(f"{self.name}.dead", durable=True)
        await self._dead.bind(dlx)
        self._queue = await channel.declare_queue(self.name, durable=True, arguments=self._args())

    def _args(self) -> dict[str, Any]:
        return {"x-max-priority": self.max_priority, "x-dead-letter-exchange": f"{self.name}.dlx"}

    async def _disconnect(self) -> None:
        if self._calls:
            await asyncio.wait(self._calls)
        await self._stop_consuming()
        # Closing the channel hands every unacked message back to the broker.
        if self._connection is not None:
            await self._connection.close()
        self._buffer.clear()
        self._messages.clear()

    async def _stop_consuming(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer and not consumer.cancelled() and not consumer.exception() and self._queue:
            with contextlib.suppress(Exception):  # the channel may be gone already
                await self._queue.cancel(consumer.result())

    def _abort(self) -> None:
        transport = getattr(getattr(self._connection, "transport", None), "connection", None)
        writer = getattr(transport, "writer", None)
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.transport.abort()

    async def _tier(self, delay: float) -> AbstractQueue:
        ms = max(1, round(delay * 1000))
        tier = self._tiers.get(ms)
        if tier is None or tier.stale():
            tier = await self._declare_tier(ms)
        return tier.queue

    async def _declare_tier(self, ms: int) -> _Tier:
        assert self._channel is not None
        expires = 2 * ms + _TIER_IDLE_MS
        queue = await self._channel.declare_queue(
            f"{self.name}.delay.{ms}",
            durable=True,
            arguments={
                "x-message-ttl": ms,
                "x-expires": expires,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": self.name,
            },
        )
        tier = self._tiers[ms] = _Tier(queue, expires)
        return tier

    async def _publish(self, envelope: Envelope, delay: float) -> None:
        import aio_pika

        assert self._channel is not None
        target = self.name if not delay else (await self._tier(delay)).name
        message = aio_pika.Message(
            envelope.body.encode(),
            message_id=envelope.id,
            priority=envelope.priority,
            headers={ATTEMPT_HEADER: envelope.attempt},
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            content_type="application/json",
        )
        await self._call(
            self._channel.default_exchange.publish(
                message, routing_key=target, timeout=self._publish_timeout
            )
        )

    async def _call(self, call: Awaitable[T]) -> T:
        task = asyncio.ensure_future(call)
        self._calls.add(task)
        task.add_done_callback(self._calls.discard)
        return await asyncio.shield(task)

    async def _put(self, envelope: Envelope, delay: float) -> None:
        await self._publish(envelope, delay)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        self._buffer.append(message)
        signal, self._signal = self._signal, asyncio.Event()
        signal.set()

    async def _take(self) -> tuple[Delivery, Envelope] | None:
        if self._consumer is None:
            assert self._queue is not None
            self._consumer = asyncio.ensure_future(self._queue.consume(self._on_message))
            self._calls.add(self._consumer)
            self._consumer.add_done_callback(self._calls.discard)
        if not self._consumer.done():
            await asyncio.shield(self._consumer)
        if not self._buffer:
            return None
        message = self._buffer.popleft()
        attempt = int((message.headers or {}).get(ATTEMPT_HEADER, 1))  # type: ignore[arg-type]
        envelope = Envelope(
            str(message.message_id), message.body.decode(), message.priority or 0, attempt
        )
        token = str(message.delivery_tag)
        self._messages[token] = message
        return self._delivery(envelope, bool(message.redelivered), token)

    async def _wait(self, timeout: float) -> None:
        signal = self._signal
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await signal.wait()

    async def _ack(self, delivery: Delivery, envelope: Envelope, seconds: float) -> bool:
        await self._call(self._messages.pop(delivery.token).ack())
        self._counters.completed += 1
        self._counters.processing_seconds += seconds
        return True

    async def _requeue(self, delivery: Delivery, envelope: Envelope) -> bool:
        await self._call(self._messages.pop(delivery.token).nack(requeue=True))
        return True

    async def _retry(self, delivery: Delivery, envelope: Envelope, delay: float) -> bool:
        # Publish the next attempt (confirmed) before acking this one: a crash in between
        # delivers it twice, never zero times.
        await self._publish(envelope.retried(), delay)
        await self._call(self._messages.pop(delivery.token).ack())
        self._counters.failed += 1
        return True

    async def _dead_letter(self, delivery: Delivery, envelope: Envelope) -> bool:
        await self._call(
            self._messages.pop(delivery.token).reject(requeue=False)
        )  # → name.dlx → name.dead
        self._counters.failed += 1
        self._counters.dead_lettered += 1
        return True

    async def _extend(self, delivery: Delivery) -> bool:
        return delivery.token in self._messages

    async def _release(self, unsettled: list[tuple[Delivery, Envelope]]) -> int:
        # The broker takes them back when the channel closes (in _disconnect).
        return len(unsettled)

    async def _stats(self) -> QueueStats:
        assert self._channel is not None
        # Redeclaring (same arguments) answers with the ready count, and renews tier expiry.
        main = await self._channel.declare_queue(self.name, durable=True, arguments=self._args())
        pending = (main.declaration_result.message_count or 0) + len(self._buffer)
        for ms in list(self._tiers):
            tier = await self._declare_tier(ms)
            pending += tier.queue.declaration_result.message_count or 0
        return self._counters.stats(pending, len(self._messages))

    async def _dead_letters(self, limit: int) -> list[DeadLetter]:
        assert self._connection is not None
        letters = []
        # A channel of its own: closing it puts every peeked message back, in order.
        async with self._connection.channel() as channel:
            dead = await channel.declare_queue(f"{self.name}.dead", durable=True)
            for _ in range(limit):
                message = await dead.get(no_ack=False, fail=False)
                if message is None:
                    break
                attempt = int((message.headers or {}).get(ATTEMPT_HEADER, 1))  # type: ignore[arg-type]
                envelope = Envelope(
                    str(message.message_id), message.body.decode(), message.priority or 0, attempt
                )
                letters.append(envelope.dead_letter())
        return letters

    async def _destroy(self) -> None:
        assert self._channel is not None
        await self._stop_consuming()  # else the broker cancels it, with a logged complaint
        tiers = {round(d * 1000) for d in self.retry.delays() if d} | set(self._tiers)
        for name in [self.name, f"{self.name}.dead", *(f"{self.name}.delay.{ms}" for ms in tiers)]:
            await self._channel.queue_delete(name)
        await self._channel.exchange_delete(f"{self.name}.dlx")
        self._tiers.clear()
