"""``RabbitMQMessageQueue``: a durable priority queue consumed with manual acks; retries wait in
one TTL queue per delay tier, and the last failure is rejected into a dead-letter exchange.
The connection is robust: after a broker restart it reconnects and consumes again.

Needs aio-pika (``pip install 'pytest-resource-guard[rabbitmq]'``), imported when it starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Awaitable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from .base import (
    Counters,
    DeadLetter,
    Delivery,
    Envelope,
    MessageQueue,
    MessageQueueUnavailableError,
    QueueStats,
    logger,
)

if TYPE_CHECKING:
    from aio_pika.abc import AbstractRobustChannel, AbstractRobustConnection
    from aiormq import Channel
    from aiormq.abc import AbstractChannel, DeliveredMessage

__all__ = ["RabbitMQMessageQueue"]

T = TypeVar("T")

ATTEMPT_HEADER = "x-attempt"
#: Set on a message published again because its first publish was never confirmed: the
#: broker may hold both copies, so the second one is delivered as ``redelivered``.
REPUBLISHED_HEADER = "x-republished"
#: A delay tier queue deletes itself after this long unused, beyond twice its TTL.
_TIER_IDLE_MS = 60_000
#: How many settled messages are remembered, so that one coming back — its ack was lost with
#: the connection, or its publish was repeated — is settled again instead of handed out.
_SETTLED_KEPT = 10_000


class _Tier:
    """A queue whose messages wait ``ms`` and then dead-letter into the main queue."""

    def __init__(self, name: str, expires_ms: int, channel: AbstractChannel) -> None:
        self.name = name
        self.expires_ms = expires_ms
        self.channel = channel
        self.declared = time.monotonic()

    def stale(self, channel: AbstractChannel) -> bool:
        # Redeclaring renews x-expires. A message published before half the expiry has passed
        # leaves the tier (after its TTL, under half the expiry) before the queue can expire.
        # After a reconnect the tier is declared again, in case it expired meanwhile.
        age_ms = (time.monotonic() - self.declared) * 1000
        return channel is not self.channel or age_ms > self.expires_ms / 2


class RabbitMQMessageQueue(MessageQueue):
    """A ``MessageQueue`` on RabbitMQ (``name`` is the queue; ``name.dlx`` / ``name.dead`` the
    dead-letter exchange and queue; ``name.delay.<ms>`` the delay tiers).

    Every queue is durable and every message persistent; ``enqueue`` returns after the
    publisher confirm. A consumer's unacked messages return to the queue (``redelivered``)
    when its connection dies. A delivery stays reserved until settled (``extend`` has nothing
    to renew), up to RabbitMQ's ``consumer_timeout`` (30 min by default). ``prefetch``
    deliveries are buffered per consumer; priorities order what the broker has not yet sent.

    When the connection is lost the queue reconnects every ``reconnect_interval`` seconds and
    consumes again. Meanwhile ``enqueue`` (and ``stats``…) wait for it, up to
    ``publish_timeout``, then raise ``MessageQueueUnavailableError``; ``receive`` waits like
    on an empty queue. Deliveries received before the loss are settled by nobody: the broker
    hands their messages out again, and ``ack``/``nack`` of such a delivery return False. A
    message this queue settled that comes back (its ack was lost with the connection) is
    settled again, unseen and uncounted; the last 10,000 settled messages are remembered.

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
        reconnect_interval: float = 1.0,
        **settings: Any,
    ) -> None:
        super().__init__(name, **settings)
        if prefetch < 1:
            raise ValueError(f"prefetch must be at least 1, got {prefetch}")
        if min(connect_timeout, publish_timeout, reconnect_interval) <= 0:
            raise ValueError("connect_timeout, publish_timeout and reconnect_interval must be > 0")
        self.url = url
        self._prefetch = prefetch
        self._connect_timeout = connect_timeout
        self._publish_timeout = publish_timeout
        self._reconnect_interval = reconnect_interval
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractRobustChannel | None = None
        # The channel under the robust one (a new one after each reconnect): the hot path
        # publishes, consumes and acks on it directly.
        self._raw: Channel | None = None
        self._tiers: dict[int, _Tier] = {}
        self._consumer: asyncio.Task[None] | None = None
        self._consuming: tuple[Channel, str] | None = None
        # Broker RPCs run as tasks of their own: aiormq closes the channel when an RPC's
        # caller is cancelled mid-call, and with it every other consumer's deliveries.
        self._calls: set[asyncio.Future[Any]] = set()
        self._publishing = 0
        self._published = asyncio.Event()
        self._buffer: deque[DeliveredMessage] = deque()
        self._idle: set[asyncio.Future[None]] = set()
        self._messages: dict[str, DeliveredMessage] = {}
        self._tokens = itertools.count()
        # (id, attempt) -> acked (True) or rejected into the dead letters (False).
        self._settled: OrderedDict[tuple[str, int], bool] = OrderedDict()
        self._counters = Counters()

    # --- connection ------------------------------------------------------------------------

    async def _connect(self) -> None:
        try:
            import aio_pika
        except ImportError as exc:
            raise ImportError(
                "RabbitMQMessageQueue needs aio-pika: pip install 'pytest-resource-guard[rabbitmq]'"
            ) from exc
        from yarl import URL

        # Made here rather than by connect_robust(), so a cancelled start can still close it.
        self._connection = connection = aio_pika.RobustConnection(
            URL(self.url), reconnect_interval=self._reconnect_interval
        )
        try:
            async with asyncio.timeout(self._connect_timeout):
                await connection.connect()
        except (OSError, TimeoutError, aio_pika.exceptions.AMQPConnectionError) as exc:
            raise MessageQueueUnavailableError(
                f"{self!r}: RabbitMQ at {self.url} did not answer: {exc!r}"
            ) from exc
        channel = self._channel = await connection.channel(publisher_confirms=True)
        await channel.set_qos(prefetch_count=self._prefetch)
        # Declared robust: declared again (and bound again) after every reconnect.
        dlx = await channel.declare_exchange(
            f"{self.name}.dlx", aio_pika.ExchangeType.FANOUT, durable=True
        )
        dead = await channel.declare_queue(f"{self.name}.dead", durable=True)
        await dead.bind(dlx)
        await channel.declare_queue(self.name, durable=True, arguments=self._args())
        self._raw = cast("Channel", await channel.get_underlay_channel())

    def _args(self) -> dict[str, Any]:
        return {"x-max-priority": self.max_priority, "x-dead-letter-exchange": f"{self.name}.dlx"}

    async def _ready(self, deadline: float) -> Channel:
        """The open channel, waiting (until ``deadline``, on the loop's clock) while the
        robust connection restores it."""
        raw = self._raw
        if raw is not None and not raw.is_closed:
            return raw
        assert self._channel is not None
        channel = self._channel
        try:
            async with asyncio.timeout_at(deadline):
                while raw is None or raw.is_closed:
                    # In a task close() cancels: a close does not wait for the broker.
                    await self._interruptible(channel.ready())
                    raw = cast("Channel", await channel.get_underlay_channel())
        except TimeoutError as exc:
            raise MessageQueueUnavailableError(
                f"{self!r}: RabbitMQ at {self.url} is unreachable (reconnecting)"
            ) from exc
        self._raw = raw
        return raw

    def _deadline(self) -> float:
        return asyncio.get_running_loop().time() + self._publish_timeout

    async def _disconnect(self) -> None:
        # Calls waiting for a reconnect have ended already: close() cancels such waits.
        if self._publishing:
            self._published.clear()
            await self._published.wait()
        if self._calls:
            await asyncio.wait(self._calls)
        await self._stop_consuming()
        # Closing the connection hands every unacked message back to the broker.
        if self._connection is not None:
            await self._connection.close()
        self._buffer.clear()
        self._messages.clear()

    async def _stop_consuming(self) -> None:
        consuming, self._consuming = self._consuming, None
        if consuming is not None and not consuming[0].is_closed:
            with contextlib.suppress(Exception):  # the channel may be gone already
                await self._call(consuming[0].basic_cancel(consuming[1]))

    def _abort(self) -> None:
        transport = getattr(self._connection, "transport", None)
        writer = getattr(getattr(transport, "connection", None), "writer", None)
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.transport.abort()

    async def _call(self, call: Awaitable[T]) -> T:
        task = asyncio.ensure_future(call)
        self._calls.add(task)
        task.add_done_callback(self._calls.discard)
        return await asyncio.shield(task)

    # --- publishing ------------------------------------------------------------------------

    async def _put(self, envelope: Envelope, delay: float) -> None:
        await self._publish(envelope, delay)

    async def _publish(self, envelope: Envelope, delay: float) -> None:
        """Publish and wait for the confirm; a publish the connection loss left unconfirmed is
        published again once it is back (the broker may then hold two copies)."""
        from aiormq.exceptions import ChannelInvalidStateError
        from pamqp.commands import Basic

        deadline = self._deadline()
        # No header on a first attempt: encoding a header table costs more than the rest.
        headers: dict[str, Any] | None = (
            {ATTEMPT_HEADER: envelope.attempt} if envelope.attempt > 1 else None
        )
        properties = Basic.Properties(
            content_type="application/json",
            delivery_mode=2,  # persistent
            priority=envelope.priority,
            message_id=envelope.id,
            headers=headers,
        )
        body = envelope.body.encode()
        self._publishing += 1
        try:
            while True:
                raw = await self._ready(deadline)
                target = self.name if not delay else await self._tier(raw, delay)
                try:
                    # mandatory: a queue deleted meanwhile returns the message, not drops it.
                    confirm = await raw.basic_publish(
                        body,
                        routing_key=target,
                        properties=properties,
                        mandatory=True,
                        wait=False,  # the confirm is what counts, not the socket flush
                        timeout=max(0.0, deadline - asyncio.get_running_loop().time()),
                    )
                    if isinstance(confirm, Basic.Ack):
                        return
                    logger.warning("%r: queue %s was gone; declared again", self, target)
                    await self._declare(raw, target)
                except TimeoutError as exc:  # before OSError, its base class
                    raise MessageQueueUnavailableError(
                        f"{self!r}: RabbitMQ at {self.url} did not confirm within "
                        f"{self._publish_timeout}s"
                    ) from exc
                except (ChannelInvalidStateError, OSError) as exc:
                    if self._closing is not None:
                        raise
                    logger.info("%r: publish of %s interrupted (%r)", self, envelope.id, exc)
                    properties.headers = {**(headers or {}), REPUBLISHED_HEADER: True}
        finally:
            self._publishing -= 1
            if not self._publishing:
                self._published.set()

    async def _declare(self, raw: AbstractChannel, queue: str) -> None:
        if queue == self.name:
            await self._call(raw.queue_declare(queue, durable=True, arguments=self._args()))
        else:
            await self._declare_tier(raw, int(queue.rsplit(".", 1)[1]))

    async def _tier(self, raw: AbstractChannel, delay: float) -> str:
        ms = max(1, round(delay * 1000))
        tier = self._tiers.get(ms)
        if tier is None or tier.stale(raw):
            await self._declare_tier(raw, ms)
        return self._tiers[ms].name

    async def _declare_tier(self, raw: AbstractChannel, ms: int) -> int:
        """(Re)declare the tier of ``ms``; returns how many messages wait in it."""
        name = f"{self.name}.delay.{ms}"
        expires = 2 * ms + _TIER_IDLE_MS
        declared = await self._call(
            raw.queue_declare(
                name,
                durable=True,
                arguments={
                    "x-message-ttl": ms,
                    "x-expires": expires,
                    "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": self.name,
                },
            )
        )
        self._tiers[ms] = _Tier(name, expires, raw)
        return declared.message_count or 0

    # --- consuming -------------------------------------------------------------------------

    async def _consume(self) -> None:
        raw = await self._ready(float("inf"))
        ok = await raw.basic_consume(self.name, self._on_message)
        assert ok.consumer_tag is not None
        self._consuming = (raw, ok.consumer_tag)

    def _consumed(self, task: asyncio.Task[None]) -> None:
        self._calls.discard(task)
        if not task.cancelled() and task.exception() is not None and self._closing is None:
            # The channel went down meanwhile: the next receive consumes again.
            logger.warning("%r: consuming failed: %r", self, task.exception())

    async def _on_message(self, message: DeliveredMessage) -> None:
        self._buffer.append(message)
        while self._idle:
            waiter = self._idle.pop()
            if not waiter.done():  # else it timed out, or was cancelled, just now
                waiter.set_result(None)  # one message wakes one receiver
                break

    def _live(self) -> int:
        """Drop buffered messages of a channel that is gone (the broker hands them out again);
        returns how many are left."""
        buffer = self._buffer
        while buffer and buffer[0].channel.is_closed:
            buffer.popleft()
        return len(buffer)

    async def _take(self) -> tuple[Delivery, Envelope] | None:
        consuming = self._consuming
        if (
            consuming is None
            or consuming[0].is_closed
            or consuming[1] not in consuming[0].consumers
        ) and (self._consumer is None or self._consumer.done()):
            # First receive, the channel was lost or the broker cancelled the consumer (its
            # queue was deleted): consume (again) in the background, so a receive never
            # waits for the broker.
            self._consumer = consumer = asyncio.ensure_future(self._consume())
            self._calls.add(consumer)
            consumer.add_done_callback(self._consumed)
        while self._live():
            message = self._buffer.popleft()
            properties = message.header.properties
            attempt = int((properties.headers or {}).get(ATTEMPT_HEADER, 1))  # type: ignore[arg-type]
            envelope = Envelope(
                str(properties.message_id), message.body.decode(), properties.priority or 0, attempt
            )
            acked = self._settled.get((envelope.id, attempt))
            if acked is not None:  # settled already: its ack was lost, or it was published twice
                await self._send_settle(message, acked)
                continue
            redelivered = bool(message.redelivered) or REPUBLISHED_HEADER in (
                properties.headers or {}
            )
            token = str(next(self._tokens))
            self._messages[token] = message
            return self._delivery(envelope, redelivered, token)
        return None

    async def _wait(self, timeout: float) -> None:
        if self._live():
            return
        waiter = asyncio.get_running_loop().create_future()
        self._idle.add(waiter)
        try:
            async with asyncio.timeout(timeout):
                await waiter
        except TimeoutError:
            pass
        finally:
            self._idle.discard(waiter)

    @contextlib.asynccontextmanager
    async def renewing(
        self, delivery: Delivery, interval: float | None = None
    ) -> AsyncIterator[None]:
        """A RabbitMQ delivery stays reserved until settled: there is no lease to renew."""
        yield

    # --- settling --------------------------------------------------------------------------

    async def _send_settle(self, message: DeliveredMessage, ack: bool) -> bool:
        """Ack, or reject into the dead letters; False when the message's channel is gone
        (the broker hands it out again). Not waited for: AMQP acks have no reply."""
        from aiormq.exceptions import ChannelInvalidStateError

        tag = message.delivery_tag
        assert tag is not None
        try:
            if ack:
                await message.channel.basic_ack(tag, wait=False)
            else:
                await message.channel.basic_reject(tag, requeue=False, wait=False)
        except ChannelInvalidStateError:
            return False
        return True

    async def _settle(self, delivery: Delivery, envelope: Envelope, ack: bool) -> bool:
        if not await self._send_settle(self._messages.pop(delivery.token), ack):
            return False
        self._remember(envelope, ack)
        return True

    def _remember(self, envelope: Envelope, ack: bool) -> None:
        settled = self._settled
        settled[(envelope.id, envelope.attempt)] = ack
        if len(settled) > _SETTLED_KEPT:
            settled.popitem(last=False)

    async def _ack(self, delivery: Delivery, envelope: Envelope, seconds: float) -> bool:
        if not await self._settle(delivery, envelope, ack=True):
            return False
        self._counters.completed += 1
        self._counters.processing_seconds += seconds
        return True

    async def _requeue(self, delivery: Delivery, envelope: Envelope) -> bool:
        from aiormq.exceptions import ChannelInvalidStateError

        message = self._messages.pop(delivery.token)
        tag = message.delivery_tag
        assert tag is not None
        try:
            await message.channel.basic_nack(tag, requeue=True, wait=False)
        except ChannelInvalidStateError:
            return False  # back in the queue all the same
        return True

    async def _retry(self, delivery: Delivery, envelope: Envelope, delay: float) -> bool:
        if self._messages[delivery.token].channel.is_closed:
            del self._messages[delivery.token]
            return False  # it comes back as it was: no attempt counted
        # Publish the next attempt (confirmed) before acking this one: a crash in between
        # delivers it twice, never zero times.
        try:
            await self._publish(envelope.retried(), delay)
        except BaseException:
            with contextlib.suppress(Exception):
                await self._requeue(delivery, envelope)
            raise
        if not await self._settle(delivery, envelope, ack=True):
            # The connection went down in between: this attempt comes back and is dropped.
            self._remember(envelope, ack=True)
        self._counters.failed += 1
        return True

    async def _dead_letter(self, delivery: Delivery, envelope: Envelope) -> bool:
        if not await self._settle(delivery, envelope, ack=False):  # → name.dlx → name.dead
            return False
        self._counters.failed += 1
        self._counters.dead_lettered += 1
        return True

    async def _extend(self, delivery: Delivery) -> bool:
        message = self._messages.get(delivery.token)
        return message is not None and not message.channel.is_closed

    async def _release(self, unsettled: list[tuple[Delivery, Envelope]]) -> int:
        # The broker takes them back when the connection closes (in _disconnect).
        return sum([await self._extend(delivery) for delivery, _ in unsettled])

    # --- inspecting and deleting -----------------------------------------------------------

    async def _stats(self) -> QueueStats:
        raw = await self._ready(self._deadline())
        # Redeclaring (same arguments) answers with the ready count, and renews tier expiry.
        main = await self._call(raw.queue_declare(self.name, durable=True, arguments=self._args()))
        pending = (main.message_count or 0) + self._live()
        for ms in list(self._tiers):
            pending += await self._declare_tier(raw, ms)
        processing = sum(not m.channel.is_closed for m in self._messages.values())
        return self._counters.stats(pending, processing)

    async def _dead_letters(self, limit: int) -> list[DeadLetter]:
        await self._ready(self._deadline())
        assert self._connection is not None
        letters = []
        # A channel of its own: closing it puts every peeked message back, in order.
        async with self._connection.channel() as channel:
            dead = await channel.declare_queue(f"{self.name}.dead", durable=True, robust=False)
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
        await self._ready(self._deadline())
        assert self._channel is not None
        await self._stop_consuming()  # else the broker cancels it, with a logged complaint
        tiers = {round(d * 1000) for d in self.retry.delays() if d} | set(self._tiers)
        for name in [self.name, f"{self.name}.dead", *(f"{self.name}.delay.{ms}" for ms in tiers)]:
            await self._call(self._channel.queue_delete(name))
        await self._call(self._channel.exchange_delete(f"{self.name}.dlx"))
        self._tiers.clear()
