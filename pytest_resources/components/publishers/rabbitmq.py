"""``RabbitMQPublisher``: aio-pika robust connection, one channel with publisher confirms."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import BasePublisher, PublishReceipt, redact
from .config import RabbitMQSettings

__all__ = ["RabbitMQPublisher"]


class RabbitMQPublisher(BasePublisher[RabbitMQSettings]):
    """Publishes to an exchange with a routing key and returns once the broker confirmed
    (``publisher_confirms``); with ``mandatory`` an event no queue takes raises
    ``PublishError`` instead of vanishing.

    The connection is robust: after a broker restart it reconnects and re-declares the
    exchange, while ``publish()`` retries until ``publish_timeout``. Needs
    ``pip install 'pytest-resource-guard[rabbitmq]'``.
    """

    def __init__(self, settings: RabbitMQSettings | Mapping[str, Any]) -> None:
        if not isinstance(settings, RabbitMQSettings):
            settings = RabbitMQSettings.from_mapping(settings)
        super().__init__(settings)
        self._connection: Any = None
        self._exchange: Any = None

    def _target(self) -> str:
        s = self.settings
        return f"rabbitmq exchange {s.exchange or '(default)'} key {s.routing_key}"

    def _where(self) -> str:
        return redact(self.settings.url)

    def _connect_timeout(self) -> float:
        return self.settings.connection_timeout

    async def _open(self) -> None:
        import aio_pika

        s = self.settings
        self._connection = await aio_pika.connect_robust(
            s.url, timeout=s.connection_timeout, heartbeat=s.heartbeat
        )
        channel = await self._connection.channel(
            publisher_confirms=s.publisher_confirms, on_return_raises=s.mandatory
        )
        if s.exchange:
            self._exchange = await channel.declare_exchange(
                s.exchange, aio_pika.ExchangeType(s.exchange_type), durable=True
            )
        else:
            self._exchange = channel.default_exchange

    async def _send(
        self, body: bytes, key: str | None, headers: Mapping[str, str] | None
    ) -> PublishReceipt:
        from aio_pika import DeliveryMode, Message

        s = self.settings
        routing_key = s.routing_key if key is None else key
        message = Message(
            body,
            headers=dict(headers) if headers else None,
            delivery_mode=DeliveryMode.PERSISTENT if s.persistent else DeliveryMode.NOT_PERSISTENT,
        )
        await self._exchange.publish(
            message, routing_key=routing_key, mandatory=s.mandatory, timeout=s.publish_timeout
        )
        return PublishReceipt(f"rabbitmq exchange {s.exchange or '(default)'} key {routing_key}")

    async def _shutdown(self) -> None:
        await self._abort()

    async def _abort(self) -> None:
        # Closing a robust connection also ends its reconnect loop and its channels.
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.close()

    def _transient(self, exc: Exception) -> bool:
        from aiormq.exceptions import AMQPConnectionError, ChannelInvalidStateError

        return isinstance(
            exc, AMQPConnectionError | ChannelInvalidStateError | ConnectionError | OSError
        )
