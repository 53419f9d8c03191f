"""Message queues with one contract over memory, Redis and RabbitMQ (see
docs/components/queues.md). Broker clients are imported only when a queue starts."""

from __future__ import annotations

from .base import (
    CloseResult,
    DeadLetter,
    Delivery,
    ManualClock,
    MessageQueue,
    MessageQueueClosedError,
    MessageQueueUnavailableError,
    QueueStats,
    RetryPolicy,
)
from .memory import InMemoryMessageQueue
from .rabbitmq import RabbitMQMessageQueue
from .redis import RedisMessageQueue

__all__ = [
    "CloseResult",
    "DeadLetter",
    "Delivery",
    "InMemoryMessageQueue",
    "ManualClock",
    "MessageQueue",
    "MessageQueueClosedError",
    "MessageQueueUnavailableError",
    "QueueStats",
    "RabbitMQMessageQueue",
    "RedisMessageQueue",
    "RetryPolicy",
]
