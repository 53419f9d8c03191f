"""``create_publisher``: a publisher from a config dict naming its ``type``, or from settings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import BasePublisher
from .config import (
    ConsoleSettings,
    KafkaSettings,
    PublisherConfigError,
    PublisherSettings,
    RabbitMQSettings,
    RedisSettings,
)
from .console import ConsolePublisher
from .kafka import KafkaPublisher
from .rabbitmq import RabbitMQPublisher
from .redis import RedisPublisher

__all__ = ["PUBLISHERS", "create_publisher"]

#: ``type`` value → (settings class, publisher class).
PUBLISHERS: dict[str, tuple[type[PublisherSettings], type[BasePublisher[Any]]]] = {
    "console": (ConsoleSettings, ConsolePublisher),
    "redis": (RedisSettings, RedisPublisher),
    "kafka": (KafkaSettings, KafkaPublisher),
    "rabbitmq": (RabbitMQSettings, RabbitMQPublisher),
}


def create_publisher(config: PublisherSettings | Mapping[str, Any]) -> BasePublisher[Any]:
    """A publisher, not yet started, from typed settings or from a dict such as
    ``{"type": "redis", "url": "redis://…", "stream": "events"}``.

    Raises ``PublisherConfigError`` for an unknown ``type``, an unknown key or a bad value.
    """
    if isinstance(config, PublisherSettings):
        for settings_class, publisher_class in PUBLISHERS.values():
            if type(config) is settings_class:
                return publisher_class(config)
        raise PublisherConfigError(f"no publisher takes {type(config).__name__}")
    options = dict(config)
    kind = options.pop("type", None)
    if kind not in PUBLISHERS:
        raise PublisherConfigError(
            f"publisher: type: expected one of {', '.join(PUBLISHERS)}, got {kind!r}"
        )
    settings_class, publisher_class = PUBLISHERS[kind]
    return publisher_class(settings_class.from_mapping(options))
