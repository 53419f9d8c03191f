"""Typed settings for every publisher, built from keywords or from a config dict.

Values are checked when the settings are made, so a typo or a bad value is one line naming
the key, not an error from deep inside a broker client at the first publish.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar

__all__ = [
    "ConsoleSettings",
    "KafkaSettings",
    "PublisherConfigError",
    "PublisherSettings",
    "RabbitMQSettings",
    "RedisSettings",
]

S = TypeVar("S", bound="PublisherSettings")


class PublisherConfigError(ValueError):
    """A publisher setting is unknown, missing or has a bad value; the message names it."""


@dataclass(frozen=True, kw_only=True)
class PublisherSettings:
    """Settings every publisher has.

    ``publish_timeout``: seconds after which ``publish()`` begins no new attempt (each attempt
    is bounded by the client's own timeouts, and by ``publish_timeout`` where the client takes
    one per call).
    ``retry_backoff``: first pause before retrying after a connection error (doubled each
    time, at most ``MAX_BACKOFF`` seconds). ``close_timeout``: seconds ``close()`` waits for
    publishes in flight and the client's orderly close before it aborts the connections.
    """

    kind: ClassVar[str] = "base"
    #: Keys whose value must be more than zero (the others of a number type: zero or more).
    positive: ClassVar[frozenset[str]] = frozenset({"publish_timeout", "close_timeout"})

    name: str = ""
    publish_timeout: float = 30.0
    retry_backoff: float = 0.05
    close_timeout: float = 10.0

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            _check_value(self, field.name, getattr(self, field.name))

    def error(self, key: str, problem: str) -> PublisherConfigError:
        return PublisherConfigError(f"{self.kind} publisher: {key}: {problem}")

    @classmethod
    def from_mapping(cls: type[S], config: Mapping[str, Any]) -> S:
        """Settings from a config dict; an unknown or missing key raises
        ``PublisherConfigError`` naming it."""
        known = {f.name for f in dataclasses.fields(cls)}
        for key in config:
            if key not in known:
                raise PublisherConfigError(
                    f"{cls.kind} publisher: unknown key {key!r} (known: {', '.join(sorted(known))})"
                )
        try:
            return cls(**config)
        except TypeError:  # a required key is missing
            missing = [
                f.name
                for f in dataclasses.fields(cls)
                if f.default is dataclasses.MISSING and f.name not in config
            ]
            if not missing:
                raise
            raise PublisherConfigError(
                f"{cls.kind} publisher: missing key {missing[0]!r}"
            ) from None


@dataclass(frozen=True, kw_only=True)
class ConsoleSettings(PublisherSettings):
    """Events written as one line each to standard output or standard error."""

    kind: ClassVar[str] = "console"

    stream: Literal["stdout", "stderr"] = "stdout"


@dataclass(frozen=True, kw_only=True)
class RedisSettings(PublisherSettings):
    """Redis Pub/Sub (``channel``: PUBLISH, the receipt counts receivers) or Streams
    (``stream``: XADD, the receipt holds the entry id); exactly one of the two.

    The publisher owns a blocking pool of at most ``max_connections``; a publish waits up to
    ``pool_timeout`` seconds for a free connection. ``stream_maxlen`` trims the stream
    approximately (``MAXLEN ~``).
    """

    kind: ClassVar[str] = "redis"
    positive: ClassVar[frozenset[str]] = PublisherSettings.positive | {
        "max_connections",
        "socket_timeout",
        "socket_connect_timeout",
        "stream_maxlen",
    }

    url: str = "redis://localhost:6379/0"
    channel: str | None = None
    stream: str | None = None
    stream_maxlen: int | None = None
    max_connections: int = 10
    pool_timeout: float = 5.0
    socket_timeout: float = 5.0
    socket_connect_timeout: float = 5.0
    socket_keepalive: bool = True
    health_check_interval: int = 30

    def __post_init__(self) -> None:
        super().__post_init__()
        if (self.channel is None) == (self.stream is None):
            raise self.error("channel", "set exactly one of channel (Pub/Sub) and stream")
        if self.stream_maxlen is not None and self.stream is None:
            raise self.error("stream_maxlen", "applies to a stream only")
        _check_scheme(self, "url", ("redis", "rediss", "unix"))


@dataclass(frozen=True, kw_only=True)
class KafkaSettings(PublisherSettings):
    """aiokafka producer settings; ``acks="all"`` with idempotence by default, so a
    confirmed event is on every in-sync replica and a retry never duplicates it."""

    kind: ClassVar[str] = "kafka"
    positive: ClassVar[frozenset[str]] = PublisherSettings.positive | {
        "max_batch_size",
        "request_timeout_ms",
    }

    topic: str
    bootstrap_servers: str = "localhost:9092"
    client_id: str | None = None
    acks: Literal["all", 0, 1] = "all"
    enable_idempotence: bool = True
    max_batch_size: int = 16384
    linger_ms: int = 0
    compression_type: Literal["gzip", "snappy", "lz4", "zstd"] | None = None
    request_timeout_ms: int = 30000

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.enable_idempotence and self.acks != "all":
            raise self.error("acks", f'idempotence needs acks="all", got {self.acks!r}')
        if not self.topic:
            raise self.error("topic", "must not be empty")


@dataclass(frozen=True, kw_only=True)
class RabbitMQSettings(PublisherSettings):
    """aio-pika robust connection with publisher confirms.

    ``exchange`` ``""`` is the default exchange (``routing_key`` names the queue); another
    name is declared durable with ``exchange_type``. With ``mandatory`` an event no queue
    takes is an error, not a silent drop; ``persistent`` events survive a broker restart in
    durable queues.
    """

    kind: ClassVar[str] = "rabbitmq"
    positive: ClassVar[frozenset[str]] = PublisherSettings.positive | {"connection_timeout"}

    url: str = "amqp://guest:guest@localhost:5672/"
    exchange: str = ""
    exchange_type: Literal["direct", "fanout", "topic", "headers"] = "direct"
    routing_key: str = ""
    connection_timeout: float = 10.0
    heartbeat: int = 60
    publisher_confirms: bool = True
    mandatory: bool = True
    persistent: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_scheme(self, "url", ("amqp", "amqps"))
        if self.mandatory and not self.publisher_confirms:
            raise self.error("mandatory", "needs publisher_confirms (returns arrive with them)")


def _check_scheme(settings: PublisherSettings, key: str, schemes: tuple[str, ...]) -> None:
    value: str = getattr(settings, key)
    if value.partition("://")[0] not in schemes or "://" not in value:
        raise settings.error(key, f"expected a {' or '.join(schemes)} URL, got {value!r}")


def _check_value(settings: PublisherSettings, key: str, value: object) -> None:
    expected = typing.get_type_hints(type(settings))[key]
    if not _matches(value, expected):
        raise settings.error(key, f"expected {_describe(expected)}, got {value!r}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            raise settings.error(key, f"expected a finite number, got {value!r}")
        if key in settings.positive and value <= 0:
            raise settings.error(key, f"must be more than 0, got {value!r}")
        if value < 0:
            raise settings.error(key, f"must be 0 or more, got {value!r}")


def _matches(value: object, expected: Any) -> bool:
    origin = typing.get_origin(expected)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(expected))
    if origin is Literal:
        return any(value == arg and type(value) is type(arg) for arg in typing.get_args(expected))
    if expected is type(None):
        return value is None
    if expected is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)


def _describe(expected: Any) -> str:
    origin = typing.get_origin(expected)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(arg) for arg in typing.get_args(expected))
    if origin is Literal:
        return " or ".join(repr(arg) for arg in typing.get_args(expected))
    if expected is type(None):
        return "None"
    if expected is float:
        return "a number"
    return str(expected.__name__)
