from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Hashable

import pytest
from pytester_run import Run

from pytest_resources.components.state import (
    ApproachingLimit,
    CleanupFailed,
    CleanupTriggered,
    FastModeError,
    InvalidLimitsError,
    LimitExceeded,
    MiB,
    ResourceLimits,
    ResourceStats,
    StateAlert,
    StateMonitor,
)

# 1000 bytes, 10 entries: threshold 800 B / 8 entries, automatic cleanup down to 700 B / 7 entries.
SMALL = ResourceLimits(
    max_state_size=1000, max_value_size=500, max_cache_entries=10, auto_cleanup=False
)
SMALL_AUTO = dataclasses.replace(SMALL, auto_cleanup=True)


def fill(monitor: StateMonitor, *sizes: int, prefix: str = "k") -> list[str]:
    keys = [f"{prefix}{i}" for i in range(len(sizes))]
    for key, size in zip(keys, sizes, strict=True):
        assert monitor.record_allocation(key, size)
    return keys


class Dropper:
    """A user's cache: values keyed like the monitor; eviction drops them."""

    def __init__(self) -> None:
        self.values: dict[Hashable, int] = {}
        self.evicted: list[tuple[Hashable, int]] = []

    def put(self, monitor: StateMonitor, key: str, size: int) -> bool:
        if not monitor.record_allocation(key, size):
            return False
        self.values[key] = size
        return True

    def __call__(self, key: Hashable, size: int, /) -> None:
        self.evicted.append((key, size))
        del self.values[key]


# --- ResourceLimits ---------------------------------------------------------------------------


def test_limits_defaults() -> None:
    limits = ResourceLimits()
    assert (limits.max_state_size, limits.max_value_size) == (100 * MiB, 10 * MiB)
    assert (limits.max_cache_entries, limits.cleanup_threshold) == (1000, 0.8)
    assert (limits.auto_cleanup, limits.enable_streaming) == (True, False)
    assert limits.stream_chunk_size == MiB
    assert limits.cleanup_threshold_bytes == 83_886_080
    assert limits.cleanup_threshold_entries == 800
    assert limits.cleanup_target == pytest.approx(0.7)


def test_limits_are_frozen_and_replace_revalidates() -> None:
    limits = ResourceLimits(max_cache_entries=5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        limits.max_cache_entries = 6  # type: ignore[misc]
    assert dataclasses.replace(limits, max_cache_entries=6).max_cache_entries == 6
    with pytest.raises(InvalidLimitsError, match="max_cache_entries"):
        dataclasses.replace(limits, max_cache_entries=0)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"max_state_size": -1}, r"^ResourceLimits\.max_state_size must be an int > 0, got -1$"),
        ({"max_state_size": 0}, r"^ResourceLimits\.max_state_size must be an int > 0, got 0$"),
        ({"max_value_size": -5}, r"^ResourceLimits\.max_value_size must be an int > 0"),
        ({"max_cache_entries": 0}, r"^ResourceLimits\.max_cache_entries must be an int > 0"),
        ({"max_cache_entries": True}, r"max_cache_entries must be an int > 0, got True$"),
        ({"max_state_size": 1.5}, r"max_state_size must be an int > 0, got 1\.5$"),
        ({"stream_chunk_size": -1}, r"^ResourceLimits\.stream_chunk_size must be an int > 0"),
        (
            {"max_state_size": 100, "max_value_size": 101},
            r"^ResourceLimits\.max_value_size \(101\) must not exceed max_state_size \(100\)$",
        ),
        ({"cleanup_threshold": 0}, r"^ResourceLimits\.cleanup_threshold must be in \(0, 1\]"),
        ({"cleanup_threshold": 1.5}, r"cleanup_threshold must be in \(0, 1\], got 1\.5$"),
        ({"cleanup_threshold": -0.1}, r"cleanup_threshold must be in \(0, 1\], got -0\.1$"),
        ({"cleanup_threshold": float("nan")}, r"cleanup_threshold must be in \(0, 1\], got nan"),
        ({"cleanup_threshold": "0.5"}, r"cleanup_threshold must be in \(0, 1\], got '0\.5'"),
        ({"cleanup_reclaim": 0.0}, r"^ResourceLimits\.cleanup_reclaim must be in \(0, 1\]"),
        (
            {"enable_streaming": True, "max_value_size": 10, "stream_chunk_size": 11},
            r"^ResourceLimits\.stream_chunk_size \(11\) must not exceed max_value_size \(10\) "
            r"when enable_streaming is on$",
        ),
    ],
)
def test_limits_reject_bad_values_with_one_line_naming_the_field(
    changes: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidLimitsError, match=message) as info:
        ResourceLimits(**changes)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)
    assert isinstance(info.value, ValueError)


def test_limits_accept_edges() -> None:
    limits = ResourceLimits(
        max_state_size=10, max_value_size=10, max_cache_entries=1, cleanup_threshold=1
    )
    limits.validate()
    # A chunk larger than the value limit is no contradiction while streaming is off.
    ResourceLimits(max_value_size=10, stream_chunk_size=11)


def test_limits_predicates() -> None:
    limits = ResourceLimits(max_state_size=1000, max_value_size=100, max_cache_entries=10)
    assert not limits.exceeds_state_limit(1000)
    assert limits.exceeds_state_limit(1001)
    assert not limits.exceeds_value_limit(100)
    assert limits.exceeds_value_limit(101)
    assert not limits.exceeds_cache_limit(10)
    assert limits.exceeds_cache_limit(11)
    assert limits.cleanup_threshold_bytes == 800
    assert not limits.should_cleanup(799)
    assert limits.should_cleanup(800)
    assert not limits.should_cleanup(0, value_count=7)
    assert limits.should_cleanup(0, value_count=8)


def test_limits_threshold_rounding_is_exact() -> None:
    # 0.7 * 10 is 7.000000000000001 in binary floating point: still 7 entries.
    limits = ResourceLimits(max_state_size=10, max_value_size=10, max_cache_entries=10)
    assert dataclasses.replace(limits, cleanup_threshold=0.7).cleanup_threshold_entries == 7
    assert dataclasses.replace(limits, cleanup_threshold=0.75).cleanup_threshold_bytes == 8


def test_limits_should_stream() -> None:
    assert not ResourceLimits().should_stream(50 * MiB // 10)
    streaming = ResourceLimits(enable_streaming=True, stream_chunk_size=MiB)
    assert not streaming.should_stream(MiB)
    assert streaming.should_stream(MiB + 1)


# --- StateMonitor: accounting -----------------------------------------------------------------


def test_default_limits_and_empty_state() -> None:
    monitor = StateMonitor()
    assert monitor.limits == ResourceLimits()
    assert not monitor.is_fast
    assert (monitor.current_size, monitor.value_count, monitor.usage_percentage) == (0, 0, 0.0)
    assert not monitor.should_cleanup
    assert monitor.get_alerts() == []


def test_allocation_and_deallocation_keep_totals() -> None:
    monitor = StateMonitor(SMALL)
    fill(monitor, 100, 200, 50)
    assert (monitor.current_size, monitor.value_count) == (350, 3)
    assert monitor.record_deallocation("k1") == 200
    assert (monitor.current_size, monitor.value_count) == (150, 2)
    assert monitor.record_deallocation("k1") == 0
    assert monitor.record_deallocation("never") == 0
    assert monitor.get_allocations() == {"k0": 100, "k2": 50}
    stats = monitor.get_stats()
    assert (stats.allocations, stats.deallocations, stats.refusals) == (3, 1, 0)


def test_reallocating_a_key_replaces_its_size_and_makes_it_most_recent() -> None:
    monitor = StateMonitor(SMALL)
    fill(monitor, 100, 200, 300)
    assert monitor.record_allocation("k0", 10)
    assert (monitor.current_size, monitor.value_count) == (510, 3)
    assert monitor.get_lru_keys(3) == ["k1", "k2", "k0"]
    assert monitor.record_allocation("k2", 400)  # grows
    assert monitor.get_allocations() == {"k1": 200, "k0": 10, "k2": 400}
    assert monitor.current_size == 610
    assert monitor.record_deallocation("k0") == 10


def test_zero_sized_values_count_as_entries() -> None:
    monitor = StateMonitor(SMALL)
    fill(monitor, 0, 0)
    assert (monitor.current_size, monitor.value_count) == (0, 2)
    assert monitor.record_deallocation("k0") == 0
    assert monitor.value_count == 1


def test_negative_size_is_a_caller_error() -> None:
    monitor = StateMonitor(SMALL)
    with pytest.raises(ValueError, match=r"size must be >= 0, got -1 for 'k'"):
        monitor.record_allocation("k", -1)
    assert monitor.value_count == 0


def test_usage_is_the_fuller_budget() -> None:
    monitor = StateMonitor(SMALL)
    fill(monitor, 300)
    assert monitor.usage_percentage == pytest.approx(30.0)
    fill(monitor, 1, 1, 1, 1, prefix="tiny")  # 5 of 10 entries, 304 of 1000 bytes
    assert monitor.usage_percentage == pytest.approx(50.0)
    assert monitor.get_stats().usage_percentage == pytest.approx(50.0)


def test_should_cleanup_follows_bytes_and_entries() -> None:
    monitor = StateMonitor(SMALL)
    fill(monitor, 400, 399)
    assert not monitor.should_cleanup
    assert monitor.record_allocation("x", 1)
    assert monitor.should_cleanup
    monitor.reset()
    fill(monitor, *[1] * 7)
    assert not monitor.should_cleanup
    fill(monitor, 1, prefix="eighth")
    assert monitor.should_cleanup


# --- refusals -----------------------------------------------------------------------------------


def test_value_over_the_value_limit_is_refused_before_touching_the_store() -> None:
    monitor = StateMonitor(SMALL_AUTO)
    fill(monitor, 100)
    assert not monitor.record_allocation("big", 501)
    assert monitor.get_allocations() == {"k0": 100}
    assert monitor.get_alerts() == [LimitExceeded("big", 501, "max_value_size", 500, 501)]
    # Refused replacement keeps the existing value.
    assert not monitor.record_allocation("k0", 501)
    assert monitor.get_allocations() == {"k0": 100}
    assert monitor.get_stats().refusals == 2


def test_without_auto_cleanup_the_state_limit_refuses() -> None:
    monitor = StateMonitor(SMALL)
    fill(monitor, 500, 400)
    monitor.clear_alerts()
    assert not monitor.record_allocation("x", 101)
    assert monitor.get_alerts() == [LimitExceeded("x", 101, "max_state_size", 1000, 1001)]
    assert monitor.record_allocation("x", 100)  # exactly at the limit is allowed
    assert monitor.current_size == 1000


def test_without_auto_cleanup_a_growing_replacement_is_refused_and_keeps_its_size() -> None:
    monitor = StateMonitor(SMALL)
    fill(monitor, 500, 400, 50)
    monitor.clear_alerts()
    assert not monitor.record_allocation("k1", 500)
    assert monitor.get_allocations() == {"k0": 500, "k1": 400, "k2": 50}
    assert monitor.get_alerts() == [LimitExceeded("k1", 500, "max_state_size", 1000, 1050)]
    assert monitor.current_size == 950
    assert monitor.get_lru_keys(3) == ["k0", "k1", "k2"]  # a refusal does not count as a use


def test_without_auto_cleanup_the_entry_limit_refuses_new_keys_only() -> None:
    monitor = StateMonitor(SMALL)
    keys = fill(monitor, *[1] * 10)
    monitor.clear_alerts()
    assert not monitor.record_allocation("eleventh", 1)
    assert monitor.get_alerts() == [LimitExceeded("eleventh", 1, "max_cache_entries", 10, 11)]
    assert monitor.record_allocation(keys[0], 2)  # replacing an existing key adds no entry
    assert (monitor.value_count, monitor.current_size) == (10, 11)


# --- LRU order and cleanup ---------------------------------------------------------------------


def test_lru_order_follows_allocation_and_access() -> None:
    monitor = StateMonitor(SMALL)
    fill(monitor, 1, 1, 1, 1)
    monitor.record_access("k1")
    monitor.record_access("k0")
    monitor.record_access("unknown")
    assert monitor.get_lru_keys(4) == ["k2", "k3", "k1", "k0"]
    assert monitor.get_lru_keys(2) == ["k2", "k3"]
    assert monitor.get_lru_keys(0) == []
    assert monitor.get_lru_keys(99) == ["k2", "k3", "k1", "k0"]
    assert list(monitor.get_allocations()) == ["k2", "k3", "k1", "k0"]
    with pytest.raises(ValueError, match="n must be >= 0, got -1"):
        monitor.get_lru_keys(-1)


def test_get_allocations_is_a_copy() -> None:
    monitor = StateMonitor(SMALL)
    fill(monitor, 5)
    snapshot = monitor.get_allocations()
    snapshot["k0"] = 999
    snapshot["other"] = 1
    assert monitor.get_allocations() == {"k0": 5}


def test_cleanup_evicts_least_recently_used_first() -> None:
    dropper = Dropper()
    monitor = StateMonitor(SMALL, on_evict=dropper)
    for i in range(5):
        dropper.put(monitor, f"k{i}", 100)
    monitor.record_access("k0")
    assert monitor.cleanup(25) == (300, 3)
    assert dropper.evicted == [("k1", 100), ("k2", 100), ("k3", 100)]
    assert monitor.get_allocations() == {"k4": 100, "k0": 100} == dropper.values
    assert monitor.get_alerts() == [CleanupTriggered("manual", 300, 3, 200, 2)]
    stats = monitor.get_stats()
    assert (stats.evictions, stats.bytes_evicted, stats.cleanups) == (3, 300, 1)


def test_cleanup_target_covers_entries_too() -> None:
    monitor = StateMonitor(SMALL)
    fill(monitor, *[1] * 6)
    assert monitor.cleanup(30) == (3, 3)  # 30% of 10 entries
    assert monitor.value_count == 3


def test_cleanup_default_target_and_edges() -> None:
    monitor = StateMonitor(SMALL)
    fill(monitor, 200, 200, 200, 200)  # 80%
    monitor.clear_alerts()
    assert monitor.cleanup() == (200, 1)  # down to cleanup_target, 70%
    assert monitor.cleanup(70) == (0, 0)
    assert monitor.get_alerts() == [CleanupTriggered("manual", 200, 1, 600, 3)]  # no-op: silent
    assert monitor.cleanup(0) == (600, 3)
    assert (monitor.current_size, monitor.value_count) == (0, 0)
    assert monitor.cleanup(0) == (0, 0)
    for bad in (-1, 100.5):
        with pytest.raises(ValueError, match=r"target_percentage must be in \[0, 100\]"):
            monitor.cleanup(bad)


# --- auto cleanup and alerts -------------------------------------------------------------------


def test_crossing_the_threshold_alerts_then_auto_cleans_to_the_target() -> None:
    dropper = Dropper()
    monitor = StateMonitor(SMALL_AUTO, on_evict=dropper)
    for i in range(7):
        assert dropper.put(monitor, f"k{i}", 100)
    assert monitor.get_alerts() == []
    assert dropper.put(monitor, "k7", 100)  # 800 B: threshold reached
    assert monitor.get_alerts() == [
        ApproachingLimit(800, 8, 80.0, 80.0),
        CleanupTriggered("auto", 100, 1, 700, 7),
    ]
    assert dropper.evicted == [("k0", 100)]
    assert dropper.values == monitor.get_allocations()
    assert monitor.get_lru_keys(1) == ["k1"]
    assert not monitor.should_cleanup


def test_auto_cleanup_makes_room_for_a_value_over_the_state_limit() -> None:
    dropper = Dropper()
    monitor = StateMonitor(SMALL_AUTO, on_evict=dropper)
    for i in range(3):
        dropper.put(monitor, f"k{i}", 200)
    assert dropper.put(monitor, "big", 500)  # 1100 B would break the state limit
    assert monitor.get_allocations() == {"k2": 200, "big": 500} == dropper.values
    assert monitor.get_alerts() == [
        ApproachingLimit(1100, 4, 110.0, 80.0),
        CleanupTriggered("auto", 400, 2, 700, 2),
    ]
    assert monitor.get_stats().peak_size == 700  # the transient 1100 B never counts as a peak


def test_auto_cleanup_by_entries() -> None:
    monitor = StateMonitor(SMALL_AUTO)
    fill(monitor, *[1] * 7)
    assert monitor.record_allocation("eighth", 1)
    assert monitor.value_count == 7
    assert monitor.get_lru_keys(1) == ["k1"]


def test_auto_cleanup_never_evicts_the_value_being_stored() -> None:
    limits = ResourceLimits(
        max_state_size=1000, max_value_size=1000, max_cache_entries=10, cleanup_threshold=0.5
    )
    monitor = StateMonitor(limits)
    fill(monitor, 100)
    assert monitor.record_allocation("huge", 900)
    assert monitor.get_allocations() == {"huge": 900}  # over the 40% target, but kept
    assert monitor.should_cleanup


def test_approaching_limit_fires_once_per_crossing() -> None:
    monitor = StateMonitor(SMALL)
    fill(monitor, 400, 400)  # 80%
    fill(monitor, 50, prefix="more")
    assert monitor.get_alerts() == [ApproachingLimit(800, 2, 80.0, 80.0)]
    monitor.record_deallocation("more0")
    monitor.record_allocation("more0", 50)
    assert monitor.get_alerts() == []  # still at or over the threshold since the crossing
    monitor.record_deallocation("k0")  # 450 B: below
    monitor.record_allocation("k0", 400)  # 850 B: a new crossing
    assert monitor.get_alerts() == [ApproachingLimit(850, 3, 85.0, 80.0)]
    monitor.record_allocation("k0", 10)  # a shrinking replacement also drops below
    monitor.record_allocation("k0", 400)
    assert monitor.get_alerts() == [ApproachingLimit(850, 3, 85.0, 80.0)]


def test_alert_queue_drains_peeks_clears_and_is_bounded() -> None:
    monitor = StateMonitor(SMALL, max_alerts=2)
    for i in range(3):
        monitor.record_allocation(f"big{i}", 600)
    peeked = monitor.peek_alerts()
    assert peeked == monitor.peek_alerts()
    assert [a.key for a in peeked if isinstance(a, LimitExceeded)] == ["big1", "big2"]
    assert monitor.get_stats().alerts_dropped == 1
    assert monitor.get_alerts() == peeked
    assert monitor.peek_alerts() == []
    monitor.record_allocation("big3", 600)
    monitor.clear_alerts()
    assert monitor.get_alerts() == []
    with pytest.raises(ValueError, match="max_alerts must be >= 1, got 0"):
        StateMonitor(SMALL, max_alerts=0)


def test_alerts_describe_themselves_on_one_line() -> None:
    alerts: list[StateAlert] = [
        ApproachingLimit(800, 8, 80.0, 80.0),
        LimitExceeded("k", 600, "max_value_size", 500, 600),
        CleanupTriggered("auto", 100, 1, 700, 7),
        CleanupFailed("k", 100, "KeyError('k')"),
    ]
    texts = [str(alert) for alert in alerts]
    assert texts == [
        "state usage 80.0% reached the cleanup threshold 80.0% (800 bytes in 8 values)",
        "refused 'k' (600 bytes): max_value_size is 500, it would need 600",
        "auto cleanup evicted 1 values (100 bytes); 700 bytes in 7 values remain",
        "eviction callback failed for 'k' (100 bytes): KeyError('k'); "
        "your cache may still hold the value",
    ]


# --- eviction callback -------------------------------------------------------------------------


def test_failing_callback_becomes_cleanup_failed_and_the_rest_are_still_notified() -> None:
    seen: list[Hashable] = []

    def on_evict(key: Hashable, size: int, /) -> None:
        seen.append(key)
        if key == "k1":
            raise KeyError(key)

    monitor = StateMonitor(SMALL, on_evict=on_evict)
    fill(monitor, 100, 100, 100)
    assert monitor.cleanup(0) == (300, 3)
    assert seen == ["k0", "k1", "k2"]
    assert monitor.get_alerts() == [
        CleanupTriggered("manual", 300, 3, 0, 0),
        CleanupFailed("k1", 100, "KeyError('k1')"),
    ]
    assert monitor.get_stats().callback_failures == 1


def test_failing_callback_during_auto_cleanup_does_not_fail_the_allocation() -> None:
    def on_evict(key: Hashable, size: int, /) -> None:
        raise RuntimeError("cache is gone")

    monitor = StateMonitor(SMALL_AUTO, on_evict=on_evict)
    fill(monitor, *[100] * 8)
    assert monitor.get_alerts()[-1] == CleanupFailed("k0", 100, "RuntimeError('cache is gone')")
    assert monitor.current_size == 700


def test_callback_runs_outside_the_lock_and_may_call_back_in() -> None:
    calls: list[tuple[int, ResourceStats]] = []

    def on_evict(key: Hashable, size: int, /) -> None:
        calls.append((monitor.record_deallocation(key), monitor.get_stats()))

    monitor = StateMonitor(SMALL_AUTO, on_evict=on_evict)
    fill(monitor, *[100] * 8)
    assert len(calls) == 1
    freed, stats = calls[0]
    assert freed == 0  # already forgotten by the time the callback runs
    assert stats.current_size == 700


def test_on_evict_can_be_set_later() -> None:
    dropper = Dropper()
    monitor = StateMonitor(SMALL)
    assert monitor.on_evict is None
    monitor.on_evict = dropper
    assert monitor.on_evict is dropper
    dropper.put(monitor, "a", 10)
    monitor.cleanup(0)
    assert dropper.evicted == [("a", 10)]


# --- stats and reset ---------------------------------------------------------------------------


def test_stats_snapshot() -> None:
    monitor = StateMonitor(SMALL)
    fill(monitor, 300, 300)
    monitor.record_deallocation("k0")
    monitor.record_allocation("big", 501)
    assert monitor.get_stats() == ResourceStats(
        current_size=300,
        value_count=1,
        peak_size=600,
        usage_percentage=30.0,
        max_state_size=1000,
        max_cache_entries=10,
        allocations=2,
        refusals=1,
        deallocations=1,
        evictions=0,
        bytes_evicted=0,
        cleanups=0,
        callback_failures=0,
        alerts_dropped=0,
        fast_mode=False,
    )


def test_peak_tracks_every_kind_of_decrease() -> None:
    monitor = StateMonitor(SMALL)
    fill(monitor, 300)
    monitor.record_allocation("k0", 100)  # shrinking replacement
    assert monitor.get_stats().peak_size == 300
    fill(monitor, 200, 200, prefix="more")
    monitor.cleanup(0)
    assert monitor.get_stats().peak_size == 500


def test_reset_forgets_everything_without_calling_the_callback() -> None:
    dropper = Dropper()
    monitor = StateMonitor(SMALL, on_evict=dropper)
    fill(monitor, 500, 400)
    monitor.record_allocation("big", 600)
    monitor.reset()
    assert dropper.evicted == []
    assert monitor.get_allocations() == {}
    assert monitor.get_alerts() == []
    stats = monitor.get_stats()
    assert (stats.current_size, stats.peak_size, stats.allocations, stats.refusals) == (0, 0, 0, 0)
    fill(monitor, 400, 400)  # crossing again alerts again
    assert monitor.get_alerts() == [ApproachingLimit(800, 2, 80.0, 80.0)]


def test_threads_keep_exact_totals() -> None:
    monitor = StateMonitor(ResourceLimits(max_cache_entries=10_000))
    start = threading.Barrier(4)

    def work(t: int) -> None:
        start.wait()
        for i in range(2000):
            monitor.record_allocation((t, i % 50), i % 7 + 1)
            monitor.record_access((t, (i * 3) % 50))
            if i % 5 == 0:
                monitor.record_deallocation((t, (i + 1) % 50))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    allocations = monitor.get_allocations()
    assert monitor.current_size == sum(allocations.values())
    assert monitor.value_count == len(allocations)
    # Replaying one thread's operations alone gives the same final state for its keys.
    expected: dict[tuple[int, int], int] = {}
    for i in range(2000):
        expected[(0, i % 50)] = i % 7 + 1
        if i % 5 == 0:
            expected.pop((0, (i + 1) % 50), None)
    assert {k: v for k, v in allocations.items() if isinstance(k, tuple) and k[0] == 0} == expected


# --- fast mode ---------------------------------------------------------------------------------


def test_fast_mode_counts_totals_and_alerts() -> None:
    monitor = StateMonitor.fast(SMALL)
    assert monitor.is_fast
    fill(monitor, 400, 399)
    assert (monitor.current_size, monitor.value_count) == (799, 2)
    assert monitor.record_allocation("k0", 1)  # no per-key map: a second value, not a replacement
    assert (monitor.current_size, monitor.value_count) == (800, 3)
    assert monitor.should_cleanup
    assert monitor.usage_percentage == pytest.approx(80.0)
    assert monitor.get_alerts() == [ApproachingLimit(800, 3, 80.0, 80.0)]
    assert monitor.record_deallocation("k0", 400) == 400
    assert (monitor.current_size, monitor.value_count) == (400, 2)
    stats = monitor.get_stats()
    assert (stats.fast_mode, stats.peak_size, stats.allocations, stats.deallocations) == (
        True,
        800,
        3,
        1,
    )


def test_fast_mode_refuses_over_every_limit() -> None:
    monitor = StateMonitor.fast(SMALL)
    assert not monitor.record_allocation("v", 501)
    fill(monitor, 500, 500)
    assert not monitor.record_allocation("s", 1)
    monitor.reset()
    fill(monitor, *[0] * 10)
    assert not monitor.record_allocation("e", 0)
    assert [a for a in monitor.get_alerts() if isinstance(a, LimitExceeded)] == [
        LimitExceeded("e", 0, "max_cache_entries", 10, 11)
    ]
    with pytest.raises(ValueError, match="size must be >= 0"):
        monitor.record_allocation("n", -1)


def test_fast_mode_deallocation_needs_a_size_and_cannot_go_negative() -> None:
    monitor = StateMonitor.fast(SMALL)
    fill(monitor, 100)
    with pytest.raises(FastModeError, match=r"call record_deallocation\('k0', size\)"):
        monitor.record_deallocation("k0")
    with pytest.raises(ValueError, match=r"would take current_size \(100\) or value_count \(1\)"):
        monitor.record_deallocation("k0", 101)
    with pytest.raises(ValueError, match="below zero"):
        monitor.record_deallocation("k0", -1)
    assert monitor.record_deallocation("k0", 100) == 100
    with pytest.raises(ValueError, match="below zero"):
        monitor.record_deallocation("k0", 0)
    assert (monitor.current_size, monitor.value_count) == (0, 0)


@pytest.mark.parametrize(
    ("call", "what"),
    [
        (lambda m: m.cleanup(), "cleanup()"),
        (lambda m: m.get_lru_keys(1), "get_lru_keys()"),
        (lambda m: m.get_allocations(), "get_allocations()"),
        (lambda m: setattr(m, "on_evict", print), "on_evict"),
    ],
)
def test_fast_mode_rejects_what_needs_keys(
    call: Callable[[StateMonitor], object], what: str
) -> None:
    monitor = StateMonitor.fast(SMALL)
    with pytest.raises(FastModeError) as info:
        call(monitor)
    assert str(info.value) == (
        f"StateMonitor.fast() keeps no per-key sizes, so {what} is not available: "
        "use StateMonitor(limits)"
    )


def test_fast_mode_access_is_accepted_and_changes_nothing() -> None:
    monitor = StateMonitor.fast(SMALL)
    fill(monitor, 10)
    monitor.record_access("k0")
    monitor.record_access("unknown")
    assert (monitor.current_size, monitor.value_count) == (10, 1)


def test_fast_mode_refuses_auto_cleanup_limits_and_defaults_without_it() -> None:
    with pytest.raises(FastModeError, match=r"cannot evict: pass ResourceLimits\(auto_cleanup="):
        StateMonitor.fast(ResourceLimits())
    assert StateMonitor.fast().limits == ResourceLimits(auto_cleanup=False)


# --- state_monitor fixture -----------------------------------------------------------------------


def test_state_monitor_fixture_has_default_limits(state_monitor: StateMonitor) -> None:
    assert state_monitor.limits == ResourceLimits()
    assert not state_monitor.is_fast
    assert state_monitor.record_allocation("a", 1)


@pytest.mark.parametrize("state_monitor", [SMALL], indirect=True)
def test_state_monitor_fixture_takes_limits_indirectly(state_monitor: StateMonitor) -> None:
    assert state_monitor.limits is SMALL


def test_state_monitor_fixture_fails_the_test_on_unseen_callback_failures(run: Run) -> None:
    result = run(
        """
import pytest
from pytest_resources.components.state import CleanupFailed, ResourceLimits

def broken(key, size, /):
    raise OSError("disk gone")

def test_unseen(state_monitor):
    state_monitor.on_evict = broken
    state_monitor.record_allocation("a", 10)
    state_monitor.cleanup(0)

def test_seen(state_monitor):
    state_monitor.on_evict = broken
    state_monitor.record_allocation("a", 10)
    state_monitor.cleanup(0)
    assert any(isinstance(a, CleanupFailed) for a in state_monitor.get_alerts())

def test_cleared(state_monitor):
    state_monitor.on_evict = broken
    state_monitor.record_allocation("a", 10)
    state_monitor.cleanup(0)
    state_monitor.clear_alerts()

@pytest.mark.parametrize("state_monitor", ["not limits"], indirect=True)
def test_bad_param(state_monitor):
    pass
""",
    )
    result.assert_outcomes(passed=3, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_unseen*",
            "*state_monitor: 1 eviction callback failure(s) nobody looked at:",
            "*eviction callback failed for 'a' (10 bytes): OSError('disk gone'); *",
            "*ERROR at setup of test_bad_param*",
            "*TypeError: state_monitor takes a ResourceLimits parameter, got 'not limits'",
        ]
    )
