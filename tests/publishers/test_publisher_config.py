from __future__ import annotations

from typing import Any

import pytest

from pytest_resources.components.publishers import (
    ConsolePublisher,
    ConsoleSettings,
    KafkaPublisher,
    KafkaSettings,
    PublisherConfigError,
    RabbitMQPublisher,
    RabbitMQSettings,
    RedisPublisher,
    RedisSettings,
    create_publisher,
)
from pytest_resources.components.publishers.base import encode, redact


def test_redis_defaults_are_the_documented_ones() -> None:
    s = RedisSettings(channel="events")
    assert (s.max_connections, s.socket_timeout, s.socket_connect_timeout) == (10, 5.0, 5.0)
    assert (s.socket_keepalive, s.health_check_interval) == (True, 30)


def test_kafka_defaults_are_safe_and_documented() -> None:
    s = KafkaSettings(topic="events")
    assert (s.acks, s.enable_idempotence) == ("all", True)
    assert (s.max_batch_size, s.linger_ms, s.compression_type) == (16384, 0, None)
    assert s.request_timeout_ms == 30000


def test_rabbitmq_defaults_confirm_and_persist() -> None:
    s = RabbitMQSettings(routing_key="events")
    assert (s.connection_timeout, s.heartbeat) == (10.0, 60)
    assert (s.publisher_confirms, s.mandatory, s.persistent) == (True, True, True)


R = {"type": "redis", "channel": "c"}
K = {"type": "kafka", "topic": "t"}
BAD_CONFIGS = [
    ({**R, "max_conections": 5}, "redis publisher: unknown key 'max_conections' (known: "),
    ({**R, "max_connections": 0}, "redis publisher: max_connections: must be more than 0, got 0"),
    ({**R, "socket_timeout": "5"}, "redis publisher: socket_timeout: expected a number, got '5'"),
    ({**R, "socket_keepalive": 1}, "redis publisher: socket_keepalive: expected bool, got 1"),
    ({"type": "redis"}, "redis publisher: channel: set exactly one of channel (Pub/Sub) and"),
    ({**R, "stream": "s"}, "redis publisher: channel: set exactly one of"),
    ({**R, "url": "http://h"}, "redis publisher: url: expected a redis or rediss or unix URL"),
    ({**R, "publish_timeout": float("inf")}, "redis publisher: publish_timeout: expected a finite"),
    ({"type": "kafka"}, "kafka publisher: missing key 'topic'"),
    ({**K, "acks": 1}, 'kafka publisher: acks: idempotence needs acks="all", got 1'),
    ({**K, "acks": "1", "enable_idempotence": False}, "kafka publisher: acks: expected 'all' or 0"),
    ({**K, "compression_type": "bz2"}, "kafka publisher: compression_type: expected 'gzip' or"),
    ({**K, "linger_ms": -1}, "kafka publisher: linger_ms: must be 0 or more, got -1"),
    ({"type": "rabbitmq", "exchange_type": "fan"}, "rabbitmq publisher: exchange_type: expected"),
    ({"type": "rabbitmq", "publisher_confirms": False}, "rabbitmq publisher: mandatory: needs"),
    ({"type": "console", "stream": "stdin"}, "console publisher: stream: expected 'stdout' or"),
    ({"type": "console", "close_timeout": 0}, "console publisher: close_timeout: must be more"),
    ({"type": "smtp"}, "publisher: type: expected one of console, redis, kafka, rabbitmq, got"),
    ({"channel": "c"}, "publisher: type: expected one of console, redis, kafka, rabbitmq, got No"),
]


@pytest.mark.parametrize(("config", "message"), BAD_CONFIGS)
def test_a_bad_config_is_one_line_naming_the_key(config: dict[str, Any], message: str) -> None:
    with pytest.raises(PublisherConfigError) as info:
        create_publisher(config)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, ValueError)


def test_typed_settings_are_checked_too() -> None:
    with pytest.raises(PublisherConfigError, match=r"max_connections: expected int, got 2\.5"):
        RedisSettings(channel="c", max_connections=2.5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("config", "cls"),
    [
        ({"type": "console"}, ConsolePublisher),
        ({"type": "redis", "stream": "s"}, RedisPublisher),
        ({"type": "kafka", "topic": "t"}, KafkaPublisher),
        ({"type": "rabbitmq", "routing_key": "q"}, RabbitMQPublisher),
        (RedisSettings(channel="c"), RedisPublisher),
        (KafkaSettings(topic="t"), KafkaPublisher),
        (RabbitMQSettings(), RabbitMQPublisher),
        (ConsoleSettings(stream="stderr"), ConsolePublisher),
    ],
)
def test_create_publisher_picks_the_backend(config: Any, cls: type[object]) -> None:
    publisher = create_publisher(config)
    assert type(publisher) is cls
    assert not publisher.closed


def test_a_dict_and_typed_settings_make_the_same_publisher() -> None:
    from_dict = RedisPublisher({"url": "redis://h:1/2", "stream": "s", "max_connections": 3})
    typed = RedisPublisher(RedisSettings(url="redis://h:1/2", stream="s", max_connections=3))
    assert from_dict.settings == typed.settings
    assert from_dict.name == "redis stream s"


def test_events_are_encoded_as_bytes_text_or_json() -> None:
    assert encode(b"raw") == b"raw"
    assert encode(bytearray(b"ba")) == b"ba"
    assert encode("héllo") == "héllo".encode()
    assert encode({"a": [1, 2], "b": None}) == b'{"a":[1,2],"b":null}'
    with pytest.raises(TypeError, match="cannot publish object: not JSON"):
        encode(object())


def test_messages_hide_passwords() -> None:
    assert redact("amqp://guest:secret@h:5672/") == "amqp://guest:***@h:5672/"
    assert redact("redis://:secret@h:6379/0") == "redis://:***@h:6379/0"
    assert redact("redis://h:6379/0") == "redis://h:6379/0"
