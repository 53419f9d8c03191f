"""``KafkaPublisher``: an aiokafka producer that awaits each send's acknowledgement."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from .base import BasePublisher, PublisherClosedError, PublishReceipt
from .config import KafkaSettings

__all__ = ["KafkaPublisher"]

logger = logging.getLogger(__name__)

NO_IDEMPOTENCE = (
    "the broker answered but refused an idempotent producer ({error!r}); if it does not "
    "support idempotence, set enable_idempotence=False (and keep acks='all')"
)


class KafkaPublisher(BasePublisher[KafkaSettings]):
    """Sends to one topic with ``acks="all"`` and idempotence by default; ``publish()`` returns
    the partition and offset once the broker acknowledged the write.

    A failed ``start()`` stops the producer again (aiokafka leaves it "unclosed" otherwise);
    ``close()`` flushes what is in flight and, past ``close_timeout`` (Kafka down), fails the
    unsent batches and closes the connections anyway. Needs
    ``pip install 'pytest-resource-guard[kafka]'``.
    """

    def __init__(self, settings: KafkaSettings | Mapping[str, Any]) -> None:
        if not isinstance(settings, KafkaSettings):
            settings = KafkaSettings.from_mapping(settings)
        super().__init__(settings)
        self._producer: Any = None

    def _target(self) -> str:
        return f"kafka topic {self.settings.topic}"

    def _where(self) -> str:
        return f"bootstrap servers {self.settings.bootstrap_servers}"

    def _connect_timeout(self) -> float:
        return self.settings.request_timeout_ms / 1000

    async def _open(self) -> None:
        from aiokafka import AIOKafkaProducer
        from aiokafka.errors import KafkaError

        s = self.settings
        self._producer = AIOKafkaProducer(
            bootstrap_servers=s.bootstrap_servers,
            client_id=s.client_id or "pytest-resources-publisher",
            acks=s.acks,
            enable_idempotence=s.enable_idempotence,
            max_batch_size=s.max_batch_size,
            linger_ms=s.linger_ms,
            compression_type=s.compression_type,
            request_timeout_ms=s.request_timeout_ms,
        )
        try:
            await self._producer.start()
        except KafkaError as exc:
            # Bootstrapped, so the broker is there: what failed is InitProducerId.
            if s.enable_idempotence and self._producer.client.cluster.brokers():
                raise ConnectionError(NO_IDEMPOTENCE.format(error=exc)) from exc
            raise

    async def _send(
        self, body: bytes, key: str | None, headers: Mapping[str, str] | None
    ) -> PublishReceipt:
        topic = self.settings.topic
        delivered = await self._producer.send(
            topic,
            body,
            key=None if key is None else key.encode(),
            headers=[(k, v.encode()) for k, v in headers.items()] if headers else None,
        )
        metadata = await delivered
        return PublishReceipt(
            f"kafka topic {topic}", partition=metadata.partition, offset=metadata.offset
        )

    async def _shutdown(self) -> None:
        await self._producer.flush()  # cancellable: an abort can still follow
        await self._producer.stop()

    async def _abort(self) -> None:
        producer, self._producer = self._producer, None
        if producer is None:
            return
        # Not producer.stop(): it first flushes, which never ends while Kafka is down
        # (aiokafka#1101), and its sender can fail on batches failed under it, skipping the
        # client's close. So, step by step: no new sends, fail what is unsent (the publishes
        # awaiting it return), end the sender, close the connections.
        producer._closed = True  # also what keeps aiokafka from warning "Unclosed"
        producer._message_accumulator.fail_all(PublisherClosedError(f"{self!r} was aborted"))
        sender = producer._sender.sender_task
        if sender is not None and not sender.done():
            sender.cancel()
            await asyncio.wait([sender])
        if sender is not None and not sender.cancelled() and sender.exception() is not None:
            logger.warning("%r: the Kafka sender failed: %r", self, sender.exception())
        await producer.client.close()

    def _transient(self, exc: Exception) -> bool:
        from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError

        retriable = getattr(exc, "retriable", False) is True
        return retriable or isinstance(exc, KafkaConnectionError | KafkaTimeoutError | OSError)
