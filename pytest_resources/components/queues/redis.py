"""``RedisMessageQueue``: Lua scripts move a message atomically from a priority ZSET to a lease
ZSET on receive; expired leases are swept back; idle receivers block on a wake-up list.

Needs redis-py (``pip install 'pytest-resource-guard[redis]'``), imported when the queue starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import TYPE_CHECKING, Any

from .base import (
    DeadLetter,
    Delivery,
    Envelope,
    MessageQueue,
    MessageQueueUnavailableError,
    QueueStats,
    logger,
)

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

__all__ = ["RedisMessageQueue"]

#: Room for the sequence number below the priority in a ready score (exact in a double).
_SEQ_BITS = 2**42
#: Wake-up tokens kept for idle receivers; more would only wake them for nothing.
_WAKE_TOKENS = 64
_BATCH = 100
_KEYS = "ready delayed leases tokens scores msgs redelivered stats dead seq wake".split()  # noqa: SIM905

# KEYS: ready, delayed, leases, tokens, scores, msgs, redelivered
# ARGV: now_ms, lease_ms, token
_TAKE = f"""
local now = tonumber(ARGV[1])
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, {_BATCH})) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZADD', KEYS[1], redis.call('HGET', KEYS[5], id), id)
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, {_BATCH})) do
  redis.call('ZREM', KEYS[3], id)
  redis.call('HDEL', KEYS[4], id)
  redis.call('SADD', KEYS[7], id)
  redis.call('ZADD', KEYS[1], redis.call('HGET', KEYS[5], id), id)
end
local popped = redis.call('ZPOPMIN', KEYS[1])
if #popped == 0 then return false end
local id = popped[1]
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[2]), id)
redis.call('HSET', KEYS[4], id, ARGV[3])
return {{id, redis.call('HGET', KEYS[6], id), redis.call('SISMEMBER', KEYS[7], id)}}
"""

# KEYS: ready, delayed, scores, msgs, seq, wake
# ARGV: id, message, rank (max_priority - priority), due_ms or ''
_PUT = f"""
local score = tonumber(ARGV[3]) * {_SEQ_BITS} + redis.call('INCR', KEYS[5])
redis.call('HSET', KEYS[4], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[1], score)
if ARGV[4] == '' then
  redis.call('ZADD', KEYS[1], score, ARGV[1])
  redis.call('LPUSH', KEYS[6], 1)
  redis.call('LTRIM', KEYS[6], 0, {_WAKE_TOKENS - 1})
else
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
end
"""

# KEYS: leases, tokens, ready, delayed, scores, msgs, redelivered, stats, dead, seq, wake
# ARGV: id, token, how ('ack' | 'requeue' | 'retry' | 'dead'), seconds, message, rank, due_ms
_SETTLE = f"""
local id = ARGV[1]
if redis.call('HGET', KEYS[2], id) ~= ARGV[2] then return 0 end
redis.call('ZREM', KEYS[1], id)
redis.call('HDEL', KEYS[2], id)
local how = ARGV[3]
if how == 'requeue' then
  redis.call('SADD', KEYS[7], id)
  redis.call('ZADD', KEYS[3], redis.call('HGET', KEYS[5], id), id)
  redis.call('LPUSH', KEYS[11], 1)
  redis.call('LTRIM', KEYS[11], 0, {_WAKE_TOKENS - 1})
  return 1
end
redis.call('SREM', KEYS[7], id)
if how == 'retry' then
  redis.call('HINCRBY', KEYS[8], 'failed', 1)
  local score = tonumber(ARGV[6]) * {_SEQ_BITS} + redis.call('INCR', KEYS[10])
  redis.call('HSET', KEYS[5], id, score)
  redis.call('HSET', KEYS[6], id, ARGV[5])
  redis.call('ZADD', KEYS[4], ARGV[7], id)
  return 1
end
redis.call('HDEL', KEYS[5], id)
redis.call('HDEL', KEYS[6], id)
if how == 'ack' then
  redis.call('HINCRBY', KEYS[8], 'completed', 1)
  redis.call('HINCRBYFLOAT', KEYS[8], 'processing_seconds', ARGV[4])
else
  redis.call('HINCRBY', KEYS[8], 'failed', 1)
  redis.call('HINCRBY', KEYS[8], 'dead_lettered', 1)
  redis.call('RPUSH', KEYS[9], id .. '|' .. ARGV[5])
end
return 1
"""

# KEYS: leases, tokens; ARGV: id, token, expires_ms
_EXTEND = """
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('ZADD', KEYS[1], 'XX', ARGV[3], ARGV[1])
return 1
"""


def _encode(envelope: Envelope) -> str:
    return f"{envelope.priority}|{envelope.attempt}|{envelope.body}"


def _decode(id_: str, stored: str) -> Envelope:
    priority, attempt, body = stored.split("|", 2)
    return Envelope(id_, body, int(priority), int(attempt))


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


class RedisMessageQueue(MessageQueue):
    """A ``MessageQueue`` on Redis, shared by every process that opens the same ``name``.

    Keys live under ``mq:{name}:`` (one hash slot). ``receive`` runs one script that promotes
    due delayed messages, sweeps expired leases back (``redelivered=True``) and moves the best
    ready message into the lease ZSET, so a consumer that dies holding a message loses it only
    until its lease ends. ``renewing(delivery)`` keeps the lease while a handler runs. Leases
    and delays are computed on the consumers' ``clock`` (wall time by default): keep the
    machines' clocks in sync. Run Redis with ``maxmemory-policy noeviction``: an evicted key is
    a lost message; the queue logs a warning at start when the server says otherwise.
    """

    backend = "redis"

    def __init__(
        self,
        name: str,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        max_connections: int = 16,
        connect_timeout: float = 5.0,
        **settings: Any,
    ) -> None:
        super().__init__(name, **settings)
        self.url = url
        self._max_connections = max_connections
        self._connect_timeout = connect_timeout
        base = f"mq:{{{name}}}:"
        self._k = {part: base + part for part in _KEYS}
        self._client: Redis | None = None
        self._scripts: dict[str, AsyncScript] = {}
        self._orphans: set[asyncio.Task[tuple[Delivery, Envelope] | None]] = set()

    def _keys(self, names: str) -> list[str]:
        return [self._k[n] for n in names.split()]

    async def _connect(self) -> None:
        try:
            from redis.asyncio import BlockingConnectionPool, Redis
        except ImportError as exc:
            raise ImportError(
                "RedisMessageQueue needs redis-py: pip install 'pytest-resource-guard[redis]'"
            ) from exc
        pool = BlockingConnectionPool.from_url(
            self.url,
            max_connections=self._max_connections,
            timeout=None,
            # A waiting receiver blocks in BLPOP for up to poll_interval.
            socket_timeout=self.poll_interval + 5.0,
            socket_connect_timeout=self._connect_timeout,
            socket_keepalive=True,
            health_check_interval=30,
            decode_responses=True,
        )
        self._client = Redis.from_pool(pool)  # owns the pool: aclose() closes it
        try:
            async with asyncio.timeout(self._connect_timeout):
                await self._client.ping()
        except (OSError, TimeoutError) as exc:
            raise MessageQueueUnavailableError(
                f"{self!r}: Redis at {self.url} did not answer: {exc}"
            ) from exc
        except Exception as exc:  # redis.ConnectionError and friends
            raise MessageQueueUnavailableError(f"{self!r}: Redis at {self.url}: {exc}") from exc
        await self._check_eviction()
        for name, source in (("take", _TAKE), ("put", _PUT), ("settle", _SETTLE)):
            self._scripts[name] = self._client.register_script(source)
        self._scripts["extend"] = self._client.register_script(_EXTEND)

    async def _check_eviction(self) -> None:
        assert self._client is not None
        with contextlib.suppress(Exception):  # CONFIG is often disabled on managed Redis
            config = await self._client.config_get("maxmemory*")
            policy, maxmemory = config["maxmemory-policy"], int(config["maxmemory"] or 0)
            if maxmemory and policy != "noeviction":
                logger.warning(
                    "%r: Redis evicts keys (maxmemory-policy %s): messages can be lost; "
                    "set maxmemory-policy noeviction",
                    self,
                    policy,
                )

    async def _disconnect(self) -> None:
        if self._orphans:
            await asyncio.wait(self._orphans)
        if self._client is not None:
            await self._client.aclose()

    def _abort(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.connection_pool.reset()  # type: ignore[no-untyped-call]

    def _now_ms(self) -> int:
        return _ms(self._clock())

    async def _put(self, envelope: Envelope, delay: float) -> None:
        due = str(_ms(self._clock() + delay)) if delay else ""
        await self._scripts["put"](
            keys=self._keys("ready delayed scores msgs seq wake"),
            args=[envelope.id, _encode(envelope), self.max_priority - envelope.priority, due],
        )

    async def _take(self) -> tuple[Delivery, Envelope] | None:
        # Shielded: a receiver cancelled while the script runs must not strand the message it
        # took; it is adopted as unsettled, and handed back at close (or when the lease ends).
        pop = asyncio.ensure_future(self._pop())
        try:
            return await asyncio.shield(pop)
        except asyncio.CancelledError:
            self._orphans.add(pop)
            pop.add_done_callback(self._adopt)
            raise

    async def _pop(self) -> tuple[Delivery, Envelope] | None:
        token = uuid.uuid4().hex
        found = await self._scripts["take"](
            keys=self._keys("ready delayed leases tokens scores msgs redelivered"),
            args=[self._now_ms(), _ms(self.lease), token],
        )
        if not found:
            return None
        id_, stored, redelivered = found
        return self._delivery(_decode(id_, stored), bool(redelivered), f"{id_}|{token}")

    def _adopt(self, pop: asyncio.Task[tuple[Delivery, Envelope] | None]) -> None:
        self._orphans.discard(pop)
        if pop.cancelled() or pop.exception() is not None:
            return
        taken = pop.result()
        if taken is not None:
            self._unsettled[taken[0].token] = taken

    async def _wait(self, timeout: float) -> None:
        assert self._client is not None
        await self._client.blpop([self._k["wake"]], timeout=max(timeout, 0.01))

    async def _settle(
        self,
        delivery: Delivery,
        how: str,
        *,
        seconds: float = 0.0,
        envelope: Envelope | None = None,
        due: float = 0.0,
    ) -> bool:
        id_, token = delivery.token.split("|")
        message = "" if envelope is None else _encode(envelope)
        rank = 0 if envelope is None else self.max_priority - envelope.priority
        done = await self._scripts["settle"](
            keys=self._keys(
                "leases tokens ready delayed scores msgs redelivered stats dead seq wake"
            ),
            args=[id_, token, how, repr(seconds), message, rank, _ms(due)],
        )
        return bool(done)

    async def _ack(self, delivery: Delivery, envelope: Envelope, seconds: float) -> bool:
        return await self._settle(delivery, "ack", seconds=seconds)

    async def _requeue(self, delivery: Delivery, envelope: Envelope) -> bool:
        return await self._settle(delivery, "requeue")

    async def _retry(self, delivery: Delivery, envelope: Envelope, delay: float) -> bool:
        due = self._clock() + delay
        return await self._settle(delivery, "retry", envelope=envelope.retried(), due=due)

    async def _dead_letter(self, delivery: Delivery, envelope: Envelope) -> bool:
        return await self._settle(delivery, "dead", envelope=envelope)

    async def _extend(self, delivery: Delivery) -> bool:
        id_, token = delivery.token.split("|")
        done = await self._scripts["extend"](
            keys=self._keys("leases tokens"), args=[id_, token, _ms(self._clock() + self.lease)]
        )
        return bool(done)

    async def _release(self, unsettled: list[tuple[Delivery, Envelope]]) -> int:
        if self._orphans:
            await asyncio.wait(self._orphans)  # adopted into unsettled when they finish
            unsettled = list(self._unsettled.values())
        given_back = [await self._requeue(d, e) for d, e in unsettled]
        return sum(given_back)

    async def _stats(self) -> QueueStats:
        assert self._client is not None
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.zcard(self._k["ready"])
            pipe.zcard(self._k["delayed"])
            pipe.zcard(self._k["leases"])
            pipe.hgetall(self._k["stats"])
            ready, delayed, leased, counts = await pipe.execute()
        completed = int(counts.get("completed", 0))
        seconds = float(counts.get("processing_seconds", 0.0))
        return QueueStats(
            pending=ready + delayed,
            processing=leased,
            completed=completed,
            failed=int(counts.get("failed", 0)),
            dead_lettered=int(counts.get("dead_lettered", 0)),
            avg_processing_seconds=seconds / completed if completed else 0.0,
        )

    async def _dead_letters(self, limit: int) -> list[DeadLetter]:
        assert self._client is not None
        stored: list[Any] = await self._client.lrange(self._k["dead"], 0, limit - 1)
        letters = []
        for entry in stored:
            id_, rest = entry.split("|", 1)
            letters.append(_decode(id_, rest).dead_letter())
        return letters

    async def _destroy(self) -> None:
        assert self._client is not None
        await self._client.delete(*self._k.values())
