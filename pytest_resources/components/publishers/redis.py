"""``RedisPublisher``: PUBLISH to a channel or XADD to a stream over a pool it owns."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .base import BasePublisher, PublishReceipt, redact
from .config import RedisSettings

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.typing import EncodableT, FieldT

__all__ = ["RedisPublisher"]

#: Stream field that holds the event; headers become further fields.
DATA_FIELD = "data"


class RedisPublisher(BasePublisher[RedisSettings]):
    """Redis Pub/Sub (receipt: how many subscribers got it) or Streams (receipt: the entry id).

    Owns a ``BlockingConnectionPool`` of ``max_connections``, pings the server on start, and
    leaves retrying to ``publish()`` (redis-py's own retries are off, so ``publish_timeout``
    bounds the whole publish). Needs ``pip install 'pytest-resource-guard[redis]'``.
    """

    def __init__(self, settings: RedisSettings | Mapping[str, Any]) -> None:
        if not isinstance(settings, RedisSettings):
            settings = RedisSettings.from_mapping(settings)
        super().__init__(settings)
        self._client: Redis | None = None

    def _target(self) -> str:
        s = self.settings
        return f"redis channel {s.channel}" if s.channel is not None else f"redis stream {s.stream}"

    def _where(self) -> str:
        return redact(self.settings.url)

    def _connect_timeout(self) -> float:
        return self.settings.socket_connect_timeout + self.settings.socket_timeout

    async def _open(self) -> None:
        from redis.asyncio import BlockingConnectionPool, Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        s = self.settings
        pool = BlockingConnectionPool.from_url(
            s.url,
            max_connections=s.max_connections,
            timeout=s.pool_timeout,
            socket_timeout=s.socket_timeout,
            socket_connect_timeout=s.socket_connect_timeout,
            socket_keepalive=s.socket_keepalive,
            health_check_interval=s.health_check_interval,
            retry=Retry(NoBackoff(), 0),
        )
        self._client = Redis.from_pool(pool)  # the client owns the pool: aclose() closes both
        await self._client.ping()

    async def _send(
        self, body: bytes, key: str | None, headers: Mapping[str, str] | None
    ) -> PublishReceipt:
        assert self._client is not None
        s = self.settings
        if s.channel is not None:
            if headers:
                raise ValueError("Redis Pub/Sub carries no headers; publish to a stream instead")
            channel = key or s.channel
            receivers = await self._client.publish(channel, body)
            return PublishReceipt(f"redis channel {channel}", receivers=receivers)
        stream = key or s.stream
        assert stream is not None
        fields: dict[FieldT, EncodableT] = dict((headers or {}).items())
        fields[DATA_FIELD] = body
        entry = await self._client.xadd(stream, fields, maxlen=s.stream_maxlen, approximate=True)
        entry_id = entry if isinstance(entry, str) else entry.decode()
        return PublishReceipt(f"redis stream {stream}", message_id=entry_id)

    async def _shutdown(self) -> None:
        await self._abort()

    async def _abort(self) -> None:
        # Closing the pool disconnects connections in use too, so a publish waiting for a
        # reply fails at once instead of waiting for its socket timeout.
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    def _transient(self, exc: Exception) -> bool:
        from redis.exceptions import ConnectionError, TimeoutError

        return isinstance(exc, ConnectionError | TimeoutError | OSError)
