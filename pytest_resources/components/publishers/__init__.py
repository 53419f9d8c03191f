"""Event publishers that return once the broker confirmed: console, Redis, Kafka, RabbitMQ.

Broker clients are optional extras, imported when a publisher starts.
"""

from __future__ import annotations

from .base import (
    BasePublisher,
    CloseResult,
    PublisherClosedError,
    PublishError,
    PublisherStartError,
    PublishReceipt,
)
from .config import (
    ConsoleSettings,
    KafkaSettings,
    PublisherConfigError,
    PublisherSettings,
    RabbitMQSettings,
    RedisSettings,
)
from .console import ConsolePublisher
from .factory import create_publisher
from .kafka import KafkaPublisher
from .rabbitmq import RabbitMQPublisher
from .redis import RedisPublisher

__all__ = [
    "BasePublisher",
    "CloseResult",
    "ConsolePublisher",
    "ConsoleSettings",
    "KafkaPublisher",
    "KafkaSettings",
    "PublishError",
    "PublishReceipt",
    "PublisherClosedError",
    "PublisherConfigError",
    "PublisherSettings",
    "PublisherStartError",
    "RabbitMQPublisher",
    "RabbitMQSettings",
    "RedisPublisher",
    "RedisSettings",
    "create_publisher",
]
