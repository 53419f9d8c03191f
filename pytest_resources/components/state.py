"""StateMonitor and ResourceLimits: byte and entry budgets for an in-process cache.

The monitor keeps sizes, never values. Your cache reports what it stores and reads; the monitor
keeps exact totals, raises alerts near the limits, evicts least recently used keys, and tells
your cache (through an eviction callback) which values to drop.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass
from itertools import islice
from typing import Literal, Protocol

MiB = 1024 * 1024
DEFAULT_MAX_ALERTS = 1000

LimitName = Literal["max_value_size", "max_state_size", "max_cache_entries"]
CleanupReason = Literal["auto", "manual"]

_COUNT_FIELDS = ("max_state_size", "max_value_size", "max_cache_entries", "stream_chunk_size")
_FRACTION_FIELDS = ("cleanup_threshold", "cleanup_reclaim")


class InvalidLimitsError(ValueError):
    """A ``ResourceLimits`` field is out of range or contradicts another field."""


class FastModeError(RuntimeError):
    """The call needs per-key sizes, which ``StateMonitor.fast()`` does not keep."""


def _share(total: int, fraction: float, *, up: bool) -> int:
    # Rounding first keeps binary noise (0.8 * 1000 = 800.0000000000001) from moving a byte.
    exact = round(total * fraction, 6)
    return math.ceil(exact) if up else math.floor(exact)


@dataclass(frozen=True, slots=True)
class ResourceLimits:
    """Budgets for a ``StateMonitor``; validated on construction.

    Usage is the fuller of the two budgets (bytes and entries). At ``cleanup_threshold`` usage
    the monitor alerts and, with ``auto_cleanup``, evicts least recently used keys down to
    ``cleanup_threshold - cleanup_reclaim``.

    >>> ResourceLimits(max_state_size=64 * MiB, max_value_size=4 * MiB, auto_cleanup=False)
    """

    max_state_size: int = 100 * MiB
    max_value_size: int = 10 * MiB
    max_cache_entries: int = 1000
    cleanup_threshold: float = 0.8
    cleanup_reclaim: float = 0.1
    auto_cleanup: bool = True
    enable_streaming: bool = False
    stream_chunk_size: int = 1 * MiB

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``InvalidLimitsError`` naming the first field that is out of range or
        contradicts another one."""
        for name in _COUNT_FIELDS:
            value = getattr(self, name)
            if type(value) is not int or value <= 0:
                raise InvalidLimitsError(f"ResourceLimits.{name} must be an int > 0, got {value!r}")
        if self.max_value_size > self.max_state_size:
            raise InvalidLimitsError(
                f"ResourceLimits.max_value_size ({self.max_value_size}) must not exceed "
                f"max_state_size ({self.max_state_size})"
            )
        for name in _FRACTION_FIELDS:
            value = getattr(self, name)
            if type(value) not in (int, float) or not 0 < value <= 1:
                raise InvalidLimitsError(f"ResourceLimits.{name} must be in (0, 1], got {value!r}")
        if self.enable_streaming and self.stream_chunk_size > self.max_value_size:
            raise InvalidLimitsError(
                f"ResourceLimits.stream_chunk_size ({self.stream_chunk_size}) must not exceed "
                f"max_value_size ({self.max_value_size}) when enable_streaming is on"
            )

    @property
    def cleanup_threshold_bytes(self) -> int:
        """Bytes at which cleanup is due: ``max_state_size * cleanup_threshold``, rounded up."""
        return _share(self.max_state_size, self.cleanup_threshold, up=True)

    @property
    def cleanup_threshold_entries(self) -> int:
        """Entries at which cleanup is due: ``max_cache_entries * cleanup_threshold``."""
        return _share(self.max_cache_entries, self.cleanup_threshold, up=True)

    @property
    def cleanup_target(self) -> float:
        """Usage fraction an automatic cleanup evicts down to."""
        return max(0.0, self.cleanup_threshold - self.cleanup_reclaim)

    def exceeds_state_limit(self, size: int) -> bool:
        """True when ``size`` total bytes would break ``max_state_size``."""
        return size > self.max_state_size

    def exceeds_value_limit(self, size: int) -> bool:
        """True when one value of ``size`` bytes is larger than ``max_value_size``."""
        return size > self.max_value_size

    def exceeds_cache_limit(self, entries: int) -> bool:
        """True when ``entries`` values would break ``max_cache_entries``."""
        return entries > self.max_cache_entries

    def should_cleanup(self, current_size: int, value_count: int = 0) -> bool:
        """True when bytes or entries have reached the cleanup threshold."""
        return (
            current_size >= self.cleanup_threshold_bytes
            or value_count >= self.cleanup_threshold_entries
        )

    def should_stream(self, size: int) -> bool:
        """True when streaming is on and a value of ``size`` bytes should be written in
        ``stream_chunk_size`` pieces (advice for your code: the monitor only counts bytes)."""
        return self.enable_streaming and size > self.stream_chunk_size


@dataclass(frozen=True, slots=True)
class StateAlert:
    """Base of the alerts a ``StateMonitor`` queues; ``str(alert)`` is a one-line description."""


@dataclass(frozen=True, slots=True)
class ApproachingLimit(StateAlert):
    """Usage reached the cleanup threshold (raised once per crossing, not per allocation)."""

    current_size: int
    value_count: int
    usage_percentage: float
    threshold_percentage: float

    def __str__(self) -> str:
        return (
            f"state usage {self.usage_percentage:.1f}% reached the cleanup threshold "
            f"{self.threshold_percentage:.1f}% ({self.current_size} bytes in "
            f"{self.value_count} values)"
        )


@dataclass(frozen=True, slots=True)
class LimitExceeded(StateAlert):
    """An allocation was refused: ``limit`` is ``maximum`` but it would have needed ``requested``
    (bytes of the value, total bytes, or entries)."""

    key: Hashable
    size: int
    limit: LimitName
    maximum: int
    requested: int

    def __str__(self) -> str:
        return (
            f"refused {self.key!r} ({self.size} bytes): {self.limit} is {self.maximum}, "
            f"it would need {self.requested}"
        )


@dataclass(frozen=True, slots=True)
class CleanupTriggered(StateAlert):
    """A cleanup evicted least recently used keys; sizes are those left afterwards."""

    reason: CleanupReason
    bytes_freed: int
    entries_removed: int
    current_size: int
    value_count: int

    def __str__(self) -> str:
        return (
            f"{self.reason} cleanup evicted {self.entries_removed} values ({self.bytes_freed} "
            f"bytes); {self.current_size} bytes in {self.value_count} values remain"
        )


@dataclass(frozen=True, slots=True)
class CleanupFailed(StateAlert):
    """The eviction callback raised for ``key``: the monitor no longer counts the value, but your
    cache may still hold it. ``error`` is the exception's repr."""

    key: Hashable
    size: int
    error: str

    def __str__(self) -> str:
        return (
            f"eviction callback failed for {self.key!r} ({self.size} bytes): {self.error}; "
            "your cache may still hold the value"
        )


@dataclass(frozen=True, slots=True)
class ResourceStats:
    """A consistent snapshot of a monitor's totals and counters."""

    current_size: int
    value_count: int
    peak_size: int
    usage_percentage: float
    max_state_size: int
    max_cache_entries: int
    allocations: int
    refusals: int
    deallocations: int
    evictions: int
    bytes_evicted: int
    cleanups: int
    callback_failures: int
    alerts_dropped: int
    fast_mode: bool


class EvictionCallback(Protocol):
    """Called once per evicted key, outside the monitor's lock, so your cache drops the value.

    It may call back into the monitor. It races with other threads: by the time it runs, another
    thread may have stored ``key`` again, so compare before dropping if that matters.
    """

    def __call__(self, key: Hashable, size: int, /) -> None: ...


class StateMonitor:
    """Thread-safe byte and entry accounting with LRU eviction and alerts.

    >>> monitor = StateMonitor(ResourceLimits(max_state_size=10 * MiB), on_evict=cache_drop)
    >>> if monitor.record_allocation("user:1", len(blob)):
    ...     cache["user:1"] = blob

    ``StateMonitor.fast()`` keeps totals only; see its docstring for what it cannot do.
    """

    # Counters, (re)set by _reset_counters.
    _current: int
    _peak: int
    _allocations: int
    _refusals: int
    _deallocations: int
    _evictions: int
    _bytes_evicted: int
    _cleanups: int
    _callback_failures: int
    _alerts_dropped: int
    _approaching: bool

    def __init__(
        self,
        limits: ResourceLimits | None = None,
        *,
        on_evict: EvictionCallback | None = None,
        max_alerts: int = DEFAULT_MAX_ALERTS,
    ) -> None:
        if max_alerts < 1:
            raise ValueError(f"max_alerts must be >= 1, got {max_alerts!r}")
        self._limits = limits = limits if limits is not None else ResourceLimits()
        self._on_evict = on_evict
        self._lock = threading.Lock()
        # A plain dict is the LRU list: insertion order is recency order, a use re-inserts the
        # key at the end. It inserts ~40% faster than an OrderedDict.
        self._sizes: dict[Hashable, int] = {}
        self._alerts: deque[StateAlert] = deque(maxlen=max_alerts)
        # Copies of the limits: the allocation path reads them on every call.
        self._max_value = limits.max_value_size
        self._max_state = limits.max_state_size
        self._max_entries = limits.max_cache_entries
        self._threshold_bytes = limits.cleanup_threshold_bytes
        self._threshold_entries = limits.cleanup_threshold_entries
        self._auto = limits.auto_cleanup
        self._reset_counters()

    @classmethod
    def fast(
        cls, limits: ResourceLimits | None = None, *, max_alerts: int = DEFAULT_MAX_ALERTS
    ) -> StateMonitor:
        """A monitor that keeps totals only: no per-key sizes, no LRU order.

        It counts bytes and values, refuses allocations over a limit, and raises the same
        alerts. Because it does not know keys: ``record_allocation`` counts every call as a new
        value (storing a key again counts it twice); ``record_deallocation(key, size)`` needs
        the size and cannot go below zero; ``record_access`` does nothing; ``cleanup``,
        ``get_lru_keys``, ``get_allocations`` and setting ``on_evict`` raise ``FastModeError``;
        limits with ``auto_cleanup`` on are refused with ``FastModeError`` (the default here is
        ``ResourceLimits(auto_cleanup=False)``).
        """
        if limits is None:
            limits = ResourceLimits(auto_cleanup=False)
        return _FastStateMonitor(limits, max_alerts=max_alerts)

    @property
    def limits(self) -> ResourceLimits:
        """The limits this monitor enforces."""
        return self._limits

    @property
    def is_fast(self) -> bool:
        """True for a monitor made by ``StateMonitor.fast()``."""
        return False

    @property
    def on_evict(self) -> EvictionCallback | None:
        """The eviction callback; settable, e.g. when the cache is built after the monitor."""
        return self._on_evict

    @on_evict.setter
    def on_evict(self, callback: EvictionCallback | None) -> None:
        if self.is_fast:
            raise _unsupported("on_evict")
        self._on_evict = callback

    @property
    def current_size(self) -> int:
        """Bytes currently recorded."""
        # Locked: an automatic cleanup briefly holds the overshoot it is about to evict.
        with self._lock:
            return self._current

    @property
    def value_count(self) -> int:
        """Values currently recorded."""
        with self._lock:
            return self._count_locked()

    @property
    def usage_percentage(self) -> float:
        """Usage of the fuller budget, bytes or entries, in percent (0-100)."""
        with self._lock:
            return self._usage_locked()

    @property
    def should_cleanup(self) -> bool:
        """True when bytes or entries have reached the cleanup threshold."""
        with self._lock:
            return self._limits.should_cleanup(self._current, self._count_locked())

    def record_allocation(self, key: Hashable, size: int) -> bool:
        """Record that ``key`` now holds ``size`` bytes; False when refused (see the alerts).

        Storing a known key replaces its size and makes it the most recently used. A value
        over ``max_value_size`` is always refused. Over ``max_state_size`` or
        ``max_cache_entries``: with ``auto_cleanup`` least recently used keys (never ``key``)
        are evicted to make room, without it the allocation is refused and an existing
        ``key`` keeps its old size. Reaching the threshold raises ``ApproachingLimit`` and,
        with ``auto_cleanup``, evicts down to ``limits.cleanup_target``.
        """
        if size > self._max_value or size < 0:
            return self._refuse_value(key, size)
        # acquire/try/finally instead of `with`: a quarter faster on 3.11, and this is the hot path.
        lock = self._lock
        lock.acquire()
        try:
            sizes = self._sizes
            old = sizes.get(key)
            if old is None:
                total = self._current + size
                count = len(sizes) + 1
            else:
                total = self._current + size - old
                count = len(sizes)
            # Below the threshold is below every limit (threshold <= 1): the common case ends here.
            if total >= self._threshold_bytes or count >= self._threshold_entries:
                evicted = self._allocate_over_threshold_locked(key, size, old, total, count)
                if evicted is None:
                    return False
            else:
                if old is not None:
                    del sizes[key]
                    self._mark_peak_locked()
                    self._approaching = False
                sizes[key] = size
                self._current = total
                self._allocations += 1
                return True
        finally:
            lock.release()
        if evicted:
            self._notify(evicted)
        return True

    def record_deallocation(self, key: Hashable, size: int | None = None) -> int:
        """Forget ``key``; return the bytes it held (0 for an unknown key).

        ``size`` is needed only by ``StateMonitor.fast()``; a full monitor uses the size it
        recorded and ignores it.
        """
        with self._lock:
            freed = self._sizes.pop(key, None)
            if freed is None:
                return 0
            self._mark_peak_locked()
            self._current -= freed
            self._deallocations += 1
            self._settle_locked()
            return freed

    def record_access(self, key: Hashable) -> None:
        """Mark ``key`` as the most recently used (unknown keys are ignored)."""
        with self._lock:
            size = self._sizes.pop(key, None)
            if size is not None:
                self._sizes[key] = size

    def cleanup(self, target_percentage: float | None = None) -> tuple[int, int]:
        """Evict least recently used keys until usage is at most ``target_percentage``
        (0-100; default ``limits.cleanup_target``); return ``(bytes_freed, entries_removed)``.
        """
        if target_percentage is None:
            fraction = self._limits.cleanup_target
        elif 0 <= target_percentage <= 100:
            fraction = target_percentage / 100
        else:
            raise ValueError(f"target_percentage must be in [0, 100], got {target_percentage!r}")
        with self._lock:
            evicted = self._evict_locked(fraction, "manual", keep=0)
        self._notify(evicted)
        return sum(size for _, size in evicted), len(evicted)

    def get_lru_keys(self, n: int) -> list[Hashable]:
        """The ``n`` least recently used keys, least recent first."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n!r}")
        with self._lock:
            return list(islice(self._sizes, n))

    def get_allocations(self) -> dict[Hashable, int]:
        """A copy of key -> size, least recently used first."""
        with self._lock:
            return dict(self._sizes)

    def get_stats(self) -> ResourceStats:
        """A consistent snapshot of totals and counters."""
        with self._lock:
            return ResourceStats(
                current_size=self._current,
                value_count=self._count_locked(),
                peak_size=max(self._peak, self._current),
                usage_percentage=self._usage_locked(),
                max_state_size=self._max_state,
                max_cache_entries=self._max_entries,
                allocations=self._allocations_locked(),
                refusals=self._refusals,
                deallocations=self._deallocations,
                evictions=self._evictions,
                bytes_evicted=self._bytes_evicted,
                cleanups=self._cleanups,
                callback_failures=self._callback_failures,
                alerts_dropped=self._alerts_dropped,
                fast_mode=self.is_fast,
            )

    def get_alerts(self) -> list[StateAlert]:
        """Return the queued alerts, oldest first, and empty the queue."""
        with self._lock:
            alerts = list(self._alerts)
            self._alerts.clear()
            return alerts

    def peek_alerts(self) -> list[StateAlert]:
        """Return the queued alerts, oldest first, keeping them queued."""
        with self._lock:
            return list(self._alerts)

    def clear_alerts(self) -> None:
        """Drop the queued alerts."""
        with self._lock:
            self._alerts.clear()

    def reset(self) -> None:
        """Forget every allocation, alert and counter (the eviction callback is not called)."""
        with self._lock:
            self._sizes.clear()
            self._alerts.clear()
            self._reset_counters()

    def _reset_counters(self) -> None:
        self._current = 0
        self._peak = 0
        self._allocations = 0
        self._refusals = 0
        self._deallocations = 0
        self._evictions = 0
        self._bytes_evicted = 0
        self._cleanups = 0
        self._callback_failures = 0
        self._alerts_dropped = 0
        # Set while usage is at or over the threshold, so ApproachingLimit fires once per crossing.
        self._approaching = False

    def _count_locked(self) -> int:
        return len(self._sizes)

    def _allocations_locked(self) -> int:
        return self._allocations

    def _usage_locked(self) -> float:
        # 100 * n / max, not n / max * 100: whole percentages stay exact (110.0, not 110.00…01).
        return max(
            100 * self._current / self._max_state, 100 * self._count_locked() / self._max_entries
        )

    def _push(self, alert: StateAlert) -> None:
        if len(self._alerts) == self._alerts.maxlen:
            self._alerts_dropped += 1
        self._alerts.append(alert)

    def _refuse_value(self, key: Hashable, size: int) -> bool:
        if size < 0:
            raise ValueError(f"size must be >= 0, got {size!r} for {key!r}")
        with self._lock:
            self._refusals += 1
            self._push(LimitExceeded(key, size, "max_value_size", self._max_value, size))
        return False

    def _refuse_locked(self, key: Hashable, size: int, total: int, count: int) -> bool:
        self._refusals += 1
        if total > self._max_state:
            self._push(LimitExceeded(key, size, "max_state_size", self._max_state, total))
        else:
            self._push(LimitExceeded(key, size, "max_cache_entries", self._max_entries, count))
        return False

    def _allocate_over_threshold_locked(
        self, key: Hashable, size: int, old: int | None, total: int, count: int
    ) -> list[tuple[Hashable, int]] | None:
        # An allocation reaching the threshold: refused (None) at a hard limit, else stored.
        if not self._auto and (
            total > self._max_state or (old is None and count > self._max_entries)
        ):
            self._refuse_locked(key, size, total, count)
            return None
        self._mark_peak_locked()
        if old is not None:
            del self._sizes[key]
        self._sizes[key] = size
        self._current = total
        self._allocations += 1
        return self._crossed_locked()

    def _crossed_locked(self) -> list[tuple[Hashable, int]]:
        # Usage is at or over the threshold after an allocation: alert once, maybe evict.
        if not self._approaching:
            self._approaching = True
            self._push(
                ApproachingLimit(
                    self._current,
                    self._count_locked(),
                    self._usage_locked(),
                    100 * self._limits.cleanup_threshold,
                )
            )
        evicted = []
        if self._auto:
            # keep=1: the allocation just made is the most recent key and survives its own call.
            evicted = self._evict_locked(self._limits.cleanup_target, "auto", keep=1)
        # After the eviction: the peak is a settled size, never the transient overshoot.
        self._mark_peak_locked()
        return evicted

    def _mark_peak_locked(self) -> None:
        # Called before every decrease of _current (and after auto eviction): the peak of a
        # sequence is its largest value before a fall, so the insert path need not check it.
        if self._current > self._peak:
            self._peak = self._current

    def _evict_locked(
        self, fraction: float, reason: CleanupReason, *, keep: int
    ) -> list[tuple[Hashable, int]]:
        sizes = self._sizes
        target_bytes = _share(self._max_state, fraction, up=False)
        target_entries = _share(self._max_entries, fraction, up=False)
        total = self._current
        left = len(sizes)
        evicted: list[tuple[Hashable, int]] = []
        # One pass from the oldest end, then the deletions: a dict must not change while iterated.
        for item in sizes.items():
            if left <= keep or (total <= target_bytes and left <= target_entries):
                break
            evicted.append(item)
            total -= item[1]
            left -= 1
        if not evicted:
            return evicted
        for key, _ in evicted:
            del sizes[key]
        if reason == "manual":
            self._mark_peak_locked()
        freed = self._current - total
        self._current = total
        self._evictions += len(evicted)
        self._bytes_evicted += freed
        self._cleanups += 1
        self._push(CleanupTriggered(reason, freed, len(evicted), total, len(sizes)))
        self._settle_locked()
        return evicted

    def _settle_locked(self) -> None:
        # After a decrease below the threshold, the next crossing alerts again.
        if self._approaching and not self._limits.should_cleanup(
            self._current, self._count_locked()
        ):
            self._approaching = False

    def _notify(self, evicted: list[tuple[Hashable, int]]) -> None:
        callback = self._on_evict
        if callback is None:
            return
        for key, size in evicted:
            try:
                callback(key, size)
            except Exception as exc:  # a user's callback must not break the allocation
                with self._lock:
                    self._callback_failures += 1
                    self._push(CleanupFailed(key, size, repr(exc)))


class _FastStateMonitor(StateMonitor):
    # Totals only; StateMonitor.fast() documents what it cannot do. Every accepted allocation
    # adds a value and every deallocation removes one, so the insert path keeps _count only and
    # allocations are derived as _count + _deallocations.

    _count: int

    def __init__(self, limits: ResourceLimits, *, max_alerts: int) -> None:
        if limits.auto_cleanup:
            raise FastModeError(
                "StateMonitor.fast() keeps no per-key sizes, so it cannot evict: "
                "pass ResourceLimits(auto_cleanup=False)"
            )
        super().__init__(limits, max_alerts=max_alerts)

    @property
    def is_fast(self) -> bool:
        return True

    def record_allocation(self, key: Hashable, size: int) -> bool:
        if size > self._max_value or size < 0:
            return self._refuse_value(key, size)
        lock = self._lock  # acquire/try/finally: see StateMonitor.record_allocation
        lock.acquire()
        try:
            total = self._current + size
            count = self._count + 1
            if total >= self._threshold_bytes or count >= self._threshold_entries:
                if total > self._max_state or count > self._max_entries:
                    return self._refuse_locked(key, size, total, count)
                self._current = total
                self._count = count
                self._crossed_locked()
            else:
                self._current = total
                self._count = count
        finally:
            lock.release()
        return True

    def record_deallocation(self, key: Hashable, size: int | None = None) -> int:
        if size is None:
            raise FastModeError(
                f"StateMonitor.fast() keeps no per-key sizes: call record_deallocation({key!r}, "
                "size)"
            )
        with self._lock:
            count = self._count_locked()
            if size < 0 or size > self._current or count == 0:
                raise ValueError(
                    f"record_deallocation({key!r}, {size!r}) would take current_size "
                    f"({self._current}) or value_count ({count}) below zero"
                )
            self._mark_peak_locked()
            self._current -= size
            self._count -= 1
            self._deallocations += 1
            self._settle_locked()
        return size

    def record_access(self, key: Hashable) -> None:
        # No LRU order to update; accepted so code runs unchanged on either monitor.
        return None

    def cleanup(self, target_percentage: float | None = None) -> tuple[int, int]:
        raise _unsupported("cleanup()")

    def get_lru_keys(self, n: int) -> list[Hashable]:
        raise _unsupported("get_lru_keys()")

    def get_allocations(self) -> dict[Hashable, int]:
        raise _unsupported("get_allocations()")

    def _reset_counters(self) -> None:
        super()._reset_counters()
        self._count = 0

    def _count_locked(self) -> int:
        return self._count

    def _allocations_locked(self) -> int:
        return self._count + self._deallocations


def _unsupported(what: str) -> FastModeError:
    return FastModeError(
        f"StateMonitor.fast() keeps no per-key sizes, so {what} is not available: "
        "use StateMonitor(limits)"
    )
