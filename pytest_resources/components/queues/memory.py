"""``InMemoryMessageQueue``: the ``MessageQueue`` contract in one process, for tests and for
work that need not survive the process."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from dataclasses import dataclass
from typing import Any

from .base import Counters, DeadLetter, Delivery, Envelope, MessageQueue, QueueStats

__all__ = ["InMemoryMessageQueue"]


@dataclass(slots=True)
class _Lease:
    expires: float
    seq: int
    envelope: Envelope


class InMemoryMessageQueue(MessageQueue):
    """A heap of ``(-priority, sequence)`` entries: higher priority first, FIFO within one.

    Delays and leases follow the queue's ``clock``, so a ``ManualClock`` runs backoffs and
    lease expiry without waiting. Messages still go through JSON, so what this queue accepts
    the broker-backed ones accept too.
    """

    backend = "memory"

    def __init__(self, name: str = "memory", **settings: Any) -> None:
        super().__init__(name, **settings)
        self._seq = itertools.count()
        self._tokens = itertools.count()
        self._ready: list[tuple[int, int, bool, Envelope]] = []
        self._delayed: list[tuple[float, int, Envelope]] = []
        self._leases: dict[str, _Lease] = {}
        self._expiries: list[tuple[float, str]] = []
        self._dead: list[Envelope] = []
        self._counters = Counters()
        self._signal = asyncio.Event()

    async def _connect(self) -> None:
        pass

    async def _disconnect(self) -> None:
        self._ready.clear()
        self._delayed.clear()
        self._leases.clear()
        self._expiries.clear()

    def _abort(self) -> None:
        pass

    def _notify(self) -> None:
        # Waiters hold the old event; they wake and look again, new waiters get a fresh one.
        signal, self._signal = self._signal, asyncio.Event()
        signal.set()

    def _push(self, envelope: Envelope, seq: int, redelivered: bool) -> None:
        heapq.heappush(self._ready, (-envelope.priority, seq, redelivered, envelope))
        self._notify()

    async def _put(self, envelope: Envelope, delay: float) -> None:
        seq = next(self._seq)
        if delay:
            heapq.heappush(self._delayed, (self._clock() + delay, seq, envelope))
        else:
            self._push(envelope, seq, False)

    def _catch_up(self) -> None:
        """Move due delayed messages to ready and expired leases back to ready."""
        now = self._clock()
        while self._delayed and self._delayed[0][0] <= now:
            _, seq, envelope = heapq.heappop(self._delayed)
            self._push(envelope, seq, False)
        while self._expiries and self._expiries[0][0] <= now:
            expires, token = heapq.heappop(self._expiries)
            lease = self._leases.get(token)
            if lease is not None and lease.expires == expires:  # else renewed or settled
                del self._leases[token]
                self._push(lease.envelope, lease.seq, True)

    async def _take(self) -> tuple[Delivery, Envelope] | None:
        self._catch_up()
        if not self._ready:
            return None
        _, seq, redelivered, envelope = heapq.heappop(self._ready)
        token = str(next(self._tokens))
        expires = self._clock() + self.lease
        self._leases[token] = _Lease(expires, seq, envelope)
        heapq.heappush(self._expiries, (expires, token))
        return self._delivery(envelope, redelivered, token)

    async def _wait(self, timeout: float) -> None:
        signal = self._signal
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await signal.wait()

    def _settle(self, delivery: Delivery) -> _Lease | None:
        return self._leases.pop(delivery.token, None)

    async def _ack(self, delivery: Delivery, envelope: Envelope, seconds: float) -> bool:
        if self._settle(delivery) is None:
            return False
        self._counters.completed += 1
        self._counters.processing_seconds += seconds
        return True

    async def _requeue(self, delivery: Delivery, envelope: Envelope) -> bool:
        lease = self._settle(delivery)
        if lease is None:
            return False
        self._push(envelope, lease.seq, True)
        return True

    async def _retry(self, delivery: Delivery, envelope: Envelope, delay: float) -> bool:
        if self._settle(delivery) is None:
            return False
        self._counters.failed += 1
        await self._put(envelope.retried(), delay)
        return True

    async def _dead_letter(self, delivery: Delivery, envelope: Envelope) -> bool:
        if self._settle(delivery) is None:
            return False
        self._counters.failed += 1
        self._counters.dead_lettered += 1
        self._dead.append(envelope)
        return True

    async def _extend(self, delivery: Delivery) -> bool:
        lease = self._leases.get(delivery.token)
        if lease is None:
            return False
        lease.expires = self._clock() + self.lease
        heapq.heappush(self._expiries, (lease.expires, delivery.token))
        return True

    async def _release(self, unsettled: list[tuple[Delivery, Envelope]]) -> int:
        given_back = [await self._requeue(d, e) for d, e in unsettled]
        return sum(given_back)

    async def _stats(self) -> QueueStats:
        self._catch_up()
        pending = len(self._ready) + len(self._delayed)
        return self._counters.stats(pending, len(self._leases))

    async def _dead_letters(self, limit: int) -> list[DeadLetter]:
        return [envelope.dead_letter() for envelope in self._dead[:limit]]

    async def _destroy(self) -> None:
        await self._disconnect()
        self._dead.clear()
        self._counters = Counters()
