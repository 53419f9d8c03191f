"""``RedisMessageQueue``: Lua scripts move a message atomically from a priority ZSET to a lease
ZSET on receive; expired leases are swept back; idle receivers block on a wake-up list.

Each of enqueue, receive and settle is one EVALSHA round trip; the scripts keep the number of
Redis calls inside them small (a message lives in one hash under three fields, and its lease
token is part of the lease member, so checking and dropping a lease is a single ZREM).

Needs redis-py (``pip install 'pytest-resource-guard[redis]'``), imported when the queue starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

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

__all__ = ["RedisMessageQueue"]

T = TypeVar("T")

#: Room for the sequence number below the priority in a ready score (exact in a double).
_SEQ_BITS = 2**42
#: Wake-up tokens kept for idle receivers; more would only wake them for nothing. Trimmed to
#: half when the list outgrows it, so a burst of enqueues trims once per that many pushes.
_WAKE_TOKENS = 64
_BATCH = 100
_KEYS = "ready delayed leases msgs stats dead seq wake".split()  # noqa: SIM905

# The message hash ``msgs`` keeps, per message id: ``id`` -> "priority|attempt|body",
# ``s:id`` -> its ready score (to put it back in line after a delay, requeue or expired
# lease) and ``r:id`` -> 1 while it is redelivered. A lease member is "id|token".


def _wake(key: int) -> str:
    """Lua that leaves a wake-up token in the list ``KEYS[key]``."""
    return f"""if redis.call('LPUSH', KEYS[{key}], 1) > {_WAKE_TOKENS} then
    redis.call('LTRIM', KEYS[{key}], 0, {_WAKE_TOKENS // 2 - 1})
  end"""


@dataclass(frozen=True, eq=False)
class _Script:
    """A Lua script and the names of the keys it takes, in order."""

    source: str
    keys: tuple[str, ...]

    @property
    def sha(self) -> str:
        return hashlib.sha1(self.source.encode()).hexdigest()


# ARGV: now_ms, lease_ms, token. Returns "redelivered|id|token|priority|attempt|body" (one
# bulk string: cheaper to read than an array).
_TAKE = _Script(
    f"""
local now = tonumber(ARGV[1])
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, {_BATCH})) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZADD', KEYS[1], redis.call('HGET', KEYS[4], 's:' .. id), id)
end
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, {_BATCH})) do
  redis.call('ZREM', KEYS[3], member)
  local id = string.match(member, '^[^|]*')
  redis.call('HSET', KEYS[4], 'r:' .. id, 1)
  redis.call('ZADD', KEYS[1], redis.call('HGET', KEYS[4], 's:' .. id), id)
end
local popped = redis.call('ZPOPMIN', KEYS[1])
if #popped == 0 then return false end
local id = popped[1]
local member = id .. '|' .. ARGV[3]
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[2]), member)
local found = redis.call('HMGET', KEYS[4], id, 'r:' .. id)
return (found[2] and '1|' or '0|') .. member .. '|' .. found[1]
""",
    ("ready", "delayed", "leases", "msgs"),
)

# ARGV: id, message, rank (max_priority - priority), due_ms or ''
_PUT = _Script(
    f"""
local score = tonumber(ARGV[3]) * {_SEQ_BITS} + redis.call('INCR', KEYS[4])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2], 's:' .. ARGV[1], score)
if ARGV[4] == '' then
  redis.call('ZADD', KEYS[1], score, ARGV[1])
  {_wake(5)}
else
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
end
""",
    ("ready", "delayed", "msgs", "seq", "wake"),
)

# ARGV: lease member ("id|token"), processing microseconds (an integer sum stays exact). The
# ZREM is the lease check: a lease that ran out (or was taken over) is not there.
_ACK = _Script(
    """
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
local id = string.match(ARGV[1], '^[^|]*')
redis.call('HDEL', KEYS[2], id, 's:' .. id, 'r:' .. id)
redis.call('HINCRBY', KEYS[3], 'completed', 1)
redis.call('HINCRBY', KEYS[3], 'processing_us', ARGV[2])
return 1
""",
    ("leases", "msgs", "stats"),
)

# The other settlements. ARGV: lease member, how ('requeue' | 'retry' | 'dead'), message, rank,
# due_ms.
_SETTLE = _Script(
    f"""
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
local id, how = string.match(ARGV[1], '^[^|]*'), ARGV[2]
if how == 'requeue' then
  redis.call('HSET', KEYS[4], 'r:' .. id, 1)
  redis.call('ZADD', KEYS[2], redis.call('HGET', KEYS[4], 's:' .. id), id)
  {_wake(8)}
elseif how == 'retry' then
  local score = tonumber(ARGV[4]) * {_SEQ_BITS} + redis.call('INCR', KEYS[7])
  redis.call('HSET', KEYS[4], id, ARGV[3], 's:' .. id, score)
  redis.call('HDEL', KEYS[4], 'r:' .. id)
  redis.call('ZADD', KEYS[3], ARGV[5], id)
  redis.call('HINCRBY', KEYS[5], 'failed', 1)
else
  redis.call('HDEL', KEYS[4], id, 's:' .. id, 'r:' .. id)
  redis.call('HINCRBY', KEYS[5], 'failed', 1)
  redis.call('HINCRBY', KEYS[5], 'dead_lettered', 1)
  redis.call('RPUSH', KEYS[6], id .. '|' .. ARGV[3])
end
return 1
""",
    ("leases", "ready", "delayed", "msgs", "stats", "dead", "seq", "wake"),
)

# ARGV: lease member, expires_ms
_EXTEND = _Script(
    """
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], 'XX', ARGV[2], ARGV[1])
return 1
""",
    ("leases",),
)


class _Deadlines:
    """Cancels a Redis command still running ``timeout`` seconds after it began, as
    ``asyncio.timeout`` would, but with one timer for every command instead of one each (that
    cost the queue a tenth of its time). All commands get the same timeout, so they expire in
    the order they began: the timer waits for the oldest."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._running: dict[asyncio.Task[Any], float] = {}  # deadlines, oldest first
        self._timer: asyncio.TimerHandle | None = None

    def begin(self) -> asyncio.Task[Any]:
        task = asyncio.current_task()
        assert task is not None
        loop = task.get_loop()
        deadline = loop.time() + self.timeout
        self._running[task] = deadline
        if self._timer is None:
            self._timer = loop.call_at(deadline, self._expire, loop)
        return task

    def end(self, task: asyncio.Task[Any]) -> None:
        self._running.pop(task, None)

    def timed_out(self, task: asyncio.Task[Any]) -> bool:
        """Whether the cancellation ``task`` got is this timeout's (and no other's)."""
        return task not in self._running and task.uncancel() == 0

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        now = loop.time()
        expired = [task for task, deadline in self._running.items() if deadline <= now]
        for task in expired:
            del self._running[task]
            task.cancel()
        if self._running:
            self._timer = loop.call_at(next(iter(self._running.values())), self._expire, loop)


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

    At most ``max_connections`` commands run at once (more wait for a connection), and each
    gets ``command_timeout`` seconds (a waiting receiver's BLPOP that on top of
    ``poll_interval``): a Redis that stops answering, or a lost connection, raises
    ``MessageQueueUnavailableError``.
    """

    backend = "redis"

    def __init__(
        self,
        name: str,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        max_connections: int = 16,
        connect_timeout: float = 5.0,
        command_timeout: float = 5.0,
        **settings: Any,
    ) -> None:
        super().__init__(name, **settings)
        self.url = url
        self._max_connections = max_connections
        self._connect_timeout = connect_timeout
        base = f"mq:{{{name}}}:"
        self._k = {part: base + part for part in _KEYS}
        # Each script's SHA and keys, pre-encoded (redis-py passes bytes through): once, not
        # per call.
        self._calls = {
            script: (script.sha, tuple(self._k[k].encode() for k in script.keys))
            for script in (_PUT, _TAKE, _ACK, _SETTLE, _EXTEND)
        }
        # Lease tokens: unique per queue instance (random prefix) and per take (counter).
        self._token_prefix = uuid.uuid4().hex[:16]
        self._token_count = itertools.count()
        self._client: Redis | None = None
        # Bounds the connections in use: a plain pool raises past max_connections, and
        # BlockingConnectionPool costs more per command than the rest of redis-py together.
        self._slots = asyncio.Semaphore(max_connections)
        # Every command is bounded (BLPOP on top of its poll_interval wait), by _Deadlines:
        # redis-py's socket_timeout costs a task per command (wait_for) and a timer per read.
        self._deadlines = _Deadlines(self.poll_interval + command_timeout)
        #: The client's errors for a lost or refused connection (known once it is imported).
        self._lost: tuple[type[BaseException], ...] = (OSError,)
        # Tokens of takes that failed or were cancelled mid-script: they may hold a lease.
        self._lost_tokens: set[str] = set()

    async def _connect(self) -> None:
        try:
            from redis import exceptions
            from redis.asyncio import ConnectionPool, Redis
        except ImportError as exc:
            raise ImportError(
                "RedisMessageQueue needs redis-py: pip install 'pytest-resource-guard[redis]'"
            ) from exc
        pool = ConnectionPool.from_url(
            self.url,
            max_connections=self._max_connections,
            socket_timeout=None,  # see _deadlines
            socket_connect_timeout=self._connect_timeout,
            socket_keepalive=True,
            health_check_interval=30,
            # A pooled connection the server closed (it restarted) is retried once on a new one.
            retry_on_error=[exceptions.ConnectionError],
            decode_responses=True,
        )
        self._client = Redis.from_pool(pool)  # owns the pool: aclose() closes it
        self._lost = (OSError, exceptions.ConnectionError, exceptions.TimeoutError)
        try:
            async with asyncio.timeout(self._connect_timeout):
                await self._client.ping()
                await self._check_eviction()
                async with self._client.pipeline(transaction=False) as pipe:
                    for script in self._calls:
                        pipe.script_load(script.source)
                    await pipe.execute()
        except (OSError, TimeoutError) as exc:
            raise MessageQueueUnavailableError(
                f"{self!r}: Redis at {self.url} did not answer: {exc}"
            ) from exc
        except Exception as exc:  # redis.ConnectionError and friends
            raise MessageQueueUnavailableError(f"{self!r}: Redis at {self.url}: {exc}") from exc

    async def _bounded(self, call: Callable[[], Awaitable[T]]) -> T:
        """Run one Redis call in a connection slot, within the command timeout."""
        async with self._slots:
            task = self._deadlines.begin()
            try:
                return await call()
            except asyncio.CancelledError:
                if self._deadlines.timed_out(task):
                    raise MessageQueueUnavailableError(
                        f"{self!r}: Redis did not answer within {self._deadlines.timeout}s"
                    ) from None
                raise
            except self._lost as exc:
                raise MessageQueueUnavailableError(f"{self!r}: Redis at {self.url}: {exc}") from exc
            finally:
                self._deadlines.end(task)

    async def _run(self, script: _Script, *args: str | int) -> Any:
        return await self._bounded(lambda: self._evalsha(script, args))

    async def _evalsha(self, script: _Script, args: tuple[str | int, ...]) -> Any:
        assert self._client is not None
        sha, keys = self._calls[script]
        try:
            return await self._client.evalsha(sha, len(keys), *keys, *args)
        except Exception as exc:
            from redis.exceptions import NoScriptError

            if not isinstance(exc, NoScriptError):
                raise
        # The server lost its script cache (restarted, SCRIPT FLUSH): load it and run again.
        await self._client.script_load(script.source)
        return await self._client.evalsha(sha, len(keys), *keys, *args)

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
        self._deadlines.stop()
        if self._client is not None:
            await self._client.aclose()

    def _abort(self) -> None:
        self._deadlines.stop()
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.connection_pool.reset()  # type: ignore[no-untyped-call,unused-ignore]

    def _now_ms(self) -> int:
        return _ms(self._clock())

    async def _put(self, envelope: Envelope, delay: float) -> None:
        due = str(_ms(self._clock() + delay)) if delay else ""
        rank = self.max_priority - envelope.priority
        await self._run(_PUT, envelope.id, _encode(envelope), rank, due)

    async def _take(self) -> tuple[Delivery, Envelope] | None:
        token = f"{self._token_prefix}{next(self._token_count):x}"
        try:
            found = await self._run(_TAKE, self._now_ms(), _ms(self.lease), token)
        except BaseException:
            # The script may have run and leased a message to this token: close() hands it
            # back (otherwise its lease runs out).
            self._lost_tokens.add(token)
            raise
        if not found:
            return None
        redelivered, id_, token, priority, attempt, body = found.split("|", 5)
        envelope = Envelope(id_, body, int(priority), int(attempt))
        return self._delivery(envelope, redelivered == "1", f"{id_}|{token}")

    async def _wait(self, timeout: float) -> None:
        assert self._client is not None
        client, wake = self._client, self._k["wake"]
        await self._bounded(lambda: client.blpop([wake], timeout=max(timeout, 0.01)))

    async def _settle(
        self, lease: str, how: str, envelope: Envelope | None = None, due: float = 0.0
    ) -> bool:
        """Give back, retry or dead-letter the message held by ``lease`` (a delivery's token)."""
        message = "" if envelope is None else _encode(envelope)
        rank = 0 if envelope is None else self.max_priority - envelope.priority
        return bool(await self._run(_SETTLE, lease, how, message, rank, _ms(due)))

    async def _ack(self, delivery: Delivery, envelope: Envelope, seconds: float) -> bool:
        return bool(await self._run(_ACK, delivery.token, round(seconds * 1_000_000)))

    async def _requeue(self, delivery: Delivery, envelope: Envelope) -> bool:
        return await self._settle(delivery.token, "requeue")

    async def _retry(self, delivery: Delivery, envelope: Envelope, delay: float) -> bool:
        due = self._clock() + delay
        return await self._settle(delivery.token, "retry", envelope.retried(), due)

    async def _dead_letter(self, delivery: Delivery, envelope: Envelope) -> bool:
        return await self._settle(delivery.token, "dead", envelope)

    async def _extend(self, delivery: Delivery) -> bool:
        done = await self._run(_EXTEND, delivery.token, _ms(self._clock() + self.lease))
        return bool(done)

    async def _release(self, unsettled: list[tuple[Delivery, Envelope]]) -> int:
        leases = [delivery.token for delivery, _ in unsettled]
        if self._lost_tokens:
            leases += await self._leased_to(self._lost_tokens)
        given_back = [await self._settle(lease, "requeue") for lease in leases]
        return sum(given_back)

    async def _leased_to(self, tokens: set[str]) -> list[str]:
        """The leases held by ``tokens``: one pass over every lease of the queue, only at a
        close that follows a lost take."""
        assert self._client is not None
        client, key = self._client, self._k["leases"]
        leases: list[Any] = await self._bounded(lambda: client.zrange(key, 0, -1))
        return [lease for lease in leases if lease.partition("|")[2] in tokens]

    async def _stats(self) -> QueueStats:
        assert self._client is not None
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.zcard(self._k["ready"])
            pipe.zcard(self._k["delayed"])
            pipe.zcard(self._k["leases"])
            pipe.hgetall(self._k["stats"])
            ready, delayed, leased, counts = await self._bounded(pipe.execute)
        completed = int(counts.get("completed", 0))
        seconds = int(counts.get("processing_us", 0)) / 1_000_000
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
        client, key = self._client, self._k["dead"]
        stored: list[Any] = await self._bounded(lambda: client.lrange(key, 0, limit - 1))
        letters = []
        for entry in stored:
            id_, rest = entry.split("|", 1)
            letters.append(_decode(id_, rest).dead_letter())
        return letters

    async def _destroy(self) -> None:
        assert self._client is not None
        client, keys = self._client, list(self._k.values())
        await self._bounded(lambda: client.delete(*keys))
