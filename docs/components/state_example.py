"""A byte-bounded cache built on StateMonitor; the ``test_*`` functions run as tests."""

from __future__ import annotations

import threading
from collections.abc import Hashable

from pytest_resources.components.state import (
    ApproachingLimit,
    CleanupFailed,
    CleanupTriggered,
    LimitExceeded,
    ResourceLimits,
    StateMonitor,
)


class BlobCache:
    """Bytes values under a byte budget: the monitor decides, the dict holds."""

    def __init__(self, limits: ResourceLimits) -> None:
        self._values: dict[Hashable, bytes] = {}
        self._lock = threading.Lock()
        self.monitor = StateMonitor(limits, on_evict=self._drop)

    def put(self, key: Hashable, value: bytes) -> bool:
        with self._lock:
            if not self.monitor.record_allocation(key, len(value)):
                return False  # too large, or over a limit with auto_cleanup off
            self._values[key] = value
            return True

    def get(self, key: Hashable) -> bytes | None:
        with self._lock:
            value = self._values.get(key)
            if value is not None:
                self.monitor.record_access(key)
            return value

    def delete(self, key: Hashable) -> None:
        with self._lock:
            self._values.pop(key, None)
            self.monitor.record_deallocation(key)

    def __len__(self) -> int:
        return len(self._values)

    def _drop(self, key: Hashable, size: int, /) -> None:
        # Runs outside the monitor's lock, inside the put() that triggered the cleanup: that
        # thread holds self._lock already (so no other put() can re-store the key meanwhile)
        # and taking it again here would deadlock.
        self._values.pop(key, None)


def test_the_cache_stays_under_budget_and_drops_least_recently_used() -> None:
    cache = BlobCache(ResourceLimits(max_state_size=10_000, max_value_size=2_000))
    for i in range(7):
        assert cache.put(f"page-{i}", b"x" * 1_000)
    assert cache.get("page-0") is not None  # page-0 is now the most recently used

    assert cache.put("page-7", b"x" * 1_000)  # 8,000 bytes: the 80% threshold
    assert cache.get("page-1") is None  # evicted: least recently used
    assert cache.get("page-0") is not None
    assert len(cache) == cache.monitor.value_count == 7
    assert cache.monitor.current_size == 7_000

    alerts = cache.monitor.get_alerts()
    assert [type(alert) for alert in alerts] == [ApproachingLimit, CleanupTriggered]
    assert str(alerts[1]) == (
        "auto cleanup evicted 1 values (1000 bytes); 7000 bytes in 7 values remain"
    )


def test_a_value_over_the_value_limit_is_refused() -> None:
    cache = BlobCache(ResourceLimits(max_state_size=10_000, max_value_size=2_000))
    assert not cache.put("huge", b"x" * 2_001)
    assert cache.get("huge") is None
    [alert] = cache.monitor.get_alerts()
    assert isinstance(alert, LimitExceeded)
    assert alert.limit == "max_value_size"


def test_manual_cleanup_and_stats() -> None:
    cache = BlobCache(ResourceLimits(max_state_size=10_000, max_value_size=2_000))
    for i in range(5):
        cache.put(i, b"x" * 1_000)
    assert cache.monitor.cleanup(target_percentage=20) == (3_000, 3)  # keep 20% of 10,000 B
    assert cache.monitor.get_lru_keys(5) == [3, 4]
    stats = cache.monitor.get_stats()
    assert (stats.current_size, stats.peak_size, stats.evictions) == (2_000, 5_000, 3)


def test_a_failing_eviction_callback_is_an_alert_not_a_crash() -> None:
    def flaky(key: Hashable, size: int, /) -> None:
        raise ConnectionError("cache backend down")

    monitor = StateMonitor(ResourceLimits(max_state_size=100, max_value_size=100), on_evict=flaky)
    monitor.record_allocation("a", 60)
    assert monitor.record_allocation("b", 30)  # 90% crosses the threshold; "a" is evicted
    failures = [a for a in monitor.get_alerts() if isinstance(a, CleanupFailed)]
    assert [(f.key, f.error) for f in failures] == [("a", "ConnectionError('cache backend down')")]


def test_fast_mode_counts_what_your_own_store_evicts() -> None:
    limits = ResourceLimits(max_state_size=1_000, max_value_size=500, auto_cleanup=False)
    monitor = StateMonitor.fast(limits)  # fast mode cannot evict: auto_cleanup must be off
    monitor.record_allocation("a", 400)
    monitor.record_allocation("b", 400)
    assert monitor.should_cleanup  # 800 of 1,000 bytes
    monitor.record_deallocation("a", 400)  # fast mode needs the size back
    assert (monitor.current_size, monitor.value_count) == (400, 1)
